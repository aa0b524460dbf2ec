/* SPDX-License-Identifier: MIT */
/*
 * Dirty pages to dirty rectangles.
 *
 * A row of the framebuffer crosses one or more pages; the dirty ones give
 * spans of touched pixels (a pixel is touched if any of its bytes is in a
 * dirty page). Spans that overlap or touch a component's extent in the row
 * above join that component; each component ends as its bounding box. With a
 * stride that is not a multiple of the page size the page edges fall at
 * other columns on every row, so components are coarse: that is what
 * cohmem_fb_refine() is for.
 *
 * The count limit merges the cheapest neighbours (in top-to-bottom order)
 * pass by pass: each pass sorts the pairs by the area their union adds and
 * merges disjoint ones until the count fits or the pass is out of pairs, so
 * it takes O(n log n) and at most log2(n / max) passes.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bitmap.h"
#include "cohmem-fb.h"
#include "internal.h"

struct rect_list {
	struct cohmem_rect *r;
	size_t n, capacity;
};

static int rect_push(struct rect_list *l, struct cohmem_rect r)
{
	if (l->n == l->capacity) {
		size_t capacity = l->capacity ? 2 * l->capacity : 64;
		struct cohmem_rect *p = realloc(l->r, capacity * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->r = p;
		l->capacity = capacity;
	}
	l->r[l->n++] = r;
	return 0;
}

static struct cohmem_rect rect_union(struct cohmem_rect a, struct cohmem_rect b)
{
	unsigned x0 = a.x < b.x ? a.x : b.x, y0 = a.y < b.y ? a.y : b.y;
	unsigned x1 = a.x + a.w > b.x + b.w ? a.x + a.w : b.x + b.w;
	unsigned y1 = a.y + a.h > b.y + b.h ? a.y + a.h : b.y + b.h;

	return (struct cohmem_rect){ x0, y0, x1 - x0, y1 - y0 };
}

static uint64_t area(struct cohmem_rect r)
{
	return (uint64_t)r.w * r.h;
}

static bool layout_valid(const struct cohmem_fb *fb)
{
	size_t row = (size_t)fb->width * fb->bpp;

	if (!fb->width || !fb->height || !fb->bpp || row / fb->bpp != fb->width || fb->stride < row)
		return false;
	/* offset + stride * (height - 1) + row must fit */
	return (fb->height - 1) <= (SIZE_MAX - row - fb->offset) / fb->stride &&
	       fb->offset <= SIZE_MAX - row;
}

static bool rect_inside(const struct cohmem_fb *fb, const struct cohmem_rect *r)
{
	return r->x <= fb->width && r->w <= fb->width - r->x && r->y <= fb->height &&
	       r->h <= fb->height - r->y;
}

/* ---- pages to components --------------------------------------------------- */

struct component {
	struct cohmem_rect box;
	unsigned prev0, prev1;	/* its extent in the row above: [prev0, prev1) */
	unsigned cur0, cur1;	/* and in this row, while it is being built */
	unsigned last_row;	/* the last row it has pixels in */
	bool alive;
};

struct walk {
	const struct cohmem_fb *fb;
	const unsigned long *bitmap;
	size_t bitmap_pgoff, ps;
	struct component *comp;
	size_t ncomp, capacity;
	struct rect_list out;
};

static bool page_dirty(const struct walk *w, size_t byte)
{
	return bitmap_test(w->bitmap, byte / w->ps - w->bitmap_pgoff);
}

static int comp_new(struct walk *w, unsigned y, unsigned x0, unsigned x1)
{
	if (w->ncomp == w->capacity) {
		size_t capacity = w->capacity ? 2 * w->capacity : 64;
		struct component *c = realloc(w->comp, capacity * sizeof(*c));

		if (!c)
			return -ENOMEM;
		w->comp = c;
		w->capacity = capacity;
	}
	w->comp[w->ncomp++] = (struct component){
		.box = { x0, y, x1 - x0, 1 }, .cur0 = x0, .cur1 = x1, .last_row = y, .alive = true,
	};
	return 0;
}

