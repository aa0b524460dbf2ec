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
