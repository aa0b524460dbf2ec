/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "internal.h"

#define REGION_FLAGS COHMEM_REGION_ALLOW_HUGEPAGES

/* Best first. Soft-dirty is never chosen here: it is not exact under concurrency. */
static const enum cohmem_backend auto_order[] = {
	COHMEM_BACKEND_UFFD_ASYNC,
	COHMEM_BACKEND_UFFD_SYNC,
};

static int region_attach(cohmem_region *r, const struct backend_ops *ops)
{
	int err = tracker_ctx(r->tracker, ops, &r->ctx);

	if (err)
		return err;
	r->ops = ops;
	return ops->region_add(r);
}

/* Give r to the tracker's backend or, for AUTO, to the first one that takes its memory. */
static int region_attach_backend(cohmem_region *r)
{
	enum cohmem_backend backend = r->tracker->backend;
	int err = -EOPNOTSUPP;

	if (backend != COHMEM_BACKEND_AUTO)
		return region_attach(r, backend_ops_get(backend));
	for (size_t i = 0; i < sizeof(auto_order) / sizeof(auto_order[0]); i++) {
		const struct backend_ops *ops = backend_ops_get(auto_order[i]);

		if (!ops || ops->supported())
			continue;
		err = region_attach(r, ops);
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

_public_ int cohmem_region_add(cohmem_tracker *t, void *addr, size_t len, unsigned flags,
			       cohmem_region **ret)
{
	uintptr_t start = (uintptr_t)addr;
	cohmem_region *r;
	int err;

	if (!t || !ret || !range_valid(start, len) || (flags & ~REGION_FLAGS))
		return -EINVAL;
	/* MS_ASYNC does nothing but fail with ENOMEM where the range is not mapped. */
	if (msync(addr, len, MS_ASYNC))
		return -errno;

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
	if (tracker_overlaps(t, start, start + len)) {
		err = -EEXIST;
		goto unlock;
	}
	err = region_attach_backend(r);
	if (err)
		goto unlock;
	err = tracker_insert(t, r);
	if (err) {
		r->ops->region_remove(r);
		r->ops->region_free(r);
		goto unlock;
	}
	/* THP off is advice: kernels without THP refuse it, and that is fine. */
	if (!(flags & COHMEM_REGION_ALLOW_HUGEPAGES))
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

_public_ int cohmem_region_remove(cohmem_region *r)
{
	cohmem_tracker *t;
	int err;

	if (!r)
		return 0;
	t = r->tracker;
	err = r->ops->region_remove(r);

	pthread_rwlock_wrlock(&t->lock);
	tracker_unlink(t, r);
	pthread_rwlock_unlock(&t->lock);

	r->ops->region_free(r);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return err;
}

_public_ enum cohmem_backend cohmem_region_backend(const cohmem_region *r)
{
	return r ? r->ops->id : COHMEM_BACKEND_AUTO;
}
