/* SPDX-License-Identifier: MIT */
/*
 * The client side of cohmemd buffers. A process announces its mappings of a
 * buffer file; any open file description can then clean, and learns what
 * every process wrote through every mapping since its own last clean.
 *
 * In scan mode the process's own mapping is registered with a process-wide
 * WP_ASYNC userfaultfd, so that the daemon's PAGEMAP_SCAN of this process
 * sees written pages. In writeback mode nothing is registered: a clean first
 * fsync()s, the kernel writes the dirty pages back to the daemon, and the
 * daemon records them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "buffer-proto.h"
#include "internal.h"
#include "kabi.h"
#include "uffd.h"

struct attached {
	uintptr_t addr;
	size_t len;
	int registered;		/* with the uffd below */
};

static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;
static int attach_uffd = -1;	/* the process's WP_ASYNC userfaultfd for buffer mappings */
static struct attached *attached;
static size_t nattached;

static int buffer_info(int fd, struct cohmem_ioc_info *info)
{
	if (fd < 0)
		return -EBADF;
	if (ioctl(fd, COHMEM_IOC_INFO, info))
		return errno == ENOTTY || errno == EINVAL ? -ENOTTY : -errno;
	return info->version == COHMEM_PROTO_VERSION ? 0 : -EPROTO;
}

static int scan_uffd(void)
{
	if (attach_uffd < 0)
		attach_uffd = uffd_new(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
				       (uffd_caps()->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM));
	return attach_uffd;
}

_public_ int cohmem_buffer_attach(int fd, void *addr, size_t len, off_t offset)
{
	struct cohmem_ioc_info info;
	struct cohmem_ioc_attach a = { (uintptr_t)addr, len, (uint64_t)offset };
	struct attached *list;
	int err = buffer_info(fd, &info), uffd;
	bool scan;

	if (err)
		return err;
	if (!len || a.addr % info.page_size || len % info.page_size || offset < 0 ||
	    (uint64_t)offset % info.page_size || a.addr + len < a.addr)
		return -EINVAL;
	scan = info.coherence == COHMEM_COHERENCE_SCAN;
	pthread_mutex_lock(&attach_lock);
	list = realloc(attached, (nattached + 1) * sizeof(*list));
	if (!list) {
		pthread_mutex_unlock(&attach_lock);
		return -ENOMEM;
	}
	attached = list;
	/* The daemon checks the range first; then this process protects it. */
	err = ioctl(fd, COHMEM_IOC_ATTACH, &a) ? -errno : 0;
	if (!err && scan) {
		uffd = scan_uffd();
		err = uffd < 0 ? uffd : uffd_track(uffd, a.addr, len);
		if (err) {	/* the daemon took it, this side failed: take it back */
			struct cohmem_ioc_detach dt = { a.addr };

			ioctl(fd, COHMEM_IOC_DETACH, &dt);
		}
	}
	if (!err)
		attached[nattached++] = (struct attached){ a.addr, len, scan };
	pthread_mutex_unlock(&attach_lock);
	return err;
}

_public_ int cohmem_buffer_detach(int fd, void *addr)
{
	struct cohmem_ioc_detach dt = { (uintptr_t)addr };
	int err = 0;

	if (fd < 0)
		return -EBADF;
	pthread_mutex_lock(&attach_lock);
	for (size_t i = 0; i < nattached; i++) {
		if (attached[i].addr != (uintptr_t)addr)
			continue;
		if (ioctl(fd, COHMEM_IOC_DETACH, &dt))
			err = errno == ENOTTY || errno == EINVAL ? -ENOTTY : -errno;
		if (attached[i].registered)
			uffd_release(attach_uffd, attached[i].addr, attached[i].len);
		attached[i] = attached[--nattached];
		pthread_mutex_unlock(&attach_lock);
		return err;
	}
	pthread_mutex_unlock(&attach_lock);
	return -ENOENT;
}

/*
 * Harvest [first, first + nr) window by window into the sink (or count only,
 * for wrprotect). Writeback mode first makes the kernel write every dirty
 * page of the file back to the daemon.
 */
static int buffer_harvest(int fd, size_t first, size_t nr, unsigned long cmd, struct dirty_sink *sink)
{
	struct cohmem_ioc_info info;
	struct cohmem_ioc_clean *io;
	int err = buffer_info(fd, &info);
	uint64_t pages;

	if (err)
		return err;
	pages = (info.size + info.page_size - 1) / info.page_size;
	if (first > pages || nr > pages - first)
		return -EINVAL;
	if (info.coherence == COHMEM_COHERENCE_WRITEBACK && fsync(fd))
		return -errno;
	io = malloc(sizeof(*io));
	if (!io)
		return -ENOMEM;
	for (size_t done = 0; done < nr && !err;) {
		size_t n = nr - done < COHMEM_IOC_WINDOW ? nr - done : COHMEM_IOC_WINDOW;

		if (cmd == COHMEM_IOC_CLEAN) {
			io->first = first + done;
			io->nr = n;
			err = ioctl(fd, COHMEM_IOC_CLEAN, io) ? -errno : 0;
			for (size_t i = 0; !err && i < n; i++)
				if (io->bitmap[i / 64] >> (i % 64) & 1)
					dirty_sink_record(sink, first + done + i, 1);
		} else {
			struct cohmem_ioc_wrprotect wp = { first + done, n, 0 };

			err = ioctl(fd, COHMEM_IOC_WRPROTECT, &wp) ? -errno : 0;
			if (!err)
				dirty_sink_record(sink, first + done, wp.count);
		}
		done += n;
	}
	free(io);
	return err;
}

_public_ long cohmem_buffer_clean(int fd, size_t first_index, size_t nr, size_t bitmap_pgoff,
				  unsigned long *bitmap, size_t *start, size_t *end)
{
	struct dirty_sink sink;
	int err;

	if (!bitmap || bitmap_pgoff > first_index || first_index + nr < first_index)
		return fd < 0 ? -EBADF : -EINVAL;
	dirty_sink_init(&sink, bitmap, bitmap_pgoff);
	err = buffer_harvest(fd, first_index, nr, COHMEM_IOC_CLEAN, &sink);
	if (sink.hi > sink.lo)
		widen_span(start, end, sink.lo, sink.hi);
	return harvest_result(err, sink.count);
}

_public_ long cohmem_buffer_wrprotect(int fd, size_t first_index, size_t nr)
{
	struct dirty_sink count;
	int err;

	if (first_index + nr < first_index)
		return fd < 0 ? -EBADF : -EINVAL;
	dirty_sink_init(&count, NULL, 0);
	err = buffer_harvest(fd, first_index, nr, COHMEM_IOC_WRPROTECT, &count);
	return harvest_result(err, count.count);
}