/*
 * Join span [x0, x1) of row y to every component it touches in the row above
 * (spans of one row never touch each other: walk_row() merged those).
 */
static int add_span(struct walk *w, unsigned y, unsigned x0, unsigned x1)
{
	struct component *join = NULL;

	for (size_t i = 0; i < w->ncomp; i++) {
		struct component *c = &w->comp[i];

		if (!c->alive || c->prev1 <= c->prev0 || x0 > c->prev1 || x1 < c->prev0)
			continue;
		if (!join) {
			join = c;
			continue;
		}
		/* A second component touches the span: they are one now. */
		join->box = rect_union(join->box, c->box);
		join->prev0 = join->prev0 < c->prev0 ? join->prev0 : c->prev0;
		join->prev1 = join->prev1 > c->prev1 ? join->prev1 : c->prev1;
		if (c->last_row == y) {
			join->cur0 = join->last_row == y && join->cur0 < c->cur0 ? join->cur0 : c->cur0;
			join->cur1 = join->last_row == y && join->cur1 > c->cur1 ? join->cur1 : c->cur1;
			join->last_row = y;
		}
		c->alive = false;
	}
	if (!join)
		return comp_new(w, y, x0, x1);
	join->box = rect_union(join->box, (struct cohmem_rect){ x0, y, x1 - x0, 1 });
	if (join->last_row != y) {
		join->cur0 = x0;
		join->cur1 = x1;
		join->last_row = y;
	} else {
		join->cur0 = join->cur0 < x0 ? join->cur0 : x0;
		join->cur1 = join->cur1 > x1 ? join->cur1 : x1;
	}
	return 0;
}

/* End of row y: components without pixels in it are finished; the others move down. */
static int end_row(struct walk *w, unsigned y)
{
	size_t kept = 0;
	int err = 0;

	for (size_t i = 0; i < w->ncomp; i++) {
		struct component c = w->comp[i];

		if (!c.alive)
			continue;
		if (c.last_row != y) {
			err = err ? err : rect_push(&w->out, c.box);
			continue;
		}
		c.prev0 = c.cur0;
		c.prev1 = c.cur1;
		w->comp[kept++] = c;
	}
	w->ncomp = kept;
	return err;
}

/* The spans of touched pixels in row y, in order, merged where they touch. */
static int walk_row(struct walk *w, unsigned y)
{
	const struct cohmem_fb *fb = w->fb;
	size_t rs = fb->offset + (size_t)y * fb->stride, re = rs + (size_t)fb->width * fb->bpp;
	unsigned open0 = 0, open1 = 0;
	int err = 0;

	for (size_t byte = rs; byte < re && !err; byte = (byte / w->ps + 1) * w->ps) {
		size_t b = (byte / w->ps + 1) * w->ps < re ? (byte / w->ps + 1) * w->ps : re;
		unsigned x0, x1;

		if (!page_dirty(w, byte))
			continue;
		x0 = (unsigned)((byte - rs) / fb->bpp);
		x1 = (unsigned)((b - rs + fb->bpp - 1) / fb->bpp);
		if (open1 > open0 && x0 <= open1) {
			open1 = x1;
			continue;
		}
		if (open1 > open0)
			err = add_span(w, y, open0, open1);
		open0 = x0;
		open1 = x1;
	}
	if (!err && open1 > open0)
		err = add_span(w, y, open0, open1);
	return err ? err : end_row(w, y);
}

/* Is every page the framebuffer touches dirty? */
static bool all_dirty(const struct walk *w)
{
	const struct cohmem_fb *fb = w->fb;
	size_t first = fb->offset / w->ps - w->bitmap_pgoff;
	size_t end = (fb->offset + (size_t)(fb->height - 1) * fb->stride + (size_t)fb->width * fb->bpp - 1) /
			     w->ps + 1 - w->bitmap_pgoff;

	return bitmap_next_clear(w->bitmap, first, end) == end;
}

