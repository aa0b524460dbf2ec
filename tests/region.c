/* SPDX-License-Identifier: MIT */
/* cohmem_region_add() and cohmem_region_remove(). */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test.h"

#define PAGES 32

TestSuite(region, .timeout = 60);

/* Bit 57 of a pagemap entry: the PTE is uffd-wp write-protected. */
static bool page_uffd_wp(const void *addr)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &entry, sizeof(entry), (off_t)((uintptr_t)addr / PS * sizeof(entry))),
		     (ssize_t)sizeof(entry));
	close(fd);
	return entry >> 57 & 1;
}

static bool uffd_backend(const cohmem_region *r)
{
	return cohmem_region_backend(r) == COHMEM_BACKEND_UFFD_ASYNC ||
	       cohmem_region_backend(r) == COHMEM_BACKEND_UFFD_SYNC;
}

/* "nh" in the mapping's VmFlags: MADV_NOHUGEPAGE is set. */
static bool no_hugepage_advice(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false, nh = false;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		uintptr_t start, end;

		/* mapping lines start with the address; attribute lines with a capital */
		if (!isupper((unsigned char)line[0]) &&
		    sscanf(line, "%jx-%jx ", (uintmax_t *)&start, (uintmax_t *)&end) == 2)
			inside = (uintptr_t)addr >= start && (uintptr_t)addr < end;
		else if (inside && !strncmp(line, "VmFlags:", 8))
			nh = strstr(line, " nh") != NULL;
	}
	fclose(f);
	return nh;
}

Test(region, bad_arguments_are_refused)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES);
	cohmem_region *r = NULL;

	cr_assert_eq(cohmem_region_add(NULL, mem, PS, 0, &r), -EINVAL);
	cr_assert_eq(cohmem_region_add(t, mem, PS, 0, NULL), -EINVAL);
	cr_assert_eq(cohmem_region_add(t, mem + 1, PS, 0, &r), -EINVAL, "unaligned address");
	cr_assert_eq(cohmem_region_add(t, mem, PS + 1, 0, &r), -EINVAL, "unaligned length");
	cr_assert_eq(cohmem_region_add(t, mem, 0, 0, &r), -EINVAL, "empty");
	cr_assert_eq(cohmem_region_add(t, mem, SIZE_MAX - PS + 1, 0, &r), -EINVAL, "wraps");
	cr_assert_eq(cohmem_region_add(t, mem, PS, 0x80, &r), -EINVAL, "unknown flag");
	cr_assert_null(r);

	/* none of that changed anything: the memory can be tracked now */
	r = test_region(t, mem, PAGES);
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
}

Test(region, unmapped_memory_is_refused)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES);
	cohmem_region *r = NULL;

	cr_assert_eq(munmap(mem + 8 * PS, PS), 0);
	cr_assert_eq(cohmem_region_add(t, mem, PAGES * PS, 0, &r), -ENOMEM, "a hole in the range");
	cr_assert_eq(cohmem_region_add(t, mem + 8 * PS, PS, 0, &r), -ENOMEM, "nothing mapped");
	cr_assert_null(r);
	mem[0] = 1;
	mem[9 * PS] = 1;
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
}

Test(region, overlapping_regions_are_refused)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES);
	cohmem_region *r = test_region(t, mem + 8 * PS, 8), *o = NULL;

	cr_assert_eq(cohmem_region_add(t, mem + 8 * PS, 8 * PS, 0, &o), -EEXIST, "same range");
	cr_assert_eq(cohmem_region_add(t, mem, 9 * PS, 0, &o), -EEXIST, "overlaps the start");
	cr_assert_eq(cohmem_region_add(t, mem + 15 * PS, 2 * PS, 0, &o), -EEXIST, "overlaps the end");
	cr_assert_eq(cohmem_region_add(t, mem, PAGES * PS, 0, &o), -EEXIST, "contains it");
	cr_assert_eq(cohmem_region_add(t, mem + 10 * PS, PS, 0, &o), -EEXIST, "inside it");
	cr_assert_null(o);

	/* neighbours on both sides are fine */
	o = test_region(t, mem, 8);
	o = test_region(t, mem + 16 * PS, 8);
	(void)r;
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
}

Test(region, memory_of_another_tracker_is_busy)
{
	cohmem_tracker *a = test_tracker(), *b = test_tracker();
	char *mem = map_anon(PAGES);
	cohmem_region *r = test_region(a, mem, PAGES), *o = NULL;

	cr_assert_eq(cohmem_region_add(b, mem, PAGES * PS, 0, &o), -EBUSY);
	cr_assert_null(o);
	cr_assert_eq(cohmem_region_remove(r), 0);
	o = test_region(b, mem, PAGES);	/* free again after removal */
	cohmem_tracker_free(a);
	cohmem_tracker_free(b);
	munmap(mem, PAGES * PS);
}

