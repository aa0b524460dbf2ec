/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define REGION_FLAGS (COHMEM_REGION_ALLOW_HUGEPAGES | COHMEM_REGION_QUIESCENT | COHMEM_REGION_ADAPTIVE)

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

static bool range_valid(uintptr_t start, size_t len)
{
	size_t ps = page_size();

	return len && start % ps == 0 && len % ps == 0 && start + len > start;
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
	if (!(flags & COHMEM_REGION_ALLOW_HUGEPAGES) && r->ops->id != COHMEM_BACKEND_PFN)
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

_public_ int cohmem_region_add(cohmem_tracker *t, void *addr, size_t len, unsigned flags,
			       cohmem_region **ret)
{
	cohmem_region *r;
	int err;

	if (!t || !ret || !range_valid((uintptr_t)addr, len) || (flags & ~REGION_FLAGS))
		return -EINVAL;
	if (tracker_forked(t))
		return -ECHILD;
	/* MS_ASYNC does nothing but fail with ENOMEM where the range is not mapped. */
	if (msync(addr, len, MS_ASYNC))
		return -errno;
	err = region_new(t, addr, len, NULL, flags, &r);
	if (err)
		return err;
	/* After the locks: measuring costs (once per backend) adds a scratch region of its own. */
	if (flags & COHMEM_REGION_ADAPTIVE) {
		err = adaptive_new(r);
		if (err) {
			region_destroy(r);
			return err;
		}
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
	adaptive_free(r);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return err;
}

_public_ int cohmem_region_remove(cohmem_region *r)
{
	if (!r)
		return 0;
	if (tracker_forked(r->tracker))
		return -ECHILD;
	return region_destroy(r);
}

_public_ enum cohmem_backend cohmem_region_backend(const cohmem_region *r)
{
	return r ? r->ops->id : COHMEM_BACKEND_AUTO;
}

_public_ int cohmem_region_stats(const cohmem_region *r, struct cohmem_region_stats *st, size_t size)
{
	struct cohmem_region_stats full = { 0 };

	if (!r || !st || size < offsetof(struct cohmem_region_stats, degraded) + sizeof(int))
		return -EINVAL;
	if (tracker_forked(r->tracker))
		return -ECHILD;
	full.backend = r->ops->id;
	full.pages = r->npages;
	full.cleans = atomic_load_explicit(&r->cleans, memory_order_relaxed);
	full.pages_reported = atomic_load_explicit(&r->pages_reported, memory_order_relaxed);
	full.fault_storms = atomic_load_explicit(&r->storms, memory_order_relaxed);
	if (r->ops->stats)
		r->ops->stats(r, &full);
	if (r->adapt)
		adaptive_stats(r, &full);
	memcpy(st, &full, size < sizeof(full) ? size : sizeof(full));
	return 0;
}