/* ---- the count limit ------------------------------------------------------------- */

struct pair {
	size_t i;	/* rects i and i + 1 */
	uint64_t cost;	/* area the union adds */
};

static int by_top_left(const void *a, const void *b)
{
	const struct cohmem_rect *x = a, *y = b;

	if (x->y != y->y)
		return x->y < y->y ? -1 : 1;
	return (x->x > y->x) - (x->x < y->x);
}

static int by_cost(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	if (x->cost != y->cost)
		return x->cost < y->cost ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

/* One pass: merge the cheapest disjoint neighbour pairs, at most n - max of them. */
static int merge_pass(struct rect_list *l, size_t max)
{
	size_t n = l->n, want = n - max, merged = 0, kept = 0;
	struct pair *pairs = malloc((n - 1) * sizeof(*pairs));
	unsigned char *used = calloc(n, 1);	/* 1: in a pair this pass; 2: merged into i - 1 */

	if (!pairs || !used) {
		free(pairs);
		free(used);
		return -ENOMEM;
	}
	qsort(l->r, n, sizeof(*l->r), by_top_left);
	for (size_t i = 0; i + 1 < n; i++) {
		uint64_t u = area(rect_union(l->r[i], l->r[i + 1])), sum = area(l->r[i]) + area(l->r[i + 1]);

		pairs[i] = (struct pair){ i, u > sum ? u - sum : 0 };	/* overlapping: adds nothing */
	}
	qsort(pairs, n - 1, sizeof(*pairs), by_cost);
	for (size_t k = 0; k < n - 1 && merged < want; k++) {
		size_t i = pairs[k].i;

		if (used[i] || used[i + 1])
			continue;
		l->r[i] = rect_union(l->r[i], l->r[i + 1]);
		used[i] = 1;
		used[i + 1] = 2;
		merged++;
	}
	for (size_t i = 0; i < n; i++)
		if (used[i] != 2)
			l->r[kept++] = l->r[i];
	l->n = kept;
	free(pairs);
	free(used);
	return 0;
}

/* ---- the API -------------------------------------------------------------------- */

_public_ long cohmem_fb_rects(const struct cohmem_fb *fb, size_t bitmap_pgoff,
			      const unsigned long *bitmap, struct cohmem_rect *rects, size_t max_rects)
{
	struct walk w = { .fb = fb, .bitmap = bitmap, .bitmap_pgoff = bitmap_pgoff, .ps = page_size() };
	int err = 0;

	if (!fb || !bitmap || !rects || !max_rects || !layout_valid(fb) ||
	    bitmap_pgoff > fb->offset / w.ps)
		return -EINVAL;
	if (all_dirty(&w)) {	/* what a region in copy mode reports, every time */
		rects[0] = (struct cohmem_rect){ 0, 0, fb->width, fb->height };
		return 1;
	}
	for (unsigned y = 0; y < fb->height && !err; y++)
		err = walk_row(&w, y);
	if (!err)
		err = end_row(&w, fb->height);	/* finish every component */
	while (!err && w.out.n > max_rects)
		err = merge_pass(&w.out, max_rects);
	if (!err && w.out.n)	/* out.r is NULL when nothing was dirty */
		memcpy(rects, w.out.r, w.out.n * sizeof(*rects));
	free(w.comp);
	free(w.out.r);
	return err ? err : (long)w.out.n;
}

/*
 * Shrink [*first, *last) of a and b to its first and last differing byte;
 * false if none differs. Bounded: a writer may undo a difference meanwhile.
 */
static bool trim_equal(const unsigned char *a, const unsigned char *b, size_t *first, size_t *last)
{
	while (*first < *last && a[*first] == b[*first])
		(*first)++;
	while (*last > *first && a[*last - 1] == b[*last - 1])
		(*last)--;
	return *first < *last;
}

/* The bounding box of the pixels of r that differ, or false if none does. */
static bool differing_box(const struct cohmem_fb *fb, const unsigned char *cur,
			  const unsigned char *old, struct cohmem_rect *r)
{
	size_t bpp = fb->bpp, len = (size_t)r->w * bpp;
	unsigned top = r->y + r->h, bottom = 0, left = r->x + r->w, right = 0;

	for (unsigned y = r->y; y < r->y + r->h; y++) {
		const unsigned char *a = cur + (size_t)y * fb->stride + (size_t)r->x * bpp;
		const unsigned char *b = old + (size_t)y * fb->stride + (size_t)r->x * bpp;
		size_t first = 0, last = len;

		if (!memcmp(a, b, len) || !trim_equal(a, b, &first, &last))
			continue;
		top = y < top ? y : top;
		bottom = y + 1;
		left = r->x + (unsigned)(first / bpp) < left ? r->x + (unsigned)(first / bpp) : left;
		right = r->x + (unsigned)((last + bpp - 1) / bpp) > right ? r->x + (unsigned)((last + bpp - 1) / bpp)
									  : right;
	}
	if (!bottom)
		return false;
	*r = (struct cohmem_rect){ left, top, right - left, bottom - top };
	return true;
}

static bool rects_valid(const struct cohmem_fb *fb, const struct cohmem_rect *rects, size_t n)
{
	if (!fb || !layout_valid(fb) || (n && !rects))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!rect_inside(fb, &rects[i]))
			return false;
	return true;
}

