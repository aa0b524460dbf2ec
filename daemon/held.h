/* SPDX-License-Identifier: MIT */
/*
 * The bytes of a buffer's pages that were written back while the state
 * file system could not take them, held by the daemon until it can.
 *
 * The page cache alone kept them before, and it lets go: a failed write(2)
 * to the same page makes Linux 6.x drop the page's contents (7.x keeps the
 * write(2)'s bytes instead, which the next pass drops: store.c's
 * note_stale()), and a clean page (writeback answered, if with an error)
 * may be evicted; either way the mapping's write was gone. Held pages are what reads of them return, what
 * a later write(2) of part of them is merged into, and what the next pass
 * stores. Their memory is charged to the buffer's owner (--user-pending);
 * past it, a page is not held, and the page cache is all there is
 * (collect.c retrieves it from there).
 *
 * A sorted array of page copies per buffer; the owner (b->lock) locks it.
 */
#ifndef COHMEMD_HELD_H
#define COHMEMD_HELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct held_page {
	uint64_t pg;
	char *data;			/* a page; past the buffer's end, zeros */
};

struct held {
	struct held_page *pages;	/* sorted by pg */
	size_t n, cap;
};

struct daemon;
struct buffer;

/* Merge len bytes at byte off of page pg (off + len <= page size) into its copy, made if missing
 * (zeros around): 0, or -EDQUOT past the owner's limit, -ENOMEM (nothing held then). b->lock. */
int held_put(struct daemon *d, struct buffer *b, uint64_t pg, size_t off, const char *src, size_t len);
/* The copy of page pg, or NULL. b->lock. */
char *held_find(const struct buffer *b, uint64_t pg);
/* Whether any page of [first, first + n) is held. b->lock. */
bool held_any(const struct buffer *b, uint64_t first, uint64_t n);
/* Let page pg go (stored, or cut). b->lock. */
void held_drop(struct daemon *d, struct buffer *b, uint64_t pg);
/* The buffer is cut to size bytes: pages past it go, the last one's tail is zeros. b->lock. */
void held_cut(struct daemon *d, struct buffer *b, uint64_t size);
/* Let every page go. b->lock (or the buffer is being freed). */
void held_clear(struct daemon *d, struct buffer *b);
/* What the held pages are charged to the buffer's owner. b->lock. */
uint64_t held_cost(const struct daemon *d, const struct buffer *b);

#endif /* COHMEMD_HELD_H */
