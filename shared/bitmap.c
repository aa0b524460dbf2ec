/* SPDX-License-Identifier: MIT */
#include "bitmap.h"

/*
 * Every range operation walks words: a partial first word, whole words, a
 * partial last word. word_mask() gives the bits of [start, start + n) that
 * fall in the word holding bit start, and how many that is.
 */
static unsigned long word_mask(size_t start, size_t n, size_t *taken)
{
	size_t off = start % LONG_BITS;
	size_t len = LONG_BITS - off < n ? LONG_BITS - off : n;

	*taken = len;
	if (len == LONG_BITS)
		return ~0UL;
	return ((1UL << len) - 1) << off;
}

void bitmap_set_range(unsigned long *bm, size_t start, size_t n)
{
	while (n) {
		size_t len;
		unsigned long mask = word_mask(start, n, &len);

		bm[start / LONG_BITS] |= mask;
		start += len;
		n -= len;
	}
}

void bitmap_clear_range(unsigned long *bm, size_t start, size_t n)
{
	while (n) {
		size_t len;
		unsigned long mask = word_mask(start, n, &len);

		bm[start / LONG_BITS] &= ~mask;
		start += len;
		n -= len;
	}
}

size_t bitmap_count_range(const unsigned long *bm, size_t start, size_t n)
{
	size_t count = 0;

	while (n) {
		size_t len;
		unsigned long mask = word_mask(start, n, &len);

		count += (size_t)__builtin_popcountl(bm[start / LONG_BITS] & mask);
		start += len;
		n -= len;
	}
	return count;
}

void bitmap_take_range(unsigned long *dst, unsigned long *src, size_t start, size_t n)
{
	while (n) {
		size_t len, w = start / LONG_BITS;
		unsigned long mask = word_mask(start, n, &len);

		dst[w] = (dst[w] & ~mask) | (src[w] & mask);
		src[w] &= ~mask;
		start += len;
		n -= len;
	}
}

void bitmap_or_range(unsigned long *dst, const unsigned long *src, size_t start, size_t n)
{
	while (n) {
		size_t len, w = start / LONG_BITS;
		unsigned long mask = word_mask(start, n, &len);

		dst[w] |= src[w] & mask;
		start += len;
		n -= len;
	}
}

/* Shared by next_set and next_clear: invert flips every word before the search. */
static size_t next_bit(const unsigned long *bm, size_t from, size_t end, unsigned long invert)
{
	while (from < end) {
		size_t len;
		unsigned long word = (bm[from / LONG_BITS] ^ invert) & word_mask(from, end - from, &len);

		if (word)
			return from - from % LONG_BITS + (size_t)__builtin_ctzl(word);
		from += len;
	}
	return end;
}

size_t bitmap_next_set(const unsigned long *bm, size_t from, size_t end)
{
	return next_bit(bm, from, end, 0);
}

size_t bitmap_next_clear(const unsigned long *bm, size_t from, size_t end)
{
	return next_bit(bm, from, end, ~0UL);
}

int bitmap_for_each_run(const unsigned long *bm, size_t start, size_t end,
			int (*fn)(void *arg, size_t first, size_t len), void *arg)
{
	for (size_t first = bitmap_next_set(bm, start, end); first < end;) {
		size_t run_end = bitmap_next_clear(bm, first, end);
		int ret = fn(arg, first, run_end - first);

		if (ret)
			return ret;
		first = bitmap_next_set(bm, run_end, end);
	}
	return 0;
}

void bitmap_atomic_set_range(atomic_ulong *bm, size_t start, size_t n)
{
	while (n) {
		size_t len;
		unsigned long mask = word_mask(start, n, &len);

		atomic_fetch_or(&bm[start / LONG_BITS], mask);
		start += len;
		n -= len;
	}
}

void bitmap_atomic_take_range(unsigned long *dst, atomic_ulong *src, size_t start, size_t n)
{
	while (n) {
		size_t len, w = start / LONG_BITS;
		unsigned long mask = word_mask(start, n, &len);

		dst[w] = (dst[w] & ~mask) | (atomic_fetch_and(&src[w], ~mask) & mask);
		start += len;
		n -= len;
	}
}
