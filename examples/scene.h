/* SPDX-License-Identifier: MIT */
/*
 * What the framebuffer examples share: a framebuffer in tracked memory that a
 * producer thread animates — moving sprites, a blinking cursor, and now and
 * then a change of the whole screen — and the damage step every consumer
 * runs: clean, then rectangles, then (optionally) refined against a shadow.
 */
#ifndef COHMEM_SCENE_H
#define COHMEM_SCENE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "cohmem.h"
#include "cohmem-fb.h"

struct scene_options {
	unsigned width, height;		/* pixels; 4 bytes each, 0x00RRGGBB */
	size_t offset;			/* of pixel (0, 0) in the tracked region */
	size_t stride_pad;		/* bytes after each row */
	unsigned sprites;		/* moving squares */
	unsigned sprite_size;		/* their side, pixels */
	unsigned full_every;		/* a whole-screen change every that many ticks, 0: never */
	unsigned tick_us;		/* producer pace */
	enum cohmem_backend backend;
};

struct scene {
	struct scene_options o;
	struct cohmem_fb fb;
	char *region;			/* the tracked mapping */
	size_t region_size, pages;
	unsigned char *pixels;		/* region + fb.offset */
	cohmem_tracker *tracker;
	cohmem_region *r;
	unsigned long *bitmap;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	atomic_uint ticks;
};

void scene_defaults(struct scene_options *o);
/*
 * options_parse() for a framebuffer example, whose specs point into so and
 * at max_rects: so gets scene_defaults() first, and a layout without a size
 * or no room for a rectangle is bad usage. -1 to go on, else the exit status.
 */
struct option_spec;
int scene_parse(const char *about, const struct option_spec *specs, struct scene_options *so,
		const size_t *max_rects, int argc, char *argv[]);
/* Draw tick t of the animation into any framebuffer laid out as fb, pixel (0, 0) at pixels. */
void scene_draw(const struct scene_options *o, const struct cohmem_fb *fb, unsigned char *pixels,
		unsigned t);
/* 0 or -errno; on success the framebuffer is black and tracked. */
int scene_open(struct scene *s, const struct scene_options *o);
void scene_start(struct scene *s);
void scene_stop(struct scene *s);	/* waits for the producer */
void scene_close(struct scene *s);

/*
 * Clean and turn the dirty pages into at most max rectangles; refined
 * against shadow (pointing at pixel (0, 0) of a copy laid out like the
 * framebuffer) unless it is NULL. Returns the count or -errno; *dirty gets
 * the number of dirty pages.
 */
long scene_damage(struct scene *s, const void *shadow, struct cohmem_rect *rects, size_t max,
		  long *dirty);

#endif /* COHMEM_SCENE_H */
