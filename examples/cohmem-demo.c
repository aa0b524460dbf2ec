/* SPDX-License-Identifier: MIT */
/*
 * cohmem-demo: emulated coherent memory in one process.
 *
 * A "CPU side" thread keeps writing into a buffer — a small sprite moving
 * over a framebuffer-sized area, a blinking cursor, and now and then a burst
 * across many pages — while a "device side" loop keeps its own copy coherent
 * by asking libcohmem which pages were written since its last look and
 * copying only those. At the end the device copy must equal the buffer, and
 * the demo prints what moved compared with copying everything each frame.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cohmem.h"
#include "options.h"


struct options {
	size_t mib;
	unsigned frames;
	unsigned frame_ms;
	enum cohmem_backend backend;
	bool verbose;
};

struct scene {
	char *mem;
	size_t size;
	atomic_bool stop;
};

/* The CPU side: a 64x64 sprite crossing a 1024-pixel-wide, 4-byte-pixel surface, a cursor, bursts. */
static void *cpu_side(void *arg)
{
	struct scene *s = arg;
	const size_t stride = 1024 * 4, rows = s->size / stride;
	unsigned x = 0, y = 0, tick = 0;

	while (!atomic_load(&s->stop)) {
		for (size_t row = y; row < y + 64 && row < rows; row++)
			memset(s->mem + row * stride + x * 4, (int)tick, 64 * 4);
		x = (x + 7) % (1024 - 64);
		y = (y + 3) % (unsigned)(rows > 64 ? rows - 64 : 1);
		if (tick % 8 == 0)	/* the cursor blinks */
			s->mem[(rows / 2) * stride + 100] ^= 0x7f;
		if (tick % 97 == 96)	/* a full-screen change now and then */
			memset(s->mem, (int)tick, s->size / 4);
		tick++;
		sleep_ms(1);
	}
	return NULL;
}

static size_t copy_dirty(const unsigned long *bm, size_t pages, char *dev, const char *mem, size_t ps)
{
	size_t copied = 0;

	for (size_t pg = 0; pg < pages; pg++) {
		if (bm[pg / COHMEM_BITS_PER_LONG] >> (pg % COHMEM_BITS_PER_LONG) & 1) {
			memcpy(dev + pg * ps, mem + pg * ps, ps);
			copied++;
		}
	}
	return copied;
}

static int run(const struct options *o)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), size = o->mib << 20, pages = size / ps;
	struct scene s = { .size = size };
	unsigned long *bm = calloc(COHMEM_BITMAP_LONGS(pages), sizeof(*bm));
	unsigned long long moved = 0;
	cohmem_tracker *t;
	cohmem_region *r;
	pthread_t cpu;
	char *dev;
	int err;

	s.mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dev = malloc(size);
	if (s.mem == MAP_FAILED || !dev || !bm) {
		fprintf(stderr, "cohmem-demo: out of memory\n");
		return 1;
	}
	memset(dev, 0, size);	/* the device starts with what the buffer holds: zeros */

	err = cohmem_tracker_new(o->backend, 0, &t);
	if (!err)
		err = cohmem_region_add(t, s.mem, size, 0, &r);
	if (err) {
		fprintf(stderr, "cohmem-demo: cannot track memory with backend %s: %s\n",
			cohmem_backend_name(o->backend), strerror(-err));
		return 1;
	}
	printf("tracking %zu MiB (%zu pages) with the %s backend\n", o->mib, pages,
	       cohmem_backend_name(cohmem_region_backend(r)));

	if (pthread_create(&cpu, NULL, cpu_side, &s)) {
		fprintf(stderr, "cohmem-demo: cannot start the writer thread\n");
		return 1;
	}
	for (unsigned f = 0; f < o->frames; f++) {
		long n;

		sleep_ms(o->frame_ms);
		n = cohmem_region_clean(r, 0, pages, 0, bm, NULL, NULL);
		if (n < 0) {
			fprintf(stderr, "cohmem-demo: cohmem_region_clean: %s\n", strerror((int)-n));
			return 1;
		}
		moved += copy_dirty(bm, pages, dev, s.mem, ps);
		memset(bm, 0, COHMEM_BITMAP_LONGS(pages) * sizeof(*bm));
		if (o->verbose)
			printf("frame %3u: %6ld dirty pages copied\n", f, n);
	}
	atomic_store(&s.stop, true);
	pthread_join(cpu, NULL);

	/* The CPU side stopped: one last clean makes the device copy exact. */
	if (cohmem_region_clean(r, 0, pages, 0, bm, NULL, NULL) < 0)
		return 1;
	moved += copy_dirty(bm, pages, dev, s.mem, ps);
	if (memcmp(dev, s.mem, size)) {
		fprintf(stderr, "cohmem-demo: FAILED: the device copy differs from the buffer\n");
		return 1;
	}
	printf("%u frames: copied %llu pages (%.1f MiB) instead of %llu pages for full copies (%.1fx less)\n",
	       o->frames, moved, moved * ps / 1048576.0, (unsigned long long)pages * (o->frames + 1),
	       moved ? (double)pages * (o->frames + 1) / (double)moved : 0.0);
	printf("device copy equals the buffer: coherent\n");
	cohmem_tracker_free(t);
	munmap(s.mem, size);
	free(dev);
	free(bm);
	return 0;
}

int main(int argc, char *argv[])
{
	struct options o = { .mib = 16, .frames = 60, .frame_ms = 16 };
	const struct option_spec specs[] = {
		OPTION_BACKEND(&o.backend),
		{ "size", 's', OPTION_SIZE, &o.mib, "buffer size, MiB" },
		{ "frames", 'n', OPTION_UNSIGNED, &o.frames, "frames to sync" },
		OPTION_INTERVAL(&o.frame_ms),
		{ "verbose", 'v', OPTION_FLAG, &o.verbose, "print every frame" },
		{ 0 },
	};
	int status = options_parse("Usage: cohmem-demo [OPTIONS]\n"
				   "Keeps a device-side copy of a buffer coherent by copying only the pages\n"
				   "libcohmem reports as written, while a thread animates the buffer.\n",
				   specs, argc, argv);

	if (status >= 0)
		return status;
	if (!o.mib) {
		fprintf(stderr, "cohmem-demo: --size must be > 0\n");
		return 2;
	}
	return run(&o);
}
