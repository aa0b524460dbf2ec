/* SPDX-License-Identifier: MIT */
/*
 * The client side of cohmemd buffers. Any open file description of a buffer
 * can clean, and learns what every process wrote — through any mapping, or
 * by write(2) — since its own last clean: the daemon makes the kernel write
 * the buffer's dirty pages back before it answers. Nothing is registered in
 * the caller's process, so these work the same from any thread and in a
 * forked child, and keep no state between calls.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cohmemd-proto.h"
#include "cohmem-buffer.h"
#include "internal.h"
#include "sink.h"

static int buffer_info(int fd, struct cohmem_ioc_info *info)
{
	if (fd < 0)
		return -EBADF;
	if (ioctl(fd, COHMEM_IOC_INFO, info))
		return errno == ENOTTY || errno == EINVAL ? -ENOTTY : -errno;
	return info->version == COHMEM_PROTO_VERSION ? 0 : -EPROTO;
}

_public_ int cohmem_buffer_attach(int fd, void *addr, size_t len, off_t offset)
{
	struct cohmem_ioc_info info;
	struct cohmem_ioc_attach a = { (uintptr_t)addr, len, (uint64_t)offset };
	int err = buffer_info(fd, &info);

	if (err)
		return err;
	if (!len || a.addr % info.page_size || len % info.page_size || offset < 0 ||
	    (uint64_t)offset % info.page_size || a.addr + len < a.addr)
		return -EINVAL;
	return ioctl(fd, COHMEM_IOC_ATTACH, &a) ? -errno : 0;
}

_public_ int cohmem_buffer_detach(int fd, void *addr)
{
	struct cohmem_ioc_detach dt = { (uintptr_t)addr };
	struct cohmem_ioc_info info;
	int err = buffer_info(fd, &info);

	if (err)
		return err;
	return ioctl(fd, COHMEM_IOC_DETACH, &dt) ? -errno : 0;
}

/* One window's request, cmd's struct filled in from the clean's; its count (and bitmap) in *io. */
static int window_ioctl(int fd, unsigned long cmd, struct cohmem_ioc_clean *io)
{
	struct cohmem_ioc_wrprotect wp = { .first = io->first, .nr = io->nr, .end = io->end, .flags = io->flags };

	if (cmd == COHMEM_IOC_CLEAN)
		return ioctl(fd, COHMEM_IOC_CLEAN, io) ? -errno : 0;
	if (ioctl(fd, COHMEM_IOC_WRPROTECT, &wp))
		return -errno;
	io->count = wp.count;
	return 0;
}

/*
 * Harvest [first, first + nr) window by window into the sink (or count
 * only, for wrprotect). The first window asks the daemon for a writeback
 * pass: every write that completed before the call is then stored and
 * pending; the later windows only collect. The first request carries the
 * whole range, which the daemon checks before it takes anything: so a range
 * within one window costs one request, and INFO is asked only when that
 * request fails as another version or another file would make it fail
 * (cohmemd-proto.h). A call of no pages still asks, without a pass, for
 * those answers.
 */
static int buffer_harvest(int fd, size_t first, size_t nr, unsigned long cmd, struct dirty_sink *sink)
{
	struct cohmem_ioc_info info;
	struct cohmem_ioc_clean *io;
	size_t done = 0;
	int err;

	if (fd < 0)
		return -EBADF;
	io = malloc(sizeof(*io));
	if (!io)
		return -ENOMEM;
	do {
		size_t n = nr - done < COHMEM_IOC_WINDOW ? nr - done : COHMEM_IOC_WINDOW;

		*io = (struct cohmem_ioc_clean){ .first = first + done, .nr = n,
						 .end = first + (done ? done + n : nr),
						 .flags = !done && nr ? COHMEM_CLEAN_SYNC : 0 };
		err = window_ioctl(fd, cmd, io);
		if (err && !done && (err == -ENOTTY || err == -EINVAL)) {
			int why = buffer_info(fd, &info);

			err = why ? why : err;
		}
		if (!err && cmd == COHMEM_IOC_CLEAN)
			dirty_sink_record_words(sink, io->bitmap, first + done, n);
		else if (!err)
			dirty_sink_record(sink, first + done, io->count);
		done += n;
	} while (done < nr && !err);
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
	return dirty_sink_finish(&sink, err, start, end);
}

_public_ long cohmem_buffer_wrprotect(int fd, size_t first_index, size_t nr)
{
	struct dirty_sink count;
	int err;

	if (first_index + nr < first_index)
		return fd < 0 ? -EBADF : -EINVAL;
	dirty_sink_init(&count, NULL, 0);
	err = buffer_harvest(fd, first_index, nr, COHMEM_IOC_WRPROTECT, &count);
	return dirty_sink_finish(&count, err, NULL, NULL);
}
