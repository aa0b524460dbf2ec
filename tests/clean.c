/* SPDX-License-Identifier: MIT */
/* cohmem_region_clean(): the clean_record_shared_mapping_range() contract, one rule at a time. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "test.h"

#define PAGES 64

TRACKED_SUITE(clean, PAGES);

Test(clean, untouched_memory_reports_nothing)
{
	unsigned long *bm;

	cr_assert_eq(clean_all(r, PAGES, &bm), 0);
	cr_assert_eq(bits_set(bm, PAGES), 0);
	free(bm);
}

Test(clean, reading_is_not_writing)
{
	unsigned long *bm;
	volatile char sum = 0;

	for (size_t i = 0; i < PAGES; i++)
		sum += mem[i * PS];
	(void)sum;
	cr_assert_eq(clean_all(r, PAGES, &bm), 0);
	free(bm);
}

Test(clean, reports_exactly_the_written_pages)
{
	unsigned long *bm;

	mem[0] = 1;
	mem[5 * PS + 100] = 2;
	mem[63 * PS + PS - 1] = 3;
	cr_assert_eq(clean_all(r, PAGES, &bm), 3);
	assert_bits(bm, PAGES, (size_t[]){ 0, 5, 63, END });
	free(bm);
}

Test(clean, reported_pages_are_clean_afterwards)
{
	unsigned long *bm;

	mem[7 * PS] = 1;
	cr_assert_eq(clean_all(r, PAGES, &bm), 1);
	free(bm);
	cr_assert_eq(clean_all(r, PAGES, &bm), 0, "a page is reported once per write burst");
	free(bm);
	mem[7 * PS] = 2;
	cr_assert_eq(clean_all(r, PAGES, &bm), 1, "and again after the next write");
	assert_bits(bm, PAGES, (size_t[]){ 7, END });
	free(bm);
}

Test(clean, many_writes_to_one_page_are_one_report)
{
	unsigned long *bm;

	for (size_t i = 0; i < PS; i++)
		mem[9 * PS + i] = (char)i;
	cr_assert_eq(clean_all(r, PAGES, &bm), 1);
	free(bm);
}

Test(clean, a_write_straddling_a_page_boundary_dirties_both)
{
	unsigned long *bm;

	memset(mem + 3 * PS - 8, 0xab, 16);
	cr_assert_eq(clean_all(r, PAGES, &bm), 2);
	assert_bits(bm, PAGES, (size_t[]){ 2, 3, END });
	free(bm);
}

Test(clean, all_pages)
{
	unsigned long *bm;

	memset(mem, 1, PAGES * PS);
	cr_assert_eq(clean_all(r, PAGES, &bm), PAGES);
	cr_assert_eq(bits_set(bm, PAGES), PAGES);
	free(bm);
}

Test(clean, bitmap_pgoff_shifts_the_bits)
{
	unsigned long *bm = bitmap_new(PAGES);

	mem[10 * PS] = 1;
	mem[12 * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, 10, 20, 10, bm, NULL, NULL), 2);
	assert_bits(bm, PAGES, (size_t[]){ 0, 2, END });
	free(bm);
}

Test(clean, other_bits_are_left_as_they_are)
{
	unsigned long *bm = bitmap_new(PAGES);

	bm[0] = 0x5;	/* bits 0 and 2 set by the caller */
	mem[1 * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, NULL, NULL), 1);
	assert_bits(bm, PAGES, (size_t[]){ 0, 1, 2, END });
	free(bm);
}

Test(clean, a_subrange_leaves_the_other_pages_dirty)
{
	unsigned long *bm = bitmap_new(PAGES);

	mem[2 * PS] = 1;
	mem[20 * PS] = 1;
	mem[40 * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, 10, 20, 0, bm, NULL, NULL), 1);
	assert_bits(bm, PAGES, (size_t[]){ 20, END });
	free(bm);

	cr_assert_eq(clean_all(r, PAGES, &bm), 2, "pages outside the cleaned range stay dirty");
	assert_bits(bm, PAGES, (size_t[]){ 2, 40, END });
	free(bm);
}

Test(clean, subrange_edges_are_exact)
{
	unsigned long *bm = bitmap_new(PAGES);

	for (size_t i = 0; i < PAGES; i++)
		mem[i * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, 17, 1, 17, bm, NULL, NULL), 1);
	assert_bits(bm, PAGES, (size_t[]){ 0, END });
	free(bm);
	cr_assert_eq(clean_all(r, PAGES, &bm), PAGES - 1);
	cr_assert(!bit_is_set(bm, 17));
	free(bm);
}

Test(clean, start_end_from_none_set)
{
	unsigned long *bm = bitmap_new(PAGES);
	size_t start = PAGES, end = 0;

	mem[5 * PS] = 1;
	mem[9 * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, &start, &end), 2);
	cr_assert_eq(start, 5);
	cr_assert_eq(end, 10, "end is exclusive");
	free(bm);
}

Test(clean, start_end_are_relative_to_bitmap_pgoff)
{
	unsigned long *bm = bitmap_new(PAGES);
	size_t start = 0, end = 0;	/* start >= end: none set */

	mem[30 * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, 20, 20, 20, bm, &start, &end), 1);
	cr_assert_eq(start, 10);
	cr_assert_eq(end, 11);
	free(bm);
}

