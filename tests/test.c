/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <criterion/hooks.h>

#include "test.h"


size_t test_page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

enum cohmem_backend test_backend(void)
{
	const char *name = getenv("COHMEM_TEST_BACKEND");

	if (!name || !*name)
		return COHMEM_BACKEND_AUTO;
	for (int b = COHMEM_BACKEND_AUTO; cohmem_backend_name(b); b++)
		if (!strcmp(cohmem_backend_name(b), name))
			return b;
	fprintf(stderr, "COHMEM_TEST_BACKEND=%s names no backend\n", name);
	exit(2);
}

bool test_backend_pfnmap(void)
{
	return test_backend() == COHMEM_BACKEND_PFN || test_backend() == COHMEM_BACKEND_PFN_SCAN;
}

bool test_backend_has(unsigned cap)
{
	cohmem_tracker *t = test_tracker();
	unsigned caps = 0;

	cr_assert_eq(cohmem_tracker_capabilities(t, &caps), 0);
	cohmem_tracker_free(t);
	return caps & cap;
}

void skip_unless_exact_concurrent(void)
{
	if (!test_backend_has(COHMEM_CAP_EXACT_CONCURRENT))
		cr_skip_test("%s is exact only while writers are quiescent (see tests/quiescent.c)",
			     cohmem_backend_name(test_backend()));
}

bool region_has(const cohmem_region *r, unsigned cap)
{
	unsigned caps = 0;

	cohmem_backend_capabilities(cohmem_region_backend(r), &caps);
	return caps & cap;
}

cohmem_tracker *test_tracker(void)
{
	cohmem_tracker *t = NULL;
	int err = cohmem_tracker_new(test_backend(), 0, &t);

	cr_assert_eq(err, 0, "cohmem_tracker_new(%s): %s", cohmem_backend_name(test_backend()),
		     strerror(-err));
	return t;
}

cohmem_region *test_region(cohmem_tracker *t, void *addr, size_t pages)
{
	cohmem_region *r = NULL;
	int err = cohmem_region_add(t, addr, pages * PS, 0, &r);

	cr_assert_eq(err, 0, "cohmem_region_add: %s", strerror(-err));
	cr_assert_not_null(r);
	return r;
}

struct tracked tracked_anon(size_t pages)
{
	struct tracked x = { .t = test_tracker(), .mem = map_anon(pages), .pages = pages };

	x.r = test_region(x.t, x.mem, pages);
	return x;
}

void tracked_free(struct tracked *x)
{
	cohmem_tracker_free(x->t);
	munmap(x->mem, x->pages * PS);
}

/* Under the pfn backend, "anonymous" test memory is a cohmem_pfn buffer: the only memory it tracks. */
static char *map_pfn(size_t pages)
{
	int fd = cohmem_pfn_open(pages * PS, 0);
	char *p;

	cr_assert_geq(fd, 0, "cohmem_pfn_open: %s", strerror(-fd));
	p = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
	close(fd);
	return p;
}

char *map_anon(size_t pages)
{
	char *p;

	if (test_backend_pfnmap())
		return map_pfn(pages);
	p = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

static char *map_fd(int fd, size_t pages, int *fdp)
{
	char *p;

	cr_assert_geq(fd, 0, "open: %s", strerror(errno));
	cr_assert_eq(ftruncate(fd, (off_t)(pages * PS)), 0);
	p = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	return p;
}

char *map_memfd(size_t pages, int *fd)
{
	return map_fd(memfd_create("cohmem-test", MFD_CLOEXEC), pages, fd);
}

/* A regular file in the current directory, unlinked at once (ramfs has no O_TMPFILE). */
char *map_file(size_t pages, int *fd)
{
	char name[] = "cohmem-test-XXXXXX";
	int f = open(".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (f < 0) {
		f = mkstemp(name);
		if (f >= 0)
			unlink(name);
	}
	return map_fd(f, pages, fd);
}

unsigned long *bitmap_new(size_t pages)
{
	/* A word to spare: tests clear bitmaps with sizes rounded up, (pages / 8 / sizeof(long) + 1) words. */
	unsigned long *bm = calloc(COHMEM_BITMAP_LONGS(pages) + 1, sizeof(unsigned long));

	cr_assert_not_null(bm);
	return bm;
}

bool bit_is_set(const unsigned long *bm, size_t bit)
{
	return bm[bit / COHMEM_BITS_PER_LONG] >> (bit % COHMEM_BITS_PER_LONG) & 1;
}

size_t bits_set(const unsigned long *bm, size_t pages)
{
	size_t n = 0;

	for (size_t i = 0; i < pages; i++)
		n += bit_is_set(bm, i);
	return n;
}

long clean_all(cohmem_region *r, size_t pages, unsigned long **bm)
{
	*bm = bitmap_new(pages);
	return cohmem_region_clean(r, 0, pages, 0, *bm, NULL, NULL);
}

void assert_bits(const unsigned long *bm, size_t pages, const size_t *expect)
{
	size_t n = 0;

	for (; expect[n] != END; n++)
		cr_assert(bit_is_set(bm, expect[n]), "page %zu should be reported", expect[n]);
	cr_assert_eq(bits_set(bm, pages), n, "%zu pages reported, expected %zu", bits_set(bm, pages), n);
}

size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, rss = 0;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%lu %lu", &size, &rss), 2);
	fclose(f);
	return rss * PS;
}

static bool every_test_skipped;

/* In the runner, after every test: whether all of them skipped (for test_runs_where_unsupported()). */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	every_test_skipped = stats->nb_tests && stats->tests_skipped == stats->nb_tests;
}

int main(int argc, char *argv[])
{
	enum cohmem_backend b = test_backend();
	struct criterion_test_set *tests;
	bool run_anyway = test_runs_where_unsupported && test_runs_where_unsupported();
	char why[256];
	int err = cohmem_backend_explain(b, why, sizeof(why)), result = 0;

	if (err) {
		printf("SKIP: backend %s cannot work here: %s\n", cohmem_backend_name(b), why);
		if (!run_anyway)
			return 77;
	}
	tests = criterion_initialize();
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	if (run_anyway && !result && every_test_skipped) {
		printf("SKIP: every test of this program skipped\n");
		return 77;
	}
	return result;
}

static double seconds(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double test_slowdown(void)
{
	const char *forced = getenv("COHMEM_TEST_SLOWDOWN");
	double wall, cpu, ratio;
	volatile unsigned long sink = 0;

	if (forced && atof(forced) >= 1)
		return atof(forced);
	wall = seconds(CLOCK_MONOTONIC);
	cpu = seconds(CLOCK_THREAD_CPUTIME_ID);
	while (seconds(CLOCK_THREAD_CPUTIME_ID) - cpu < 0.02)	/* 20 ms of CPU */
		for (int i = 0; i < 10000; i++)
			sink = sink * 31 + (unsigned long)i;
	ratio = (seconds(CLOCK_MONOTONIC) - wall) / (seconds(CLOCK_THREAD_CPUTIME_ID) - cpu);
	return ratio < 1 ? 1 : ratio > 16 ? 16 : ratio;
}

unsigned test_deadline_s(unsigned base_s)
{
	return (unsigned)(base_s * test_slowdown() + 0.5);
}

/*
 * LeakSanitizer: Criterion 2.4.1's runner (the parent process) now and then
 * leaks a 48-byte block of its own (calloc in libcriterion.so.3, seen once in
 * a few full runs of test-daemon on a busy machine): not ours, and not a
 * reason to fail a run. Every leak of our code still fails it.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcriterion.so\n";
}
