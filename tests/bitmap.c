/* SPDX-License-Identifier: MIT */
/* The internal bitmap helpers against a one-bit-at-a-time reference. */
#include <stdlib.h>

#include "bitmap.h"
#include "test.h"

#define NBITS 300

static bool ref[NBITS];

static void check_equal(const unsigned long *bm)
{
	for (size_t i = 0; i < NBITS; i++)
		cr_assert_eq(bitmap_test(bm, i), ref[i], "bit %zu", i);
}

TestSuite(bitmap, .timeout = 60);

Test(bitmap, ranges_match_the_reference)
{
	unsigned long bm[bitmap_words(NBITS)], other[bitmap_words(NBITS)];
	unsigned seed = 1;

	memset(bm, 0, sizeof(bm));
	for (int iter = 0; iter < 20000; iter++) {
		size_t start = (size_t)rand_r(&seed) % NBITS;
		size_t n = (size_t)rand_r(&seed) % (NBITS - start + 1);
		size_t expect = 0, next_set = start + n, next_clear = start + n;

		switch (rand_r(&seed) % 5) {
		case 0:
			bitmap_set_range(bm, start, n);
			for (size_t i = start; i < start + n; i++)
				ref[i] = true;
			break;
		case 1:
			bitmap_clear_range(bm, start, n);
			for (size_t i = start; i < start + n; i++)
				ref[i] = false;
			break;
		case 2:
			for (size_t i = start; i < start + n; i++)
				expect += ref[i];
			cr_assert_eq(bitmap_count_range(bm, start, n), expect);
			break;
		case 3:
			for (size_t i = start + n; i-- > start;) {
				if (ref[i])
					next_set = i;
				else
					next_clear = i;
			}
			cr_assert_eq(bitmap_next_set(bm, start, start + n), next_set);
			cr_assert_eq(bitmap_next_clear(bm, start, start + n), next_clear);
			break;
		case 4:
			memset(other, 0xa5, sizeof(other));
			bitmap_take_range(other, bm, start, n);
			for (size_t i = start; i < start + n; i++) {
				cr_assert_eq(bitmap_test(other, i), ref[i]);
				ref[i] = false;
			}
			check_equal(bm);
			bitmap_or_range(bm, other, start, n);
			for (size_t i = start; i < start + n; i++)
				ref[i] = bitmap_test(other, i);
			break;
		}
		check_equal(bm);
	}
}
