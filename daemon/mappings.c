/* SPDX-License-Identifier: MIT */
/*
 * The mappings processes attach, and the watcher thread that follows them.
 *
 * An attach names a range of the caller's address space; the caller is the
 * pid of the FUSE request, never a pid from the payload. The daemon pins the
 * process with a pidfd first and only then reads /proc/<pid>/maps, which must
 * show that whole range mapping this buffer, shared, at that offset.
 *
 * The watcher wakes for exits (a pidfd becomes readable), for the
 * --interval timer, and to stop. An exited process's dirty pages are still
 * dirty in the page cache but no page table says so any more:
 * invalidating the inode makes the kernel write them back (launder) as
 * WRITE requests, which mark them for every consumer. That call waits for
 * those WRITEs, so it is made without holding any lock, from this thread
 * (never from a request handler).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "daemon.h"

void mapping_close(struct daemon *d, struct mapping *m)
{
	epoll_ctl(d->epoll, EPOLL_CTL_DEL, m->pidfd, NULL);
	close(m->pidfd);
	if (m->pagemap >= 0)
		close(m->pagemap);
}

/* Does [addr, addr + len) of pid map this buffer, shared, with addr at file offset `offset`? */
static bool maps_buffer(struct daemon *d, struct buffer *b, pid_t pid, const struct cohmem_ioc_attach *a)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	uint64_t covered = a->addr;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (covered < a->addr + a->len && getline(&line, &cap, f) > 0) {
		uint64_t start, end, off;
		unsigned maj, min;
		unsigned long ino;
		char perms[5];

		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %lu", &start, &end, perms,
			   &off, &maj, &min, &ino) != 7 || end <= covered)
			continue;
		if (start > covered)
			break;	/* a hole */
		if (perms[3] != 's' || makedev(maj, min) != d->dev || ino != b->ino ||
		    off + (covered - start) != a->offset + (covered - a->addr))
			break;
		covered = end;
	}
	free(line);
	fclose(f);
	return covered >= a->addr + a->len;
}

int mapping_attach(struct daemon *d, struct buffer *b, pid_t pid, const struct cohmem_ioc_attach *a)
{
	uint64_t ps = d->page_size;
	struct mapping m = { .pid = pid, .pagemap = -1, .addr = a->addr, .len = a->len, .offset = a->offset };
	struct mapping *list;
	struct epoll_event ev;
	char path[64];

	if (!a->len || a->addr % ps || a->len % ps || a->offset % ps || a->addr + a->len < a->addr ||
	    a->offset + a->len < a->offset || a->offset + a->len > (b->size + ps - 1) / ps * ps)
		return -EINVAL;
	for (size_t i = 0; i < b->nmappings; i++)
		if (b->mappings[i].pid == pid && b->mappings[i].addr < a->addr + a->len &&
		    a->addr < b->mappings[i].addr + b->mappings[i].len)
			return -EEXIST;
	m.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (m.pidfd < 0)
		return -errno;
	/* Checked after pinning: the maps read are the pinned process's. */
	if (!maps_buffer(d, b, pid, a)) {
		close(m.pidfd);
		return -EINVAL;
	}
	if (d->coherence == COHMEM_COHERENCE_SCAN) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
		m.pagemap = open(path, O_RDONLY | O_CLOEXEC);
		if (m.pagemap < 0) {
			int err = -errno;

			close(m.pidfd);
			return err;
		}
	}
	list = realloc(b->mappings, (b->nmappings + 1) * sizeof(*list));
	if (!list) {
		mapping_close(d, &m);
		return -ENOMEM;
	}
	b->mappings = list;
	m.id = ++d->next_mapping;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = m.id };
	if (epoll_ctl(d->epoll, EPOLL_CTL_ADD, m.pidfd, &ev)) {
		int err = -errno;

		mapping_close(d, &m);
		return err;
	}
	b->mappings[b->nmappings++] = m;
	logmsg("%s: pid %d attached %#llx+%#llx at offset %#llx", b->name, (int)pid,
	       (unsigned long long)a->addr, (unsigned long long)a->len, (unsigned long long)a->offset);
	return 0;
}

static void mapping_remove(struct daemon *d, struct buffer *b, size_t i)
{
	mapping_close(d, &b->mappings[i]);
	b->mappings[i] = b->mappings[--b->nmappings];
}

