/* SPDX-License-Identifier: MIT */
/*
 * PFN: memory mapped VM_IO | VM_PFNMAP from buffers of the cohmem_pfn kernel
 * module (kernel/), which userfaultfd refuses and PAGEMAP_SCAN skips. The
 * module does the work with the kernel's own mapping_dirty_helpers: a clean
 * walks every mapping of the buffer, in every process (the i_mmap walk), so
 * a region's clean also reports pages written through other mappings of the
 * same buffer pages. This backend only finds the buffer behind a region and
 * turns the module's bitmap into the sink.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bitmap.h"
#include "internal.h"
#include "cohmem-pfn.h"
#include "sink.h"

/*
 * The module reports in __u64 words (its uapi, the same for 32-bit callers).
 * An unsigned long array has that bit layout wherever long has 64 bits or
 * the machine is little-endian; scratch is sized in whole __u64 words, which
 * the module reads and writes.
 */
_Static_assert(sizeof(unsigned long) == 8 || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "cohmem_pfn's __u64 bitmaps need conversion on 32-bit big-endian machines");

struct pfn_region {
	int fd;			/* the buffer */
	uint64_t pgoff;		/* its page mapped at the region's start */
	unsigned long *scratch;	/* the module's report, bit i = region page i */
};

static int open_device(void)
{
	int fd = open(COHMEM_PFN_DEVICE, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int device_error;	/* 0, or -errno of opening the device */
static pthread_once_t device_probe = PTHREAD_ONCE_INIT;

static void probe_device(void)
{
	int fd = open_device();

	device_error = fd < 0 ? fd : 0;
	if (fd >= 0)
		close(fd);
}

/* Probed once per process, as every backend: a module loaded later is seen by new processes. */
static int pfn_supported(char *why, size_t len)
{
	pthread_once(&device_probe, probe_device);
	if (device_error == -ENOENT)
		return backend_unsupported(why, len, "%s is missing: the cohmem_pfn module is not loaded",
					   COHMEM_PFN_DEVICE);
	if (device_error)
		return backend_unsupported(why, len, "%s: %s", COHMEM_PFN_DEVICE, strerror(-device_error));
	return 0;
}

static unsigned pfn_capabilities(void)
{
	return COHMEM_CAP_EXACT_CONCURRENT | COHMEM_CAP_KERNEL_WRITES | COHMEM_CAP_SPARSE |
	       COHMEM_CAP_PFNMAP;
}

static void pfn_region_free(cohmem_region *r)
{
	struct pfn_region *pr = r->priv;

	if (!pr)
		return;
	if (pr->fd >= 0)
		close(pr->fd);
	free(pr->scratch);
	free(pr);
	r->priv = NULL;
}

/* -EOPNOTSUPP unless the whole range is one mapping of a cohmem_pfn buffer. */
static int pfn_region_add(cohmem_region *r)
{
	struct cohmem_pfn_lookup lookup = { .addr = r->start, .len = r->npages * page_size() };
	struct pfn_region *pr = calloc(1, sizeof(*pr));
	int dev = open_device(), err = 0;

	if (!pr || dev < 0) {
		free(pr);
		if (dev >= 0)
			close(dev);
		return pr ? -EOPNOTSUPP : -ENOMEM;
	}
	if (ioctl(dev, COHMEM_PFN_LOOKUP, &lookup))
		err = errno == ENODEV ? -EOPNOTSUPP : -errno;
	close(dev);
	pr->fd = err ? -1 : lookup.fd;
	pr->pgoff = lookup.pgoff;
	pr->scratch = calloc((r->npages + 63) / 64, sizeof(uint64_t));
	r->priv = pr;
	if (!err && !pr->scratch)
		err = -ENOMEM;
	/* A new region starts clean: forget what was written before. */
	if (!err) {
		struct cohmem_pfn_wrprotect wp = { pr->pgoff, r->npages, 0 };

		err = ioctl(pr->fd, COHMEM_PFN_WRPROTECT, &wp) ? -errno : 0;
	}
	if (err)
		pfn_region_free(r);
	return err;
}

static int pfn_region_remove(cohmem_region *r)
{
	(void)r;
	return 0;
}

static int pfn_clean(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink)
{
	struct pfn_region *pr = r->priv;
	struct cohmem_pfn_clean c = {
		.first = pr->pgoff + first,
		.nr = nr,
		.bitmap_pgoff = pr->pgoff,
		.bitmap = (uintptr_t)pr->scratch,
		.start = 1,	/* start >= end: none set yet */
	};

	bitmap_clear_range(pr->scratch, first, nr);
	if (ioctl(pr->fd, COHMEM_PFN_CLEAN, &c))
		return -errno;
	dirty_sink_record_bitmap(sink, pr->scratch, first, first + nr);
	return 0;
}

static int pfn_wrprotect(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *count)
{
	struct pfn_region *pr = r->priv;
	struct cohmem_pfn_wrprotect wp = { pr->pgoff + first, nr, 0 };

	if (ioctl(pr->fd, COHMEM_PFN_WRPROTECT, &wp))
		return -errno;
	dirty_sink_record(count, first, wp.count);
	return 0;
}

/* The page-table method already writes without faults; nothing to release. */
static int pfn_release(cohmem_region *r, size_t first, size_t nr)
{
	(void)r;
	(void)first;
	(void)nr;
	return -EOPNOTSUPP;
}

_public_ int cohmem_pfn_open(size_t len, unsigned flags)
{
	struct cohmem_pfn_create create = { .size = len };
	int dev, err;

	if (flags || !len || len % page_size())
		return -EINVAL;
	dev = open_device();
	if (dev < 0)
		return dev == -ENOENT || dev == -ENXIO || dev == -ENODEV ? -EOPNOTSUPP : dev;
	err = ioctl(dev, COHMEM_PFN_CREATE, &create) ? -errno : 0;
	close(dev);
	return err ? err : create.fd;
}

const struct backend_ops pfn_ops = {
	.id = COHMEM_BACKEND_PFN,
	.supported = pfn_supported,
	.capabilities = pfn_capabilities,
	.region_add = pfn_region_add,
	.region_remove = pfn_region_remove,
	.region_free = pfn_region_free,
	.clean = pfn_clean,
	.wrprotect = pfn_wrprotect,
	.release = pfn_release,
};
