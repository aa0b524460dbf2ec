/* SPDX-License-Identifier: MIT */
/*
 * The framebuffer scenario of cohmem-bench: a 32 bpp screen where moving
 * sprites repaint a share of the pixels every frame, kept in sync with a
 * device copy by:
 *   cohmem        libcohmem page rectangles, copied
 *   cohmem+refine the same, shrunk to the pixels that differ first
 *   adaptive      a COHMEM_REGION_ADAPTIVE region whose shadow is the device
 *                 copy: hot pages stay writable, and past a dirty share the
 *                 region compares or copies instead of faulting; refined
 *                 only while it tracks (in the other modes the library has
 *                 compared already, or reports every page, and a refine
 *                 would compare the whole frame again): the fastest
 *   adaptive-bytes the same region, its rectangles cut to what differs from
 *                 the device copy by cohmem_fb_damage(): the fewest bytes (a VNC link)
 *   scanline      memcmp per scanline against the device copy, changed spans copied
 *   tiles-xxh3    32x32 tiles hashed with XXH3 against the last hashes, changed tiles copied
 *   full-copy     the whole frame, every frame
 * All strategies see the same frames, take turns every few frames, and are
 * checked at the end: each device copy must equal its framebuffer. Reported:
 * time per frame (drawing + sync) and bytes moved per frame, over the frames
 * after a warm-up (a server runs for hours; the adaptive policy settles in its
 * first frames). Targets: adaptive within 1.1x of the fastest fixed
 * strategy, adaptive-bytes within 1.25x of the fewest bytes, and with moving
 * sprites (0.5 % and 5 %) adaptive 1.5x faster than hashing tiles.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY	/* XXH3_state_t on the stack */
#include <xxhash.h>

#include "cohmem.h"
#include "cohmem-fb.h"
#include "fb.h"
#include "target.h"

#define TILE 32
#define MAX_RECTS 64
#define WARM 24	/* frames before the measured ones */
#define FRAMES 48	/* measured */
#define TURN 4	/* frames in a row per strategy */

struct fb_strategy;

enum refine { REFINE_NEVER, REFINE_TRACKING, REFINE_ALWAYS, REFINE_DAMAGE };

struct fb_runner {
	const struct fb_strategy *s;
	struct cohmem_fb fb;
	unsigned char *pixels, *device;	/* pixel (0, 0) of each */
	char *region;
	size_t region_size, pages;
	cohmem_tracker *t;
	cohmem_region *r;
	unsigned long *bitmap;
	uint64_t *hashes;
	double draw_ms[FRAMES], sync_ms[FRAMES];	/* per measured frame */
	unsigned measured;
	unsigned long long bytes;
};

