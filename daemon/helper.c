/* SPDX-License-Identifier: MIT */
/*
 * Everything the daemon asks of its own mount, and every read of another
 * process's /proc files, runs in a helper process forked before the mount.
 *
 * Why: a thread whose request to this connection (an fdatasync() of our own
 * descriptor, the writeback it starts, the teardown of a client's memory
 * that dropping a /proc reference can run) has already been read by a
 * worker waits for the answer uninterruptibly, SIGKILL or not. If the
 * daemon is killed then, the workers die, that thread never does, the
 * process keeps /dev/fuse open, the connection is never aborted, and the
 * mount and the waiting thread hang for good. Here the daemon's threads
 * only ever wait on a socket, which SIGKILL interrupts: the daemon dies,
 * /dev/fuse closes, the kernel aborts the connection, and the helper's own
 * waits end with ENOTCONN; it then dies of PR_SET_PDEATHSIG.
 *
 * One channel (a SOCK_SEQPACKET pair) per collector thread and one for the
 * watcher, each served by a thread of the helper: passes of different
 * buffers sync in parallel. The helper holds the daemon's own descriptors,
 * by inode, one per buffer at most. Passes of one buffer never overlap and
 * a pass's CLOSE is answered before the pass ends (collect.c), so a
 * buffer's OPEN, SYNC and CLOSE arrive in order; the helper checks it all
 * the same: a second OPEN of one inode is refused, and a SYNC syncs a
 * duplicate of the descriptor it found, never a number a CLOSE on another
 * channel may have let go (and another open taken) meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "vma.h"

enum helper_op { HELPER_OPEN, HELPER_SYNC, HELPER_CLOSE, HELPER_SYNCFS, HELPER_TGID, HELPER_MAPS };

struct helper_req {
	uint32_t op;
	int32_t pid;			/* TGID: a thread; MAPS: a thread group */
	uint64_t ino, dev;		/* OPEN, SYNC, CLOSE, MAPS */
	uint64_t addr, len, offset;	/* MAPS */
	char path[PATH_MAX];		/* OPEN: the buffer's private name on the mount; SYNCFS: the mount */
};

struct helper {
	pid_t pid;
	unsigned nchannels;
	int fds[];			/* the daemon's ends */
};

/* Which channel this thread uses: set by collect.c and watch.c when they start a thread. */
static _Thread_local int my_channel = -1;

void helper_use_channel(unsigned channel)
{
	my_channel = (int)channel;
}

/* ---- the helper process ------------------------------------------------------- */

struct own_fd {
	uint64_t ino;
	int fd;
};

static pthread_mutex_t own_lock = PTHREAD_MUTEX_INITIALIZER;
static struct own_fd *own;
static size_t nown;

static struct own_fd *own_of(uint64_t ino)	/* own_lock */
{
	for (size_t i = 0; i < nown; i++)
		if (own[i].ino == ino)
			return &own[i];
	return NULL;
}

/* A duplicate of the descriptor held for ino (the caller closes it), or -EBADF. */
static int own_dup(uint64_t ino)
{
	struct own_fd *h;
	int fd = -EBADF;

	pthread_mutex_lock(&own_lock);
	h = own_of(ino);
	if (h) {
		fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			fd = -errno;
	}
	pthread_mutex_unlock(&own_lock);
	return fd;
}

static int own_add(uint64_t ino, int fd)
{
	struct own_fd *t = NULL;
	int err = -EEXIST;	/* one per buffer: a second OPEN means passes overlapped */

	pthread_mutex_lock(&own_lock);
	if (!own_of(ino)) {
		t = realloc(own, (nown + 1) * sizeof(*t));
		err = t ? 0 : -ENOMEM;
	}
	if (t) {
		own = t;
		own[nown++] = (struct own_fd){ ino, fd };
	}
	pthread_mutex_unlock(&own_lock);
	return err;
}

static int own_take(uint64_t ino)
{
	int fd = -1;

	pthread_mutex_lock(&own_lock);
	for (size_t i = 0; i < nown && fd < 0; i++) {
		if (own[i].ino == ino) {
			fd = own[i].fd;
			own[i] = own[--nown];
		}
	}
	pthread_mutex_unlock(&own_lock);
	return fd;
}

/*
 * A descriptor of the buffer at path, inode ino of the mount dev: read-only,
 * or write-only if its mode lets us only write (fdatasync() needs either);
 * held until CLOSE.
 */
