/* SPDX-License-Identifier: MIT */
/*
 * What each user holds: buffers owned and their bytes, open descriptions,
 * attached mappings. Every one of them costs the daemon memory or
 * descriptors, so each has a limit an operator sets (--user-*).
 */
#include <errno.h>
#include <stdlib.h>

#include "daemon.h"

static struct user *user_get(struct daemon *d, uid_t uid)
{
	struct user *t;

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

int user_charge(struct daemon *d, uid_t uid, uint64_t buffers, uint64_t bytes, uint64_t opens,
		uint64_t attached, bool force)
{
	const struct limits *l = &d->limits;
	struct user *u;
	int err = 0;

	pthread_mutex_lock(&d->users_lock);
	u = user_get(d, uid);
	if (!u)
		err = -ENOMEM;
	else if (!force && uid != 0 &&
		 (over(u->buffers, buffers, l->user_buffers) || over(u->bytes, bytes, l->user_bytes) ||
		  over(u->opens, opens, l->user_opens) || over(u->attached, attached, l->user_attached)))
		err = -EDQUOT;
	if (!err) {
		u->buffers += buffers;
		u->bytes += bytes;
		u->opens += opens;
		u->attached += attached;
	}
	pthread_mutex_unlock(&d->users_lock);
	return err;
}

static uint64_t minus(uint64_t have, uint64_t sub)
{
	return sub > have ? 0 : have - sub;
}

void user_uncharge(struct daemon *d, uid_t uid, uint64_t buffers, uint64_t bytes, uint64_t opens,
		   uint64_t attached)
{
	pthread_mutex_lock(&d->users_lock);
	for (size_t i = 0; i < d->nusers; i++) {
		struct user *u = &d->users[i];

		if (u->uid != uid)
			continue;
		u->buffers = minus(u->buffers, buffers);
		u->bytes = minus(u->bytes, bytes);
		u->opens = minus(u->opens, opens);
		u->attached = minus(u->attached, attached);
		break;
	}
	pthread_mutex_unlock(&d->users_lock);
}
