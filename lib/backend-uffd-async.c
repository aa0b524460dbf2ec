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
#include <unistd.h>

#include "internal.h"
#include "kabi.h"
#include "pagemap.h"
#include "uffd.h"

/* page_region entries of a region's first PAGEMAP_SCAN vector: 6 KiB. */
#define SCAN_VEC_MIN 256

struct backend_ctx {
	int uffd;
	int pagemap;	/* /proc/self/pagemap */
};

struct async_region {
	struct page_region *vec;	/* zeroed: see pagemap_scan_written() */
	size_t vec_len;
};

static int async_supported(char *why, size_t len)
{
	const struct uffd_caps *caps = uffd_caps();
	uint64_t need = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;

	if (caps->error)
		return backend_unsupported(why, len, "userfaultfd unavailable: %s", strerror(-caps->error));
	if (!caps->wp)
		return backend_unsupported(why, len, "the kernel refuses write-protect registration (before 5.7?)");
	if ((caps->features & need) != need)
		return backend_unsupported(why, len, "the kernel lacks UFFD_FEATURE_WP_ASYNC (Linux 6.7)");
	if (!caps->pagemap_scan)
		return backend_unsupported(why, len, "the kernel lacks the PAGEMAP_SCAN ioctl (Linux 6.7)");
	return 0;
}

static unsigned async_capabilities(void)
{
	return COHMEM_CAP_EXACT_CONCURRENT | COHMEM_CAP_KERNEL_WRITES | COHMEM_CAP_SPARSE |
	       COHMEM_CAP_ANON | COHMEM_CAP_SHMEM | COHMEM_CAP_FILE;
}

static void async_ctx_free(struct backend_ctx *c, bool forked)
{
	if (c->uffd >= 0)
		close(c->uffd);
	if (c->pagemap >= 0)
		close(c->pagemap);
	if (!forked)	/* a child leaves the memory: see cohmem_tracker_free() */
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

		async_ctx_free(c, false);
		return err;
	}
	*ret = c;
	return 0;
}

/* The most runs of written pages a clean of this region can find: every other page. */
static size_t most_runs(const cohmem_region *r)
{
	return r->npages / 2 + 1;
}

static int async_region_add(cohmem_region *r)
{
	size_t len = r->npages * page_size();
	struct async_region *ar = calloc(1, sizeof(*ar));
	int err;

	if (!ar)
		return -ENOMEM;
	ar->vec_len = most_runs(r) < SCAN_VEC_MIN ? most_runs(r) : SCAN_VEC_MIN;
	ar->vec = calloc(ar->vec_len, sizeof(*ar->vec));
	err = ar->vec ? uffd_track(r->ctx->uffd, r->start, len) : -ENOMEM;
	if (err) {
		free(ar->vec);
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
	struct async_region *ar = r->priv;

	if (ar)
		free(ar->vec);
	free(ar);
}

/*
 * A full vector ends a PAGEMAP_SCAN call, and every further call walks the
 * page tables and flushes the TLB again: with 256 entries, a clean of 1 %
 * scattered writes in 256 MiB (655 runs, three calls) took 1.6x one call.
 * After a clean that filled the vector, it grows to twice the runs found, up
 * to the most the region can have; it never shrinks (24 bytes per run seen).
 * A failed allocation keeps the old one: slower, not wrong.
 */
static void fit_vector(cohmem_region *r, size_t runs)
{
	struct async_region *ar = r->priv;
	size_t want = runs * 2 < most_runs(r) ? runs * 2 : most_runs(r);
	struct page_region *vec;

	if (runs < ar->vec_len || want <= ar->vec_len)
		return;
	vec = calloc(want, sizeof(*vec));
	if (!vec)
		return;
	free(ar->vec);
	ar->vec = vec;
	ar->vec_len = want;
}

struct record {
	cohmem_region *r;
	struct dirty_sink *sink;
	size_t runs;
};

static int record_run(void *arg, uintptr_t start, uintptr_t end)
{
	struct record *rec = arg;
	size_t shift = (size_t)__builtin_ctzl(page_size());

	dirty_sink_record(rec->sink, (start - rec->r->start) >> shift, (end - start) >> shift);
	rec->runs++;
	return 0;
}

static int async_clean(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink)
{
	struct async_region *ar = r->priv;
	struct record rec = { r, sink, 0 };
	int err = pagemap_scan_written(r->ctx->pagemap, region_addr(r, first), region_addr(r, first + nr),
				       ar->vec, ar->vec_len, record_run, &rec);

	fit_vector(r, rec.runs);
	return err;
}

/* Unprotected pages read as written to PAGEMAP_SCAN: dirty, as release() must leave them. */
static int async_release(cohmem_region *r, size_t first, size_t nr)
{
	return uffd_writeprotect(r->ctx->uffd, region_addr(r, first), nr * page_size(), false);
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
	.release = async_release,
};
