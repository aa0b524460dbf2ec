/* SPDX-License-Identifier: MIT */
/*
 * A region below the adaptive policy: claimed in the process, given to a
 * backend (the tracker's, or AUTO's choice), indexed in its tracker. The
 * public calls (region.c) add the policy on top; the policy's own cost
 * measurements (costs.c) make their scratch regions here, so that nothing
 * here calls back up into the policy.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "internal.h"

/*
 * Every region of every tracker in this process: one page must not be
 * tracked twice (backends without a kernel registration could not tell).
 */
static pthread_mutex_t claims_lock = PTHREAD_MUTEX_INITIALIZER;
static struct region_index claims;

/* -EEXIST for an overlap within r's tracker, -EBUSY with another tracker. */
static int claim(cohmem_region *r)
{
	uintptr_t end = region_addr(r, r->npages);
	int err = 0;

	if (region_index_overlaps(&r->tracker->regions, r->start, end))
		return -EEXIST;
	pthread_mutex_lock(&claims_lock);
	if (region_index_overlaps(&claims, r->start, end))
		err = -EBUSY;
	else
		err = region_index_insert(&claims, r);
	pthread_mutex_unlock(&claims_lock);
	return err;
}

static void unclaim(cohmem_region *r)
{
	pthread_mutex_lock(&claims_lock);
	region_index_remove(&claims, r);
	pthread_mutex_unlock(&claims_lock);
}

static int region_attach(cohmem_region *r, const struct backend_ops *ops)
{
	int err = tracker_ctx(r->tracker, ops, &r->ctx);

	if (err)
		return err;
	r->ops = ops;
	return ops->region_add(r);
}

/*
 * Give r to ops if given, else to the tracker's backend or, for AUTO, to the
 * first one that takes its memory.
 */
static int region_attach_backend(cohmem_region *r, const struct backend_ops *ops, unsigned flags)
{
	enum cohmem_backend backend = r->tracker->backend;
	int err = -EOPNOTSUPP;

	if (ops)
		return region_attach(r, ops);
	if (backend != COHMEM_BACKEND_AUTO)
		return region_attach(r, backend_ops_get(backend));
	for (size_t i = 0; i < AUTO_ORDER_LEN; i++) {
		const struct backend_ops *candidate = backend_ops_get(auto_order[i]);

		if (!auto_may_use(candidate, flags))
			continue;
		err = region_attach(r, candidate);
		if (err != -EOPNOTSUPP)
			break;
	}
	return err;
}

int region_new(cohmem_tracker *t, void *addr, size_t len, const struct backend_ops *ops,
	       unsigned flags, cohmem_region **ret)
{
	uintptr_t start = (uintptr_t)addr;
	cohmem_region *r;
	int err;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = (cohmem_region){
		.tracker = t,
		.start = start,
		.npages = len / page_size(),
	};
	pthread_mutex_init(&r->lock, NULL);

	pthread_rwlock_wrlock(&t->lock);
	err = claim(r);
	if (err)
		goto unlock;
	err = region_attach_backend(r, ops, flags);
	if (!err) {
		err = region_index_insert(&t->regions, r);
		if (err) {
			r->ops->region_remove(r);
			r->ops->region_free(r);
		}
	}
	if (err) {
		unclaim(r);
		goto unlock;
	}
	/*
	 * THP off is advice: kernels without THP refuse it, and that is fine.
	 * Not for pfnmap memory, which has no THP: the advice would split its
	 * mapping, and the pfn backend takes one mapping per region.
	 */
	if (!(flags & COHMEM_REGION_ALLOW_HUGEPAGES) && !(r->ops->capabilities() & COHMEM_CAP_PFNMAP))
		(void)madvise(addr, len, MADV_NOHUGEPAGE);
unlock:
	pthread_rwlock_unlock(&t->lock);
	if (err) {
		pthread_mutex_destroy(&r->lock);
		free(r);
		return err;
	}
	*ret = r;
	return 0;
}

int region_destroy(cohmem_region *r)
{
	cohmem_tracker *t = r->tracker;
	int err = r->ops->region_remove(r);

	pthread_rwlock_wrlock(&t->lock);
	region_index_remove(&t->regions, r);
	unclaim(r);
	pthread_rwlock_unlock(&t->lock);

	r->ops->region_free(r);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return err;
}

/* The tracker's state for ops, set up on first use. Caller holds t->lock for writing. */
int tracker_ctx(cohmem_tracker *t, const struct backend_ops *ops, struct backend_ctx **ret)
{
	int err;

	if (!t->ctx[ops->id] && ops->ctx_new) {
		err = ops->ctx_new(t, &t->ctx[ops->id]);
		if (err)
			return err;
	}
	*ret = t->ctx[ops->id];
	return 0;
}
