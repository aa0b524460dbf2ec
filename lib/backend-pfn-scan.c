/* SPDX-License-Identifier: MIT */
/*
 * PFN_SCAN: any driver's shared VM_PFNMAP mapping — a PCI BAR through sysfs
 * resourceN or vfio-pci, a DRM buffer in VRAM, ivshmem, a cohmem_pfn buffer
 * — tracked by PAGEMAP_SCAN with PM_SCAN_PFNMAP, which the kernel patch
 * series in kernel/patches/pagemap-scan-pfnmap/ adds (no released kernel has
 * it: they refuse the flag, and this backend says so).
 *
 * The scan reports the PTEs of the mapping that are dirty and, with
 * PM_SCAN_WP_MATCHING, cleans them in the same walk, under the PTE lock,
 * with one TLB flush before the lock is dropped: the next write sets the
 * dirty bit again, for every driver (the page-table method of vmwgfx and of
 * the cohmem_pfn module, without a driver). So get-and-clean is atomic per
 * page, as with uffd-async, writers take no fault, reads are never reported,
 * and kernel-mode writes (read(2) into the mapping) dirty the PTE the same
 * way.
 *
 * Only this process's page tables are walked: pages written through another
 * process's mapping of the same memory are that process's to report (the
 * cohmem_pfn module's own clean walks every mapping of its buffers, and the
 * two must not clean the same buffer: each clears the dirty bits the other
 * reads). A page a driver zaps (TTM evicting a buffer, a device reset) loses
 * its dirty bit with the PTE, and the next fault maps it clean: one written
 * and zapped between two cleans is not reported.
 * Drivers zap mappings of buffers they move; a buffer pinned for scanout,
 * a BAR and a cohmem_pfn buffer are not moved. A huge (PMD or PUD) entry, as
 * vfio-pci maps BARs, is never cleaned by the scan: once dirty, its pages are
 * reported by every clean, more than was written, never fewer. Writes by a
 * device or a secondary MMU (a KVM guest the memory is mapped into) do not
 * dirty the PTEs and are not seen.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "internal.h"
#include "kabi.h"
#include "pagemap.h"
#include "sink.h"

/* page_region entries of a region's PAGEMAP_SCAN vector at most: 24 KiB. */
#define SCAN_VEC_MAX 1024

struct backend_ctx {
	int pagemap;	/* /proc/self/pagemap */
};

struct scan_region {
	struct page_region *vec;	/* zeroed: see pagemap_scan_written() */
	size_t vec_len;
};

static int scan_error;	/* 0, or -errno of the probe */
static pthread_once_t scan_probe = PTHREAD_ONCE_INIT;

/* An empty scan with PM_SCAN_PFNMAP: 0 where the kernel has it, EINVAL where it does not know the flag. */
static void probe_scan(void)
{
	struct pm_scan_arg scan = { .size = sizeof(scan), .flags = PM_SCAN_PFNMAP };
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		scan_error = -errno;
		return;
	}
	scan_error = ioctl(fd, PAGEMAP_SCAN, &scan) < 0 ? -errno : 0;
	close(fd);
}

static int scan_supported(char *why, size_t len)
{
	pthread_once(&scan_probe, probe_scan);
	if (scan_error == -EINVAL)
		return backend_unsupported(why, len,
					   "the kernel's PAGEMAP_SCAN skips VM_PFNMAP mappings (PM_SCAN_PFNMAP "
					   "is a patch in cohmem's kernel/patches/, not upstream)");
	if (scan_error == -ENOTTY)
		return backend_unsupported(why, len, "the kernel lacks the PAGEMAP_SCAN ioctl (Linux 6.7)");
	if (scan_error)
		return backend_unsupported(why, len, "/proc/self/pagemap: %s", strerror(-scan_error));
	return 0;
}

static unsigned scan_capabilities(void)
{
	return COHMEM_CAP_EXACT_CONCURRENT | COHMEM_CAP_KERNEL_WRITES | COHMEM_CAP_SPARSE |
	       COHMEM_CAP_PFNMAP;
}

static void scan_ctx_free(struct backend_ctx *c, bool forked)
{
	if (c->pagemap >= 0)
		close(c->pagemap);
	if (!forked)	/* a child leaves the memory: see cohmem_tracker_free() */
		free(c);
}

