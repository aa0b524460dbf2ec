/* SPDX-License-Identifier: MIT */
/*
 * The daemon's mutexes, with the rules their comments state checked by the
 * machine in debug and sanitized builds (COHMEMD_LOCK_CHECKS), the way the
 * kernel's lockdep_assert_held() checks its own:
 *
 *   - lock_assert_held(l): the calling thread holds l. Every function whose
 *     comment says "caller holds b->lock" (or d->lock, ...) starts with it.
 *   - the order: each lock has a rank (daemon.h: the table, then a buffer,
 *     then the users, then the collector's queue); a thread takes a lock
 *     only while it holds none of the same or a later rank, so two buffers'
 *     locks are never held at once either.
 *
 * A broken rule prints what was held and what was asked for, and aborts.
 * Without COHMEMD_LOCK_CHECKS these are plain pthread mutexes.
 */
#ifndef COHMEMD_LOCK_H
#define COHMEMD_LOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

enum lock_rank {
	LOCK_TABLE = 1,		/* daemon.lock */
	LOCK_BUFFER,		/* buffer.lock */
	LOCK_USERS,		/* daemon.users_lock */
	LOCK_COLLECT,		/* collector.lock */
	LOCK_TRANSPORT,		/* the io_uring transport's (transport-uring.c): taken by replies, last */
	LOCK_RANKS
};

struct lock {
	pthread_mutex_t mutex;
#ifdef COHMEMD_LOCK_CHECKS
	_Atomic unsigned long owner;	/* pthread_self() of the holder, or 0 */
	enum lock_rank rank;
	const char *name;
#endif
};

void lock_init(struct lock *l, enum lock_rank rank, const char *name);
void lock_destroy(struct lock *l);
void lock_take(struct lock *l);
void lock_drop(struct lock *l);
/* pthread_cond_wait() on l, and its timed twin (ETIMEDOUT or 0). l must be held. */
void lock_wait(pthread_cond_t *cond, struct lock *l);
int lock_timedwait(pthread_cond_t *cond, struct lock *l, const struct timespec *until);

#ifdef COHMEMD_LOCK_CHECKS
void lock_assert_held_at(const struct lock *l, const char *func);
/* Say which rule func broke, in the words the tests look for ("lock rule broken"), and abort. */
_Noreturn void lock_rule_broken(const char *rule, const char *func);
#define lock_assert_held(l) lock_assert_held_at((l), __func__)
#else
#define lock_assert_held(l) ((void)(l))
#endif

/* Whether this build checks the rules (the unit test of the checks needs to know). */
bool lock_checks_enabled(void);

#endif /* COHMEMD_LOCK_H */
