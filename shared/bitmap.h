/* SPDX-License-Identifier: MIT */
/* Bitmaps with the kernel's layout: bit n is bit n % LONG_BITS of word n / LONG_BITS. */
#ifndef COHMEM_BITMAP_H
#define COHMEM_BITMAP_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define LONG_BITS (CHAR_BIT * sizeof(unsigned long))

static inline size_t bitmap_words(size_t nbits)
{
	return nbits / LONG_BITS + (nbits % LONG_BITS != 0);
}

static inline bool bitmap_test(const unsigned long *bm, size_t bit)
{
	return bm[bit / LONG_BITS] >> (bit % LONG_BITS) & 1;
}

static inline void bitmap_set(unsigned long *bm, size_t bit)
{
	bm[bit / LONG_BITS] |= 1UL << (bit % LONG_BITS);
}

void bitmap_set_range(unsigned long *bm, size_t start, size_t n);
void bitmap_clear_range(unsigned long *bm, size_t start, size_t n);
/* Bits set in [start, start + n). */
size_t bitmap_count_range(const unsigned long *bm, size_t start, size_t n);
/* First set (clear) bit in [from, end), or end if there is none. */
size_t bitmap_next_set(const unsigned long *bm, size_t from, size_t end);
size_t bitmap_next_clear(const unsigned long *bm, size_t from, size_t end);
/* Move bits [start, start + n) of src into the same bits of dst; clear them in src. */
void bitmap_take_range(unsigned long *dst, unsigned long *src, size_t start, size_t n);
/* OR bits [start, start + n) of src into dst. */
void bitmap_or_range(unsigned long *dst, const unsigned long *src, size_t start, size_t n);

/*
 * Call fn(arg, first, len) for each run of set bits in [start, end), in
 * order; stop at the first non-zero return and return it.
 */
int bitmap_for_each_run(const unsigned long *bm, size_t start, size_t end,
			int (*fn)(void *arg, size_t first, size_t len), void *arg);

/* The same for bitmaps shared with signal handlers: every word changes atomically. */
void bitmap_atomic_set_range(atomic_ulong *bm, size_t start, size_t n);
/* Move bits [start, start + n) of src into dst (plain), clearing them in src. */
void bitmap_atomic_take_range(unsigned long *dst, atomic_ulong *src, size_t start, size_t n);

#endif /* COHMEM_BITMAP_H */
