/* SPDX-License-Identifier: MIT */
/* Soft-dirty bits are cleared process-wide: no region may lose another's writes to that. */
#include <stdlib.h>
#include <sys/mman.h>

#include "test.h"

#define PAGES 16

TestSuite(softdirty, .timeout = 60);

Test(softdirty, a_clean_keeps_the_other_regions_writes)
{
	struct tracked a = tracked_anon(PAGES), b = tracked_anon(PAGES);
	struct tracked c;
	unsigned long *bm;

	a.mem[1 * PS] = 1;
	b.mem[2 * PS] = 1;
	cr_assert_eq(clean_all(a.r, PAGES, &bm), 1);
	assert_bits(bm, PAGES, (size_t[]){ 1, END });
	free(bm);

	b.mem[3 * PS] = 1;
	cr_assert_eq(cohmem_region_wrprotect(a.r, 0, PAGES), 0);
	c = tracked_anon(PAGES);	/* adding a region clears too */
	cr_assert_eq(clean_all(b.r, PAGES, &bm), 2, "b's writes survive a's clean, wrprotect and c's add");
	assert_bits(bm, PAGES, (size_t[]){ 2, 3, END });
	free(bm);
	cr_assert_eq(clean_all(c.r, PAGES, &bm), 0, "a new region starts clean");
	free(bm);
	tracked_free(&a);
	tracked_free(&b);
	tracked_free(&c);
}

Test(softdirty, not_exact_under_concurrency)
{
	unsigned caps;

	cr_assert_eq(cohmem_backend_capabilities(COHMEM_BACKEND_SOFT_DIRTY, &caps), 0);
	cr_assert_eq(caps & COHMEM_CAP_EXACT_CONCURRENT, 0, "documented: quiescent writers only");
	cr_assert_neq(caps & COHMEM_CAP_KERNEL_WRITES, 0);
}
