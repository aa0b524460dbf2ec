/* SPDX-License-Identifier: MIT */
/*
 * No write is ever lost. Writer threads race cleaners that copy every reported
 * page to a shadow; after the writers stop and a last clean, the shadow must
 * equal the memory, in every round.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define PAGES 256
#define WRITERS 3
#define ROUNDS 12
#define ROUND_MS 80
/*
 * Each round goes on until MIN_WRITES writes happened and then MIN_CLEANS
 * cleans ran alongside further writes: on a loaded machine fixed sleeps do
 * not guarantee that anything raced. Waiting longer than DEADLINE_S means
 * something hangs.
 */
#define MIN_WRITES 1000
#define MIN_CLEANS 20
#define DEADLINE_S 30

struct race {
	char *mem, *shadow;
	size_t pages;
	cohmem_region *r;
	int source;		/* memfd of random bytes for kernel-mode writes, or -1 */
	atomic_bool stop;
	atomic_long reported, cleans, writes;
};

/* Wait until *counter reaches target; fail the test if that takes DEADLINE_S (stretched under load). */
static void wait_for(atomic_long *counter, long target, const char *what)
{
	struct timespec ms = { 0, 1000000L };
	unsigned deadline = test_deadline_s(DEADLINE_S);

	for (long waited = 0; atomic_load(counter) < target; waited++) {
		cr_assert_lt(waited, deadline * 1000L, "no progress in %u s: %s", deadline, what);
		nanosleep(&ms, NULL);
	}
}

struct writer {
	struct race *race;
	unsigned seed;
};

static void *writer(void *arg)
{
	struct writer *w = arg;
	struct race *race = w->race;
	size_t size = race->pages * PS;
	unsigned long n = 0;

	while (!atomic_load_explicit(&race->stop, memory_order_relaxed)) {
		unsigned what = rand_r(&w->seed) % 16;
		size_t off = (size_t)rand_r(&w->seed) % size;

		if (what == 0) {	/* a burst over up to three pages */
			size_t len = (size_t)rand_r(&w->seed) % (3 * PS);

			memset(race->mem + off, (int)n, off + len > size ? size - off : len);
		} else if (what == 1 && race->source >= 0) {	/* the kernel writes */
			size_t len = 1 + (size_t)rand_r(&w->seed) % (2 * PS);

			if (pread(race->source, race->mem + off, off + len > size ? size - off : len,
				  (off_t)(rand_r(&w->seed) % PS)) < 0)
				abort();
		} else {
			race->mem[off] = (char)n;
		}
		n++;
		atomic_fetch_add_explicit(&race->writes, 1, memory_order_relaxed);
	}
	return NULL;
}

/* Clean [first, first + nr) and copy what was reported; returns pages copied. */
static long sync_range(struct race *race, unsigned long *bm, size_t first, size_t nr)
{
	long n = cohmem_region_clean(race->r, first, nr, first, bm, NULL, NULL);

	cr_assert_geq(n, 0, "cohmem_region_clean: %s", strerror((int)-n));
	for (size_t i = 0; i < nr; i++) {
		if (!bit_is_set(bm, i))
			continue;
		memcpy(race->shadow + (first + i) * PS, race->mem + (first + i) * PS, PS);
	}
	memset(bm, 0, (nr / 8 / sizeof(long) + 1) * sizeof(long));
	return n;
}

static void *cleaner(void *arg)
{
	struct race *race = arg;
	unsigned long *bm = bitmap_new(race->pages);
	unsigned seed = 42;

	while (!atomic_load(&race->stop)) {
		/* whole region, or a random sub-range */
		size_t first = rand_r(&seed) % 2 ? 0 : (size_t)rand_r(&seed) % race->pages;
		size_t nr = first ? (size_t)rand_r(&seed) % (race->pages - first) + 1 : race->pages;

		atomic_fetch_add(&race->reported, sync_range(race, bm, first, nr));
		atomic_fetch_add(&race->cleans, 1);
	}
	free(bm);
	return NULL;
}

static int random_source(void)
{
	int fd = memfd_create("source", MFD_CLOEXEC);
	char buf[3 * 4096];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)rand();
	cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	return fd;
}

