/* SPDX-License-Identifier: MIT */
/*
 * Dirty rectangles, checked against a per-pixel oracle over random layouts
 * (strides below and above the page size, framebuffers that do not start on
 * a page boundary, 1 to 4 bytes per pixel) and random bitmaps.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "test.h"

#define CASES 250

struct fbcase {
	struct cohmem_fb fb;
	size_t pgoff, npages;	/* bitmap_pgoff, and pages after it that the bitmap covers */
	unsigned long *bitmap;
};

static unsigned seed = 20261125;

static unsigned rnd(unsigned n)
{
	return (unsigned)rand_r(&seed) % n;
}

static size_t last_byte(const struct cohmem_fb *fb)
{
	return fb->offset + (size_t)(fb->height - 1) * fb->stride + (size_t)fb->width * fb->bpp - 1;
}

static struct fbcase random_case(void)
{
	static const unsigned per_mille[] = { 1, 20, 100, 400, 950 };
	struct fbcase c;
	unsigned density = per_mille[rnd(5)];

	c.fb.bpp = 1 + rnd(4);
	c.fb.width = 1 + rnd(1500);
	c.fb.height = 1 + rnd(200);
	c.fb.stride = (size_t)c.fb.width * c.fb.bpp + (rnd(3) ? rnd(6000) : 0);
	c.fb.offset = rnd(3) ? rnd(3 * (unsigned)PS) : 0;
	c.pgoff = rnd(2) ? c.fb.offset / PS : 0;
	c.npages = last_byte(&c.fb) / PS + 1 - c.pgoff;
	c.bitmap = bitmap_new(c.npages);
	for (size_t i = 0; i < c.npages; i++)
		if (rnd(1000) < density)
			c.bitmap[i / (8 * sizeof(long))] |= 1UL << (i % (8 * sizeof(long)));
	return c;
}

/* The oracle: does a byte of pixel (x, y) lie in a dirty page? */
static bool pixel_touched(const struct fbcase *c, unsigned x, unsigned y)
{
	size_t first = c->fb.offset + (size_t)y * c->fb.stride + (size_t)x * c->fb.bpp;

	for (size_t pg = first / PS; pg <= (first + c->fb.bpp - 1) / PS; pg++)
		if (bit_is_set(c->bitmap, pg - c->pgoff))
			return true;
	return false;
}

/* How many rectangles cover each pixel, by 2-D prefix sums. */
static int *coverage(const struct cohmem_fb *fb, const struct cohmem_rect *r, long n)
{
	size_t w = fb->width + 1;
	int *g = calloc(w * (fb->height + 1), sizeof(*g));

	cr_assert_not_null(g);
	for (long i = 0; i < n; i++) {
		g[r[i].y * w + r[i].x]++;
		g[r[i].y * w + r[i].x + r[i].w]--;
		g[(r[i].y + r[i].h) * w + r[i].x]--;
		g[(r[i].y + r[i].h) * w + r[i].x + r[i].w]++;
	}
	for (size_t y = 0; y <= fb->height; y++)
		for (size_t x = 0; x <= fb->width; x++)
			g[y * w + x] += (x ? g[y * w + x - 1] : 0) + (y ? g[(y - 1) * w + x] : 0) -
					(x && y ? g[(y - 1) * w + x - 1] : 0);
	return g;
}

static void assert_inside(const struct cohmem_fb *fb, const struct cohmem_rect *r, long n)
{
	for (long i = 0; i < n; i++) {
		cr_assert(r[i].w > 0 && r[i].h > 0, "empty rectangle %ld", i);
		cr_assert(r[i].x + r[i].w <= fb->width && r[i].y + r[i].h <= fb->height,
			  "rectangle %ld (%u,%u %ux%u) leaves the %ux%u framebuffer", i, r[i].x, r[i].y,
			  r[i].w, r[i].h, fb->width, fb->height);
	}
}

TestSuite(rects, .timeout = 300);

