/* SPDX-License-Identifier: MIT */
/*
 * fbsync: keep a "device" framebuffer coherent with an animated one by
 * copying only the dirty rectangles libcohmem finds.
 *
 * Every frame: cohmem_region_clean() -> cohmem_fb_rects() -> cohmem_fb_refine()
 * against the device copy -> cohmem_fb_copy() into it. At the end the
 * producer stops, one last sync runs, and the device copy must equal the
 * framebuffer. With --png, the last frame is written with its damage
 * outlined in red.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "frame-png.h"
#include "scene.h"

struct totals {
	unsigned long long pages, rects, bytes;
};

static void outline(unsigned char *pixels, const struct cohmem_fb *fb, const struct cohmem_rect *r)
{
	for (unsigned y = r->y; y < r->y + r->h; y++) {
		unsigned *row = (unsigned *)(pixels + y * fb->stride);

		if (y == r->y || y == r->y + r->h - 1) {
			for (unsigned x = r->x; x < r->x + r->w; x++)
				row[x] = 0xff0000;
		} else {
			row[r->x] = row[r->x + r->w - 1] = 0xff0000;
		}
	}
}

/* One sync: the rectangles in rects (count in *n); returns the bytes copied. Exits on error. */
static long sync_frame(struct scene *s, unsigned char *device, struct cohmem_rect *rects, size_t max,
		       bool refine, long *n, struct totals *t, long *dirty)
{
	long copied;

	*n = scene_damage(s, refine ? device : NULL, rects, max, dirty);
	if (*n < 0) {
		fprintf(stderr, "fbsync: %s\n", strerror((int)-*n));
		exit(1);
	}
	copied = cohmem_fb_copy(&s->fb, device, s->pixels, rects, (size_t)*n);
	t->pages += (unsigned long long)*dirty;
	t->rects += (unsigned long long)*n;
	t->bytes += (unsigned long long)copied;
	return copied;
}

struct fbsync {
	struct scene_options so;
	unsigned frames, interval;
	size_t max;
	bool refine, quiet;
	const char *png;
};

static int parse(struct fbsync *o, int argc, char *argv[])
{
	const struct option_spec specs[] = {
		OPTION_WIDTH(&o->so.width),
		OPTION_HEIGHT(&o->so.height),
		OPTION_FRAMES(&o->frames),
		OPTION_INTERVAL(&o->interval),
		OPTION_MAX_RECTS(&o->max),
		{ "offset", 0, OPTION_SIZE, &o->so.offset, "bytes into the tracked region of pixel (0,0)" },
		{ "stride-pad", 0, OPTION_SIZE, &o->so.stride_pad, "bytes after each row" },
		{ "no-refine", 0, OPTION_CLEAR, &o->refine, "copy page rectangles as they are" },
		{ "png", 0, OPTION_STRING, &o->png, "write the last frame with its damage outlined" },
		OPTION_BACKEND(&o->so.backend),
		OPTION_QUIET(&o->quiet),
		{ 0 },
	};

	return scene_parse("Usage: fbsync [OPTIONS]\n"
			   "Animates a framebuffer in tracked memory and keeps a device copy coherent by\n"
			   "copying only the dirty rectangles; checks the copy at the end.\n",
			   specs, &o->so, &o->max, argc, argv);
}

/* The last busy frame's damage, outlined over the final picture, as a PNG. */
static int write_png(const struct fbsync *o, const struct scene *s, unsigned char *device,
		     const struct cohmem_rect *last, long last_n)
{
	int err;

	for (long i = 0; i < last_n; i++)
		outline(device, &s->fb, &last[i]);
	err = png_write(o->png, device, o->so.width, o->so.height, s->fb.stride);
	if (err) {
		fprintf(stderr, "fbsync: %s: %s\n", o->png, strerror(-err));
		return 1;
	}
	printf("wrote %s\n", o->png);
	return 0;
}

int main(int argc, char *argv[])
{
	struct fbsync o = { .frames = 60, .interval = 16, .max = 32, .refine = true };
	struct scene s;
	struct totals t = { 0 };
	size_t frame_bytes;
	struct cohmem_rect *rects, *last;	/* this frame's, the last busy frame's */
	unsigned char *device;
	long n = 0, last_n = 0, dirty, copied;
	int status = parse(&o, argc, argv), err;

	if (status >= 0)
		return status;
	err = scene_open(&s, &o.so);
	frame_bytes = (size_t)o.so.width * o.so.height * 4;
	device = calloc(1, s.fb.stride * o.so.height);
	rects = calloc(o.max, sizeof(*rects));
	last = calloc(o.max, sizeof(*last));
	if (err || !device || !rects || !last) {
		fprintf(stderr, "fbsync: %s\n", strerror(err ? -err : ENOMEM));
		return 1;
	}
	printf("fbsync: %ux%u, 32 bpp, %s backend, up to %zu rectangles per frame%s\n", o.so.width,
	       o.so.height, cohmem_backend_name(cohmem_region_backend(s.r)), o.max,
	       o.refine ? ", refined" : "");
	scene_start(&s);
	for (unsigned f = 0; f < o.frames; f++) {
		sleep_ms(o.interval);
		copied = sync_frame(&s, device, rects, o.max, o.refine, &n, &t, &dirty);
		if (n) {
			memcpy(last, rects, (size_t)n * sizeof(*rects));
			last_n = n;
		}
		if (!o.quiet)
			printf("frame %3u: %5ld dirty pages, %3ld rectangles, %8ld bytes\n", f, dirty, n,
			       copied);
	}
	scene_stop(&s);
	sync_frame(&s, device, rects, o.max, o.refine, &n, &t, &dirty);	/* the producer is quiet now */
	if (memcmp(device, s.pixels, s.fb.stride * (o.so.height - 1) + (size_t)o.so.width * 4)) {
		fprintf(stderr, "fbsync: FAILED: the device copy differs from the framebuffer\n");
		return 1;
	}
	printf("%u frames: %llu dirty pages, %llu rectangles, %llu bytes moved instead of %llu for "
	       "full frames (%.1fx less)\n",
	       o.frames + 1, t.pages, t.rects, t.bytes, (unsigned long long)frame_bytes * (o.frames + 1),
	       t.bytes ? (double)frame_bytes * (o.frames + 1) / (double)t.bytes : 0.0);
	printf("device copy equals the framebuffer: coherent\n");
	status = o.png ? write_png(&o, &s, device, last, last_n) : 0;
	scene_close(&s);
	free(device);
	free(rects);
	free(last);
	return status;
}