Test(region, never_writable_memory_is_refused)
{
	cohmem_tracker *t = test_tracker();
	int fd, ro;
	char *mem = map_memfd(PAGES, &fd), *rmem, path[64];
	cohmem_region *r = NULL;
	int err;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY);
	cr_assert_geq(ro, 0);
	rmem = mmap(NULL, PAGES * PS, PROT_READ, MAP_SHARED, ro, 0);
	cr_assert_neq(rmem, MAP_FAILED);
	err = cohmem_region_add(t, rmem, PAGES * PS, 0, &r);
	cr_assert(err == -EPERM || err == -EOPNOTSUPP, "got %d", err);
	cohmem_tracker_free(t);
	munmap(rmem, PAGES * PS);
	munmap(mem, PAGES * PS);
	close(ro);
	close(fd);
}

Test(region, backend_is_reported)
{
	struct tracked x = tracked_anon(PAGES);

	if (test_backend() == COHMEM_BACKEND_AUTO)
		cr_assert_neq(cohmem_region_backend(x.r), COHMEM_BACKEND_AUTO);
	else
		cr_assert_eq(cohmem_region_backend(x.r), test_backend());
	tracked_free(&x);
}

Test(region, remove_restores_plain_memory)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES);
	cohmem_region *r;

	memset(mem, 1, PAGES * PS);
	r = test_region(t, mem, PAGES);
	if (uffd_backend(r))
		cr_assert(page_uffd_wp(mem + 3 * PS), "tracked pages are write-protected");
	cr_assert_eq(cohmem_region_remove(r), 0);
	for (size_t i = 0; i < PAGES; i++)
		cr_assert(!page_uffd_wp(mem + i * PS), "page %zu still protected", i);
	memset(mem, 2, PAGES * PS);	/* and writable without a fault handler */
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
}

Test(region, remove_and_add_again_starts_clean)
{
	struct tracked x = tracked_anon(PAGES);
	unsigned long *bm;

	x.mem[1 * PS] = 1;
	cr_assert_eq(cohmem_region_remove(x.r), 0);
	x.mem[2 * PS] = 1;
	x.r = test_region(x.t, x.mem, PAGES);
	cr_assert_eq(clean_all(x.r, PAGES, &bm), 0, "earlier writes are not reported");
	free(bm);
	x.mem[3 * PS] = 1;
	cr_assert_eq(clean_all(x.r, PAGES, &bm), 1);
	assert_bits(bm, PAGES, (size_t[]){ 3, END });
	free(bm);
	tracked_free(&x);
}

Test(region, two_independent_regions)
{
	cohmem_tracker *t = test_tracker();
	char *a = map_anon(PAGES), *b = map_anon(PAGES);
	cohmem_region *ra = test_region(t, a, PAGES), *rb = test_region(t, b, PAGES);
	unsigned long *bm;

	a[5 * PS] = 1;
	b[6 * PS] = 1;
	b[7 * PS] = 1;
	cr_assert_eq(clean_all(ra, PAGES, &bm), 1);
	assert_bits(bm, PAGES, (size_t[]){ 5, END });
	free(bm);
	cr_assert_eq(cohmem_region_remove(ra), 0);
	cr_assert_eq(clean_all(rb, PAGES, &bm), 2, "unaffected by the other region's clean and removal");
	assert_bits(bm, PAGES, (size_t[]){ 6, 7, END });
	free(bm);
	cohmem_tracker_free(t);
	munmap(a, PAGES * PS);
	munmap(b, PAGES * PS);
}

Test(region, adjacent_regions_stay_apart)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES);
	cohmem_region *lo = test_region(t, mem, PAGES / 2);
	cohmem_region *hi = test_region(t, mem + PAGES / 2 * PS, PAGES / 2);
	unsigned long *bm;

	memset(mem + (PAGES / 2 - 1) * PS, 1, 2 * PS);	/* last page of one, first of the other */
	cr_assert_eq(clean_all(lo, PAGES / 2, &bm), 1);
	assert_bits(bm, PAGES / 2, (size_t[]){ PAGES / 2 - 1, END });
	free(bm);
	cr_assert_eq(cohmem_region_remove(lo), 0);
	cr_assert_eq(clean_all(hi, PAGES / 2, &bm), 1);
	assert_bits(bm, PAGES / 2, (size_t[]){ 0, END });
	free(bm);
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
}

Test(region, remove_after_munmap)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES);
	cohmem_region *r = test_region(t, mem, PAGES);

	cr_assert_eq(munmap(mem, PAGES * PS), 0);
	cr_assert_eq(cohmem_region_remove(r), 0);
	cohmem_tracker_free(t);
}

