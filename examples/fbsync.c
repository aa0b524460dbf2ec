/* SPDX-License-Identifier: MIT */
/*
 * fbsync: keep a "device" framebuffer coherent with an animated one by
 * copying only the dirty rectangles libcohmem finds.
 *
 * Every frame: cohmem_clean() -> cohmem_fb_rects() -> cohmem_fb_refine()
 * against the device copy -> cohmem_fb_copy() into it. At the end the
 * producer stops, one last sync runs, and the device copy must equal the
 * framebuffer. With --png, the last frame is written with its damage
 * outlined in red.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "png.h"
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

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: fbsync [OPTIONS]\n"
		"Animates a framebuffer in tracked memory and keeps a device copy coherent by\n"
		"copying only the dirty rectangles; checks the copy at the end.\n\n"
		"  -W, --width N          pixels (default 640)\n"
		"  -H, --height N         pixels (default 480)\n"
		"  -n, --frames N         frames to sync (default 60)\n"
		"  -i, --interval MS      time between syncs (default 16)\n"
		"  -m, --max-rects N      rectangles per frame at most (default 32)\n"
		"      --offset BYTES     pixel (0,0) this far into the tracked region (default 0)\n"
		"      --stride-pad BYTES bytes after each row (default 0)\n"
		"      --no-refine        copy page rectangles as they are\n"
		"      --png FILE         write the last frame with its damage outlined\n"
		"  -b, --backend NAME     auto (default), uffd-async, uffd-sync, soft-dirty, mprotect\n"
		"  -q, --quiet            totals only\n"
		"  -h, --help             this text\n");
}

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "width", required_argument, NULL, 'W' }, { "height", required_argument, NULL, 'H' },
		{ "frames", required_argument, NULL, 'n' }, { "interval", required_argument, NULL, 'i' },
		{ "max-rects", required_argument, NULL, 'm' }, { "offset", required_argument, NULL, 'o' },
		{ "stride-pad", required_argument, NULL, 'p' }, { "no-refine", no_argument, NULL, 'r' },
		{ "png", required_argument, NULL, 'g' }, { "backend", required_argument, NULL, 'b' },
		{ "quiet", no_argument, NULL, 'q' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	struct scene_options so;
	struct scene s;
	struct totals t = { 0 };
	unsigned frames = 60, interval = 16;
	size_t max = 32, frame_bytes;
	bool refine = true, quiet = false;
	const char *png = NULL;
	struct cohmem_rect *rects, *last;	/* this frame's, the last busy frame's */
	unsigned char *device;
	long n = 0, last_n = 0, dirty, copied;
	int opt, err;

	scene_defaults(&so);
	while ((opt = getopt_long(argc, argv, "W:H:n:i:m:b:qh", opts, NULL)) != -1) {
		switch (opt) {
		case 'W': so.width = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'H': so.height = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'n': frames = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'i': interval = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'm': max = strtoul(optarg, NULL, 0); break;
		case 'o': so.offset = strtoul(optarg, NULL, 0); break;
		case 'p': so.stride_pad = strtoul(optarg, NULL, 0); break;
		case 'r': refine = false; break;
		case 'g': png = optarg; break;
		case 'q': quiet = true; break;
		case 'b':
			if (scene_backend(optarg, &so.backend)) {
				fprintf(stderr, "fbsync: unknown backend '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !so.width || !so.height || !max) {
		usage(stderr);
		return 2;
	}
	err = scene_open(&s, &so);
	frame_bytes = (size_t)so.width * so.height * 4;
	device = calloc(1, s.fb.stride * so.height);
	rects = calloc(max, sizeof(*rects));
	last = calloc(max, sizeof(*last));
	if (err || !device || !rects || !last) {
		fprintf(stderr, "fbsync: %s\n", strerror(err ? -err : ENOMEM));
		return 1;
	}
	printf("fbsync: %ux%u, 32 bpp, %s backend, up to %zu rectangles per frame%s\n", so.width,
	       so.height, cohmem_backend_name(cohmem_region_backend(s.r)), max,
	       refine ? ", refined" : "");
	scene_start(&s);
	for (unsigned f = 0; f < frames; f++) {
		struct timespec pause = { interval / 1000, (long)(interval % 1000) * 1000000L };

		nanosleep(&pause, NULL);
		copied = sync_frame(&s, device, rects, max, refine, &n, &t, &dirty);
		if (n) {
			memcpy(last, rects, (size_t)n * sizeof(*rects));
			last_n = n;
		}
		if (!quiet)
			printf("frame %3u: %5ld dirty pages, %3ld rectangles, %8ld bytes\n", f, dirty, n,
			       copied);
	}
	scene_stop(&s);
	sync_frame(&s, device, rects, max, refine, &n, &t, &dirty);	/* the producer is quiet now */
	if (memcmp(device, s.pixels, s.fb.stride * (so.height - 1) + (size_t)so.width * 4)) {
		fprintf(stderr, "fbsync: FAILED: the device copy differs from the framebuffer\n");
		return 1;
	}
	printf("%u frames: %llu dirty pages, %llu rectangles, %llu bytes moved instead of %llu for "
	       "full frames (%.1fx less)\n",
	       frames + 1, t.pages, t.rects, t.bytes, (unsigned long long)frame_bytes * (frames + 1),
	       t.bytes ? (double)frame_bytes * (frames + 1) / (double)t.bytes : 0.0);
	printf("device copy equals the framebuffer: coherent\n");
	if (png) {
		/* the damage of the last busy frame, over the final picture */
		for (long i = 0; i < last_n; i++)
			outline(device, &s.fb, &last[i]);
		err = png_write(png, device, so.width, so.height, s.fb.stride);
		if (err) {
			fprintf(stderr, "fbsync: %s: %s\n", png, strerror(-err));
			return 1;
		}
		printf("wrote %s\n", png);
	}
	scene_close(&s);
	free(device);
	free(rects);
	free(last);
	return 0;
}