static void race_round(cohmem_tracker *t, char *mem, size_t pages, unsigned round)
{
	struct race race = { .mem = mem, .pages = pages, .source = -1 };
	struct writer w[WRITERS];
	pthread_t writers[WRITERS], cl;
	unsigned long *bm = bitmap_new(pages);
	struct timespec pause = { 0, ROUND_MS * 1000000L };

	race.shadow = malloc(pages * PS);
	cr_assert_not_null(race.shadow);
	memcpy(race.shadow, mem, pages * PS);	/* a new region starts clean */
	race.r = test_region(t, mem, pages);
	if (region_has(race.r, COHMEM_CAP_KERNEL_WRITES))
		race.source = random_source();

	cr_assert_eq(pthread_create(&cl, NULL, cleaner, &race), 0);
	for (unsigned i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){ .race = &race, .seed = round * WRITERS + i };
		cr_assert_eq(pthread_create(&writers[i], NULL, writer, &w[i]), 0);
	}
	nanosleep(&pause, NULL);
	wait_for(&race.writes, MIN_WRITES, "writers");
	wait_for(&race.cleans, atomic_load(&race.cleans) + MIN_CLEANS, "cleaner");
	atomic_store(&race.stop, true);
	for (unsigned i = 0; i < WRITERS; i++)
		pthread_join(writers[i], NULL);
	pthread_join(cl, NULL);

	sync_range(&race, bm, 0, pages);	/* the last clean, with every writer stopped */
	cr_assert_gt(atomic_load(&race.reported), 0, "%ld cleans reported nothing: not a race",
		     atomic_load(&race.cleans));
	for (size_t pg = 0; pg < pages; pg++)
		cr_assert(!memcmp(race.shadow + pg * PS, mem + pg * PS, PS),
			  "round %u: page %zu was written but never reported", round, pg);
	cr_assert_eq(cohmem_region_clean(race.r, 0, pages, 0, bm, NULL, NULL), 0, "and nothing is left");

	cr_assert_eq(cohmem_region_remove(race.r), 0);
	if (race.source >= 0)
		close(race.source);
	free(race.shadow);
	free(bm);
}

TestSuite(concurrency, .timeout = 240);

Test(concurrency, writers_race_a_cleaner)
{
	skip_unless_exact_concurrent();
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES);

	for (unsigned round = 0; round < ROUNDS; round++)
		race_round(t, mem, PAGES, round);
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
}

Test(concurrency, shared_memory)
{
	skip_unless_exact_concurrent();
	cohmem_tracker *t = test_tracker();
	int fd;
	char *mem = map_memfd(PAGES, &fd);

	if (!test_backend_has(COHMEM_CAP_SHMEM))
		cr_skip_test("backend cannot track shmem");
	for (unsigned round = 0; round < ROUNDS / 2; round++)
		race_round(t, mem, PAGES, round);
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
	close(fd);
}

struct pair {
	cohmem_tracker *t;
	char *mem;
	unsigned round0;
};

static void *race_thread(void *arg)
{
	struct pair *p = arg;

	for (unsigned round = 0; round < ROUNDS / 2; round++)
		race_round(p->t, p->mem, PAGES / 2, p->round0 + round);
	return NULL;
}