int mapping_detach(struct daemon *d, struct buffer *b, pid_t pid, uint64_t addr)
{
	for (size_t i = 0; i < b->nmappings; i++) {
		if (b->mappings[i].pid == pid && b->mappings[i].addr == addr) {
			mapping_remove(d, b, i);
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * Drop the mappings of b whose process has exited; true if any was dropped
 * (their dirty pages then need a writeback). Caller holds b->lock.
 */
bool mappings_reap(struct daemon *d, struct buffer *b)
{
	bool reaped = false;

	for (size_t i = 0; i < b->nmappings;) {
		struct pollfd p = { .fd = b->mappings[i].pidfd, .events = POLLIN };

		if (poll(&p, 1, 0) == 1) {
			logmsg("%s: pid %d exited", b->name, (int)b->mappings[i].pid);
			mapping_remove(d, b, i);
			reaped = true;
		} else {
			i++;
		}
	}
	return reaped;
}

/* ---- the watcher ------------------------------------------------------------ */

#define TIMER_ID UINT64_MAX
#define STOP_ID (UINT64_MAX - 1)
#define MAX_FLUSH 64

/* A process exited: drop its mapping; note the buffer, whose dirty pages need a writeback. */
static void process_exited(struct daemon *d, uint64_t id, fuse_ino_t *flush, size_t *nflush)
{
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->nbuffers; i++) {
		struct buffer *b = d->buffers[i];

		pthread_mutex_lock(&b->lock);
		for (size_t j = 0; j < b->nmappings; j++) {
			if (b->mappings[j].id != id)
				continue;
			logmsg("%s: pid %d exited", b->name, (int)b->mappings[j].pid);
			mapping_remove(d, b, j);
			if (*nflush < MAX_FLUSH)
				flush[(*nflush)++] = b->ino;
			break;
		}
		pthread_mutex_unlock(&b->lock);
	}
	pthread_mutex_unlock(&d->lock);
}

/* --interval: collect everything, so pollers wake without anyone cleaning. */
static void collect(struct daemon *d, fuse_ino_t *flush, size_t *nflush)
{
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->nbuffers; i++) {
		struct buffer *b = d->buffers[i];

		pthread_mutex_lock(&b->lock);
		if (b->nmappings && b->nconsumers) {
			if (d->coherence == COHMEM_COHERENCE_SCAN)
				harvest(d, b, 0, b->bitmap_pages);
			else if (*nflush < MAX_FLUSH)	/* writeback: make the kernel write them */
				flush[(*nflush)++] = b->ino;
			pages_notify(b);
		}
		pthread_mutex_unlock(&b->lock);
	}
	pthread_mutex_unlock(&d->lock);
}

static void *watch(void *arg)
{
	struct daemon *d = arg;

	for (;;) {
		struct epoll_event ev[16];
		fuse_ino_t flush[MAX_FLUSH];
		size_t nflush = 0;
		int n = epoll_wait(d->epoll, ev, 16, -1);

		for (int i = 0; i < n; i++) {
			uint64_t ticks;

			if (ev[i].data.u64 == STOP_ID)
				return NULL;
			if (ev[i].data.u64 == TIMER_ID) {
				if (read(d->timer, &ticks, sizeof(ticks)) < 0)
					ticks = 0;
				collect(d, flush, &nflush);
			} else {
				process_exited(d, ev[i].data.u64, flush, &nflush);
			}
		}
		for (size_t i = 0; i < nflush; i++)
			fuse_lowlevel_notify_inval_inode(d->se, flush[i], 0, 0);
	}
}

int watcher_start(struct daemon *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = STOP_ID };

	if (epoll_ctl(d->epoll, EPOLL_CTL_ADD, d->stop, &ev))
		return -errno;
	if (d->interval_ms) {
		struct itimerspec its = {
			.it_interval = { d->interval_ms / 1000, (long)(d->interval_ms % 1000) * 1000000 },
			.it_value = { d->interval_ms / 1000, (long)(d->interval_ms % 1000) * 1000000 },
		};

		ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = TIMER_ID };
		if (timerfd_settime(d->timer, 0, &its, NULL) ||
		    epoll_ctl(d->epoll, EPOLL_CTL_ADD, d->timer, &ev))
			return -errno;
	}
	return -pthread_create(&d->watcher, NULL, watch, d);
}

void watcher_stop(struct daemon *d)
{
	uint64_t one = 1;

	if (write(d->stop, &one, sizeof(one)) == sizeof(one))
		pthread_join(d->watcher, NULL);
}
