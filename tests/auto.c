/* SPDX-License-Identifier: MIT */
/*
 * AUTO picks, per region, the first backend of uffd-async, uffd-sync,
 * soft-dirty and mprotect that works here, tracks the region's memory type,
 * and is exact under concurrency unless the region was added with
 * COHMEM_REGION_QUIESCENT.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test.h"

#define PAGES 8

TestSuite(auto_choice, .timeout = 60);

static enum cohmem_backend expected(unsigned type, unsigned flags)
{
	static const enum cohmem_backend order[] = {
		COHMEM_BACKEND_UFFD_ASYNC, COHMEM_BACKEND_UFFD_SYNC,
		COHMEM_BACKEND_SOFT_DIRTY, COHMEM_BACKEND_MPROTECT,
	};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		unsigned caps;

		if (cohmem_backend_capabilities(order[i], &caps) || !(caps & type))
			continue;
		if ((caps & COHMEM_CAP_EXACT_CONCURRENT) || (flags & COHMEM_REGION_QUIESCENT))
			return order[i];
	}
	return COHMEM_BACKEND_AUTO;	/* nothing: the add must fail */
}

static void check(char *mem, unsigned type, const char *what)
{
	for (unsigned flags = 0; flags <= COHMEM_REGION_QUIESCENT; flags += COHMEM_REGION_QUIESCENT) {
		cohmem_tracker *t;
		cohmem_region *r = NULL;
		enum cohmem_backend want = expected(type, flags);
		int err;

		cr_assert_eq(cohmem_tracker_new(COHMEM_BACKEND_AUTO, 0, &t), 0);
		err = cohmem_region_add(t, mem, PAGES * PS, flags, &r);
		if (want == COHMEM_BACKEND_AUTO) {
			cr_assert_eq(err, -EOPNOTSUPP, "%s: nothing can track it", what);
		} else {
			cr_assert_eq(err, 0, "%s: %s", what, strerror(-err));
			cr_assert_eq(cohmem_region_backend(r), want, "%s%s: got %s, expected %s", what,
				     flags ? " (quiescent)" : "", cohmem_backend_name(cohmem_region_backend(r)),
				     cohmem_backend_name(want));
		}
		cohmem_tracker_free(t);
	}
}

Test(auto_choice, per_memory_type)
{
	char *anon = map_anon(PAGES), *memfd = map_memfd(PAGES, NULL), *file = map_file(PAGES, NULL);

	check(anon, COHMEM_CAP_ANON, "anonymous memory");
	check(memfd, COHMEM_CAP_SHMEM, "a memfd");
	check(file, COHMEM_CAP_FILE, "a file mapping");
	munmap(anon, PAGES * PS);
	munmap(memfd, PAGES * PS);
	munmap(file, PAGES * PS);
}
