/* SPDX-License-Identifier: MIT */
/*
 * The daemon's lock rules (daemon/lock.h) fail a test when code breaks
 * them: a function whose comment says it needs a lock aborts when called
 * without it, and locks taken out of order abort before they can deadlock.
 * The checks exist in debug and sanitized builds (COHMEMD_LOCK_CHECKS);
 * elsewhere this program is skipped. The daemon's whole suite runs against
 * such a build in the sanitized half of `./run test`.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "daemon.h"

__attribute__((constructor)) static void need_checks(void)
{
	if (!lock_checks_enabled()) {
		printf("SKIP: the lock rules are checked in debug and sanitized builds only\n");
		exit(77);
	}
}

static struct daemon d;
static struct buffer b, other;

static void setup(void)
{
	lock_init(&d.lock, LOCK_TABLE, "daemon.lock");
	lock_init(&d.users_lock, LOCK_USERS, "daemon.users_lock");
	lock_init(&b.lock, LOCK_BUFFER, "buffer.lock");
	lock_init(&other.lock, LOCK_BUFFER, "buffer.lock");
}

TestSuite(locks, .init = setup, .timeout = 30);

Test(locks, a_function_that_needs_a_buffers_lock_aborts_without_it, .signal = SIGABRT)
{
	pages_mark(&b, 0, 1);
}

Test(locks, and_runs_with_it)
{
	lock_take(&b.lock);
	pages_mark(&b, 0, 1);	/* no consumers: marks nothing */
	lock_drop(&b.lock);
}

Test(locks, a_function_that_needs_the_table_aborts_with_a_buffers_lock_only, .signal = SIGABRT)
{
	lock_take(&b.lock);
	store_find(&d, 2);
}

Test(locks, the_table_after_a_buffer_aborts, .signal = SIGABRT)
{
	lock_take(&b.lock);
	lock_take(&d.lock);
}

Test(locks, two_buffers_at_once_abort, .signal = SIGABRT)
{
	lock_take(&b.lock);
	lock_take(&other.lock);
}

Test(locks, the_order_of_daemon_h_holds)
{
	lock_take(&d.lock);
	lock_take(&b.lock);
	lock_take(&d.users_lock);
	lock_drop(&d.users_lock);
	lock_drop(&b.lock);
	lock_take(&other.lock);	/* one buffer after another, never two at once */
	lock_drop(&other.lock);
	lock_drop(&d.lock);
}

static void *drop_it(void *arg)
{
	lock_drop(arg);
	return NULL;
}

Test(locks, a_lock_released_by_a_thread_that_does_not_hold_it_aborts, .signal = SIGABRT)
{
	pthread_t t;

	lock_take(&b.lock);
	pthread_create(&t, NULL, drop_it, &b.lock);
	pthread_join(t, NULL);
}
