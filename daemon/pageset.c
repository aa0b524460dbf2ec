/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pageset.h"

#define WORDS (PAGESET_LEAF_PAGES / 64)
/* What the allocator adds to each block: glibc's chunk header, rounded to 16 bytes. */
#define BLOCK_OVERHEAD 16

struct pageset_leaf {
	uint64_t index;			/* covers pages [index * LEAF_PAGES, +LEAF_PAGES) */
	uint32_t count;			/* bits set */
	uint64_t bits[WORDS];
};

/* The position of the first leaf with an index >= index. */
static size_t lower_bound(const struct pageset *s, uint64_t index)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->leaves[mid]->index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct pageset_leaf *leaf_get(struct pageset *s, uint64_t index)
{
	size_t at = lower_bound(s, index);
	struct pageset_leaf *l;

	if (at < s->n && s->leaves[at]->index == index)
		return s->leaves[at];
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 4;
		struct pageset_leaf **t = realloc(s->leaves, cap * sizeof(*t));

		if (!t)
			return NULL;
		s->leaves = t;
		s->cap = cap;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->index = index;
	memmove(&s->leaves[at + 1], &s->leaves[at], (s->n - at) * sizeof(*s->leaves));
	s->leaves[at] = l;
	s->n++;
	return l;
}

static void leaf_drop(struct pageset *s, size_t at)
{
	free(s->leaves[at]);
	memmove(&s->leaves[at], &s->leaves[at + 1], (s->n - at - 1) * sizeof(*s->leaves));
	s->n--;
	if (!s->n) {
		free(s->leaves);
		s->leaves = NULL;
		s->cap = 0;
	}
}

/* A mask of bits [from, to) of one word, 0 <= from < to <= 64. */
static uint64_t word_mask(unsigned from, unsigned to)
{
	uint64_t hi = to == 64 ? ~0ULL : (1ULL << to) - 1;

	return hi & ~((1ULL << from) - 1);
}

int pageset_add(struct pageset *s, uint64_t first, uint64_t n)
{
	uint64_t end = first + n;

	while (first < end) {
		struct pageset_leaf *l = leaf_get(s, first / PAGESET_LEAF_PAGES);
		uint64_t leaf_end = (first / PAGESET_LEAF_PAGES + 1) * PAGESET_LEAF_PAGES;
		uint64_t stop = end < leaf_end ? end : leaf_end;

		if (!l)
			return -ENOMEM;
		for (uint64_t pg = first; pg < stop;) {
			unsigned bit = pg % 64, to = stop - pg < 64 - bit ? (unsigned)(stop - pg) + bit : 64;
			uint64_t *w = &l->bits[(pg % PAGESET_LEAF_PAGES) / 64];
			uint64_t add = word_mask(bit, to) & ~*w;

			*w |= add;
			l->count += (uint32_t)__builtin_popcountll(add);
			s->count += (uint64_t)__builtin_popcountll(add);
			pg += to - bit;
		}
		first = stop;
	}
	return 0;
}

/*
 * Walk the set bits of [first, first + n): fn gets each leaf and the page
 * range of it that overlaps; leaves fn empties are freed.
 */
static uint64_t walk(struct pageset *s, uint64_t first, uint64_t n, uint64_t *out, bool take)
{
	uint64_t end = first + n, seen = 0;

	if (n == 0)
		return 0;
	for (size_t at = lower_bound(s, first / PAGESET_LEAF_PAGES); at < s->n;) {
		struct pageset_leaf *l = s->leaves[at];
		uint64_t base = l->index * PAGESET_LEAF_PAGES;
		uint64_t from = first > base ? first : base;
		uint64_t stop = end < base + PAGESET_LEAF_PAGES ? end : base + PAGESET_LEAF_PAGES;

		if (base >= end)
			break;
		for (uint64_t pg = from; pg < stop;) {
			unsigned bit = pg % 64, to = stop - pg < 64 - bit ? (unsigned)(stop - pg) + bit : 64;
			uint64_t *w = &l->bits[(pg - base) / 64];
			uint64_t hit = *w & word_mask(bit, to);

			seen += (uint64_t)__builtin_popcountll(hit);
			if (take) {
				*w &= ~hit;
				l->count -= (uint32_t)__builtin_popcountll(hit);
				s->count -= (uint64_t)__builtin_popcountll(hit);
			}
			while (out && hit) {
				uint64_t i = pg - bit + (uint64_t)__builtin_ctzll(hit) - first;

				out[i / 64] |= 1ULL << (i % 64);
				hit &= hit - 1;
			}
			pg += to - bit;
		}
		if (take && !l->count)
			leaf_drop(s, at);
		else
			at++;
	}
	return seen;
}

