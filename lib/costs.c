/* SPDX-License-Identifier: MIT */
/*
 * What tracking, comparing and copying a page cost on this machine, for the
 * adaptive policy. Measured once per backend and process, on a scratch
 * region of the adaptive region's own tracker, through the backend's ops
 * (never the public API, which would re-enter the caller's
 * cohmem_region_add(); never a second tracker, which would start a fault
 * thread of its own): write faults on protected pages, the clean that
 * protects them again, a clean that finds nothing, and memcmp()/memcpy() of
 * pages. Each is the best of a few rounds, since interference only ever
 * adds time. The policy refines scan and compare costs from the region's
 * own cleans later. Nothing is guessed: a measurement that cannot run fails
 * the region's creation.
 *
 * COHMEM_ADAPTIVE_COSTS="fault=15,protect=0.5,scan=0.03,compare=0.1,copy=0.1"
 * (any subset, microseconds per page) pins costs instead: for machines whose
 * first measurement would mislead, and for tests that need the policy to
 * decide the same way on every run.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bitmap.h"
#include "internal.h"
#include "sink.h"

#define TRACK_PAGES 64
#define COPY_PAGES 256
#define ROUNDS 3

static pthread_mutex_t costs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct costs table[COHMEM_BACKEND_COUNT];
static bool measured[COHMEM_BACKEND_COUNT];

double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double min_of(double a, double b)
{
	return a < b ? a : b;
}

/* The backend's clean of all of scratch, as cohmem_region_clean() would do it (the region is ours alone). */
static int scratch_clean(cohmem_region *scratch, unsigned long *bm)
{
	struct dirty_sink sink;
	int err;

	dirty_sink_init(&sink, bm, 0);
	pthread_mutex_lock(&scratch->lock);
	err = scratch->ops->clean(scratch, 0, TRACK_PAGES, &sink);
	pthread_mutex_unlock(&scratch->lock);
	return err;
}

/* One round: dirty every page, clean (protect them again), clean again (nothing to do). */
static int track_round(cohmem_region *scratch, volatile char *mem, unsigned round, struct costs *c)
{
	unsigned long bm[bitmap_words(TRACK_PAGES)];
	double t0, t1, t2, t3;
	int err;

	memset(bm, 0, sizeof(bm));
	t0 = now_us();
	for (size_t i = 0; i < TRACK_PAGES; i++)
		mem[i * page_size()] = (char)round;
	t1 = now_us();
	err = scratch_clean(scratch, bm);
	t2 = now_us();
	if (!err)
		err = scratch_clean(scratch, bm);
	t3 = now_us();
	c->fault = min_of(c->fault, (t1 - t0) / TRACK_PAGES);
	c->scan = min_of(c->scan, (t3 - t2) / TRACK_PAGES);
	c->protect = min_of(c->protect, (t2 - t1) / TRACK_PAGES);
	return err;
}

static int measure_tracking(cohmem_tracker *t, const struct backend_ops *ops, struct costs *c)
{
	size_t len = TRACK_PAGES * page_size();
	char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cohmem_region *scratch = NULL;
	int err;

	if (mem == MAP_FAILED)
		return -ENOMEM;
	memset(mem, 1, len);
	err = region_new(t, mem, len, ops, 0, &scratch);
	if (!err) {
		c->fault = c->protect = c->scan = 1e9;
		for (unsigned round = 0; round < ROUNDS && !err; round++)
			err = track_round(scratch, mem, round, c);
		c->protect = c->protect > c->scan ? c->protect - c->scan : 0;
		region_destroy(scratch);
	}
	munmap(mem, len);
	return err;
}

static int measure_memory(struct costs *c)
{
	size_t len = COPY_PAGES * page_size();
	char *a = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile int differ = 0;

	if (a == MAP_FAILED)
		return -ENOMEM;
	memset(a, 7, 2 * len);
	c->compare = c->copy = 1e9;
	for (unsigned round = 0; round < ROUNDS; round++) {
		double t0 = now_us(), t1, t2;

		memcpy(a + len, a, len);
		t1 = now_us();
		for (size_t i = 0; i < COPY_PAGES; i++)
			differ += memcmp(a + i * page_size(), a + len + i * page_size(), page_size()) != 0;
		t2 = now_us();
		c->copy = min_of(c->copy, (t1 - t0) / COPY_PAGES);
		c->compare = min_of(c->compare, (t2 - t1) / COPY_PAGES);
	}
	munmap(a, 2 * len);
	return 0;
}

/* Apply "key=value,..." from COHMEM_ADAPTIVE_COSTS; true if it pinned anything. */
static bool pin(struct costs *c, const char *spec)
{
	static const struct {
		const char *key;
		size_t offset;
	} keys[] = {
		{ "fault", offsetof(struct costs, fault) },
		{ "protect", offsetof(struct costs, protect) },
		{ "scan", offsetof(struct costs, scan) },
		{ "compare", offsetof(struct costs, compare) },
		{ "copy", offsetof(struct costs, copy) },
	};
	bool pinned = false;

	while (spec && *spec) {
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			size_t len = strlen(keys[i].key);
			char *end;
			double v;

			if (strncmp(spec, keys[i].key, len) || spec[len] != '=')
				continue;
			v = strtod(spec + len + 1, &end);
			if (end != spec + len + 1 && v >= 0) {
				*(double *)((char *)c + keys[i].offset) = v;
				pinned = true;
			}
		}
		spec = strchr(spec, ',');
		spec = spec ? spec + 1 : NULL;
	}
	return pinned;
}

int costs_get(cohmem_region *r, struct costs *ret)
{
	enum cohmem_backend id = r->ops->id;
	struct costs *c = &table[id];
	int err = 0;

	/*
	 * Held across the measurement: a second caller waits for the numbers.
	 * No tracker lock is held here (region_new() takes the tracker's).
	 */
	pthread_mutex_lock(&costs_lock);
	if (!measured[id]) {
		err = measure_tracking(r->tracker, r->ops, c);
		if (!err)
			err = measure_memory(c);
		measured[id] = !err;
	}
	*ret = *c;
	pthread_mutex_unlock(&costs_lock);
	return err ? err : pin(ret, secure_getenv("COHMEM_ADAPTIVE_COSTS"));
}