Test(concurrency, two_regions_of_one_tracker_at_once)
{
	skip_unless_exact_concurrent();
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES);
	struct pair a = { t, mem, 100 }, b = { t, mem + PAGES / 2 * PS, 200 };
	pthread_t ta, tb;

	cr_assert_eq(pthread_create(&ta, NULL, race_thread, &a), 0);
	cr_assert_eq(pthread_create(&tb, NULL, race_thread, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
}

struct hammer {
	char *mem;
	atomic_bool stop;
	atomic_long writes;
};


static void *hammer(void *arg)
{
	struct hammer *h = arg;
	unsigned seed = 7;

	while (!atomic_load(&h->stop)) {
		h->mem[(size_t)rand_r(&seed) % (PAGES * PS)]++;
		atomic_fetch_add(&h->writes, 1);
	}
	return NULL;
}

/* Writers blocked on a write fault must be released when their region goes away. */
Test(concurrency, remove_while_writers_fault)
{
	cohmem_tracker *t = test_tracker();
	struct hammer h = { .mem = map_anon(PAGES) };
	pthread_t th[WRITERS];
	struct timespec pause = { 0, 5000000L };

	for (unsigned i = 0; i < WRITERS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, hammer, &h), 0);
	for (unsigned round = 0; round < 40; round++) {
		cohmem_region *r = test_region(t, h.mem, PAGES);
		unsigned long *bm;

		nanosleep(&pause, NULL);
		wait_for(&h.writes, atomic_load(&h.writes) + 100, "writers, tracked");
		cr_assert_geq(clean_all(r, PAGES, &bm), 0);
		free(bm);
		cr_assert_eq(cohmem_region_remove(r), 0);
		wait_for(&h.writes, atomic_load(&h.writes) + 100, "writers after the removal");
	}
	atomic_store(&h.stop, true);
	for (unsigned i = 0; i < WRITERS; i++)
		pthread_join(th[i], NULL);
	cohmem_tracker_free(t);
	munmap(h.mem, PAGES * PS);
}

/*
 * Two cleaners on one region. Writers take page numbers from a counter and
 * write each page exactly once while both cleaners harvest. Every page must
 * be reported (else a write was lost), and no clean may report a page that
 * no writer had claimed when it returned (an invented report). A page may be
 * reported twice: a store to a protected page faults first, and when a clean
 * runs between the fault's resolution and the store's retry, the retry
 * faults again.
 */
#define ONCE_PAGES 8192

struct once {
	cohmem_region *r;
	char *mem;
	atomic_long next_page;	/* writers */
	atomic_uchar reports[ONCE_PAGES];
	atomic_bool stop;
};

static void *once_writer(void *arg)
{
	struct once *o = arg;
	long pg;

	while ((pg = atomic_fetch_add(&o->next_page, 1)) < ONCE_PAGES)
		o->mem[(size_t)pg * PS + (size_t)pg % PS] = 1;
	return NULL;
}

static void harvest(struct once *o, unsigned long *bm)
{
	long claimed;

	memset(bm, 0, ONCE_PAGES / 8);
	cr_assert_geq(cohmem_region_clean(o->r, 0, ONCE_PAGES, 0, bm, NULL, NULL), 0);
	claimed = atomic_load(&o->next_page);
	for (size_t pg = 0; pg < ONCE_PAGES; pg++) {
		if (!bit_is_set(bm, pg))
			continue;
		cr_assert_lt((long)pg, claimed, "page %zu reported before any writer touched it", pg);
		atomic_fetch_add(&o->reports[pg], 1);
	}
}

static void *once_cleaner(void *arg)
{
	struct once *o = arg;
	unsigned long *bm = bitmap_new(ONCE_PAGES);

	while (!atomic_load(&o->stop))
		harvest(o, bm);
	free(bm);
	return NULL;
}

Test(concurrency, cleaners_share_a_region)
{
	skip_unless_exact_concurrent();
	struct tracked x = tracked_anon(ONCE_PAGES);
	struct once *o = calloc(1, sizeof(*o));
	pthread_t writers[WRITERS], cleaners[2];
	unsigned long *bm = bitmap_new(ONCE_PAGES);

	cr_assert_not_null(o);
	o->r = x.r;
	o->mem = x.mem;
	for (unsigned i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&cleaners[i], NULL, once_cleaner, o), 0);
	for (unsigned i = 0; i < WRITERS; i++)
		cr_assert_eq(pthread_create(&writers[i], NULL, once_writer, o), 0);
	for (unsigned i = 0; i < WRITERS; i++)
		pthread_join(writers[i], NULL);
	atomic_store(&o->stop, true);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(cleaners[i], NULL);
	harvest(o, bm);

	for (size_t pg = 0; pg < ONCE_PAGES; pg++)
		cr_assert_geq(atomic_load(&o->reports[pg]), 1, "page %zu was written but never reported", pg);
	free(bm);
	free(o);
	tracked_free(&x);
}