uint64_t pageset_count(const struct pageset *s, uint64_t first, uint64_t n)
{
	return walk((struct pageset *)s, first, n, NULL, false);
}

uint64_t pageset_take(struct pageset *s, uint64_t first, uint64_t n, uint64_t *out)
{
	return walk(s, first, n, out, true);
}

int pageset_for_each_run(const struct pageset *s, int (*fn)(void *arg, uint64_t first, uint64_t n),
			 void *arg)
{
	uint64_t run = 0, len = 0;
	int ret;

	for (size_t at = 0; at < s->n; at++) {
		const struct pageset_leaf *l = s->leaves[at];

		for (unsigned w = 0; w < WORDS; w++) {
			uint64_t bits = l->bits[w];

			while (bits) {
				uint64_t pg = l->index * PAGESET_LEAF_PAGES + w * 64 + (uint64_t)__builtin_ctzll(bits);

				if (len && run + len == pg) {
					len++;
				} else {
					if (len && (ret = fn(arg, run, len)))
						return ret;
					run = pg;
					len = 1;
				}
				bits &= bits - 1;
			}
		}
	}
	return len ? fn(arg, run, len) : 0;
}

uint64_t pageset_end(const struct pageset *s)
{
	const struct pageset_leaf *l = s->n ? s->leaves[s->n - 1] : NULL;

	for (unsigned w = WORDS; l && w-- > 0;)	/* leaves are never empty: a bit is set */
		if (l->bits[w])
			return l->index * PAGESET_LEAF_PAGES + w * 64 + 64 - (uint64_t)__builtin_clzll(l->bits[w]);
	return 0;
}

void pageset_clear(struct pageset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->leaves[i]);
	free(s->leaves);
	*s = (struct pageset)PAGESET_INIT;
}

size_t pageset_memory(const struct pageset *s)
{
	return s->cap ? s->cap * sizeof(*s->leaves) + BLOCK_OVERHEAD + s->n * (sizeof(struct pageset_leaf) + BLOCK_OVERHEAD)
		      : 0;
}

uint64_t pageset_grow_max(const struct pageset *s, uint64_t n)
{
	uint64_t leaves = n / PAGESET_LEAF_PAGES + 2;	/* a range straddles a leaf at each end */
	uint64_t cap = s->cap;

	while (cap < s->n + leaves)	/* as leaf_get() grows the array */
		cap = cap ? 2 * cap : 4;
	return leaves * (sizeof(struct pageset_leaf) + BLOCK_OVERHEAD) + (cap - s->cap) * sizeof(struct pageset_leaf *) +
	       (s->cap ? 0 : BLOCK_OVERHEAD);
}

uint64_t pageset_max_memory(uint64_t pages)
{
	uint64_t leaves = (pages + PAGESET_LEAF_PAGES - 1) / PAGESET_LEAF_PAGES;
	uint64_t cap = 2 * leaves < 4 ? 4 : 2 * leaves;	/* the array doubles from 4 (leaf_get()) */

	return leaves ? leaves * (sizeof(struct pageset_leaf) + BLOCK_OVERHEAD) + cap * sizeof(struct pageset_leaf *) +
			BLOCK_OVERHEAD : 0;
}
