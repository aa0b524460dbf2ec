/* SPDX-License-Identifier: MIT */
/*
 * What each consumer is owed. Every WRITE that the daemon stored is fanned
 * out to every open description of the buffer that can clean (opened for
 * reading): each clean reports what was written since that description's
 * own last clean, whoever else cleaned meanwhile. Pending pages live in a
 * pageset, so a consumer costs memory for what it is owed, not for the size
 * of the buffer; that memory is charged to whoever opened the description
 * (--user-pending). Past the limit, or when memory runs out, the consumer
 * "overflows": its set is dropped and it owes every page instead, which its
 * cleans report window by window (more than was written, never fewer)
 * until they have covered the buffer; pages below owed_from, reported
 * since, are marked in the set as usual meanwhile. "Every page" is every
 * page that could be owed then: up to the buffer's end or the set's last
 * page, whichever is further (a truncation marks pages past the end, which
 * are owed once the buffer grows over them again), however the buffer
 * shrinks meanwhile.
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

static uint64_t pages_of(const struct buffer *b)
{
	return (b->size + daemon_state.page_size - 1) / daemon_state.page_size;
}

/* Drop c's pending set: it owes every page it could owe now. */
static void overflow(struct consumer *c)
{
	uint64_t end = pageset_end(&c->pending), pages = pages_of(c->b);

	if (!c->overflow)
		c->owed_to = 0;
	c->owed_to = c->owed_to > end ? c->owed_to : end;
	c->owed_to = c->owed_to > pages ? c->owed_to : pages;
	pageset_clear(&c->pending);
	c->overflow = true;
	c->owed_from = 0;
}

/*
 * Before a set grows, its most is charged: past the limit it overflows
 * instead, and never allocates what it may not keep.
 */
static bool pending_reserve(struct consumer *c, uint64_t n)
{
	uint64_t most = pageset_grow_max(&c->pending, n);

	if (user_charge(&daemon_state, c->uid, (struct usage){ .pending = most }, false))
		return false;
	c->charged += most;
	return true;
}

/* Charge c's user for the heap its pending set holds now (what a reservation did not need goes back). */
static void pending_settle(struct consumer *c)
{
	size_t now = pageset_memory(&c->pending);

	if (now > c->charged &&
	    user_charge(&daemon_state, c->uid, (struct usage){ .pending = now - c->charged }, false) == 0) {
		c->charged = now;
		return;
	}
	if (now > c->charged) {
		overflow(c);
		now = 0;
	}
	if (now < c->charged)
		user_uncharge(&daemon_state, c->uid, (struct usage){ .pending = c->charged - now });
	c->charged = now;
}

/* Pages [first, end) are pending for c; past --user-pending, or out of memory, it overflows instead. */
static void mark_one(struct consumer *c, uint64_t first, uint64_t end)
{
	if (end <= first)
		return;
	if (!pending_reserve(c, end - first) || pageset_add(&c->pending, first, end - first))
		overflow(c);
	pending_settle(c);
}

void pages_mark(struct buffer *b, uint64_t first, uint64_t n)
{
	lock_assert_held(&b->lock);
	for (size_t i = 0; i < b->nconsumers; i++) {
		struct consumer *c = b->consumers[i];
		uint64_t end = first + n;

		if (!can_clean(c))
			continue;
		if (!c->overflow) {
			mark_one(c, first, end);
			continue;
		}
		/* [owed_from, owed_to) is owed already: what lies on either side is marked */
		mark_one(c, first, end < c->owed_from ? end : c->owed_from);
		mark_one(c, first > c->owed_to ? first : c->owed_to, end);	/* owed_to after a new overflow */
	}
}

/*
 * Pages past the end (a truncation marks what it cut) are owed only once
 * the buffer grows over them again: no clean can take them before, and a
 * poller woken for them would spin.
 */
uint64_t consumer_owed(const struct consumer *c)
{
	uint64_t pages = pages_of(c->b);

	lock_assert_held(&c->b->lock);
	uint64_t to = c->owed_to < pages ? c->owed_to : pages;

	return pageset_count(&c->pending, 0, pages) + (c->overflow && c->owed_from < to ? to - c->owed_from : 0);
}

bool pages_pending(const struct consumer *c)
{
	return consumer_owed(c) > 0;
}

void pages_notify(struct buffer *b)
{
	lock_assert_held(&b->lock);
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
	struct consumer *c, **list;

	lock_assert_held(&b->lock);
	c = calloc(1, sizeof(*c));
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

	lock_assert_held(&b->lock);
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
	pending_settle(c);	/* gives the charge back */
	free(c);
}

uint64_t consumer_take(struct consumer *c, uint64_t first, uint64_t nr, uint64_t *bitmap)
{
	uint64_t end = first + nr, from = end, n;

	lock_assert_held(&c->b->lock);
	if (c->overflow)	/* from here on, every page is owed */
		from = c->owed_from < first ? first : c->owed_from < end ? c->owed_from : end;
	n = pageset_take(&c->pending, first, from - first, bitmap);
	if (from < end) {
		pageset_take(&c->pending, from, end - from, NULL);	/* owed anyway */
		for (uint64_t pg = from; bitmap && pg < end; pg++)
			bitmap[(pg - first) / 64] |= 1ULL << ((pg - first) % 64);
		n += end - from;
		if (first <= c->owed_from)	/* reported up to end: what is written there now is marked */
			c->owed_from = end;
	}
	if (c->overflow && c->owed_from >= c->owed_to)	/* owes nothing more wholesale */
		c->overflow = false;
	pending_settle(c);
	return n;
}

void consumer_untake(struct consumer *c, uint64_t first, uint64_t nr, const uint64_t *bitmap)
{
	lock_assert_held(&c->b->lock);
	if (c->overflow && c->owed_from > first)
		c->owed_from = first;	/* owes everything from first on again */
	if (!c->overflow && !pending_reserve(c, nr))
		overflow(c);
	for (uint64_t i = 0; i < nr && !c->overflow; i++)
		if ((bitmap[i / 64] >> (i % 64) & 1) && pageset_add(&c->pending, first + i, 1))
			overflow(c);
	pending_settle(c);
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
	uint64_t pages = pages_of(b);

	lock_assert_held(&b->lock);
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