static int do_open(const struct helper_req *r)
{
	const int flags = O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
	struct stat st;
	int fd = open(r->path, O_RDONLY | flags), err;

	if (fd < 0 && errno == EACCES)
		fd = open(r->path, O_WRONLY | flags);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || st.st_ino != r->ino || st.st_dev != r->dev) {
		close(fd);	/* not the buffer asked for: never happens, checked all the same */
		return -ENOENT;
	}
	err = own_add(r->ino, fd);
	if (err)
		close(fd);
	return err;
}

static int do_syncfs(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (syncfs(fd))
		err = -errno;
	close(fd);
	return err;
}

/* Tgid: of /proc/<tid>/status, or -errno. */
static int64_t do_tgid(pid_t tid)
{
	char path[64], line[128];
	int tgid = -ESRCH;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

struct maps_check {
	const struct helper_req *r;
	uint64_t covered;	/* [r->addr, covered) maps the buffer as it must */
};

static int maps_check_one(const struct vma_info *v, void *arg)
{
	struct maps_check *c = arg;
	const struct helper_req *r = c->r;

	if (v->start != c->covered || !v->writable || !v->shared || v->dev != r->dev ||
	    v->inode != r->ino || v->offset != r->offset + (c->covered - r->addr))
		return 1;	/* a hole, or not this buffer as it must be */
	c->covered = v->end;
	return 0;
}

/* 1 if [addr, +len) of pid maps the buffer (dev, ino), shared and writable, at offset; else 0. */
static int64_t do_maps(const struct helper_req *r)
{
	struct maps_check c = { .r = r, .covered = r->addr };

	return vma_walk(r->pid, r->addr, r->addr + r->len, maps_check_one, &c) == 0 &&
	       c.covered >= r->addr + r->len;
}

static int64_t serve_one(const struct helper_req *r)
{
	int64_t ret;
	int fd;

	switch (r->op) {
	case HELPER_OPEN:
		return do_open(r);
	case HELPER_SYNC:
		fd = own_dup(r->ino);
		if (fd < 0)
			return fd;
		ret = fdatasync(fd) ? -errno : 0;
		close(fd);	/* NOFLUSH; and the original, if a CLOSE took it, sends the RELEASE now */
		return ret;
	case HELPER_CLOSE:
		fd = own_take(r->ino);
		return fd < 0 ? -EBADF : close(fd) ? -errno : 0;	/* NOFLUSH: RELEASE needs no answer */
	case HELPER_SYNCFS:
		return do_syncfs(r->path);
	case HELPER_TGID:
		return do_tgid(r->pid);
	case HELPER_MAPS:
		return do_maps(r);
	}
	return -EINVAL;
}

/* The answer, and with an OPEN that worked a duplicate of the descriptor, for peek.c. */
static ssize_t answer(int channel, int64_t ret, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { &ret, sizeof(ret) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(channel, &msg, MSG_NOSIGNAL);
}

static void *serve(void *arg)
{
	int channel = (int)(intptr_t)arg;
	struct helper_req r;

	for (;;) {
		ssize_t n = recv(channel, &r, sizeof(r), 0);
		int64_t ret;
		int fd = -1;

		if (n == 0 || (n < 0 && errno != EINTR))
			_exit(0);	/* the daemon is gone */
		if (n != (ssize_t)sizeof(r))
			continue;
		r.path[sizeof(r.path) - 1] = '\0';
		ret = serve_one(&r);
		if (r.op == HELPER_OPEN && ret == 0)
			fd = own_dup(r.ino);	/* < 0: the daemon goes without */
		n = answer(channel, ret, fd);
		if (fd >= 0)
			close(fd);	/* NOFLUSH; the daemon holds the duplicate now */
		if (n != sizeof(ret))
			_exit(0);
	}
	return NULL;
}

static void __attribute__((noreturn)) helper_main(pid_t parent, const int *fds, unsigned n)
{
	pthread_t t;

	/*
	 * It lives exactly as long as the daemon: a SIGTERM to the whole
	 * group (systemd's stop, a terminal's ^C) is the daemon's to handle,
	 * and its orderly stop still needs us for the last syncfs().
	 */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	prctl(PR_SET_NAME, "cohmemd-helper");
	for (unsigned i = 1; i < n; i++)
		if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fds[i]))
			_exit(1);
	serve((void *)(intptr_t)fds[0]);
	_exit(0);
}

/* ---- the daemon's side ---------------------------------------------------------- */

