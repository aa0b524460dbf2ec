/* SPDX-License-Identifier: MIT */
/*
 * Adaptive regions (COHMEM_REGION_ADAPTIVE): extra reports are allowed, lost
 * writes never are. Workloads built to cross the policy's thresholds make it
 * switch modes both ways, with and without a shadow, while writer threads
 * race a cleaner that copies every reported page.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "test.h"

#define PAGES 1024
/* Sprites of SPRITE pages in BIG pages: few enough that tracking them stays cheapest. */
#define BIG 16384
#define SPRITE 4
#define DEADLINE_S 60

#define PINNED_COSTS "fault=15,protect=0.5,scan=0.03,compare=0.1,copy=0.1"

static bool measured;	/* set by the test that runs on measured costs */

static cohmem_region *adaptive_region(cohmem_tracker *t, void *mem, size_t pages)
{
	cohmem_region *r = NULL;
	int err;

	if (!measured)
		setenv("COHMEM_ADAPTIVE_COSTS", PINNED_COSTS, 1);
	err = cohmem_region_add(t, mem, pages * PS, COHMEM_REGION_ADAPTIVE, &r);
	cr_assert_eq(err, 0, "cohmem_region_add: %s", strerror(-err));
	return r;
}

static struct cohmem_region_stats stats(const cohmem_region *r)
{
	struct cohmem_region_stats st;

	cr_assert_eq(cohmem_region_stats(r, &st, sizeof(st)), 0);
	return st;
}

/* Clean the whole region and copy what was reported into shadow (if any); returns the count. */
static long sync_all(cohmem_region *r, char *mem, char *shadow, size_t pages)
{
	unsigned long *bm = bitmap_new(pages);
	long n = cohmem_region_clean(r, 0, pages, 0, bm, NULL, NULL);

	cr_assert_geq(n, 0, "cohmem_region_clean: %s", strerror((int)-n));
	cr_assert_eq((size_t)n, bits_set(bm, pages));
	for (size_t pg = 0; shadow && pg < pages; pg++)
		if (bit_is_set(bm, pg))
			memcpy(shadow + pg * PS, mem + pg * PS, PS);
	free(bm);
	return n;
}

static void write_pages(char *mem, size_t first, size_t n, size_t step, char value)
{
	for (size_t pg = first; pg < first + n; pg += step)
		((volatile char *)mem)[pg * PS + (size_t)value % PS] = value;
}

TestSuite(adaptive, .timeout = 300);

Test(adaptive, flag_stats_and_shadow_arguments)
{
	struct tracked x = tracked_anon(16);
	char *mem = map_anon(16);
	cohmem_region *r = adaptive_region(x.t, mem, 16);
	struct cohmem_region_stats st = stats(x.r);

	cr_assert_eq(st.adaptive, 0);
	cr_assert_eq(st.mode, COHMEM_MODE_TRACK);
	cr_assert_eq(cohmem_region_set_shadow(x.r, mem), -EINVAL, "not adaptive");
	cr_assert_eq(cohmem_region_set_shadow(NULL, mem), -EINVAL);
	st = stats(r);
	cr_assert_eq(st.adaptive, 1);
	cr_assert_eq(st.mode, COHMEM_MODE_TRACK);
	cr_assert_eq(st.mode_switches, 0);
	cr_assert_eq(cohmem_region_set_shadow(r, NULL), 0);
	cr_assert_eq(sync_all(r, mem, NULL, 16), 0, "a new adaptive region starts clean");
	cr_assert_eq(cohmem_region_remove(r), 0);
	tracked_free(&x);
	munmap(mem, 16 * PS);
}

