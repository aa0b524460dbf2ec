/* SPDX-License-Identifier: MIT */
/*
 * UFFD_ASYNC: a userfaultfd with UFFD_FEATURE_WP_ASYNC lets the kernel resolve
 * write-protect faults itself, leaving the uffd-wp bit clear on pages that were
 * written. PAGEMAP_SCAN with PM_SCAN_WP_MATCHING then reports those pages and
 * protects them again in one walk, under the page-table lock, so get-and-clean
 * is atomic per page: the kernel does for us what apply_as_clean does for
 * drivers. No thread, no message; kernel-mode writes are covered too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "internal.h"
#include "kabi.h"
#include "uffd.h"

/* page_region entries per PAGEMAP_SCAN call: 6 KiB per region. */
#define SCAN_VEC_LEN 256

struct backend_ctx {
	int uffd;
	int pagemap;	/* /proc/self/pagemap */
};

struct async_region {
	/*
	 * Entries past the ones the last scan returned are kept zeroed, so that
	 * after a failed scan the entries it wrote before failing can be found.
	 */
	struct page_region vec[SCAN_VEC_LEN];
};

static int async_supported(void)
{
	const struct uffd_caps *caps = uffd_caps();
	uint64_t need = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;

	if (caps->error || !caps->wp || !caps->pagemap_scan || (caps->features & need) != need)
		return -EOPNOTSUPP;
	return 0;
}

static unsigned async_capabilities(void)
{
	return COHMEM_CAP_EXACT_CONCURRENT | COHMEM_CAP_KERNEL_WRITES | COHMEM_CAP_SPARSE |
	       COHMEM_CAP_ANON | COHMEM_CAP_SHMEM | COHMEM_CAP_FILE;
}

static void async_ctx_free(struct backend_ctx *c)
{
	if (c->uffd >= 0)
		close(c->uffd);
	if (c->pagemap >= 0)
		close(c->pagemap);
	free(c);
}

static int async_ctx_new(cohmem_tracker *t, struct backend_ctx **ret)
{
	uint64_t features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
			    (uffd_caps()->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	struct backend_ctx *c = malloc(sizeof(*c));

	(void)t;
	if (!c)
		return -ENOMEM;
	c->uffd = uffd_new(features);
	c->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (c->uffd < 0 || c->pagemap < 0) {
		int err = c->uffd < 0 ? c->uffd : -errno;

		async_ctx_free(c);
		return err;
	}
	*ret = c;
	return 0;
}

static int async_region_add(cohmem_region *r)
{
	size_t len = r->npages * page_size();
	struct async_region *ar = calloc(1, sizeof(*ar));
	int err;

	if (!ar)
		return -ENOMEM;
	err = uffd_track(r->ctx->uffd, r->start, len);
	if (err) {
		free(ar);
		return err;
	}
	r->priv = ar;
	return 0;
}

static int async_region_remove(cohmem_region *r)
{
	return uffd_release(r->ctx->uffd, r->start, r->npages * page_size());
}

static void async_region_free(cohmem_region *r)
{
	free(r->priv);
}

static void record_regions(cohmem_region *r, struct page_region *vec, size_t n,
			   struct dirty_sink *sink)
{
	size_t shift = (size_t)__builtin_ctzl(page_size());

	for (size_t i = 0; i < n; i++) {
		size_t first = (size_t)(vec[i].start - r->start) >> shift;

		dirty_sink_record(sink, first, (size_t)(vec[i].end - vec[i].start) >> shift);
	}
	memset(vec, 0, n * sizeof(*vec));
}

/* Entries a failed scan wrote before it failed: the pages are protected already. */
static size_t written_before_error(const struct page_region *vec)
{
	size_t n = 0;

	while (n < SCAN_VEC_LEN && vec[n].end)
		n++;
	return n;
}

static int async_clean(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink)
{
	struct async_region *ar = r->priv;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = region_addr(r, first),
		.end = region_addr(r, first + nr),
		.vec = (uintptr_t)ar->vec,
		.vec_len = SCAN_VEC_LEN,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};

	/* A full vec ends a scan early, without an error: go on from walk_end. */
	while (arg.start < arg.end) {
		long n = ioctl(r->ctx->pagemap, PAGEMAP_SCAN, &arg);

		if (n < 0) {
			int err = -errno;

			record_regions(r, ar->vec, written_before_error(ar->vec), sink);
			return err;
		}
		record_regions(r, ar->vec, (size_t)n, sink);
		arg.start = arg.walk_end;
	}
	return 0;
}

const struct backend_ops uffd_async_ops = {
	.id = COHMEM_BACKEND_UFFD_ASYNC,
	.supported = async_supported,
	.capabilities = async_capabilities,
	.ctx_new = async_ctx_new,
	.ctx_free = async_ctx_free,
	.region_add = async_region_add,
	.region_remove = async_region_remove,
	.region_free = async_region_free,
	.clean = async_clean,
	.wrprotect = async_clean,	/* counting sink: protect what was written */
};
