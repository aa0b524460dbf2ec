/* SPDX-License-Identifier: MIT */
/*
 * The handler reads a table of targets without locks. Updates (under
 * update_lock) build a new table, publish it, and free the old one only
 * after every handler that might still read it has left: handlers count
 * themselves in readers[epoch & 1]; an update flips the epoch and waits for
 * the old parity to drain. A handler that read the epoch before the flip but
 * counted itself after the drain check is ordered after the new table was
 * published (all atomics are sequentially consistent), so it reads the new
 * table. Handlers that start later use the other parity, so an update never
 * waits for them: it cannot be starved by a stream of faults.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "segv.h"

struct segv_table {
	size_t n;
	struct segv_target *targets[];	/* sorted by start */
};

static _Atomic(struct segv_table *) table;
static atomic_uint epoch;
static atomic_ulong readers[2];
static pthread_mutex_t update_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous;
static bool installed;	/* under update_lock */

static struct segv_target *table_find(const struct segv_table *tb, uintptr_t addr)
{
	size_t lo = 0, hi = tb ? tb->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct segv_target *t = tb->targets[mid];

		if (addr < t->start)
			hi = mid;
		else if (addr >= t->end)
			lo = mid + 1;
		else
			return t;
	}
	return NULL;
}

static bool dispatch(uintptr_t addr)
{
	unsigned e = atomic_load(&epoch);
	struct segv_target *t;
	bool handled = false;

	atomic_fetch_add(&readers[e & 1], 1);
	t = table_find(atomic_load(&table), addr);
	if (t)
		handled = t->on_fault(t, addr);
	atomic_fetch_sub(&readers[e & 1], 1);
	return handled;
}

/*
 * Not ours: behave as if the previous disposition had been in place. For the
 * default (or ignore, which the kernel overrides for faults) restore it and
 * let the fault happen again; a signal sent with kill() is raised again.
 */
static void chain(int sig, siginfo_t *si, void *uc)
{
	if (previous.sa_flags & SA_SIGINFO) {
		previous.sa_sigaction(sig, si, uc);
	} else if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
		struct sigaction dfl = { .sa_handler = SIG_DFL };

		sigaction(sig, &dfl, NULL);
		if (si->si_code <= 0)
			raise(sig);
	} else {
		previous.sa_handler(sig);
	}
}

/*
 * The address of this thread's last fault that no target took. A fault on a
 * page of a region that was removed after the fault but before this handler
 * looked finds no target, yet the page is writable again: retrying the
 * write once tells such a stale fault from a real one, which faults again.
 * Initial-exec TLS: no allocation in the handler.
 */
static __thread uintptr_t unclaimed_fault __attribute__((tls_model("initial-exec")));

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t addr = (uintptr_t)si->si_addr;
	int saved_errno = errno;
	bool handled = false;

	if (si->si_code == SEGV_ACCERR) {
		handled = dispatch(addr);
		if (!handled && unclaimed_fault != addr) {
			unclaimed_fault = addr;
			handled = true;	/* retry once */
		} else {
			unclaimed_fault = 0;
		}
	}
	errno = saved_errno;
	if (!handled)
		chain(sig, si, uc);
}

/* Keeps the previous handler's mask and flags, so what is chained to runs as it expects. */
static int install(void)
{
	struct sigaction sa;

	if (sigaction(SIGSEGV, NULL, &previous))
		return -errno;
	sa = previous;
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = (previous.sa_flags & ~SA_RESETHAND) | SA_SIGINFO | SA_ONSTACK;
	if (sigaction(SIGSEGV, &sa, NULL))
		return -errno;
	installed = true;
	return 0;
}

/* Publish tb and wait until no handler can still see the table it replaces. */
static void publish(struct segv_table *tb)
{
	struct segv_table *old = atomic_exchange(&table, tb);
	unsigned e = atomic_fetch_add(&epoch, 1);

	while (atomic_load(&readers[e & 1]))
		sched_yield();
	free(old);
}

/* A copy of the current table with t added (add) or removed, or NULL. */
static struct segv_table *table_with(struct segv_target *t, bool add)
{
	struct segv_table *cur = atomic_load(&table), *tb;
	size_t n = cur ? cur->n : 0, j = 0;

	tb = malloc(sizeof(*tb) + (n + 1) * sizeof(tb->targets[0]));
	if (!tb)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (add && j == i && cur->targets[i]->start > t->start)
			tb->targets[j++] = t;
		if (cur->targets[i] != t)
			tb->targets[j++] = cur->targets[i];
	}
	if (add && j == n)
		tb->targets[j++] = t;
	tb->n = j;
	return tb;
}

int segv_register(struct segv_target *t)
{
	struct segv_table *tb;
	int err = 0;

	pthread_mutex_lock(&update_lock);
	if (!installed)
		err = install();
	if (!err) {
		tb = table_with(t, true);
		if (tb)
			publish(tb);
		else
			err = -ENOMEM;
	}
	pthread_mutex_unlock(&update_lock);
	return err;
}

void segv_unregister(struct segv_target *t)
{
	struct segv_table *tb;

	pthread_mutex_lock(&update_lock);
	/* Without memory to copy, keep t published: never free what a handler reads. */
	while (!(tb = table_with(t, false)))
		sched_yield();
	publish(tb);
	pthread_mutex_unlock(&update_lock);
}
