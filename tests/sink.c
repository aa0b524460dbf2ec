/* SPDX-License-Identifier: MIT */
/*
 * The dirty sink (lib/sink.c) against a one-bit-at-a-time reference: what a
 * clean of a cohmemd buffer decodes from the daemon's 64-bit words must be
 * what the daemon set, bit for bit, with the same count and span.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "bitmap.h"
#include "cohmemd-proto.h"
#include "sink.h"
#include "test.h"

#define WORDS (COHMEM_IOC_WINDOW / 64)
#define PGOFF 100	/* the caller's bitmap starts this many pages before the window */
#define FIRST 1000	/* the window's first page */

#define GOT_BITS (FIRST - PGOFF + COHMEM_IOC_WINDOW + 64)

static __u64 words[WORDS];
static unsigned long got[GOT_BITS / LONG_BITS + 1];

/* Decode words[0, nbits) and compare with the reference, bit by bit. */
static void check_decoded(size_t nbits)
{
	size_t count = 0, lo = SIZE_MAX, hi = 0, span[2] = { 1, 0 };
	struct dirty_sink sink;

	memset(got, 0, sizeof(got));
	dirty_sink_init(&sink, got, PGOFF);
	dirty_sink_record_words(&sink, words, FIRST, nbits);
	for (size_t i = 0; i < FIRST - PGOFF + nbits + 64; i++) {
		size_t w = i - (FIRST - PGOFF);
		bool set = i >= FIRST - PGOFF && w < nbits && (words[w / 64] >> (w % 64) & 1);

		cr_assert_eq(bitmap_test(got, i), set, "bit %zu of the caller's bitmap (window of %zu)", i, nbits);
		if (set) {
			count++;
			lo = i < lo ? i : lo;
			hi = i + 1;
		}
	}
	cr_assert_eq(sink.count, (long)count, "%ld pages recorded, %zu set", sink.count, count);
	cr_assert_eq(dirty_sink_finish(&sink, -EIO, &span[0], &span[1]), count ? (long)count : -EIO);
	if (count) {
		cr_assert_eq(span[0], lo);
		cr_assert_eq(span[1], hi);
	}
}

static void set_bits(const size_t *bits, size_t n)
{
	memset(words, 0, sizeof(words));
	for (size_t i = 0; i < n; i++)
		words[bits[i] / 64] |= (__u64)1 << (bits[i] % 64);
}

TestSuite(sink, .timeout = 60);

Test(sink, word_edges_and_runs_across_words)
{
	static const size_t edges[] = { 0, 63, 64, 127, 129, 190, 191, 192, 255, 256, COHMEM_IOC_WINDOW - 1 };

	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		set_bits(&edges[i], 1);
		check_decoded(COHMEM_IOC_WINDOW);
	}
	set_bits(edges, sizeof(edges) / sizeof(edges[0]));
	check_decoded(COHMEM_IOC_WINDOW);
	/* a full word, runs that end and start at word edges, a run across three words */
	memset(words, 0, sizeof(words));
	words[2] = ~(__u64)0;
	words[4] = (__u64)1 << 63;
	words[5] = ~(__u64)0;
	words[6] = 1;
	words[8] = ~(__u64)0 << 1;
	words[9] = ~(__u64)0 >> 1;
	check_decoded(COHMEM_IOC_WINDOW);
	memset(words, 0xff, sizeof(words));
	check_decoded(COHMEM_IOC_WINDOW);
}

Test(sink, bits_past_the_window_are_not_recorded)
{
	/* The last word of a window of 200 pages holds 8 of them: its other bits are not pages. */
	memset(words, 0xff, sizeof(words));
	check_decoded(200);
	words[3] = (__u64)1 << 8;	/* page 200: past the window */
	words[2] = 0;
	check_decoded(200);
	check_decoded(193);
	check_decoded(1);
	check_decoded(0);
}

Test(sink, random_words_match_the_reference)
{
	unsigned seed = 22;

	for (int iter = 0; iter < 200; iter++) {
		size_t nbits = (size_t)rand_r(&seed) % 1024 + 1;

		for (size_t w = 0; w < bitmap_words(nbits) + 1; w++) {
			/* sparse, dense and mixed words */
			__u64 a = (__u64)rand_r(&seed) << 33 ^ (__u64)rand_r(&seed) << 11 ^ (__u64)rand_r(&seed);

			switch (rand_r(&seed) % 4) {
			case 0:
				words[w] = 0;
				break;
			case 1:
				words[w] = ~(__u64)0;
				break;
			case 2:
				words[w] = a & (a >> 7);
				break;
			default:
				words[w] = a | (a << 3);
				break;
			}
		}
		check_decoded(nbits);
	}
}
