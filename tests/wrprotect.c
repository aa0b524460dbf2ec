/* SPDX-License-Identifier: MIT */
/* cohmem_region_wrprotect(): the wp_shared_mapping_range() contract. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "test.h"

#define PAGES 32

TRACKED_SUITE(wrprotect, PAGES);

Test(wrprotect, nothing_written_nothing_protected)
{
	cr_assert_eq(cohmem_region_wrprotect(r, 0, PAGES), 0);
}

Test(wrprotect, counts_the_pages_that_were_writable)
{
	mem[1 * PS] = 1;
	mem[2 * PS] = 1;
	mem[30 * PS] = 1;
	cr_assert_eq(cohmem_region_wrprotect(r, 0, PAGES), 3);
	cr_assert_eq(cohmem_region_wrprotect(r, 0, PAGES), 0, "they are protected now");
}

Test(wrprotect, discards_dirty_state)
{
	unsigned long *bm;

	mem[4 * PS] = 1;
	mem[5 * PS] = 1;
	cr_assert_eq(cohmem_region_wrprotect(r, 0, PAGES), 2);
	cr_assert_eq(clean_all(r, PAGES, &bm), 0, "writes before wrprotect are forgotten");
	free(bm);

	mem[5 * PS] = 2;
	cr_assert_eq(clean_all(r, PAGES, &bm), 1, "writes after it are tracked");
	assert_bits(bm, PAGES, (size_t[]){ 5, END });
	free(bm);
}

Test(wrprotect, subrange_only)
{
	unsigned long *bm;

	mem[1 * PS] = 1;
	mem[10 * PS] = 1;
	mem[20 * PS] = 1;
	cr_assert_eq(cohmem_region_wrprotect(r, 5, 10), 1);
	cr_assert_eq(clean_all(r, PAGES, &bm), 2);
	assert_bits(bm, PAGES, (size_t[]){ 1, 20, END });
	free(bm);
}

Test(wrprotect, bad_input_is_refused_and_changes_nothing)
{
	unsigned long *bm;

	mem[3 * PS] = 1;
	cr_assert_eq(cohmem_region_wrprotect(NULL, 0, 1), -EINVAL);
	cr_assert_eq(cohmem_region_wrprotect(r, 0, PAGES + 1), -EINVAL);
	cr_assert_eq(cohmem_region_wrprotect(r, PAGES + 1, 0), -EINVAL);
	cr_assert_eq(cohmem_region_wrprotect(r, 1, SIZE_MAX), -EINVAL);
	cr_assert_eq(cohmem_region_wrprotect(r, 0, 0), 0);
	cr_assert_eq(clean_all(r, PAGES, &bm), 1, "the dirty page is still reported");
	free(bm);
}