Test(rects, cover_every_touched_pixel_and_nothing_outside)
{
	static const size_t limits[] = { 1, 2, 7, 64, 100000 };

	for (int k = 0; k < CASES; k++) {
		struct fbcase c = random_case();
		size_t max = limits[rnd(5)];
		struct cohmem_rect *r = calloc(max, sizeof(*r));
		long n = cohmem_fb_rects(&c.fb, c.pgoff, c.bitmap, r, max);
		int *g;

		cr_assert_geq(n, 0, "case %d: %s", k, strerror((int)-n));
		cr_assert_leq((size_t)n, max, "case %d: the limit", k);
		assert_inside(&c.fb, r, n);
		g = coverage(&c.fb, r, n);
		for (unsigned y = 0; y < c.fb.height; y++)
			for (unsigned x = 0; x < c.fb.width; x++)
				cr_assert(!pixel_touched(&c, x, y) || g[y * (c.fb.width + 1) + x] > 0,
					  "case %d (%ux%u, bpp %u, stride %zu, offset %zu, max %zu): "
					  "pixel %u,%u is touched but not covered",
					  k, c.fb.width, c.fb.height, c.fb.bpp, c.fb.stride, c.fb.offset, max, x, y);
		if (max == 1 && n == 1) {	/* the last resort is the bounding box of what is touched */
			unsigned x0 = c.fb.width, y0 = c.fb.height, x1 = 0, y1 = 0;

			for (unsigned y = 0; y < c.fb.height; y++)
				for (unsigned x = 0; x < c.fb.width; x++)
					if (pixel_touched(&c, x, y)) {
						x0 = x < x0 ? x : x0;
						y0 = y < y0 ? y : y0;
						x1 = x + 1 > x1 ? x + 1 : x1;
						y1 = y + 1 > y1 ? y + 1 : y1;
					}
			cr_assert(r[0].x == x0 && r[0].y == y0 && r[0].w == x1 - x0 && r[0].h == y1 - y0,
				  "case %d: not the bounding box", k);
		}
		free(g);
		free(r);
		free(c.bitmap);
	}
}

Test(rects, nothing_dirty_no_rectangles)
{
	struct cohmem_fb fb = { .offset = 100, .stride = 8000, .width = 1920, .height = 100, .bpp = 4 };
	unsigned long *bm = bitmap_new(last_byte(&fb) / PS + 1);
	struct cohmem_rect r[4];

	cr_assert_eq(cohmem_fb_rects(&fb, 0, bm, r, 4), 0);
	free(bm);
}

/* Every pixel that differs between cur and old lies in one of the n rectangles r (case k). */
static void assert_changes_covered(const struct cohmem_fb *fb, const unsigned char *cur,
				   const unsigned char *old, const struct cohmem_rect *r, long n, int k)
{
	int *g = coverage(fb, r, n);

	for (unsigned y = 0; y < fb->height; y++)
		for (unsigned x = 0; x < fb->width; x++) {
			size_t at = (size_t)y * fb->stride + (size_t)x * fb->bpp;

			cr_assert(!memcmp(cur + at, old + at, fb->bpp) || g[y * (fb->width + 1) + x],
				  "case %d: changed pixel %u,%u dropped", k, x, y);
		}
	free(g);
}

Test(rects, refinement_never_drops_a_changed_pixel)
{
	for (int k = 0; k < CASES; k++) {
		struct fbcase c = random_case();
		size_t size = (size_t)(c.fb.height - 1) * c.fb.stride + (size_t)c.fb.width * c.fb.bpp;
		unsigned char *cur = malloc(size), *old = malloc(size);
		size_t max = 1 + rnd(50);
		struct cohmem_rect *r = calloc(max, sizeof(*r));
		long n;

		for (size_t i = 0; i < size; i++)
			cur[i] = old[i] = (unsigned char)rnd(256);
		/* change some pixels, only where a page is dirty (as real writes would) */
		for (unsigned i = rnd(200); i > 0; i--) {
			unsigned x = rnd(c.fb.width), y = rnd(c.fb.height);

			if (pixel_touched(&c, x, y))
				cur[(size_t)y * c.fb.stride + (size_t)x * c.fb.bpp + rnd(c.fb.bpp)] ^= 0x5a;
		}
		n = cohmem_fb_rects(&c.fb, c.pgoff, c.bitmap, r, max);
		cr_assert_geq(n, 0);
		n = cohmem_fb_refine(&c.fb, cur, old, r, (size_t)n);
		cr_assert_geq(n, 0, "case %d: %s", k, strerror((int)-n));
		assert_inside(&c.fb, r, n);
		assert_changes_covered(&c.fb, cur, old, r, n, k);
		free(r);
		free(cur);
		free(old);
		free(c.bitmap);
	}
}