Test(adaptive, every_write_is_reported_and_unwritten_pages_are_not_at_first)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(64);
	cohmem_region *r = adaptive_region(t, mem, 64);
	unsigned long *bm = bitmap_new(64);

	mem[3 * PS] = 1;
	mem[40 * PS + 7] = 2;
	cr_assert_eq(cohmem_region_clean(r, 0, 64, 0, bm, NULL, NULL), 2, "no page is hot yet: exact");
	assert_bits(bm, 64, (size_t[]){ 3, 40, END });
	/* Partial cleans in any order cover every write. */
	for (unsigned round = 0; round < 20; round++) {
		memset(bm, 0, 64 / 8 + 8);
		mem[(round * 7 % 64) * PS] = (char)round;
		cohmem_region_clean(r, 32, 32, 0, bm, NULL, NULL);
		cohmem_region_clean(r, 0, 32, 0, bm, NULL, NULL);
		cr_assert(bit_is_set(bm, round * 7 % 64), "round %u", round);
	}
	free(bm);
	cohmem_tracker_free(t);
	munmap(mem, 64 * PS);
}

Test(adaptive, pages_written_every_clean_turn_hot_and_stop_faulting)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(BIG);
	cohmem_region *r = adaptive_region(t, mem, BIG);
	struct cohmem_region_stats st;
	unsigned long long faults;

	if (test_backend() == COHMEM_BACKEND_SOFT_DIRTY)
		cr_skip_test("soft-dirty has no write faults to save");
	for (unsigned c = 0; c < 4; c++) {	/* a sprite: the same pages every frame */
		write_pages(mem, 100, SPRITE, 1, (char)c);
		cr_assert_geq(sync_all(r, mem, NULL, BIG), SPRITE);
	}
	st = stats(r);
	cr_assert_eq(st.hot_pages, SPRITE, "hot pages: %zu, mode %d", st.hot_pages, st.mode);
	faults = st.faults_inferred;
	for (unsigned c = 0; c < 3; c++) {	/* fewer cleans than a hot spell lasts */
		long n;

		write_pages(mem, 100, SPRITE, 1, (char)(c + 9));
		n = sync_all(r, mem, NULL, BIG);
		cr_assert_eq(n, SPRITE, "hot pages are reported, only they: %ld, hot %zu, mode %d", n,
			     stats(r).hot_pages, stats(r).mode);
	}
	st = stats(r);
	cr_assert_eq(st.faults_inferred, faults, "hot pages were written without faults");
	cr_assert_geq(st.hot_reports, 3 * SPRITE);

	/* Cooled down: not written any more, so protected again after a while and quiet. */
	for (unsigned c = 0; c < 80 && stats(r).hot_pages; c++)
		sync_all(r, mem, NULL, BIG);
	cr_assert_eq(stats(r).hot_pages, 0, "hot pages never cooled down");
	cr_assert_eq(sync_all(r, mem, NULL, BIG), 0);
	cr_assert_eq(stats(r).mode, COHMEM_MODE_TRACK);
	cohmem_tracker_free(t);
	munmap(mem, BIG * PS);
}

Test(adaptive, hot_pages_with_a_shadow_are_reported_only_when_they_differ)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(BIG), *shadow = malloc(BIG * PS);
	cohmem_region *r = adaptive_region(t, mem, BIG);

	if (test_backend() == COHMEM_BACKEND_SOFT_DIRTY)
		cr_skip_test("soft-dirty has no write faults to save");
	memcpy(shadow, mem, BIG * PS);
	cr_assert_eq(cohmem_region_set_shadow(r, shadow), 0);
	for (unsigned c = 0; c < 4; c++) {
		write_pages(mem, 10, SPRITE, 1, (char)(c + 1));
		sync_all(r, mem, shadow, BIG);
	}
	cr_assert_eq(stats(r).hot_pages, SPRITE);
	cr_assert_eq(sync_all(r, mem, shadow, BIG), 0, "hot but equal to the shadow");
	mem[12 * PS + 5] = 99;
	cr_assert_eq(sync_all(r, mem, shadow, BIG), 1, "only the hot page that changed");
	cr_assert(!memcmp(shadow, mem, BIG * PS));
	cohmem_tracker_free(t);
	munmap(mem, BIG * PS);
	free(shadow);
}