Test(region, tracker_free_releases_every_region)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES);

	memset(mem, 1, PAGES * PS);
	test_region(t, mem, 8);
	test_region(t, mem + 8 * PS, 8);
	test_region(t, mem + 20 * PS, 4);
	cohmem_tracker_free(t);
	for (size_t i = 0; i < PAGES; i++)
		cr_assert(!page_uffd_wp(mem + i * PS), "page %zu still protected", i);
	memset(mem, 2, PAGES * PS);
	t = test_tracker();
	test_region(t, mem, PAGES);	/* nothing is left registered */
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
}

Test(region, huge_pages_are_advised_off_unless_allowed)
{
	if (test_backend_pfnmap())
		cr_skip_test("pfnmap memory has no transparent huge pages to advise off");
	cohmem_tracker *t = test_tracker();
	char *a = map_anon(PAGES), *b = map_anon(PAGES);
	cohmem_region *r = NULL;

	test_region(t, a, PAGES);
	cr_assert(no_hugepage_advice(a));
	cr_assert_eq(cohmem_region_add(t, b, PAGES * PS, COHMEM_REGION_ALLOW_HUGEPAGES, &r), 0);
	cr_assert(!no_hugepage_advice(b));
	cohmem_tracker_free(t);
	munmap(a, PAGES * PS);
	munmap(b, PAGES * PS);
}

/*
 * The caller replaces part of a region with a new mapping behind the
 * library's back. The uffd backends notice (the new mapping is not
 * registered): pages the kernel reported before failing must still reach the
 * caller, then comes the error. Backends that only see addresses (mprotect,
 * soft-dirty) go on tracking the range. Either way nothing hangs, the part
 * still tracked is, and removal works.
 */
Test(region, memory_replaced_behind_the_librarys_back)
{
	struct tracked x = tracked_anon(PAGES);
	char *mem = x.mem, *fresh;
	cohmem_region *r = x.r;
	unsigned long *bm;
	long n;

	mem[1 * PS] = 1;
	mem[2 * PS] = 1;
	mem[20 * PS] = 1;
	fresh = mmap(mem + 16 * PS, 16 * PS, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	cr_assert_eq(fresh, mem + 16 * PS);
	fresh[4 * PS] = 2;	/* untracked memory now */

	n = clean_all(r, PAGES, &bm);
	if (uffd_backend(r)) {
		if (n >= 0) {	/* uffd-async: the first VMA is walked before the refusal */
			cr_assert_eq(n, 2);
			assert_bits(bm, PAGES, (size_t[]){ 1, 2, END });
			free(bm);
			n = clean_all(r, PAGES, &bm);
		}
		cr_assert_lt(n, 0, "the error surfaces once nothing is left to report");
	} else {
		cr_assert_geq(n, 2, "got %ld", n);
		cr_assert(bit_is_set(bm, 1) && bit_is_set(bm, 2));
	}
	free(bm);

	mem[3 * PS] = 3;
	bm = bitmap_new(PAGES);
	n = cohmem_region_clean(r, 0, 16, 0, bm, NULL, NULL);
	cr_assert_geq(n, 1, "got %ld", n);
	cr_assert(bit_is_set(bm, 3));
	free(bm);
	cr_assert_eq(cohmem_region_remove(r), 0, "removal works on replaced memory");
	tracked_free(&x);
}

Test(region, statistics)
{
	struct tracked x = tracked_anon(PAGES);
	struct cohmem_region_stats st;
	unsigned long *bm;

	cr_assert_eq(cohmem_region_stats(x.r, &st, sizeof(st)), 0);
	cr_assert_eq(st.backend, cohmem_region_backend(x.r));
	cr_assert_eq(st.pages, PAGES);
	cr_assert_eq(st.cleans, 0);
	cr_assert_eq(st.pages_reported, 0);
	cr_assert_eq(st.degraded, 0);

	memset(x.mem + 2 * PS, 1, 3 * PS);
	cr_assert_eq(clean_all(x.r, PAGES, &bm), 3);
	free(bm);
	cr_assert_eq(clean_all(x.r, PAGES, &bm), 0);
	free(bm);
	cr_assert_eq(cohmem_region_stats(x.r, &st, sizeof(st)), 0);
	cr_assert_eq(st.cleans, 2);
	cr_assert_eq(st.pages_reported, 3);

	cr_assert_eq(cohmem_region_stats(NULL, &st, sizeof(st)), -EINVAL);
	cr_assert_eq(cohmem_region_stats(x.r, NULL, sizeof(st)), -EINVAL);
	cr_assert_eq(cohmem_region_stats(x.r, &st, offsetof(struct cohmem_region_stats, degraded)),
		     -EINVAL, "smaller than version 0.1's struct");
	tracked_free(&x);
}