struct fb_strategy {
	const char *name;
	/* bring the device copy up to date; returns bytes moved */
	unsigned long long (*sync)(struct fb_runner *r);
	bool tracked;
	enum refine refine;
	unsigned region_flags;	/* cohmem_region_add() flags */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool tracking(const struct fb_runner *r)
{
	struct cohmem_region_stats st;

	return cohmem_region_stats(r->r, &st, sizeof(st)) == 0 && st.mode == COHMEM_MODE_TRACK;
}

/* An adaptive region's mode and switches, for the table. */
static const char *policy(const struct fb_runner *r)
{
	static const char *const modes[] = { "track", "compare", "copy" };
	static char text[64];
	struct cohmem_region_stats st;

	if (!(r->s->region_flags & COHMEM_REGION_ADAPTIVE) || cohmem_region_stats(r->r, &st, sizeof(st)))
		return "";
	snprintf(text, sizeof(text), "  %s, %llu switches, %llu storms", modes[st.mode % 3], st.mode_switches,
		 st.fault_storms);
	return text;
}

static unsigned long long sync_cohmem(struct fb_runner *r)
{
	struct cohmem_rect rects[MAX_RECTS], damage[MAX_RECTS];
	long n;

	memset(r->bitmap, 0, (r->pages / (8 * sizeof(long)) + 1) * sizeof(unsigned long));
	if (cohmem_region_clean(r->r, 0, r->pages, 0, r->bitmap, NULL, NULL) <= 0)
		return 0;
	n = cohmem_fb_rects(&r->fb, 0, r->bitmap, rects, MAX_RECTS);
	if (n > 0 && r->s->refine == REFINE_DAMAGE) {
		n = cohmem_fb_damage(&r->fb, r->pixels, r->device, rects, (size_t)n, damage, MAX_RECTS);
		return n > 0 ? (unsigned long long)cohmem_fb_copy(&r->fb, r->device, r->pixels, damage, (size_t)n)
			     : 0;
	}
	if (n > 0 && (r->s->refine == REFINE_ALWAYS || (r->s->refine == REFINE_TRACKING && tracking(r))))
		n = cohmem_fb_refine(&r->fb, r->pixels, r->device, rects, (size_t)n);
	return n > 0 ? (unsigned long long)cohmem_fb_copy(&r->fb, r->device, r->pixels, rects, (size_t)n)
		     : 0;
}

/* Per scanline: where the row differs, copy from the first to the last differing byte. */
static unsigned long long sync_scanline(struct fb_runner *r)
{
	size_t len = (size_t)r->fb.width * 4;
	unsigned long long moved = 0;

	for (unsigned y = 0; y < r->fb.height; y++) {
		unsigned char *a = r->pixels + y * r->fb.stride, *b = r->device + y * r->fb.stride;
		size_t first = 0, last = len;

		if (!memcmp(a, b, len))
			continue;
		while (a[first] == b[first])
			first++;
		while (a[last - 1] == b[last - 1])
			last--;
		memcpy(b + first, a + first, last - first);
		moved += last - first;
	}
	return moved;
}

static unsigned long long sync_tiles(struct fb_runner *r)
{
	unsigned tx = (r->fb.width + TILE - 1) / TILE, ty = (r->fb.height + TILE - 1) / TILE;
	unsigned long long moved = 0;

	for (unsigned j = 0; j < ty; j++) {
		for (unsigned i = 0; i < tx; i++) {
			unsigned w = i * TILE + TILE <= r->fb.width ? TILE : r->fb.width - i * TILE;
			unsigned h = j * TILE + TILE <= r->fb.height ? TILE : r->fb.height - j * TILE;
			XXH3_state_t st;
			uint64_t hash;

			XXH3_64bits_reset(&st);
			for (unsigned y = 0; y < h; y++)
				XXH3_64bits_update(&st, r->pixels + (j * TILE + y) * r->fb.stride + i * TILE * 4,
						   (size_t)w * 4);
			hash = XXH3_64bits_digest(&st);
			if (hash == r->hashes[j * tx + i])
				continue;
			r->hashes[j * tx + i] = hash;
			for (unsigned y = 0; y < h; y++) {
				size_t at = (j * TILE + y) * r->fb.stride + i * TILE * 4;

				memcpy(r->device + at, r->pixels + at, (size_t)w * 4);
			}
			moved += (unsigned long long)w * h * 4;
		}
	}
	return moved;
}

static unsigned long long sync_full(struct fb_runner *r)
{
	size_t size = r->fb.stride * r->fb.height;

	memcpy(r->device, r->pixels, size);
	return size;
}

static const struct fb_strategy fb_strategies[] = {
	{ "cohmem", sync_cohmem, true, REFINE_NEVER, 0 },
	{ "cohmem+refine", sync_cohmem, true, REFINE_ALWAYS, 0 },
	{ "scanline", sync_scanline, false, REFINE_NEVER, 0 },
	{ "tiles-xxh3", sync_tiles, false, REFINE_NEVER, 0 },
	{ "full-copy", sync_full, false, REFINE_NEVER, 0 },
	{ "adaptive", sync_cohmem, true, REFINE_TRACKING, COHMEM_REGION_ADAPTIVE },
	{ "adaptive-bytes", sync_cohmem, true, REFINE_DAMAGE, COHMEM_REGION_ADAPTIVE },
};
#define NFIXED 5	/* the strategies before the adaptive ones */
#define ADAPTIVE NFIXED
#define ADAPTIVE_BYTES (NFIXED + 1)
#define TILES 3
#define NFB (sizeof(fb_strategies) / sizeof(fb_strategies[0]))

/* Frame f: the cursor blinks; sprites of side `side` move to places that depend only on f. */
static void draw(struct fb_runner *r, unsigned f, unsigned sprites, unsigned side, bool cursor)
{
	for (unsigned row = 0; cursor && row < 16; row++) {
		uint32_t *p = (uint32_t *)(r->pixels + (r->fb.height / 3 + row) * r->fb.stride) + r->fb.width / 2;

		for (unsigned col = 0; col < 8; col++)
			p[col] = f % 2 ? 0xffffff : 0;
	}
	for (unsigned i = 0; i < sprites; i++) {
		unsigned span_x = r->fb.width - side, span_y = r->fb.height - side;
		unsigned x = (f * 13 + i * 977) % span_x, y = (f * 7 + i * 541) % span_y;
		uint32_t color = 0x010101u * (f * 31 + i * 17 + 1) ^ 0x00a05030u;

		for (unsigned row = y; row < y + side; row++) {
			uint32_t *p = (uint32_t *)(r->pixels + row * r->fb.stride) + x;

			for (unsigned col = 0; col < side; col++)
				p[col] = color;
		}
	}
}

static int runner_open(struct fb_runner *r, const struct fb_strategy *s, unsigned w, unsigned h)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	unsigned tiles = ((w + TILE - 1) / TILE) * ((h + TILE - 1) / TILE);