_public_ long cohmem_fb_refine(const struct cohmem_fb *fb, const void *pixels, const void *shadow,
			       struct cohmem_rect *rects, size_t n)
{
	size_t kept = 0;

	if (!pixels || !shadow || !rects_valid(fb, rects, n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		struct cohmem_rect r = rects[i];

		if (differing_box(fb, pixels, shadow, &r))
			rects[kept++] = r;
	}
	return (long)kept;
}

struct span {
	unsigned x0, x1;
};

static int by_x0(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return (x->x0 > y->x0) - (x->x0 < y->x0);
}

#define DAMAGE_BLOCK 64	/* bytes compared at a time; an equal block between changes splits a span */
#define DAMAGE_BAND 32	/* rows: no box crosses a multiple of this */

/*
 * Append to spans the runs of pixels in [x0, x0 + w) of row y that differ
 * between cur and old: runs of differing DAMAGE_BLOCK-byte blocks, trimmed to
 * the first and last differing pixel. Returns how many were added.
 */
static size_t differing_spans(const struct cohmem_fb *fb, const unsigned char *cur, const unsigned char *old,
			      unsigned y, unsigned x0, unsigned w, struct span *spans)
{
	size_t bpp = fb->bpp, len = (size_t)w * bpp, ns = 0;
	const unsigned char *a = cur + (size_t)y * fb->stride + (size_t)x0 * bpp;
	const unsigned char *b = old + (size_t)y * fb->stride + (size_t)x0 * bpp;

	if (!len || !memcmp(a, b, len))
		return 0;
	for (size_t at = 0; at < len;) {
		size_t first, last, block = len - at < DAMAGE_BLOCK ? len - at : DAMAGE_BLOCK;

		if (!memcmp(a + at, b + at, block)) {
			at += block;
			continue;
		}
		first = at;
		while (at < len && memcmp(a + at, b + at, len - at < DAMAGE_BLOCK ? len - at : DAMAGE_BLOCK))
			at += len - at < DAMAGE_BLOCK ? len - at : DAMAGE_BLOCK;
		last = at;
		if (!trim_equal(a, b, &first, &last))
			continue;
		spans[ns++] = (struct span){ x0 + (unsigned)(first / bpp), x0 + (unsigned)((last + bpp - 1) / bpp) };
	}
	return ns;
}

/*
 * Row y of the damage walk: the differing spans of every rectangle that
 * covers the row, sorted and merged where they touch, joined to the
 * components of the row above. spans has room for a row's worth per rectangle.
 */
static int damage_row(struct walk *w, const unsigned char *cur, const unsigned char *old,
		      const struct cohmem_rect *rects, size_t n, struct span *spans, unsigned y)
{
	size_t ns = 0;
	int err = 0;

	for (size_t i = 0; i < n; i++) {
		const struct cohmem_rect *r = &rects[i];

		if (y >= r->y && y - r->y < r->h)
			ns += differing_spans(w->fb, cur, old, y, r->x, r->w, spans + ns);
	}
	if (ns > 1)
		qsort(spans, ns, sizeof(*spans), by_x0);
	for (size_t i = 0; i < ns && !err;) {
		struct span open = spans[i++];

		while (i < ns && spans[i].x0 <= open.x1) {
			open.x1 = spans[i].x1 > open.x1 ? spans[i].x1 : open.x1;
			i++;
		}
		err = add_span(w, y, open.x0, open.x1);
	}
	return err ? err : end_row(w, y);
}

_public_ long cohmem_fb_damage(const struct cohmem_fb *fb, const void *pixels, const void *shadow,
			       const struct cohmem_rect *rects, size_t n, struct cohmem_rect *out,
			       size_t max_out)
{
	struct walk w = { .fb = fb };
	unsigned top = UINT_MAX, bottom = 0;
	size_t per_row = 0;	/* spans a row can have: half its blocks per rectangle, rounded up */
	struct span *spans;
	int err = 0;

	if (!pixels || !shadow || !out || !max_out || !rects_valid(fb, rects, n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!rects[i].w || !rects[i].h)
			continue;
		per_row += ((size_t)rects[i].w * fb->bpp / DAMAGE_BLOCK + 2) / 2 + 1;
		top = rects[i].y < top ? rects[i].y : top;
		bottom = rects[i].y + rects[i].h > bottom ? rects[i].y + rects[i].h : bottom;
	}
	if (bottom <= top)
		return 0;
	spans = malloc(per_row * sizeof(*spans));
	if (!spans)
		return -ENOMEM;
	for (unsigned y = top; y < bottom && !err; y++) {
		/* Bands: a box spans at most DAMAGE_BAND rows, so overlapping sprites stay apart. */
		if (y > top && y % DAMAGE_BAND == 0)
			err = end_row(&w, y);
		if (!err)
			err = damage_row(&w, pixels, shadow, rects, n, spans, y);
	}
	if (!err)
		err = end_row(&w, bottom);	/* finish every component */
	while (!err && w.out.n > max_out)
		err = merge_pass(&w.out, max_out);
	if (!err && w.out.n)
		memcpy(out, w.out.r, w.out.n * sizeof(*out));
	free(spans);
	free(w.comp);
	free(w.out.r);
	return err ? err : (long)w.out.n;
}

_public_ long cohmem_fb_copy(const struct cohmem_fb *fb, void *dst, const void *src,
			     const struct cohmem_rect *rects, size_t n)
{
	long copied = 0;

	if (!dst || !src || !rects_valid(fb, rects, n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t off = (size_t)rects[i].y * fb->stride + (size_t)rects[i].x * fb->bpp;
		size_t len = (size_t)rects[i].w * fb->bpp;

		if (len == fb->stride) {	/* whole rows without padding: one block */
			memcpy((char *)dst + off, (const char *)src + off, len * rects[i].h);
			copied += (long)(len * rects[i].h);
			continue;
		}
		for (unsigned y = 0; y < rects[i].h; y++, off += fb->stride)
			memcpy((char *)dst + off, (const char *)src + off, len);
		copied += (long)(len * rects[i].h);
	}
	return copied;
}
