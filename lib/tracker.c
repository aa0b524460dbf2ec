/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

_public_ int cohmem_tracker_new(enum cohmem_backend backend, unsigned flags, cohmem_tracker **ret)
{
	cohmem_tracker *t;
	int err;

	if (!ret || flags || !cohmem_backend_name(backend))
		return -EINVAL;
	err = cohmem_backend_supported(backend);
	if (err)
		return err;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->backend = backend;
	t->pid = getpid();
	err = -pthread_rwlock_init(&t->lock, NULL);
	if (err) {
		free(t);
		return err;
	}
	/* AUTO sets its backends up when a region first needs them. */
	if (backend != COHMEM_BACKEND_AUTO) {
		struct backend_ctx *ctx;

		err = tracker_ctx(t, backend_ops_get(backend), &ctx);
		if (err) {
			cohmem_tracker_free(t);
			return err;
		}
	}
	*ret = t;
	return 0;
}

/*
 * In a forked child this only closes the tracker's descriptors. The child
 * has one thread, and every lock another thread of the parent held at
 * fork() (a fault thread's read lock on t->lock, the SIGSEGV handler's
 * index, the soft-dirty registry) stays held in its copy: taking one would
 * hang. The memory stays too, since a process-wide SIGSEGV handler may
 * still find mprotect regions in it. Nothing acts on the parent's tracking.
 */
_public_ void cohmem_tracker_free(cohmem_tracker *t)
{
	if (!t)
		return;
	if (tracker_forked(t)) {
		for (unsigned b = 0; b < COHMEM_BACKEND_COUNT; b++)
			if (t->ctx[b])
				backend_ops_get(b)->ctx_free(t->ctx[b], true);
		return;
	}
	while (t->regions.n)
		cohmem_region_remove(t->regions.regions[t->regions.n - 1]);
	for (unsigned b = 0; b < COHMEM_BACKEND_COUNT; b++)
		if (t->ctx[b])
			backend_ops_get(b)->ctx_free(t->ctx[b], false);
	pthread_rwlock_destroy(&t->lock);
	free(t->regions.regions);
	free(t);
}

_public_ enum cohmem_backend cohmem_tracker_backend(const cohmem_tracker *t)
{
	return t ? t->backend : COHMEM_BACKEND_AUTO;
}
