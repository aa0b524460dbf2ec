/* SPDX-License-Identifier: MIT */
/*
 * Test support. Every test program runs against one backend, named by the
 * environment variable COHMEM_TEST_BACKEND (CTest runs each program once per
 * backend); a program whose backend cannot work here exits 77 (skipped) and
 * says why.
 */
#ifndef COHMEM_TEST_H
#define COHMEM_TEST_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "cohmem.h"
#include "cohmem-buffer.h"
#include "cohmem-fb.h"
#include "cohmem-pfn.h"

#define PS (test_page_size())

size_t test_page_size(void);
enum cohmem_backend test_backend(void);
/* The backend tracks pfnmap memory only (pfn, pfn-scan): map_anon() gives a cohmem_pfn buffer. */
bool test_backend_pfnmap(void);
/*
 * A program that defines this to return true runs its tests even where its
 * backend cannot work: each test then skips saying why (tests/pfn-scan.c),
 * and the program exits 77 (skipped) when every test skipped. Other programs
 * exit 77 at once, with the backend's reason.
 */
bool test_runs_where_unsupported(void) __attribute__((weak));
/* Whether a tracker of the backend under test has cap (cohmem_tracker_capabilities()). */
bool test_backend_has(unsigned cap);
/* Skip a test that races writers against cleans on backends not exact under concurrency. */
void skip_unless_exact_concurrent(void);
/* Whether the backend tracking r has cap. */
bool region_has(const cohmem_region *r, unsigned cap);

/* A tracker for the backend under test; asserts success. */
cohmem_tracker *test_tracker(void);
cohmem_region *test_region(cohmem_tracker *t, void *addr, size_t pages);

/* A tracker of the backend under test with one region over fresh anonymous memory. */
struct tracked {
	cohmem_tracker *t;
	cohmem_region *r;
	char *mem;
	size_t pages;
};
struct tracked tracked_anon(size_t pages);
void tracked_free(struct tracked *x);	/* the tracker, then the memory */

/*
 * A suite whose every test starts with x: npages of anonymous memory,
 * tracked (r and mem are x.r and x.mem), freed after the test.
 */
#define TRACKED_SUITE(name, npages)                                       \
	static struct tracked x;                                          \
	static cohmem_region *r;                                          \
	static char *mem;                                                 \
	static void name##_setup(void)                                    \
	{                                                                 \
		x = tracked_anon(npages);                                 \
		r = x.r;                                                  \
		mem = x.mem;                                              \
	}                                                                 \
	static void name##_teardown(void)                                 \
	{                                                                 \
		tracked_free(&x);                                         \
	}                                                                 \
	TestSuite(name, .init = name##_setup, .fini = name##_teardown, .timeout = 60)

/* Mappings of `pages` pages, asserted to succeed; fd (may be NULL) receives the backing file. */
char *map_anon(size_t pages);	/* a cohmem_pfn buffer under the pfn backend */
char *map_memfd(size_t pages, int *fd);
char *map_file(size_t pages, int *fd);	/* a regular file on the build directory's file system */

/* Bitmaps sized for `pages` bits, zeroed; free with free(). */
unsigned long *bitmap_new(size_t pages);
bool bit_is_set(const unsigned long *bm, size_t bit);
size_t bits_set(const unsigned long *bm, size_t pages);

/* cohmem_region_clean() over the whole region into a fresh zeroed bitmap (returned in *bm). */
long clean_all(cohmem_region *r, size_t pages, unsigned long **bm);

/* Assert that exactly the pages listed (terminated by (size_t)-1) are set. */
void assert_bits(const unsigned long *bm, size_t pages, const size_t *expect);
#define END ((size_t)-1)

/* Resident set size of this process in bytes. */
size_t rss_bytes(void);

/*
 * Hang detectors, not timing checks: base_s seconds on an idle machine,
 * stretched by how busy it is now (test_slowdown()), so that a loaded
 * machine is slower without failing, and a hang is still caught.
 */
unsigned test_deadline_s(unsigned base_s);
/*
 * How much slower than an idle machine this one runs right now: the wall
 * time of a short CPU-bound loop over the CPU time it took (on a loaded
 * machine the loop waits for a CPU), from 1 to 16; COHMEM_TEST_SLOWDOWN
 * sets it instead.
 */
double test_slowdown(void);

#endif /* COHMEM_TEST_H */
