/* SPDX-License-Identifier: MIT */
/*
 * What each user holds: buffers owned and their bytes, open descriptions,
 * attached mappings, and the heap that pages pending for its descriptions
 * take. Every one of them costs the daemon memory or descriptors, so each
 * has a limit an operator sets (--user-*), and together they bound what one
 * user can make the daemon hold (user_bound(), printed by --help and at
 * start): the defaults keep that to a stated share.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "daemon.h"

static struct user *user_get(struct daemon *d, uid_t uid)
{
	struct user *t;

	lock_assert_held(&d->users_lock);
	for (size_t i = 0; i < d->nusers; i++)
		if (d->users[i].uid == uid)
			return &d->users[i];
	t = realloc(d->users, (d->nusers + 1) * sizeof(*t));
	if (!t)
		return NULL;
	d->users = t;
	d->users[d->nusers] = (struct user){ .uid = uid };
	return &d->users[d->nusers++];
}

static bool over(uint64_t have, uint64_t add, uint64_t limit)
{
	return add && (have + add < have || have + add > limit);
}

/* The first limit of limit that have + add would pass, or NULL; its values in *held, *asked, *most. */
static const char *over_which(const struct usage *have, const struct usage *add, const struct usage *limit,
			      uint64_t *held, uint64_t *asked, uint64_t *most)
{
	static const struct {
		const char *name;
		size_t at;
	} kinds[] = {
		{ "--user-buffers", offsetof(struct usage, buffers) },
		{ "--user-bytes", offsetof(struct usage, bytes) },
		{ "--user-opens", offsetof(struct usage, opens) },
		{ "--user-attached", offsetof(struct usage, attached) },
		{ "--user-pending", offsetof(struct usage, pending) },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const uint64_t *h = (const void *)((const char *)have + kinds[i].at);
		const uint64_t *a = (const void *)((const char *)add + kinds[i].at);
		const uint64_t *l = (const void *)((const char *)limit + kinds[i].at);

		if (over(*h, *a, *l)) {
			*held = *h;
			*asked = *a;
			*most = *l;
			return kinds[i].name;
		}
	}
	return NULL;
}

/*
 * A refusal is logged (after users_lock is dropped: the log may be a pipe),
 * at most once in 10 s for each user, so that an operator learns which limit
 * a user meets and a client that keeps asking cannot fill the log.
 */
int user_charge(struct daemon *d, uid_t uid, struct usage add, bool force)
{
	uint64_t held = 0, asked = 0, most = 0;
	const char *limit = NULL;
	bool log = false;
	struct user *u;
	int err = 0;

	lock_take(&d->users_lock);
	u = user_get(d, uid);
	if (!u)
		err = -ENOMEM;
	else if (!force && uid != 0 &&
		 (limit = over_which(&u->held, &add, &d->limits.user, &held, &asked, &most)) != NULL) {
		err = -EDQUOT;
		double now = now_us();

		log = !u->refused_logged_us || now - u->refused_logged_us >= 10e6;
		if (log)
			u->refused_logged_us = now;
	}
	if (!err) {
		u->held.buffers += add.buffers;
		u->held.bytes += add.bytes;
		u->held.opens += add.opens;
		u->held.attached += add.attached;
		u->held.pending += add.pending;
	}
	lock_drop(&d->users_lock);
	if (log)
		logmsg("uid %d refused by %s: holds %llu, asked %llu more, limit %llu", (int)uid, limit,
		       (unsigned long long)held, (unsigned long long)asked, (unsigned long long)most);
	return err;
}

static uint64_t minus(uint64_t have, uint64_t sub)
{
	return sub > have ? 0 : have - sub;
}

void user_uncharge(struct daemon *d, uid_t uid, struct usage sub)
{
	lock_take(&d->users_lock);
	for (size_t i = 0; i < d->nusers; i++) {
		struct usage *h = &d->users[i].held;

		if (d->users[i].uid != uid)
			continue;
		h->buffers = minus(h->buffers, sub.buffers);
		h->bytes = minus(h->bytes, sub.bytes);
		h->opens = minus(h->opens, sub.opens);
		h->attached = minus(h->attached, sub.attached);
		h->pending = minus(h->pending, sub.pending);
		break;
	}
	lock_drop(&d->users_lock);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * Descriptors: each open description may make the daemon open its buffer's
 * state file (one per buffer) and the helper its own (one per buffer being
 * cleaned); each attachment holds a pidfd. So the defaults give one user
 * at most 1/16 of the descriptors in opens and 1/64 in attachments.
 * Memory: 64 MiB of pending pages, the rest a few hundred bytes a piece.
 */
struct usage user_default_limits(uint64_t nofile)
{
	return (struct usage){
		.buffers = 1024,
		.bytes = 64ULL << 30,
		.opens = min_u64(4096, nofile / 16 ? nofile / 16 : 1),
		.attached = min_u64(1024, nofile / 64 ? nofile / 64 : 1),
		.pending = 64ULL << 20,
	};
}

struct user_bound user_bound(const struct limits *l, size_t page_size)
{
	const struct usage *u = &l->user;
	/* a block each (and the allocator's 16 bytes), and a slot in an array */
	uint64_t per_buffer = sizeof(struct buffer) + 16 + sizeof(struct buffer *);
	uint64_t per_open = sizeof(struct consumer) + 16 + sizeof(struct consumer *);
	/* Pages written back but not stored: at most the pages of everything the user owns. */
	uint64_t unstored = pageset_max_memory(u->bytes / page_size + u->buffers);
	/* One mark can grow a pending set by a whole buffer before its charge is refused. */
	uint64_t overshoot = pageset_max_memory(l->max_bytes / page_size + 1);

	/*
	 * The allocator keeps some of what is freed in pieces it cannot give
	 * back (pending sets grow their arrays by doubling): 3 % of the pending
	 * memory measured here, counted as 1/16.
	 */
	uint64_t fragments = u->pending / 16;

	return (struct user_bound){
		.memory = u->buffers * per_buffer + unstored + u->opens * per_open +
			  u->attached * sizeof(struct attachment) + u->pending + fragments + overshoot,
		.descriptors = u->opens + u->attached,
	};
}
