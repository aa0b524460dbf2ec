/* SPDX-License-Identifier: MIT */
/* Page copies the state file could not take yet (held.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

/* A page's charge: its copy and the allocator's 16 bytes, and its slot. */
static uint64_t page_cost(const struct daemon *d)
{
	return d->page_size + 16 + sizeof(struct held_page);
}

/* The position of the first page >= pg. */
static size_t lower_bound(const struct held *h, uint64_t pg)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->pages[mid].pg < pg)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

char *held_find(const struct buffer *b, uint64_t pg)
{
	size_t at = lower_bound(&b->held, pg);

	lock_assert_held(&b->lock);
	return at < b->held.n && b->held.pages[at].pg == pg ? b->held.pages[at].data : NULL;
}

bool held_any(const struct buffer *b, uint64_t first, uint64_t n)
{
	size_t at = lower_bound(&b->held, first);

	lock_assert_held(&b->lock);
	return at < b->held.n && b->held.pages[at].pg - first < n;
}

int held_put(struct daemon *d, struct buffer *b, uint64_t pg, size_t off, const char *src, size_t len)
{
	struct held *h = &b->held;
	char *data = held_find(b, pg);
	size_t at;
	int err;

	if (!data) {
		err = user_charge(d, b->uid, (struct usage){ .pending = page_cost(d) }, false);
		if (err)
			return err;
		if (h->n == h->cap) {
			size_t cap = h->cap ? 2 * h->cap : 8;
			struct held_page *t = realloc(h->pages, cap * sizeof(*t));

			if (!t)
				goto nomem;
			h->pages = t;
			h->cap = cap;
		}
		data = calloc(1, d->page_size);
		if (!data)
			goto nomem;
		at = lower_bound(h, pg);
		memmove(&h->pages[at + 1], &h->pages[at], (h->n - at) * sizeof(*h->pages));
		h->pages[at] = (struct held_page){ pg, data };
		h->n++;
	}
	memcpy(data + off, src, len);
	return 0;
nomem:
	user_uncharge(d, b->uid, (struct usage){ .pending = page_cost(d) });
	return -ENOMEM;
}

static void drop_at(struct daemon *d, struct buffer *b, size_t at)
{
	struct held *h = &b->held;

	free(h->pages[at].data);
	memmove(&h->pages[at], &h->pages[at + 1], (h->n - at - 1) * sizeof(*h->pages));
	h->n--;
	user_uncharge(d, b->uid, (struct usage){ .pending = page_cost(d) });
}

void held_drop(struct daemon *d, struct buffer *b, uint64_t pg)
{
	size_t at = lower_bound(&b->held, pg);

	lock_assert_held(&b->lock);
	if (at < b->held.n && b->held.pages[at].pg == pg)
		drop_at(d, b, at);
}

void held_cut(struct daemon *d, struct buffer *b, uint64_t size)
{
	uint64_t ps = d->page_size, keep = (size + ps - 1) / ps;
	char *last;

	lock_assert_held(&b->lock);
	while (b->held.n && b->held.pages[b->held.n - 1].pg >= keep)
		drop_at(d, b, b->held.n - 1);
	if (size % ps && (last = held_find(b, size / ps)))
		memset(last + size % ps, 0, ps - size % ps);
}

uint64_t held_cost(const struct daemon *d, const struct buffer *b)
{
	return b->held.n * page_cost(d);
}

void held_clear(struct daemon *d, struct buffer *b)
{
	while (b->held.n)
		drop_at(d, b, b->held.n - 1);
	free(b->held.pages);
	b->held = (struct held){ 0 };
}
