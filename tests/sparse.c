/* SPDX-License-Identifier: MIT */
/* A 1 GiB region that is almost never touched. */
#include <stdlib.h>
#include <sys/mman.h>

#include "test.h"

#define GIB (1UL << 30)

TestSuite(sparse, .timeout = 120);

Test(sparse, one_gib_region)
{
	size_t pages = GIB / PS, before = rss_bytes();
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(pages);
	cohmem_region *r = test_region(t, mem, pages);
	unsigned long *bm = bitmap_new(pages);
	size_t start = pages, end = 0;
	const size_t touched[] = { 0, 1, 4096, 131071, 131072, pages - 1, END };

	if (test_backend_has(COHMEM_CAP_SPARSE))
		cr_assert_lt(rss_bytes() - before, 64UL << 20,
			     "tracking must not populate the region (%zu MiB resident)",
			     (rss_bytes() - before) >> 20);
	for (size_t i = 0; touched[i] != END; i++)
		mem[touched[i] * PS + i] = 1;
	cr_assert_eq(cohmem_region_clean(r, 0, pages, 0, bm, &start, &end), 6);
	assert_bits(bm, pages, touched);
	cr_assert_eq(start, 0);
	cr_assert_eq(end, pages);
	free(bm);

	cr_assert_eq(clean_all(r, pages, &bm), 0);
	free(bm);
	mem[(pages / 2) * PS] = 1;
	cr_assert_eq(cohmem_region_clean(r, pages / 2, 1, 0, (bm = bitmap_new(pages)), NULL, NULL), 1);
	assert_bits(bm, pages, (size_t[]){ pages / 2, END });
	free(bm);
	cohmem_tracker_free(t);
	munmap(mem, GIB);
}