Test(clean, start_end_are_only_widened)
{
	unsigned long *bm = bitmap_new(PAGES);
	size_t start = 3, end = 50;

	mem[10 * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, &start, &end), 1);
	cr_assert_eq(start, 3, "a set bit inside the span does not shrink it");
	cr_assert_eq(end, 50);

	mem[1 * PS] = 1;
	mem[60 * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, &start, &end), 2);
	cr_assert_eq(start, 1);
	cr_assert_eq(end, 61);
	free(bm);
}

Test(clean, start_end_untouched_when_nothing_is_reported)
{
	unsigned long *bm = bitmap_new(PAGES);
	size_t start = 7, end = 2;

	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, &start, &end), 0);
	cr_assert_eq(start, 7);
	cr_assert_eq(end, 2);
	free(bm);
}

Test(clean, start_or_end_alone)
{
	unsigned long *bm = bitmap_new(PAGES);
	size_t start = 40, end = 2;

	mem[12 * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, &start, NULL), 1);
	cr_assert_eq(start, 12);
	mem[30 * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, NULL, &end), 1);
	cr_assert_eq(end, 31);
	free(bm);
}

Test(clean, empty_range_does_nothing)
{
	unsigned long *bm = bitmap_new(PAGES);

	mem[0] = 1;
	cr_assert_eq(cohmem_region_clean(r, 0, 0, 0, bm, NULL, NULL), 0);
	cr_assert_eq(cohmem_region_clean(r, PAGES, 0, 0, bm, NULL, NULL), 0, "an empty range at the end is valid");
	cr_assert_eq(bits_set(bm, PAGES), 0);
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, NULL, NULL), 1);
	free(bm);
}

Test(clean, bad_input_is_refused_and_changes_nothing)
{
	unsigned long *bm = bitmap_new(PAGES);
	size_t start = 5, end = 6;

	mem[4 * PS] = 1;
	cr_assert_eq(cohmem_region_clean(NULL, 0, 1, 0, bm, NULL, NULL), -EINVAL);
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, NULL, NULL, NULL), -EINVAL, "NULL bitmap");
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES + 1, 0, bm, &start, &end), -EINVAL, "past the end");
	cr_assert_eq(cohmem_region_clean(r, PAGES, 1, 0, bm, NULL, NULL), -EINVAL, "starts at the end");
	cr_assert_eq(cohmem_region_clean(r, PAGES + 1, 0, 0, bm, NULL, NULL), -EINVAL, "starts past the end");
	cr_assert_eq(cohmem_region_clean(r, 2, SIZE_MAX, 0, bm, NULL, NULL), -EINVAL, "overflowing");
	cr_assert_eq(cohmem_region_clean(r, SIZE_MAX, 2, 0, bm, NULL, NULL), -EINVAL, "overflowing");
	cr_assert_eq(cohmem_region_clean(r, 3, 10, 4, bm, NULL, NULL), -EINVAL, "bitmap_pgoff > first_index");
	cr_assert_eq(bits_set(bm, PAGES), 0, "the bitmap is untouched");
	cr_assert_eq(start, 5);
	cr_assert_eq(end, 6);

	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, NULL, NULL), 1, "and the region still works");
	assert_bits(bm, PAGES, (size_t[]){ 4, END });
	free(bm);
}

Test(clean, bitmap_in_tracked_memory)
{
	/* The caller's bitmap may itself live in a tracked page (the sync backend must not deadlock). */
	unsigned long *bm = (unsigned long *)(mem + 50 * PS);

	mem[3 * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, 0, 40, 0, bm, NULL, NULL), 1);
	cr_assert(bit_is_set(bm, 3));
	cr_assert_eq(clean_all(r, PAGES, &bm), 1, "writing the bitmap dirtied its page");
	assert_bits(bm, PAGES, (size_t[]){ 50, END });
	free(bm);
}

/*
 * More runs of written pages than a scan's first output vector holds (256
 * with uffd-async, which then grows it): every run is reported, in the clean
 * that needed several calls and in the ones after the vector grew.
 */
Test(clean, more_runs_than_one_scan_returns_are_all_reported)
{
	size_t pages = 4096;
	struct tracked big = tracked_anon(pages);

	for (int round = 0; round < 3; round++) {
		size_t step = round == 1 ? 4 : 2;	/* 2048, then 1024, then 2048 runs */
		unsigned long *bm;

		for (size_t pg = (size_t)round % 2; pg < pages; pg += step)
			big.mem[pg * PS] = (char)(round + 1);
		cr_assert_eq(clean_all(big.r, pages, &bm), (long)((pages - (size_t)round % 2 + step - 1) / step),
			     "round %d", round);
		for (size_t pg = 0; pg < pages; pg++)
			cr_assert_eq(bit_is_set(bm, pg), pg % step == (size_t)round % 2, "round %d, page %zu", round, pg);
		free(bm);
		cr_assert_eq(clean_all(big.r, pages, &bm), 0, "round %d: and nothing after", round);
		free(bm);
	}
	tracked_free(&big);
}
