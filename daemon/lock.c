/* SPDX-License-Identifier: MIT */
/*
 * Mutexes whose rules are checked in debug and sanitized builds (lock.h).
 * The owner is an atomic, written only by the thread that holds the lock,
 * so that asking "do I hold it?" is no data race for ThreadSanitizer; the
 * ranks a thread holds are its own (thread-local).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "lock.h"

#ifdef COHMEMD_LOCK_CHECKS
static _Thread_local unsigned held_ranks;	/* bit r: a lock of rank r is held */

_Noreturn void lock_rule_broken(const char *rule, const char *func)
{
	fprintf(stderr, "cohmemd: lock rule broken in %s: %s\n", func, rule);
	abort();
}

static _Noreturn void broken(const char *rule, const struct lock *l, const char *where)
{
	fprintf(stderr, "cohmemd: lock rule broken in %s: %s (%s, rank %d; ranks held: %#x)\n", where, rule,
		l->name, (int)l->rank, held_ranks);
	abort();
}

static unsigned long self(void)
{
	return (unsigned long)pthread_self();
}

static unsigned long owner_of(const struct lock *l)
{
	return atomic_load_explicit(&l->owner, memory_order_relaxed);
}

static void set_owner(struct lock *l, unsigned long owner)
{
	atomic_store_explicit(&l->owner, owner, memory_order_relaxed);
}

/* The thread now holds l: it may take only locks of later ranks. */
static void now_held(struct lock *l, const char *where)
{
	if (held_ranks & ~((1u << l->rank) - 1))
		broken("a lock taken after one of the same or a later rank", l, where);
	held_ranks |= 1u << l->rank;
	set_owner(l, self());
}

static void no_longer_held(struct lock *l, const char *where)
{
	if (owner_of(l) != self())
		broken("a lock released by a thread that does not hold it", l, where);
	set_owner(l, 0);
	held_ranks &= ~(1u << l->rank);
}

void lock_assert_held_at(const struct lock *l, const char *func)
{
	if (owner_of(l) != self())
		broken("needs a lock the caller does not hold", l, func);
}

bool lock_checks_enabled(void)
{
	return true;
}
#else
#define now_held(l, where) ((void)(l))
#define no_longer_held(l, where) ((void)(l))

bool lock_checks_enabled(void)
{
	return false;
}
#endif

void lock_init(struct lock *l, enum lock_rank rank, const char *name)
{
	pthread_mutex_init(&l->mutex, NULL);
#ifdef COHMEMD_LOCK_CHECKS
	set_owner(l, 0);
	l->rank = rank;
	l->name = name;
#else
	(void)rank, (void)name;
#endif
}

void lock_destroy(struct lock *l)
{
	pthread_mutex_destroy(&l->mutex);
}

void lock_take(struct lock *l)
{
#ifdef COHMEMD_LOCK_CHECKS
	/* Checked before waiting: a thread that would deadlock says so instead. */
	if (held_ranks & ~((1u << l->rank) - 1))
		broken("a lock taken after one of the same or a later rank", l, "lock_take");
#endif
	pthread_mutex_lock(&l->mutex);
	now_held(l, "lock_take");
}

void lock_drop(struct lock *l)
{
	no_longer_held(l, "lock_drop");
	pthread_mutex_unlock(&l->mutex);
}

void lock_wait(pthread_cond_t *cond, struct lock *l)
{
	no_longer_held(l, "lock_wait");
	pthread_cond_wait(cond, &l->mutex);
	now_held(l, "lock_wait");
}

int lock_timedwait(pthread_cond_t *cond, struct lock *l, const struct timespec *until)
{
	int err;

	no_longer_held(l, "lock_timedwait");
	err = pthread_cond_timedwait(cond, &l->mutex, until);
	now_held(l, "lock_timedwait");
	return err;
}