/* The point of refining: a blinking cursor costs a cursor-sized rectangle. */
Test(rects, a_blinking_cursor_costs_a_cursor)
{
	struct cohmem_fb fb = { .offset = 0, .stride = 1920 * 4, .width = 1920, .height = 1080, .bpp = 4 };
	size_t size = fb.stride * fb.height, pages = size / PS + 1;
	unsigned char *cur = calloc(1, size), *old = calloc(1, size);
	unsigned long *bm = bitmap_new(pages);
	struct cohmem_rect r[8];
	long n;

	for (unsigned y = 500; y < 516; y++) {	/* an 8x16 cursor at 960,500 */
		size_t at = y * fb.stride + 960 * 4;

		memset(cur + at, 0xff, 8 * 4);
		for (size_t pg = at / PS; pg <= (at + 8 * 4 - 1) / PS; pg++)
			bm[pg / (8 * sizeof(long))] |= 1UL << (pg % (8 * sizeof(long)));
	}
	n = cohmem_fb_rects(&fb, 0, bm, r, 8);
	cr_assert_geq(n, 1);
	cr_assert_gt((uint64_t)r[0].w * r[0].h, 8 * 16, "page rectangles are coarse");
	n = cohmem_fb_refine(&fb, cur, old, r, (size_t)n);
	cr_assert_eq(n, 1);
	cr_assert(r[0].x == 960 && r[0].y == 500 && r[0].w == 8 && r[0].h == 16,
		  "got %u,%u %ux%u", r[0].x, r[0].y, r[0].w, r[0].h);
	cr_assert_eq(cohmem_fb_copy(&fb, old, cur, r, 1), 8 * 16 * 4);
	cr_assert(!memcmp(cur, old, size), "copying the refined rectangle makes the copies equal");
	free(cur);
	free(old);
	free(bm);
}

Test(rects, bad_input)
{
	struct cohmem_fb fb = { .offset = 0, .stride = 400, .width = 100, .height = 10, .bpp = 4 };
	struct cohmem_fb bad = fb;
	unsigned long bm[4] = { 0 };
	struct cohmem_rect r[2] = { { 0, 0, 100, 10 }, { 90, 5, 11, 1 } };
	struct cohmem_rect out[4] = { { 7, 7, 1, 1 } };
	char buf[4000];

	cr_assert_eq(cohmem_fb_rects(NULL, 0, bm, r, 2), -EINVAL);
	cr_assert_eq(cohmem_fb_rects(&fb, 0, NULL, r, 2), -EINVAL);
	cr_assert_eq(cohmem_fb_rects(&fb, 0, bm, NULL, 2), -EINVAL);
	cr_assert_eq(cohmem_fb_rects(&fb, 0, bm, r, 0), -EINVAL, "no room");
	bad.stride = 399;
	cr_assert_eq(cohmem_fb_rects(&bad, 0, bm, r, 2), -EINVAL, "stride below a row");
	bad = fb;
	bad.bpp = 0;
	cr_assert_eq(cohmem_fb_rects(&bad, 0, bm, r, 2), -EINVAL, "no bytes per pixel");
	bad = fb;
	bad.height = 0;
	cr_assert_eq(cohmem_fb_rects(&bad, 0, bm, r, 2), -EINVAL);
	bad = fb;
	bad.offset = SIZE_MAX - 100;
	cr_assert_eq(cohmem_fb_rects(&bad, 0, bm, r, 2), -EINVAL, "overflows");
	bad = fb;
	bad.offset = 10;
	cr_assert_eq(cohmem_fb_rects(&bad, 1, bm, r, 2), -EINVAL, "bitmap starts after the framebuffer");
	cr_assert_eq(cohmem_fb_refine(&fb, buf, buf, r, 2), -EINVAL, "a rectangle sticks out");
	cr_assert_eq(cohmem_fb_copy(&fb, buf, buf, r, 2), -EINVAL);
	cr_assert_eq(r[1].x, 90, "and is left as it was");
	cr_assert_eq(cohmem_fb_refine(&fb, buf, buf, r, 1), 0, "nothing differs");
	cr_assert_eq(cohmem_fb_damage(&fb, buf, buf, r, 2, out, 4), -EINVAL, "a rectangle sticks out");
	cr_assert_eq(cohmem_fb_damage(&fb, buf, buf, r, 1, out, 0), -EINVAL, "no room");
	cr_assert_eq(cohmem_fb_damage(&fb, NULL, buf, r, 1, out, 4), -EINVAL);
	cr_assert_eq(cohmem_fb_damage(&fb, buf, buf, r, 1, NULL, 4), -EINVAL);
	cr_assert_eq(cohmem_fb_damage(&fb, buf, buf, r, 1, out, 4), 0, "nothing differs");
	cr_assert_eq(out[0].x, 7, "out is untouched when nothing differs");
}

