/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "options.h"
#include "scene.h"


void scene_defaults(struct scene_options *o)
{
	*o = (struct scene_options){
		.width = 640, .height = 480, .offset = 0, .stride_pad = 0, .sprites = 3,
		.sprite_size = 48, .full_every = 120, .tick_us = 4000, .backend = COHMEM_BACKEND_AUTO,
	};
}

int scene_open(struct scene *s, const struct scene_options *o)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), row = (size_t)o->width * 4;
	int err;

	memset(s, 0, sizeof(*s));
	s->o = *o;
	s->fb = (struct cohmem_fb){ .offset = o->offset, .stride = row + o->stride_pad,
				    .width = o->width, .height = o->height, .bpp = 4 };
	s->region_size = (o->offset + s->fb.stride * o->height + ps - 1) / ps * ps;
	s->pages = s->region_size / ps;
	s->region = mmap(NULL, s->region_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	s->bitmap = calloc(COHMEM_BITMAP_LONGS(s->pages), sizeof(unsigned long));
	if (s->region == MAP_FAILED || !s->bitmap)
		return -ENOMEM;
	s->pixels = (unsigned char *)s->region + o->offset;
	err = cohmem_tracker_new(o->backend, 0, &s->tracker);
	if (!err)
		err = cohmem_region_add(s->tracker, s->region, s->region_size, 0, &s->r);
	return err;
}

static unsigned rgb(unsigned tick, unsigned salt)
{
	return ((tick * 37 + salt * 91) & 0xff) << 16 | ((tick * 11 + salt * 53) & 0xff) << 8 |
	       ((tick * 3 + salt * 29) & 0xff);
}

static void fill(const struct cohmem_fb *fb, unsigned char *pixels, unsigned x, unsigned y,
		 unsigned w, unsigned h, unsigned color)
{
	for (unsigned row = y; row < y + h && row < fb->height; row++) {
		unsigned *p = (unsigned *)(pixels + row * fb->stride) + x;

		for (unsigned col = x; col < x + w && col < fb->width; col++)
			*p++ = color;
	}
}

void scene_draw(const struct scene_options *o, const struct cohmem_fb *fb, unsigned char *pixels,
		unsigned t)
{
	unsigned size = o->sprite_size;

	if (o->full_every && t % o->full_every == o->full_every - 1)
		fill(fb, pixels, 0, 0, fb->width, fb->height, rgb(t, 7) & 0x3f3f3f);
	for (unsigned i = 0; i < o->sprites; i++) {	/* each bounces at its own speed */
		unsigned span_x = fb->width > size ? fb->width - size : 1;
		unsigned span_y = fb->height > size ? fb->height - size : 1;
		unsigned x = (t * (3 + i) + i * 97) % (2 * span_x);
		unsigned y = (t * (2 + i) + i * 61) % (2 * span_y);

		fill(fb, pixels, x < span_x ? x : 2 * span_x - x, y < span_y ? y : 2 * span_y - y, size, size,
		     rgb(t, i));
	}
	if (t % 16 == 0)	/* the cursor blinks */
		fill(fb, pixels, fb->width / 2, fb->height / 3, 8, 16, t % 32 ? 0xffffff : 0x000000);
}

static void *producer(void *arg)
{
	struct scene *s = arg;
	struct timespec pace = { 0, (long)s->o.tick_us * 1000 };

	while (!atomic_load(&s->stop)) {
		scene_draw(&s->o, &s->fb, s->pixels, atomic_fetch_add(&s->ticks, 1));
		nanosleep(&pace, NULL);
	}
	return NULL;
}

void scene_start(struct scene *s)
{
	atomic_store(&s->stop, false);
	s->running = pthread_create(&s->thread, NULL, producer, s) == 0;
}

void scene_stop(struct scene *s)
{
	if (!s->running)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	s->running = false;
}

void scene_close(struct scene *s)
{
	scene_stop(s);
	cohmem_tracker_free(s->tracker);
	if (s->region && s->region != MAP_FAILED)
		munmap(s->region, s->region_size);
	free(s->bitmap);
}

long scene_damage(struct scene *s, const void *shadow, struct cohmem_rect *rects, size_t max,
		  long *dirty)
{
	long n;

	memset(s->bitmap, 0, COHMEM_BITMAP_LONGS(s->pages) * sizeof(unsigned long));
	*dirty = cohmem_region_clean(s->r, 0, s->pages, 0, s->bitmap, NULL, NULL);
	if (*dirty < 0)
		return *dirty;
	if (!*dirty)
		return 0;
	n = cohmem_fb_rects(&s->fb, 0, s->bitmap, rects, max);
	if (n > 0 && shadow)
		n = cohmem_fb_refine(&s->fb, s->pixels, shadow, rects, (size_t)n);
	return n;
}

int scene_parse(const char *about, const struct option_spec *specs, struct scene_options *so,
		const size_t *max_rects, int argc, char *argv[])
{
	int status;

	scene_defaults(so);
	status = options_parse(about, specs, argc, argv);
	if (status < 0 && (!so->width || !so->height || !*max_rects)) {
		fprintf(stderr, "%s: the width, the height and --max-rects must be > 0\n", argv[0]);
		status = 2;
	}
	return status;
}
