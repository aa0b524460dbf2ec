/* SPDX-License-Identifier: MIT */
/* The public calls on regions: the region (region-core.c) with the adaptive policy on top. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define REGION_FLAGS (COHMEM_REGION_ALLOW_HUGEPAGES | COHMEM_REGION_QUIESCENT | COHMEM_REGION_ADAPTIVE)

static bool range_valid(uintptr_t start, size_t len)
{
	size_t ps = page_size();

	return len && start % ps == 0 && len % ps == 0 && start + len > start;
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

_public_ int cohmem_region_remove(cohmem_region *r)
{
	if (!r)
		return 0;
	if (tracker_forked(r->tracker))
		return -ECHILD;
	adaptive_free(r);	/* the policy runs in cleans, which removal must not race; never in fault handlers */
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