/* Damage, over the page rectangles or over the whole frame, never drops a changed pixel. */
Test(rects, damage_never_drops_a_changed_pixel)
{
	for (int k = 0; k < CASES; k++) {
		struct fbcase c = random_case();
		size_t size = (size_t)(c.fb.height - 1) * c.fb.stride + (size_t)c.fb.width * c.fb.bpp;
		unsigned char *cur = malloc(size), *old = malloc(size);
		size_t max = 1 + rnd(50);
		struct cohmem_rect *in = calloc(max, sizeof(*in)), *out = calloc(max, sizeof(*out));
		struct cohmem_rect whole = { 0, 0, c.fb.width, c.fb.height };
		bool from_pages = rnd(2);
		long n = 1;

		for (size_t i = 0; i < size; i++)
			cur[i] = old[i] = (unsigned char)rnd(256);
		for (unsigned i = rnd(200); i > 0; i--) {
			unsigned x = rnd(c.fb.width), y = rnd(c.fb.height);

			if (!from_pages || pixel_touched(&c, x, y))
				cur[(size_t)y * c.fb.stride + (size_t)x * c.fb.bpp + rnd(c.fb.bpp)] ^= 0x5a;
		}
		if (from_pages)
			n = cohmem_fb_rects(&c.fb, c.pgoff, c.bitmap, in, max);
		cr_assert_geq(n, 0);
		n = cohmem_fb_damage(&c.fb, cur, old, from_pages ? in : &whole, (size_t)n, out, max);
		cr_assert_geq(n, 0, "case %d: %s", k, strerror((int)-n));
		cr_assert_leq(n, (long)max);
		assert_inside(&c.fb, out, n);
		assert_changes_covered(&c.fb, cur, old, out, n, k);
		free(in);
		free(out);
		free(cur);
		free(old);
		free(c.bitmap);
	}
}

/*
 * The point of damage: given the whole frame (a region in copy mode reports
 * every page), two sprites and a cursor come out as boxes inside them that
 * cover exactly their pixels, where refining the frame gives one box around
 * all of them.
 */
Test(rects, damage_splits_the_whole_frame_into_what_changed)
{
	struct cohmem_fb fb = { .offset = 0, .stride = 1920 * 4, .width = 1920, .height = 1080, .bpp = 4 };
	static const struct cohmem_rect sprites[] = { { 100, 100, 64, 64 }, { 1500, 130, 32, 200 },
						      { 960, 900, 8, 16 } };
	size_t size = fb.stride * fb.height;
	unsigned char *cur = calloc(1, size), *old = calloc(1, size);
	struct cohmem_rect whole = { 0, 0, 1920, 1080 }, out[64], refined = whole;
	uint64_t area = 0, sprite_area = 0;
	long n;

	cr_assert(cur && old);
	for (size_t i = 0; i < 3; i++) {
		for (unsigned y = sprites[i].y; y < sprites[i].y + sprites[i].h; y++)
			memset(cur + y * fb.stride + sprites[i].x * 4, 0x80, sprites[i].w * 4);
		sprite_area += (uint64_t)sprites[i].w * sprites[i].h;
	}
	n = cohmem_fb_damage(&fb, cur, old, &whole, 1, out, 64);
	cr_assert_geq(n, 3);
	for (long i = 0; i < n; i++) {
		bool inside = false;

		for (size_t k = 0; k < 3; k++)
			inside |= out[i].x >= sprites[k].x && out[i].x + out[i].w <= sprites[k].x + sprites[k].w &&
				  out[i].y >= sprites[k].y && out[i].y + out[i].h <= sprites[k].y + sprites[k].h;
		cr_assert(inside, "box %u,%u %ux%u lies in a sprite", out[i].x, out[i].y, out[i].w, out[i].h);
		area += (uint64_t)out[i].w * out[i].h;
	}
	cr_assert_eq(area, sprite_area, "the boxes cover the sprites once, and nothing else");
	cr_assert_eq(cohmem_fb_refine(&fb, cur, old, &refined, 1), 1);
	cr_assert_gt((uint64_t)refined.w * refined.h, 50 * sprite_area, "refine keeps one box around all");
	n = cohmem_fb_damage(&fb, cur, old, &whole, 1, out, 1);
	cr_assert_eq(n, 1, "max_out 1 merges everything into one box");
	cr_assert(out[0].x == refined.x && out[0].y == refined.y && out[0].w == refined.w &&
		  out[0].h == refined.h);
	cr_assert_eq(cohmem_fb_copy(&fb, old, cur, out, 1), (long)out[0].w * out[0].h * 4);
	cr_assert(!memcmp(cur, old, size));
	free(cur);
	free(old);
}