int helper_start(struct daemon *d, unsigned nchannels)
{
	struct helper *h = calloc(1, sizeof(*h) + nchannels * sizeof(int));
	int *theirs = calloc(nchannels, sizeof(int));
	pid_t parent = getpid();
	int err = 0;

	if (!h || !theirs) {
		free(h);
		free(theirs);
		return -ENOMEM;
	}
	h->nchannels = nchannels;
	for (unsigned i = 0; i < nchannels && !err; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
			err = -errno;
		h->fds[i] = err ? -1 : sv[0];
		theirs[i] = err ? -1 : sv[1];
	}
	if (!err) {
		h->pid = fork();
		if (h->pid < 0)
			err = -errno;
		if (h->pid == 0)
			helper_main(parent, theirs, nchannels);	/* single-threaded yet: safe to go on */
	}
	for (unsigned i = 0; i < nchannels; i++)
		if (theirs[i] >= 0)
			close(theirs[i]);
	free(theirs);
	if (err) {
		for (unsigned i = 0; i < nchannels; i++)
			if (h->fds[i] >= 0)
				close(h->fds[i]);
		free(h);
		return err;
	}
	d->helper = h;
	return 0;
}

/* A descriptor that came with msg, if one did; any others are closed. */
static int received_fd(struct msghdr *msg)
{
	int fd = -1;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd < 0)
				fd = got;
			else
				close(got);
		}
	}
	return fd;
}

/*
 * The helper's answer to r, or -ENOTCONN without a helper (the fuzzer) or a
 * channel; *fd (if not NULL) the descriptor that came with it, or -1.
 */
static int64_t helper_call_fd(struct daemon *d, struct helper_req *r, int *fd)
{
	struct helper *h = d->helper;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	int64_t ret;
	struct iovec iov = { &ret, sizeof(ret) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	int got;
	ssize_t n;

	if (fd)
		*fd = -1;
	if (!h || my_channel < 0 || (unsigned)my_channel >= h->nchannels)
		return -ENOTCONN;
	do
		n = send(h->fds[my_channel], r, sizeof(*r), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(*r))
		return -ENOTCONN;
	do
		n = recvmsg(h->fds[my_channel], &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	got = n > 0 ? received_fd(&msg) : -1;
	if (fd)
		*fd = got;
	else if (got >= 0)
		close(got);
	return n == (ssize_t)sizeof(ret) ? ret : -ENOTCONN;
}

static int64_t helper_call(struct daemon *d, struct helper_req *r)
{
	return helper_call_fd(d, r, NULL);
}

int helper_open(struct daemon *d, fuse_ino_t ino, int *peek_fd)
{
	struct helper_req r = { .op = HELPER_OPEN, .ino = ino, .dev = d->dev };
	int err;

	*peek_fd = -1;
	if (snprintf(r.path, sizeof(r.path), "%s/%c%llu", d->mountpoint, SELF_NAME_MARK,
		     (unsigned long long)ino) >= (int)sizeof(r.path))
		return -ENAMETOOLONG;
	err = (int)helper_call_fd(d, &r, peek_fd);
	if (err && *peek_fd >= 0) {
		close(*peek_fd);
		*peek_fd = -1;
	}
	return err;
}

int helper_sync(struct daemon *d, fuse_ino_t ino)
{
	struct helper_req r = { .op = HELPER_SYNC, .ino = ino };

	return (int)helper_call(d, &r);
}

int helper_close(struct daemon *d, fuse_ino_t ino)
{
	struct helper_req r = { .op = HELPER_CLOSE, .ino = ino };

	return (int)helper_call(d, &r);
}

int helper_syncfs(struct daemon *d)
{
	struct helper_req r = { .op = HELPER_SYNCFS };

	snprintf(r.path, sizeof(r.path), "%s", d->mountpoint);
	return (int)helper_call(d, &r);
}

pid_t helper_tgid(struct daemon *d, pid_t tid)
{
	struct helper_req r = { .op = HELPER_TGID, .pid = tid };

	return (pid_t)helper_call(d, &r);
}

int helper_maps(struct daemon *d, pid_t pid, fuse_ino_t ino, uint64_t addr, uint64_t len,
		uint64_t offset)
{
	struct helper_req r = { .op = HELPER_MAPS, .pid = pid, .ino = ino, .dev = d->dev,
				.addr = addr, .len = len, .offset = offset };

	return (int)helper_call(d, &r);
}

/* Its task directory exists: a lookup in /proc that takes no reference to anyone's memory. */
bool helper_owns(struct daemon *d, pid_t tid)
{
	struct helper *h = d->helper;
	char path[64];
	struct stat st;

	if (!h || tid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)h->pid, (int)tid);
	return stat(path, &st) == 0;
}

void helper_stop(struct daemon *d)
{
	struct helper *h = d->helper;

	if (!h)
		return;
	d->helper = NULL;
	for (unsigned i = 0; i < h->nchannels; i++)
		close(h->fds[i]);	/* its threads see EOF and it exits */
	free(h);
}
