/* SPDX-License-Identifier: MIT */
/*
 * Writers that stop while the clean runs: every backend, soft-dirty included,
 * must then report exactly the pages written in the round — none missing,
 * none extra — and a shadow copied from the reports must equal the memory.
 */
#include <pthread.h>
#include <stdlib.h>

#include "test.h"

#define PAGES 512
#define WRITERS 3
#define ROUNDS 20

struct round {
	char *mem;
	const size_t *pages;	/* the pages this round writes */
	size_t n;
	unsigned writer;
};

static void *write_share(void *arg)
{
	struct round *rd = arg;

	for (size_t i = rd->writer; i < rd->n; i += WRITERS)
		rd->mem[rd->pages[i] * PS + i % PS] = (char)(i + rd->writer);
	return NULL;
}

TestSuite(quiescent, .timeout = 120);

Test(quiescent, each_clean_reports_exactly_what_was_written)
{
	struct tracked x = tracked_anon(PAGES);
	char *shadow = malloc(PAGES * PS);
	size_t pages[PAGES];
	unsigned seed = 3;

	cr_assert_not_null(shadow);
	memcpy(shadow, x.mem, PAGES * PS);
	for (unsigned round = 0; round < ROUNDS; round++) {
		unsigned long *bm = bitmap_new(PAGES), *expect = bitmap_new(PAGES);
		struct round rd[WRITERS];
		pthread_t th[WRITERS];
		size_t n = 1 + (size_t)rand_r(&seed) % (PAGES / 4);

		for (size_t i = 0; i < n; i++) {
			pages[i] = (size_t)rand_r(&seed) % PAGES;
			expect[pages[i] / (8 * sizeof(long))] |= 1UL << (pages[i] % (8 * sizeof(long)));
		}
		for (unsigned w = 0; w < WRITERS; w++) {
			rd[w] = (struct round){ .mem = x.mem, .pages = pages, .n = n, .writer = w };
			cr_assert_eq(pthread_create(&th[w], NULL, write_share, &rd[w]), 0);
		}
		for (unsigned w = 0; w < WRITERS; w++)
			pthread_join(th[w], NULL);

		cr_assert_geq(cohmem_region_clean(x.r, 0, PAGES, 0, bm, NULL, NULL), 0);
		for (size_t pg = 0; pg < PAGES; pg++) {
			cr_assert_eq(bit_is_set(bm, pg), bit_is_set(expect, pg),
				     "round %u, page %zu: reported %d, written %d", round, pg,
				     bit_is_set(bm, pg), bit_is_set(expect, pg));
			if (bit_is_set(bm, pg))
				memcpy(shadow + pg * PS, x.mem + pg * PS, PS);
		}
		cr_assert(!memcmp(shadow, x.mem, PAGES * PS), "round %u: the shadow differs", round);
		free(bm);
		free(expect);
	}
	free(shadow);
	tracked_free(&x);
}
