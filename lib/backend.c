/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <unistd.h>

#include "internal.h"

size_t page_size(void)
{
	static size_t size;

	/* A benign race: every thread computes and stores the same value. */
	if (!size)
		size = (size_t)sysconf(_SC_PAGESIZE);
	return size;
}

static const char *const backend_names[COHMEM_BACKEND_COUNT] = {
	[COHMEM_BACKEND_AUTO] = "auto",
	[COHMEM_BACKEND_UFFD_ASYNC] = "uffd-async",
	[COHMEM_BACKEND_UFFD_SYNC] = "uffd-sync",
	[COHMEM_BACKEND_SOFT_DIRTY] = "soft-dirty",
	[COHMEM_BACKEND_MPROTECT] = "mprotect",
	[COHMEM_BACKEND_PFN] = "pfn",
};

/* Backends that are not here yet stay NULL: they report -EOPNOTSUPP. */
static const struct backend_ops *const backends[COHMEM_BACKEND_COUNT] = {
	[COHMEM_BACKEND_UFFD_ASYNC] = &uffd_async_ops,
	[COHMEM_BACKEND_UFFD_SYNC] = &uffd_sync_ops,
	[COHMEM_BACKEND_SOFT_DIRTY] = &soft_dirty_ops,
	[COHMEM_BACKEND_MPROTECT] = &mprotect_ops,
	[COHMEM_BACKEND_PFN] = &pfn_ops,
};

/* What AUTO tries, best first (see auto_may_use()). */
const enum cohmem_backend auto_order[AUTO_ORDER_LEN] = {
	COHMEM_BACKEND_PFN,	/* takes only mappings of cohmem_pfn buffers, which the others refuse */
	COHMEM_BACKEND_UFFD_ASYNC,
	COHMEM_BACKEND_UFFD_SYNC,
	COHMEM_BACKEND_SOFT_DIRTY,
	COHMEM_BACKEND_MPROTECT,
};

static bool backend_valid(enum cohmem_backend b)
{
	return (unsigned)b < COHMEM_BACKEND_COUNT;
}

const struct backend_ops *backend_ops_get(enum cohmem_backend b)
{
	return backend_valid(b) ? backends[b] : NULL;
}

_public_ const char *cohmem_backend_name(enum cohmem_backend b)
{
	return backend_valid(b) ? backend_names[b] : NULL;
}

_public_ int cohmem_backend_supported(enum cohmem_backend b)
{
	const struct backend_ops *ops;

	if (!backend_valid(b))
		return -EINVAL;
	if (b == COHMEM_BACKEND_AUTO) {
		for (unsigned i = 0; i < COHMEM_BACKEND_COUNT; i++) {
			ops = backends[i];
			if (ops && !ops->supported())
				return 0;
		}
		return -EOPNOTSUPP;
	}
	ops = backends[b];
	return ops ? ops->supported() : -EOPNOTSUPP;
}

_public_ int cohmem_backend_capabilities(enum cohmem_backend b, unsigned *caps)
{
	const struct backend_ops *ops;
	int err;

	if (!caps || !backend_valid(b) || b == COHMEM_BACKEND_AUTO)
		return -EINVAL;
	*caps = 0;
	ops = backends[b];
	err = ops ? ops->supported() : -EOPNOTSUPP;
	if (!err)
		*caps = ops->capabilities();
	return err;
}

bool auto_may_use(const struct backend_ops *ops, unsigned flags)
{
	if (!ops || ops->supported())
		return false;
	return (ops->capabilities() & COHMEM_CAP_EXACT_CONCURRENT) || (flags & COHMEM_REGION_QUIESCENT);
}

/*
 * For AUTO: the memory types any backend it may use for any region can
 * track; the other bits only if every such backend has them.
 */
static unsigned auto_capabilities(void)
{
	const unsigned types = COHMEM_CAP_ANON | COHMEM_CAP_SHMEM | COHMEM_CAP_FILE | COHMEM_CAP_PFNMAP;
	unsigned any = 0, all = ~0u;

	for (size_t i = 0; i < AUTO_ORDER_LEN; i++) {
		const struct backend_ops *ops = backend_ops_get(auto_order[i]);
		unsigned caps;

		if (!auto_may_use(ops, 0))
			continue;
		caps = ops->capabilities();
		any |= caps;
		all &= caps;
	}
	return (any & types) | (all & ~types & any);
}

_public_ int cohmem_tracker_capabilities(const cohmem_tracker *t, unsigned *caps)
{
	if (!t || !caps)
		return -EINVAL;
	if (t->backend == COHMEM_BACKEND_AUTO)
		*caps = auto_capabilities();
	else
		cohmem_backend_capabilities(t->backend, caps);
	return 0;
}
