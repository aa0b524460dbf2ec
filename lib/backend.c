/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const backend_names[COHMEM_BACKEND_COUNT] = {
	[COHMEM_BACKEND_AUTO] = "auto",
	[COHMEM_BACKEND_UFFD_ASYNC] = "uffd-async",
	[COHMEM_BACKEND_UFFD_SYNC] = "uffd-sync",
	[COHMEM_BACKEND_SOFT_DIRTY] = "soft-dirty",
	[COHMEM_BACKEND_MPROTECT] = "mprotect",
	[COHMEM_BACKEND_PFN] = "pfn",
	[COHMEM_BACKEND_PFN_SCAN] = "pfn-scan",
};

/* Backends that are not here yet stay NULL: they report -EOPNOTSUPP. */
static const struct backend_ops *const backends[COHMEM_BACKEND_COUNT] = {
	[COHMEM_BACKEND_UFFD_ASYNC] = &uffd_async_ops,
	[COHMEM_BACKEND_UFFD_SYNC] = &uffd_sync_ops,
	[COHMEM_BACKEND_SOFT_DIRTY] = &soft_dirty_ops,
	[COHMEM_BACKEND_MPROTECT] = &mprotect_ops,
	[COHMEM_BACKEND_PFN] = &pfn_ops,
	[COHMEM_BACKEND_PFN_SCAN] = &pfn_scan_ops,
};

/* What AUTO tries, best first (see auto_may_use()). */
const enum cohmem_backend auto_order[AUTO_ORDER_LEN] = {
	COHMEM_BACKEND_PFN,	/* takes only mappings of cohmem_pfn buffers, which the others refuse */
	/*
	 * Any other shared pfnmap. After PFN: the module's clean walks every
	 * process's mapping of a buffer, and two ways of cleaning the same PTEs
	 * would take each other's dirty bits.
	 */
	COHMEM_BACKEND_PFN_SCAN,
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

_public_ int cohmem_backend_from_name(const char *name, enum cohmem_backend *ret)
{
	if (!name || !ret)
		return -EINVAL;
	for (unsigned b = 0; b < COHMEM_BACKEND_COUNT; b++) {
		if (!strcmp(name, backend_names[b])) {
			*ret = (enum cohmem_backend)b;
			return 0;
		}
	}
	return -EINVAL;
}

int backend_unsupported(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -EOPNOTSUPP;
}

static int backend_check(enum cohmem_backend b, char *why, size_t len)
{
	if (b == COHMEM_BACKEND_AUTO) {
		for (unsigned i = 0; i < COHMEM_BACKEND_COUNT; i++)
			if (backends[i] && !backends[i]->supported(NULL, 0))
				return 0;
		return backend_unsupported(why, len, "no backend works here");
	}
	if (!backends[b])
		return backend_unsupported(why, len, "not built into this version of libcohmem");
	return backends[b]->supported(why, len);
}

_public_ int cohmem_backend_supported(enum cohmem_backend b)
{
	return backend_valid(b) ? backend_check(b, NULL, 0) : -EINVAL;
}

_public_ int cohmem_backend_explain(enum cohmem_backend b, char *why, size_t len)
{
	int err;

	if (!backend_valid(b) || !why || !len)
		return -EINVAL;
	err = backend_check(b, why, len);
	if (!err)
		snprintf(why, len, "works");
	return err;
}

_public_ int cohmem_backend_capabilities(enum cohmem_backend b, unsigned *caps)
{
	const struct backend_ops *ops;
	int err;

	if (!caps || !backend_valid(b) || b == COHMEM_BACKEND_AUTO)
		return -EINVAL;
	*caps = 0;
	ops = backends[b];
	err = ops ? ops->supported(NULL, 0) : -EOPNOTSUPP;
	if (!err)
		*caps = ops->capabilities();
	return err;
}

bool auto_may_use(const struct backend_ops *ops, unsigned flags)
{
	if (!ops || ops->supported(NULL, 0))
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
	if (tracker_forked(t))
		return -ECHILD;
	if (t->backend == COHMEM_BACKEND_AUTO)
		*caps = auto_capabilities();
	else
		cohmem_backend_capabilities(t->backend, caps);
	return 0;
}