	*r = (struct fb_runner){ .s = s, .fb = { 0, (size_t)w * 4, w, h, 4 } };
	r->region_size = ((size_t)w * 4 * h + ps - 1) / ps * ps;
	r->pages = r->region_size / ps;
	r->region = mmap(NULL, r->region_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	r->device = calloc(1, r->region_size);
	r->bitmap = calloc(r->pages / (8 * sizeof(long)) + 1, sizeof(unsigned long));
	r->hashes = calloc(tiles, sizeof(uint64_t));
	if (r->region == MAP_FAILED || !r->device || !r->bitmap || !r->hashes)
		return -ENOMEM;
	r->pixels = (unsigned char *)r->region;
	memset(r->region, 0, r->region_size);	/* populated, like a real framebuffer */
	if (s->sync == sync_tiles)	/* the hashes of the black frame the device has */
		sync_tiles(r);
	if (!s->tracked)
		return 0;
	if (cohmem_tracker_new(COHMEM_BACKEND_AUTO, 0, &r->t))
		return -EOPNOTSUPP;
	if (cohmem_region_add(r->t, r->region, r->region_size, s->region_flags, &r->r))
		return -EOPNOTSUPP;
	/* The device copy is laid out like the region (offset 0), and only the sync writes it. */
	return s->region_flags & COHMEM_REGION_ADAPTIVE ? cohmem_region_set_shadow(r->r, r->device) : 0;
}

static void runner_close(struct fb_runner *r)
{
	cohmem_tracker_free(r->t);
	munmap(r->region, r->region_size);
	free(r->device);
	free(r->bitmap);
	free(r->hashes);
}

/* Side of the square sprites so that `count` of them cover `share` of the screen. */
static unsigned sprite_side(unsigned w, unsigned h, double share, unsigned count)
{
	double side = 1;

	while ((side + 1) * (side + 1) * count <= share * w * h && side + 1 < h / 2)
		side++;
	return (unsigned)side;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of n values (n <= FRAMES); of a + b per frame when b is given. */
static double median(const double *a, const double *b, unsigned n)
{
	double v[FRAMES];

	for (unsigned i = 0; i < n; i++)
		v[i] = a[i] + (b ? b[i] : 0);
	qsort(v, n, sizeof(v[0]), by_value);
	return n ? (v[(n - 1) / 2] + v[n / 2]) / 2 : 0;
}

/* Median ms per frame, drawing and sync. */
static double total_ms(const struct fb_runner *r)
{
	return median(r->draw_ms, r->sync_ms, r->measured);
}

/* The scene's targets; sprites: moving sprites over a small share of the screen. */
static void judge_scene(const struct fb_runner *runners, const char *screen, const char *scene,
			double best, unsigned long long fewest, bool sprites)
{
	char what[80];

	snprintf(what, sizeof(what), "adaptive / fastest fixed, %s %s", screen, scene);
	bench_target(what, total_ms(&runners[ADAPTIVE]) / best, 1.1, true);
	snprintf(what, sizeof(what), "adaptive-bytes bytes / fewest bytes, %s %s", screen, scene);
	/* nothing moved by anyone (idle) is a ratio of one */
	bench_target(what, fewest ? (double)runners[ADAPTIVE_BYTES].bytes / (double)fewest
				  : runners[ADAPTIVE_BYTES].bytes ? 1e9 : 1.0,
		     1.25, true);
	if (!sprites)
		return;
	snprintf(what, sizeof(what), "tiles-xxh3 / adaptive, %s %s", screen, scene);
	bench_target(what, total_ms(&runners[TILES]) / total_ms(&runners[ADAPTIVE]), 1.5, false);
}

int bench_framebuffer(void)
{
	static const unsigned sizes[][2] = { { 1920, 1080 }, { 3840, 2160 } };
	static const struct {
		const char *name;
		double share;	/* of the screen, under 8 sprites */
		bool cursor;
	} scenes[] = {
		{ "idle", 0, false }, { "cursor", 0, true }, { "0.5%", 0.005, true },
		{ "5%", 0.05, true }, { "50%", 0.5, true },
	};
	const unsigned sprites = 8;
	int failed = 0;

	printf("\n== framebuffer: 32 bpp; per frame an 8x16 cursor blinks and %u square sprites\n"
	       "   covering a share of the screen move; %u frames after %u of warm-up; median ms\n"
	       "   per frame of drawing + sync, of drawing (where write faults land) and of sync\n"
	       "   (find changes + copy); mean bytes moved; vs best: against the fastest fixed strategy\n",
	       sprites, FRAMES, WARM);
	printf("%-10s %-7s %-14s %9s %9s %9s %13s %8s\n", "screen", "change", "strategy", "total ms",
	       "draw ms", "sync ms", "bytes", "vs best");
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		for (size_t k = 0; k < sizeof(scenes) / sizeof(scenes[0]); k++) {
			unsigned w = sizes[z][0], h = sizes[z][1];
			unsigned n = scenes[k].share > 0 ? sprites : 0;
			unsigned side = n ? sprite_side(w, h, scenes[k].share, sprites) : 0;
			struct fb_runner runners[NFB];
			double best = 1e300;
			unsigned long long fewest = ~0ULL;
			char screen[16];

			for (size_t s = 0; s < NFB; s++) {
				if (runner_open(&runners[s], &fb_strategies[s], w, h)) {
					fprintf(stderr, "cohmem-bench: cannot set up %s\n", fb_strategies[s].name);
					return 1;
				}
			}
			for (unsigned turn = 0; turn * TURN < WARM + FRAMES; turn++) {
				for (size_t k2 = 0; k2 < NFB; k2++) {
					struct fb_runner *r = &runners[(turn + k2) % NFB];

					for (unsigned f = turn * TURN; f < (turn + 1) * TURN && f < WARM + FRAMES; f++) {
						double t0 = now_ms(), t1;
						unsigned long long moved;

						draw(r, f, n, side, scenes[k].cursor);
						t1 = now_ms();
						moved = r->s->sync(r);
						if (f < WARM)
							continue;
						r->bytes += moved;
						r->draw_ms[r->measured] = t1 - t0;
						r->sync_ms[r->measured++] = now_ms() - t1;
					}
				}
			}
			if (z == 0 && k == 0)
				printf("(cohmem tracks with %s)\n",
				       cohmem_backend_name(cohmem_region_backend(runners[0].r)));
			snprintf(screen, sizeof(screen), "%ux%u", w, h);
			for (size_t s = 0; s < NFB; s++) {
				if (s < NFIXED && total_ms(&runners[s]) < best)
					best = total_ms(&runners[s]);
				if (runners[s].bytes < fewest)
					fewest = runners[s].bytes;
			}
			for (size_t s = 0; s < NFB; s++) {
				struct fb_runner *r = &runners[s];
				bool ok = !memcmp(r->pixels, r->device, r->fb.stride * h);
				double total = total_ms(r);

				printf("%-10s %-7s %-14s %9.3f %9.3f %9.3f %13llu %7.2fx%s%s\n", s ? "" : screen,
				       s ? "" : scenes[k].name, r->s->name, total,
				       median(r->draw_ms, NULL, r->measured), median(r->sync_ms, NULL, r->measured),
				       r->bytes / FRAMES, total / best, policy(r),
				       ok ? "" : "  DEVICE COPY DIFFERS");
				failed |= !ok;
			}
			judge_scene(runners, screen, scenes[k].name, best, fewest, n > 0 && scenes[k].share < 0.1);
			for (size_t s = 0; s < NFB; s++)
				runner_close(&runners[s]);
		}
	}
	return failed;
}
