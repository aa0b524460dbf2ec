/* SPDX-License-Identifier: MIT */
/*
 * What each consumer is owed. Every WRITE that the daemon stored is fanned
 * out to every open description of the buffer that can clean (opened for
 * reading): each clean reports what was written since that description's
 * own last clean, whoever else cleaned meanwhile. Pending pages live in a
 * pageset, so a consumer costs memory for what it is owed, not for the size
 * of the buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static bool can_clean(const struct consumer *c)
{
	return !c->internal && c->accmode != O_WRONLY;
}

void pages_mark(struct buffer *b, uint64_t first, uint64_t n)
{
	if (!n)
		return;
	for (size_t i = 0; i < b->nconsumers; i++) {
		struct consumer *c = b->consumers[i];

		/* Out of memory: this consumer's next clean reports everything (never fewer). */
		if (can_clean(c) && !c->overflow && pageset_add(&c->pending, first, n))
			c->overflow = true;
	}
}

bool pages_pending(const struct consumer *c)
{
	return c->overflow || c->pending.count;
}

void pages_notify(struct buffer *b)
{
	for (size_t i = 0; i < b->nconsumers; i++) {
		struct consumer *c = b->consumers[i];

		if (!c->ph || !pages_pending(c))
			continue;
		fuse_lowlevel_notify_poll(c->ph);
		fuse_pollhandle_destroy(c->ph);
		c->ph = NULL;
	}
}

int consumer_new(struct buffer *b, int accmode, uid_t uid, bool internal, struct consumer **ret)
{
	struct consumer *c = calloc(1, sizeof(*c)), **list;

	if (!c)
		return -ENOMEM;
	*c = (struct consumer){ .b = b, .pending = PAGESET_INIT, .internal = internal, .accmode = accmode,
				.uid = uid };
	list = realloc(b->consumers, (b->nconsumers + 1) * sizeof(*list));
	if (!list) {
		free(c);
		return -ENOMEM;
	}
	b->consumers = list;
	b->consumers[b->nconsumers++] = c;
	b->nexternal += !internal;
	*ret = c;
	return 0;
}

void consumer_free(struct consumer *c)
{
	struct buffer *b = c->b;

	for (size_t i = 0; i < b->nconsumers; i++) {
		if (b->consumers[i] == c) {
			b->consumers[i] = b->consumers[--b->nconsumers];
			b->nexternal -= !c->internal;
			break;
		}
	}
	if (c->ph)
		fuse_pollhandle_destroy(c->ph);
	pageset_clear(&c->pending);
	free(c);
}

uint64_t consumer_take(struct consumer *c, uint64_t first, uint64_t nr, uint64_t *bitmap)
{
	uint64_t n;

	if (!c->overflow)
		return pageset_take(&c->pending, first, nr, bitmap);
	/* Marks were lost to a failed allocation: everything in range may have changed. */
	pageset_take(&c->pending, first, nr, NULL);
	for (uint64_t i = 0; bitmap && i < nr; i++)
		bitmap[i / 64] |= 1ULL << (i % 64);
	n = nr;
	if (first == 0 && nr * daemon_state.page_size >= c->b->size)	/* it covered them all */
		c->overflow = false;
	return n;
}

void consumer_untake(struct consumer *c, uint64_t first, uint64_t nr, const uint64_t *bitmap)
{
	for (uint64_t i = 0; i < nr; i++)
		if ((bitmap[i / 64] >> (i % 64) & 1) && pageset_add(&c->pending, first + i, 1))
			c->overflow = true;
}

/*
 * Answer a clean (or wrprotect) of pages [first, first + nr) for c. Pages
 * whose bytes could not be stored are never reported: while any of the
 * range is unstored, the store's error is the answer and the pending pages
 * stay. A reply the kernel no longer takes (its caller died, but the
 * description may live on in another process) gives the pages back.
 */
void clean_answer(fuse_req_t req, struct consumer *c, unsigned cmd, uint64_t first, uint64_t nr)
{
	struct buffer *b = c->b;
	uint64_t pages = (b->size + daemon_state.page_size - 1) / daemon_state.page_size;

	if (first > pages || nr > pages - first) {
		fuse_reply_err(req, EINVAL);	/* it shrank since the request was checked */
	} else if (pageset_count(&b->unstored, first, nr)) {
		fuse_reply_err(req, -b->store_error);
	} else if (cmd == COHMEM_IOC_CLEAN) {
		struct cohmem_ioc_clean *io = calloc(1, sizeof(*io));

		if (!io) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		io->first = first;
		io->nr = nr;
		io->count = consumer_take(c, first, nr, (uint64_t *)io->bitmap);
		if (fuse_reply_ioctl(req, 0, io, sizeof(*io)))
			consumer_untake(c, first, nr, (uint64_t *)io->bitmap);
		free(io);
	} else {
		struct cohmem_ioc_wrprotect wp = { .first = first, .nr = nr };

		wp.count = consumer_take(c, first, nr, NULL);
		fuse_reply_ioctl(req, 0, &wp, sizeof(wp));
	}
}
