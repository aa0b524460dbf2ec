/* SPDX-License-Identifier: MIT */
/*
 * What the page cache holds of a buffer, learnt without a request to this
 * connection: cachestat(2) (Linux 6.5) of a descriptor of the buffer on our
 * own mount. The helper opens it (helper.c) and hands the daemon a
 * duplicate, b->peek_fd, which the daemon never reads, maps or syncs — any
 * of those may wait for a worker — and only asks cachestat() about:
 * cachestat() walks the page cache's tags and sends nothing. Closing it
 * sends no FLUSH (FOPEN_NOFLUSH, fs.c) and, were it the last reference, a
 * RELEASE nobody waits for.
 *
 * Why it is enough to skip a writeback. A write through a mapping dirties
 * its page — tags it dirty in the page cache — before the write
 * instruction completes (the write fault does it), and only the kernel's
 * writeback removes the tag, turning it into the writeback tag under the
 * same lock. So if neither tag is set anywhere in the file, every write
 * that completed before the look has been handed to us as a WRITE — and,
 * where the kernel holds the page under writeback until our reply (Linux
 * 6.16 and later: no temporary copies), has been stored and marked too.
 * Older kernels end the writeback of a page when they have copied it for
 * the WRITE, which may still be queued: there a clean must still sync, to
 * wait for it. Which kind of kernel this is, the daemon learns by looking at
 * the pages of writeback WRITEs as they arrive (peek_learn()).
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon.h"
#include "kabi.h"

/* Observations in a row that the kernel held a page under writeback until we answered. */
#define HELD_TO_TRUST 8

static atomic_int held_seen;		/* < 0: it did not hold one, once: never trusted */

int peek(int fd, uint64_t off, uint64_t len, struct peek_result *ret)
{
	struct cohmem_cachestat_range range = { off, len };
	struct cohmem_cachestat cs;

	if (fd < 0)
		return -EBADF;
	if (syscall(__NR_cachestat, fd, &range, &cs, 0))
		return -errno;	/* ENOSYS before 6.5; EPERM where the kernel restricts it */
	ret->cached = cs.nr_cache;
	ret->dirty = cs.nr_dirty;
	ret->writeback = cs.nr_writeback;
	return 0;
}

int peek_idle(int fd)
{
	struct peek_result r = { 0, 0, 0 };
	int err = peek(fd, 0, 0, &r);

	return err ? err : !r.dirty && !r.writeback;
}

void peek_learn(int fd, uint64_t off, uint64_t len)
{
	struct peek_result r = { 0, 0, 0 };
	int seen = atomic_load(&held_seen);

	if (seen < 0 || seen >= HELD_TO_TRUST || peek(fd, off, len, &r))
		return;
	if (r.writeback)
		atomic_compare_exchange_strong(&held_seen, &seen, seen + 1);
	else
		atomic_store(&held_seen, -1);
}

bool peek_trusted(void)
{
	return atomic_load(&held_seen) >= HELD_TO_TRUST;
}
