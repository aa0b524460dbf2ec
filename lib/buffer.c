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

/*
 * Harvest [first, first + nr) window by window into the sink (or count
 * only, for wrprotect). The first window asks the daemon for a writeback
 * pass: every write that completed before the call is then stored and
 * pending; the later windows only collect.
 */
static int buffer_harvest(int fd, size_t first, size_t nr, unsigned long cmd, struct dirty_sink *sink)
{
	struct cohmem_ioc_info info;
	struct cohmem_ioc_clean *io;
	int err = buffer_info(fd, &info);
	uint32_t flags = COHMEM_CLEAN_SYNC;
	uint64_t pages;

	if (err)
		return err;
	pages = (info.size + info.page_size - 1) / info.page_size;
	if (first > pages || nr > pages - first)
		return -EINVAL;
	io = malloc(sizeof(*io));
	if (!io)
		return -ENOMEM;
	for (size_t done = 0; done < nr && !err; flags = 0) {
		size_t n = nr - done < COHMEM_IOC_WINDOW ? nr - done : COHMEM_IOC_WINDOW;

		if (cmd == COHMEM_IOC_CLEAN) {
			*io = (struct cohmem_ioc_clean){ .first = first + done, .nr = n, .flags = flags };
			err = ioctl(fd, COHMEM_IOC_CLEAN, io) ? -errno : 0;
			if (!err)
				dirty_sink_record_words(sink, io->bitmap, first + done, n);
		} else {
			struct cohmem_ioc_wrprotect wp = { .first = first + done, .nr = n, .flags = flags };

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
