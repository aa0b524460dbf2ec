/* SPDX-License-Identifier: MIT */
/*
 * The mappings processes announce with COHMEM_IOC_ATTACH. Coherence does not
 * depend on them — every write reaches the daemon through the kernel's
 * writeback — so an attachment only tells `cohmemctl ls` who maps what.
 * It is still checked as if it mattered: the caller is the thread of the
 * FUSE request, never a pid from the payload; its thread group is pinned
 * with a pidfd before /proc/<pid>/maps is read; the range must map this
 * buffer shared and writable, at that offset.
 *
 * Reading another process's /proc files takes references to its memory, and
 * dropping the last one runs its teardown, which writes dirty pages of this
 * file system back and so waits for requests of this connection: the reads
 * are the helper's (helper.c), and these functions run on collector threads
 * only, holding no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon.h"

pid_t thread_group(struct daemon *d, pid_t tid, int *pidfd)
{
	pid_t tgid = helper_tgid(d, tid);
	char path[64];
	struct stat st;
	int fd;

	if (tgid < 0)
		return tgid;
	fd = (int)syscall(SYS_pidfd_open, tgid, 0);
	if (fd < 0)
		return -errno;
	/* Pinned; the thread must still be one of its threads (tids are recycled). */
	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)tgid, (int)tid);
	if (stat(path, &st)) {
		close(fd);
		return -ESRCH;
	}
	*pidfd = fd;
	return tgid;
}

int attach_verify(struct daemon *d, struct buffer *b, pid_t tid, const struct cohmem_ioc_attach *a,
		  struct attachment *ret)
{
	uint64_t ps = d->page_size, size;
	fuse_ino_t ino = b->ino;
	pid_t pid;
	int pidfd;

	lock_take(&b->lock);
	size = (b->size + ps - 1) / ps * ps;
	lock_drop(&b->lock);
	if (!a->len || a->addr % ps || a->len % ps || a->offset % ps || a->addr + a->len < a->addr ||
	    a->offset + a->len < a->offset || a->offset + a->len > size)
		return -EINVAL;
	pid = thread_group(d, tid, &pidfd);
	if (pid < 0)
		return pid;
	/* Checked after pinning: the maps read are the pinned process's. */
	if (helper_maps(d, pid, ino, a->addr, a->len, a->offset) != 1) {
		close(pidfd);
		return -EINVAL;
	}
	*ret = (struct attachment){ .pid = pid, .pidfd = pidfd, .addr = a->addr, .len = a->len,
				    .offset = a->offset };
	return 0;
}

void attach_close(struct daemon *d, struct attachment *a)
{
	epoll_ctl(d->epoll, EPOLL_CTL_DEL, a->pidfd, NULL);
	close(a->pidfd);
	user_uncharge(d, a->uid, (struct usage){ .attached = 1 });
}

int attach_add(struct daemon *d, struct buffer *b, struct attachment *a)
{
	struct attachment *list;
	struct epoll_event ev;
	int err;

	lock_assert_held(&d->lock);
	lock_assert_held(&b->lock);
	for (size_t i = 0; i < b->nattached; i++)
		if (b->attached[i].pid == a->pid && b->attached[i].addr < a->addr + a->len &&
		    a->addr < b->attached[i].addr + b->attached[i].len)
			return -EEXIST;
	err = user_charge(d, a->uid, (struct usage){ .attached = 1 }, false);
	if (err)
		return err;
	list = realloc(b->attached, (b->nattached + 1) * sizeof(*list));
	if (!list) {
		user_uncharge(d, a->uid, (struct usage){ .attached = 1 });
		return -ENOMEM;
	}
	b->attached = list;
	a->id = ++d->next_attachment;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = a->id };
	if (epoll_ctl(d->epoll, EPOLL_CTL_ADD, a->pidfd, &ev)) {
		err = -errno;
		user_uncharge(d, a->uid, (struct usage){ .attached = 1 });
		return err;
	}
	b->attached[b->nattached++] = *a;
	logmsg("%s: pid %d attached %#llx+%#llx at offset %#llx", b->name, (int)a->pid,
	       (unsigned long long)a->addr, (unsigned long long)a->len, (unsigned long long)a->offset);
	return 0;
}

static void attach_drop(struct daemon *d, struct buffer *b, size_t i)
{
	attach_close(d, &b->attached[i]);
	b->attached[i] = b->attached[--b->nattached];
}

int attach_remove(struct daemon *d, struct buffer *b, pid_t pid, uint64_t addr)
{
	lock_assert_held(&d->lock);
	lock_assert_held(&b->lock);
	for (size_t i = 0; i < b->nattached; i++) {
		if (b->attached[i].pid == pid && b->attached[i].addr == addr) {
			attach_drop(d, b, i);
			return 0;
		}
	}
	return -ENOENT;
}

void attach_exited(struct daemon *d, uint64_t id)
{
	lock_take(&d->lock);
	for (size_t i = 0; i < d->nbuffers; i++) {
		struct buffer *b = d->buffers[i];

		lock_take(&b->lock);
		for (size_t j = 0; j < b->nattached; j++) {
			if (b->attached[j].id != id)
				continue;
			logmsg("%s: pid %d exited", b->name, (int)b->attached[j].pid);
			attach_drop(d, b, j);
			break;
		}
		lock_drop(&b->lock);
	}
	lock_drop(&d->lock);
}