/* Write everything until the region leaves track mode, then nothing until it is back. */
static void switch_both_ways(bool with_shadow)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES), *shadow = malloc(PAGES * PS);
	cohmem_region *r = adaptive_region(t, mem, PAGES);
	unsigned c;

	memcpy(shadow, mem, PAGES * PS);
	if (with_shadow)
		cr_assert_eq(cohmem_region_set_shadow(r, shadow), 0);
	for (c = 0; c < 20 && stats(r).mode == COHMEM_MODE_TRACK; c++) {
		write_pages(mem, 0, PAGES, 1, (char)(c + 1));
		cr_assert_eq(sync_all(r, mem, shadow, PAGES), PAGES, "every page was written");
	}
	cr_assert_neq(stats(r).mode, COHMEM_MODE_TRACK, "still tracking after %u cleans at 100 %%", c);
	if (!with_shadow)
		cr_assert_eq(stats(r).mode, COHMEM_MODE_COPY, "compare mode needs a shadow");
	cr_assert_eq(stats(r).mode_switches, 1);
	/* Still every write, now without faults. */
	write_pages(mem, 0, PAGES, 1, 77);
	cr_assert_eq(sync_all(r, mem, shadow, PAGES), PAGES);
	cr_assert(!memcmp(shadow, mem, PAGES * PS));

	/*
	 * Quiet, then one page now and then: back to tracking, once copy mode's
	 * sample window has grown to about 1 / (the rate where tracking wins)
	 * pages and stayed empty.
	 */
	for (c = 0; c < 800 && stats(r).mode != COHMEM_MODE_TRACK; c++) {
		if (c % 10 == 0)
			mem[(c % PAGES) * PS] = (char)c;
		sync_all(r, mem, shadow, PAGES);
	}
	cr_assert_eq(stats(r).mode, COHMEM_MODE_TRACK, "never went back to tracking");
	cr_assert_eq(stats(r).mode_switches, 2);
	cr_assert(!memcmp(shadow, mem, PAGES * PS), "a write was lost on the way back");
	mem[500 * PS] = 5;
	cr_assert_eq(sync_all(r, mem, shadow, PAGES), 1, "tracking again: exactly the page written");
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
	free(shadow);
}

Test(adaptive, measured_costs_leave_tracking_in_a_burst_and_lose_nothing)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES), *shadow = malloc(PAGES * PS);
	cohmem_region *r;

	measured = true;
	unsetenv("COHMEM_ADAPTIVE_COSTS");
	r = adaptive_region(t, mem, PAGES);
	memcpy(shadow, mem, PAGES * PS);
	/* A write fault costs far more than a page copy on any machine: every page, twice. */
	for (unsigned c = 0; c < 4; c++) {
		write_pages(mem, 0, PAGES, 1, (char)(c + 1));
		cr_assert_eq(sync_all(r, mem, shadow, PAGES), PAGES);
	}
	cr_assert_neq(stats(r).mode, COHMEM_MODE_TRACK);
	for (unsigned c = 0; c < 50; c++) {
		if (c % 3 == 0)
			mem[(c * 37 % PAGES) * PS + 1] = (char)c;
		sync_all(r, mem, shadow, PAGES);
	}
	cr_assert(!memcmp(shadow, mem, PAGES * PS), "a write was lost");
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
	free(shadow);
}

Test(adaptive, switches_to_copy_and_back)
{
	switch_both_ways(false);
}

Test(adaptive, switches_to_compare_and_back)
{
	switch_both_ways(true);
}

Test(adaptive, wrprotect_tracks_afresh_in_every_mode)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES);
	cohmem_region *r = adaptive_region(t, mem, PAGES);

	for (unsigned c = 0; c < 20 && stats(r).mode == COHMEM_MODE_TRACK; c++) {
		write_pages(mem, 0, PAGES, 1, (char)c);
		sync_all(r, mem, NULL, PAGES);
	}
	cr_assert_eq(stats(r).mode, COHMEM_MODE_COPY);
	cr_assert_eq(cohmem_region_wrprotect(r, 0, 10), 0, "part of a released region stays released");
	cr_assert_geq(cohmem_region_wrprotect(r, 0, PAGES), 0);
	cr_assert_eq(stats(r).mode, COHMEM_MODE_TRACK);
	cr_assert_eq(sync_all(r, mem, NULL, PAGES), 0, "only later writes");
	mem[7 * PS] = 1;
	cr_assert_eq(sync_all(r, mem, NULL, PAGES), 1);
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
}