static int scan_ctx_new(cohmem_tracker *t, struct backend_ctx **ret)
{
	struct backend_ctx *c = calloc(1, sizeof(*c));

	(void)t;
	if (!c)
		return -ENOMEM;
	c->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (c->pagemap < 0) {
		int err = -errno;

		free(c);
		return err;
	}
	*ret = c;
	return 0;
}

/*
 * Whether [start, end), which is mapped (cohmem_region_add() checked), is
 * only shared VM_PFNMAP mappings: a scan that checks (with
 * PM_SCAN_CHECK_WPASYNC the kernel refuses a private pfnmap, and any other
 * mapping not registered for uffd-async write protection) and reports any
 * page that is not pfnmap (of a mapping that is registered).
 */
static int range_is_shared_pfnmap(int pagemap, uintptr_t start, uintptr_t end)
{
	struct page_region one = { 0 };
	struct pm_scan_arg scan = {
		.size = sizeof(scan),
		.flags = PM_SCAN_PFNMAP | PM_SCAN_CHECK_WPASYNC,
		.start = start,
		.end = end,
		.vec = (uintptr_t)&one,
		.vec_len = 1,
		.max_pages = 1,
		.category_inverted = PAGE_IS_PFNMAP,
		.category_mask = PAGE_IS_PFNMAP,
		.return_mask = PAGE_IS_PFNMAP,
	};
	long n = ioctl(pagemap, PAGEMAP_SCAN, &scan);

	if (n < 0)
		return errno == EPERM ? -EOPNOTSUPP : -errno;
	return n ? -EOPNOTSUPP : 0;
}

static int scan_clean(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink)
{
	struct scan_region *sr = r->priv;
	struct sink_runs runs = { r->start, sink, 0 };

	/* What is no longer a shared pfnmap (mapped over by something else) fails the scan: -EPERM. */
	return pagemap_scan_written_flags(r->ctx->pagemap, PM_SCAN_PFNMAP, region_addr(r, first),
					  region_addr(r, first + nr), sr->vec, sr->vec_len, dirty_sink_record_run,
					  &runs);
}

static void scan_region_free(cohmem_region *r)
{
	struct scan_region *sr = r->priv;

	if (sr)
		free(sr->vec);
	free(sr);
	r->priv = NULL;
}

/* -EOPNOTSUPP unless the whole range is shared pfnmap memory. */
static int scan_region_add(cohmem_region *r)
{
	size_t most_runs = r->npages / 2 + 1;
	struct dirty_sink before;
	struct scan_region *sr;
	int err = range_is_shared_pfnmap(r->ctx->pagemap, r->start, region_addr(r, r->npages));

	if (err)
		return err;
	sr = calloc(1, sizeof(*sr));
	if (!sr)
		return -ENOMEM;
	sr->vec_len = most_runs < SCAN_VEC_MAX ? most_runs : SCAN_VEC_MAX;
	sr->vec = calloc(sr->vec_len, sizeof(*sr->vec));
	r->priv = sr;
	/* A new region starts clean: forget what was written before (a sink that only counts). */
	dirty_sink_init(&before, NULL, 0);
	err = sr->vec ? scan_clean(r, 0, r->npages, &before) : -ENOMEM;
	if (err)
		scan_region_free(r);
	return err;
}

static int scan_region_remove(cohmem_region *r)
{
	(void)r;
	return 0;
}

/* Writers take no fault here: there is nothing a release could save. */
static int scan_release(cohmem_region *r, size_t first, size_t nr)
{
	(void)r;
	(void)first;
	(void)nr;
	return -EOPNOTSUPP;
}

const struct backend_ops pfn_scan_ops = {
	.id = COHMEM_BACKEND_PFN_SCAN,
	.supported = scan_supported,
	.capabilities = scan_capabilities,
	.ctx_new = scan_ctx_new,
	.ctx_free = scan_ctx_free,
	.region_add = scan_region_add,
	.region_remove = scan_region_remove,
	.region_free = scan_region_free,
	.clean = scan_clean,
	.wrprotect = scan_clean,	/* counting sink: clean what was written */
	.release = scan_release,
};
