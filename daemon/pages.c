/* SPDX-License-Identifier: MIT */
/*
 * What each consumer is owed. Whatever the page tables yield, and every WRITE
 * that reaches the daemon, is fanned out to every open description of the
 * buffer: each clean reports what was written since that description's own
 * last clean, whoever else cleaned meanwhile.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "bitmap.h"
#include "daemon.h"

void pages_mark(struct buffer *b, uint64_t first, uint64_t n)
{
	if (first >= b->bitmap_pages)
		return;
	if (n > b->bitmap_pages - first)
		n = b->bitmap_pages - first;
	for (size_t i = 0; i < b->nconsumers; i++)
		bitmap_set_range(b->consumers[i]->pending, first, n);
}

void pages_notify(struct buffer *b)
{
	for (size_t i = 0; i < b->nconsumers; i++) {
		struct consumer *c = b->consumers[i];

		if (!c->ph || bitmap_next_set(c->pending, 0, b->bitmap_pages) == b->bitmap_pages)
			continue;
		fuse_lowlevel_notify_poll(c->ph);
		fuse_pollhandle_destroy(c->ph);
		c->ph = NULL;
	}
}

int consumer_new(struct buffer *b, struct consumer **ret)
{
	struct consumer *c = calloc(1, sizeof(*c)), **list;

	if (!c)
		return -ENOMEM;
	c->b = b;
	c->pending = calloc(bitmap_words(b->bitmap_pages) + 1, sizeof(unsigned long));
	list = realloc(b->consumers, (b->nconsumers + 1) * sizeof(*list));
	if (!c->pending || !list) {
		free(c->pending);
		free(c);
		if (list)
			b->consumers = list;
		return -ENOMEM;
	}
	b->consumers = list;
	b->consumers[b->nconsumers++] = c;
	*ret = c;
	return 0;
}

void consumer_free(struct consumer *c)
{
	struct buffer *b = c->b;

	for (size_t i = 0; i < b->nconsumers; i++) {
		if (b->consumers[i] == c) {
			b->consumers[i] = b->consumers[--b->nconsumers];
			break;
		}
	}
	if (c->ph)
		fuse_pollhandle_destroy(c->ph);
	free(c->pending);
	free(c);
}
