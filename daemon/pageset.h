/* SPDX-License-Identifier: MIT */
/*
 * Sets of page indexes whose memory is proportional to the pages in them,
 * not to the buffer they index: a sorted array of leaves, each a bitmap of
 * PAGESET_LEAF_PAGES pages, allocated when a page of it is added and freed
 * when its last page is taken. An open of a sparse 16 GiB buffer with
 * nothing pending costs nothing; with everything pending, 512 KiB.
 *
 * Not thread-safe: the owner provides the locking.
 */
#ifndef COHMEMD_PAGESET_H
#define COHMEMD_PAGESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGESET_LEAF_PAGES 4096

struct pageset_leaf;

struct pageset {
	struct pageset_leaf **leaves;	/* sorted by index, none empty */
	size_t n, cap;
	uint64_t count;			/* pages in the set */
};

#define PAGESET_INIT { NULL, 0, 0, 0 }

/* Add pages [first, first + n): 0, or -ENOMEM with the set unchanged past what fitted. */
int pageset_add(struct pageset *s, uint64_t first, uint64_t n);
/* Pages of [first, first + n) in the set. */
uint64_t pageset_count(const struct pageset *s, uint64_t first, uint64_t n);
/*
 * Take pages [first, first + n) out of the set; if out is not NULL, set bit
 * i of out (64-bit words, zeroed by the caller) for page first + i. Returns
 * how many were taken.
 */
uint64_t pageset_take(struct pageset *s, uint64_t first, uint64_t n, uint64_t *out);
/*
 * Call fn(arg, first, n) for each run of pages in the set, in order; stop at
 * the first non-zero return and return it.
 */
int pageset_for_each_run(const struct pageset *s, int (*fn)(void *arg, uint64_t first, uint64_t n),
			 void *arg);
/* One past the last page in the set; 0 if it is empty. */
uint64_t pageset_end(const struct pageset *s);
/* Empty the set and free its memory. */
void pageset_clear(struct pageset *s);
/* Bytes the set holds on the heap, the allocator's overhead of each block included. */
size_t pageset_memory(const struct pageset *s);
/* The most pageset_memory() can say of a set of pages below `pages`. */
uint64_t pageset_max_memory(uint64_t pages);
/* The most that adding n pages to s can add to pageset_memory(s). */
uint64_t pageset_grow_max(const struct pageset *s, uint64_t n);

#endif /* COHMEMD_PAGESET_H */