/* Writers alternate between bursts over every page and single pages; a cleaner copies. */
struct race {
	char *mem, *shadow;
	cohmem_region *r;
	atomic_bool stop;
	atomic_int phase;	/* 1: bursts */
	atomic_long cleans, writes;
};

static void *writer(void *arg)
{
	struct race *race = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed;

	for (unsigned long n = 1; !atomic_load_explicit(&race->stop, memory_order_relaxed); n++) {
		if (atomic_load_explicit(&race->phase, memory_order_relaxed))
			write_pages(race->mem, 0, PAGES, 1 + rand_r(&seed) % 2, (char)n);
		else
			race->mem[(size_t)rand_r(&seed) % (PAGES * PS)] = (char)n;
		atomic_fetch_add_explicit(&race->writes, 1, memory_order_relaxed);
		if (!atomic_load_explicit(&race->phase, memory_order_relaxed)) {
			/*
			 * Sparse: a page per writer every 4 cleans, however slow the
			 * machine (a rate per millisecond was ten pages per clean under
			 * QEMU's TCG, too many for copy mode ever to return).
			 */
			struct timespec pause = { 0, 100000 };
			long until = atomic_load(&race->cleans) + 4;

			while (atomic_load(&race->cleans) < until && !atomic_load(&race->stop))
				nanosleep(&pause, NULL);
		}
	}
	return NULL;
}

static void *cleaner(void *arg)
{
	struct race *race = arg;

	struct timespec frame = { 0, 200000 };	/* a display refreshing at up to 5 kHz */

	while (!atomic_load(&race->stop)) {
		sync_all(race->r, race->mem, race->shadow, PAGES);
		atomic_fetch_add(&race->cleans, 1);
		nanosleep(&frame, NULL);
	}
	return NULL;
}

static void wait_for(atomic_long *counter, long target)
{
	struct timespec ms = { 0, 1000000L };
	unsigned deadline = test_deadline_s(DEADLINE_S);	/* a hang detector: stretched under load */

	for (long waited = 0; atomic_load(counter) < target; waited++) {
		cr_assert_lt(waited, deadline * 1000L, "no progress in %u s", deadline);
		nanosleep(&ms, NULL);
	}
}

static void race(bool with_shadow)
{
	cohmem_tracker *t = test_tracker();
	struct race race = { .mem = map_anon(PAGES), .shadow = malloc(PAGES * PS) };
	pthread_t w[2], cl;
	struct cohmem_region_stats st;

	skip_unless_exact_concurrent();
	memcpy(race.shadow, race.mem, PAGES * PS);
	race.r = adaptive_region(t, race.mem, PAGES);
	if (with_shadow)
		cr_assert_eq(cohmem_region_set_shadow(race.r, race.shadow), 0);
	cr_assert_eq(pthread_create(&cl, NULL, cleaner, &race), 0);
	for (unsigned i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&w[i], NULL, writer, &race), 0);
	/*
	 * Phases long enough for the policy to switch, both ways, several times:
	 * a burst leaves tracking in a few cleans, a quiet spell returns once
	 * copy mode's sample window has grown and stayed empty.
	 */
	for (unsigned phase = 0; phase < 6; phase++) {
		long cleans = atomic_load(&race.cleans), writes = atomic_load(&race.writes);

		atomic_store(&race.phase, phase % 2 == 0);
		wait_for(&race.cleans, cleans + (phase % 2 ? 800 : 80));
		wait_for(&race.writes, writes + 40);
	}
	atomic_store(&race.stop, true);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(w[i], NULL);
	pthread_join(cl, NULL);
	sync_all(race.r, race.mem, race.shadow, PAGES);	/* writers stopped: the last clean */
	for (size_t pg = 0; pg < PAGES; pg++)
		cr_assert(!memcmp(race.shadow + pg * PS, race.mem + pg * PS, PS),
			  "page %zu was written but never reported", pg);
	st = stats(race.r);
	cr_assert_geq(st.mode_switches, 2, "the workload did not make the policy switch both ways: "
		      "%llu switches, %ld cleans, %ld writes", st.mode_switches, atomic_load(&race.cleans),
		      atomic_load(&race.writes));
	cr_log_info("%ld cleans, %ld writes, %llu switches", atomic_load(&race.cleans),
		    atomic_load(&race.writes), st.mode_switches);
	cohmem_tracker_free(t);
	munmap(race.mem, PAGES * PS);
	free(race.shadow);
}

