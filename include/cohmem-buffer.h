/* SPDX-License-Identifier: MIT */
/*
 * cohmem — the client side of cohmemd, the coherent-buffer daemon.
 *
 * Buffers of cohmemd, the coherent-buffer daemon: files on a cohmemd mount
 * that processes map with MAP_SHARED. Like the kernel's address_space API,
 * these work on a file, not on one mapping: a clean reports the pages
 * written since the calling open file description's last clean — through
 * any mapping, by any process (attached or not, forked, or one that never
 * links libcohmem), or by write(2) — and the daemon has stored them in its
 * state file before the call returns. The daemon learns of writes only from
 * the kernel (the pages it writes back, and write(2)), never from a
 * client's memory. These functions keep no state in the calling process:
 * they work from any thread, and in a forked child as in its parent.
 *
 * Conventions as in <cohmem.h>: 0 or a count, or a negative errno; nothing
 * printed; bad input changes nothing.
 */
#ifndef COHMEM_BUFFER_H
#define COHMEM_BUFFER_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * cohmem_buffer_attach() - announce the caller's mapping of a buffer, so that
 * `cohmemctl ls` shows which process maps what.
 * @fd:     a descriptor of the buffer (on a cohmemd mount), open for writing.
 * @addr:   the start of the caller's writable MAP_SHARED mapping of it, page-aligned.
 * @len:    its length, page-aligned, > 0.
 * @offset: the file offset mapped at @addr, page-aligned.
 *
 * Coherence does not need it: every mapping's writes are seen whether it is
 * attached or not. The daemon takes the caller's process from the request
 * (any of its threads may call), pins it with a pidfd, and checks in
 * /proc/<pid>/maps that the range maps this buffer, shared and writable, at
 * that offset. A process that exits is detached by the daemon; one that
 * unmaps without detaching stays listed until it detaches or exits.
 *
 * Return: 0; -EBADF for a bad @fd or one not open for writing; -ENOTTY if
 * @fd is not a cohmemd buffer; -EPROTO for a cohmemd of another version;
 * -EINVAL for unaligned or empty ranges, or a range that is not a writable
 * shared mapping of this buffer at @offset (or lies past its end); -EEXIST
 * if it overlaps a mapping this process attached already; -EDQUOT past the
 * daemon's --user-attached limit.
 * Thread-safety: any thread.
 */
int cohmem_buffer_attach(int fd, void *addr, size_t len, off_t offset);

/**
 * cohmem_buffer_detach() - withdraw a mapping attached with
 * cohmem_buffer_attach().
 * @fd:   a descriptor of the buffer.
 * @addr: as given to cohmem_buffer_attach().
 * Return: 0; -ENOENT if this process attached nothing at @addr; -EBADF;
 * -ENOTTY; -EPROTO.
 * Thread-safety: any thread (not necessarily the one that attached).
 */
int cohmem_buffer_detach(int fd, void *addr);

/**
 * cohmem_buffer_clean() - cohmem_region_clean() for a buffer: report the pages of
 * [@first_index, @first_index + @nr) of the file written since this open
 * file description's last clean (or its open), whoever else cleaned
 * meanwhile.
 *
 * Same bitmap contract as cohmem_region_clean() (@bitmap_pgoff, @bitmap, @start,
 * @end), with indexes in pages of the file. The daemon first has the kernel
 * write back the file's dirty pages, so every write through any mapping
 * that completed before the call is reported by it, and stored in the state
 * file before it returns (synced to disk too with cohmemd --durable). A
 * page whose bytes could not be stored (the state file system is full) is
 * never reported: the call fails with the store's error until they are.
 * Truncation reports the pages it cut (they read as zeros when the buffer
 * grows again); a write that repeats a page's bytes is reported too.
 *
 * Return: pages reported; -EINVAL for a NULL @bitmap, @bitmap_pgoff >
 * @first_index, or a range past the file's end; -EBADF for a bad @fd or one
 * opened write-only; -ENOTTY; -EPROTO; -ENOSPC, -EIO or -EDQUOT while
 * written pages in the range cannot be stored; another negative errno from
 * the daemon.
 * Thread-safety: any thread.
 */
long cohmem_buffer_clean(int fd, size_t first_index, size_t nr, size_t bitmap_pgoff,
			 unsigned long *bitmap, size_t *start, size_t *end);

/**
 * cohmem_buffer_wrprotect() - cohmem_region_wrprotect() for a buffer: forget what
 * this open file description has pending in the range (the other
 * descriptions keep theirs) and see only later writes.
 * Return: pages it had pending; -EINVAL for a range past the end; -EBADF;
 * -ENOTTY; -EPROTO; the store's error as for cohmem_buffer_clean().
 * Thread-safety: any thread.
 */
long cohmem_buffer_wrprotect(int fd, size_t first_index, size_t nr);

#ifdef __cplusplus
}
#endif

#endif /* COHMEM_BUFFER_H */