Test(adaptive, no_write_is_lost_across_switches)
{
	race(false);
}

Test(adaptive, no_write_is_lost_across_switches_with_a_shadow)
{
	race(true);
}

/*
 * A uffd-sync write fault puts the writer to sleep until the fault thread
 * answers: a voluntary context switch each (a fault the kernel resolves
 * itself, like the copy-on-write reuse after a release, is none).
 */
static long thread_sleeps(void)
{
	struct rusage ru;

	cr_assert_eq(getrusage(RUSAGE_THREAD, &ru), 0);
	return ru.ru_nvcsw;
}

/*
 * A burst over a tracked region: once the faults have cost several copies
 * of the region (pinned costs: 4 x 16384 x 0.1 / 15.5 = 422 faults) the
 * backend releases the whole region — uffd-sync and mprotect in the fault
 * path, uffd-async from its watcher thread — and the next clean reports
 * every page: the burst writes most pages without a fault, and nothing is
 * lost.
 */
Test(adaptive, a_fault_storm_is_broken_while_it_happens)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(BIG);
	cohmem_region *r = adaptive_region(t, mem, BIG);
	struct cohmem_region_stats st;
	long before, faults;

	if (cohmem_region_backend(r) == COHMEM_BACKEND_SOFT_DIRTY ||
	    cohmem_region_backend(r) == COHMEM_BACKEND_PFN || cohmem_region_backend(r) == COHMEM_BACKEND_PFN_SCAN)
		cr_skip_test("soft-dirty has no faults to count; pfn memory is not adaptive");
	write_pages(mem, 0, 8, 1, 1);	/* a few writes: no storm */
	cr_assert_eq(sync_all(r, mem, NULL, BIG), 8);
	cr_assert_eq(stats(r).fault_storms, 0);
	before = thread_sleeps();
	write_pages(mem, 0, BIG, 1, 2);
	faults = thread_sleeps() - before;
	/*
	 * uffd-async: the kernel resolves the faults, a watcher thread sees the
	 * storm through the minor-fault count, on its own time: wait for it
	 * (without it, it never comes). The others break it in the fault path.
	 */
	for (unsigned ms = 0, limit = test_deadline_s(DEADLINE_S) * 1000;
	     cohmem_region_backend(r) == COHMEM_BACKEND_UFFD_ASYNC && stats(r).fault_storms == 0 && ms < limit; ms++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	st = stats(r);
	cr_assert_eq(st.fault_storms, 1,
		     "the storm was not broken: %llu storms, %ld waits, mode %d, %llu switches, backend %s", st.fault_storms,
		     faults, (int)st.mode, st.mode_switches, cohmem_backend_name(cohmem_region_backend(r)));
	if (test_backend() == COHMEM_BACKEND_UFFD_SYNC)
		cr_assert_lt(faults, BIG / 4, "%ld waits for the fault thread, %d pages: the storm went on",
			     faults, BIG);
	cr_assert_eq(sync_all(r, mem, NULL, BIG), BIG, "every page is reported");
	cr_assert_neq(stats(r).mode, COHMEM_MODE_TRACK, "and the policy left tracking at once");
	cohmem_tracker_free(t);
	munmap(mem, BIG * PS);
}
