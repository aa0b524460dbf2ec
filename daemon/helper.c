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
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "vma.h"

enum helper_op {
	HELPER_OPEN, HELPER_SYNC, HELPER_CLOSE, HELPER_SYNCFS, HELPER_TGID, HELPER_MAPS, HELPER_COMPARE, HELPER_DROP,
};

struct helper_req {
	uint32_t op;
	int32_t pid;			/* TGID: a thread; MAPS: a thread group */
	uint64_t ino, dev;		/* OPEN, SYNC, CLOSE, MAPS */
	uint64_t addr, len, offset;	/* MAPS; COMPARE: pages [addr, len) of a buffer of offset bytes; DROP */
	char path[PATH_MAX];		/* OPEN: the buffer's private name on the mount; SYNCFS: the mount */
};

struct helper {
	pid_t pid;
	unsigned nchannels;
	size_t area_size;
	struct compare_area **areas;	/* one per channel, shared with the helper */
	int fds[];			/* the daemon's ends */
};

/* The helper's view of the areas: mapped before the fork, so at the same addresses. */
static struct compare_area **helper_areas;
static size_t helper_page_size;

/* Which channel this thread uses: set by collect.c and watch.c when they start a thread. */
static _Thread_local int my_channel = -1;

void helper_use_channel(unsigned channel)
{
	my_channel = (int)channel;
}

/* Control room for one descriptor in a message. */
union fd_control {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

/* Have msg carry fd (SCM_RIGHTS) in u, or no descriptor if fd < 0. */
static void put_fd(struct msghdr *msg, union fd_control *u, int fd)
{
	struct cmsghdr *c;

	msg->msg_control = NULL;
	msg->msg_controllen = 0;
	if (fd < 0)
		return;
	msg->msg_control = u->buf;
	msg->msg_controllen = sizeof(u->buf);
	c = CMSG_FIRSTHDR(msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
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

/* ---- the helper process ------------------------------------------------------- */

struct own_fd {
	uint64_t ino;
	int fd;
	void *map;			/* COMPARE's read-only view of it, or NULL */
	size_t map_len;
	void *state_map;		/* and of its state file */
	size_t state_len;
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
		own[nown++] = (struct own_fd){ ino, fd, NULL, 0, NULL, 0 };
	}
	pthread_mutex_unlock(&own_lock);
	return err;
}

/* A view to unmap: with own_lock dropped, for unmapping the buffer's writes it back (FUSE). */
struct old_view {
	void *map;
	size_t len;
};

static void old_view_unmap(struct old_view v)
{
	if (v.map)
		munmap(v.map, v.len);
}

static int own_take(uint64_t ino)
{
	struct old_view view = { NULL, 0 }, state = { NULL, 0 };
	int fd = -1;

	pthread_mutex_lock(&own_lock);
	for (size_t i = 0; i < nown && fd < 0; i++) {
		if (own[i].ino == ino) {
			fd = own[i].fd;
			view = (struct old_view){ own[i].map, own[i].map_len };
			state = (struct old_view){ own[i].state_map, own[i].state_len };
			own[i] = own[--nown];
		}
	}
	pthread_mutex_unlock(&own_lock);
	old_view_unmap(view);	/* writes the buffer back (FUSE): not under own_lock */
	old_view_unmap(state);
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

/* A view of len bytes of fd at *map (of *map_len bytes, or none), grown by doubling; 0 or -errno. */
/*
 * A view of len bytes of fd at *map (of *map_len bytes, or none), grown by
 * doubling; the one it replaces into *old. 0 or -errno.
 */
static int view_grow(int fd, void **map, size_t *map_len, size_t len, struct old_view *old)
{
	size_t want = *map_len ? *map_len : 1 << 20;
	void *m;

	if (*map_len >= len)
		return 0;
	while (want < len)
		want *= 2;
	m = mmap(NULL, want, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	/* Only pages the page cache holds are read: no read-ahead of the others (READs to the daemon). */
	madvise(m, want, MADV_RANDOM);
	*old = (struct old_view){ *map, *map_len };
	*map = m;
	*map_len = want;
	return 0;
}

/*
 * Read-only views of buffer ino (through our own descriptor) and of its
 * state file (state, the first time), both at least end pages long, and
 * which of pages [first, end) the page cache holds, into vec (mincore()).
 * The views stay until CLOSE: FUSE writes a file back whenever a mapping of
 * it goes away (fuse_vma_close()), which would undo what comparing is for,
 * and a view kept is a view whose pages are mapped already. 0 or -errno
 * (-EACCES: our descriptor is write-only).
 */
static int views(uint64_t ino, int state, uint64_t first, uint64_t end, unsigned char *vec, const char **buf,
		 const char **stored)
{
	size_t ps = helper_page_size, need = end * ps;
	struct old_view old = { NULL, 0 }, old_state = { NULL, 0 };
	struct own_fd *h;
	int err;

	pthread_mutex_lock(&own_lock);
	h = own_of(ino);
	err = !h ? -EBADF : view_grow(h->fd, &h->map, &h->map_len, need, &old);
	if (!err)
		err = view_grow(state, &h->state_map, &h->state_len, need, &old_state);
	if (!err && mincore((char *)h->map + first * ps, (end - first) * ps, vec))
		err = -errno;
	if (!err) {
		*buf = h->map;
		*stored = h->state_map;
	}
	pthread_mutex_unlock(&own_lock);
	old_view_unmap(old);	/* a writeback of the buffer: other buffers' SYNCs need own_lock meanwhile */
	old_view_unmap(old_state);
	return err;
}

/*
 * A page of a view past the end of its file raises SIGBUS: the buffer was
 * cut while we compared. The thread's guard takes it back to compare_run().
 */
static _Thread_local sigjmp_buf *bus_guard;

static void on_sigbus(int sig)
{
	if (bus_guard)
		siglongjmp(*bus_guard, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * The pages of a run [pg, pg + n) whose bytes in the page cache (buf) differ
 * from the state file's (stored): into the area, until it is full. The page
 * at which it stopped.
 */
static __attribute__((noinline)) int64_t compare_pages(const char *buf, const char *stored, uint64_t pg, uint64_t n,
						       uint64_t size, struct compare_area *a)
{
	size_t ps = helper_page_size;

	for (uint64_t p = pg; p < pg + n && p * ps < size; p++) {
		size_t len = size - p * ps < ps ? size - p * ps : ps;

		if (!memcmp(buf + p * ps, stored + p * ps, len))
			continue;
		if (a->n == COMPARE_PAGES)
			return (int64_t)p;
		a->pg[a->n] = p;
		a->len[a->n] = (uint32_t)len;
		memcpy(compare_data(a, a->n, ps), buf + p * ps, len);
		a->n++;
	}
	return (int64_t)(pg + n);
}

/* compare_pages(), or -EAGAIN if the buffer was cut meanwhile (a view's page raised SIGBUS). */
static int64_t compare_run(const char *buf, const char *stored, uint64_t pg, uint64_t n, uint64_t size,
			   struct compare_area *a)
{
	sigjmp_buf jb;
	int64_t at;

	if (sigsetjmp(jb, 1)) {
		bus_guard = NULL;
		return -EAGAIN;
	}
	bus_guard = &jb;
	at = compare_pages(buf, stored, pg, n, size, a);
	bus_guard = NULL;
	return at;
}

/*
 * COMPARE: of pages [addr, len) of the buffer (offset bytes long), those in
 * the page cache whose bytes differ from the state file's (the descriptor
 * that came with the request) go into the channel's area, with their bytes,
 * until it is full; a->next says where to go on. Only pages the page cache
 * holds are read: reading others would ask the daemon for what it has
 * already. The count found, or -errno (-EACCES: our descriptor cannot read,
 * the buffer's mode lets us only write; -EAGAIN: the buffer was cut).
 */
static int64_t do_compare(const struct helper_req *r, int state, struct compare_area *a)
{
	size_t ps = helper_page_size;
	uint64_t pages = (r->offset + ps - 1) / ps, end = r->len < pages ? r->len : pages, pg = r->addr;
	const char *buf = NULL, *stored = NULL;
	unsigned char *vec;
	int64_t ret;

	a->n = 0;
	a->next = end;
	if (state < 0)
		return -EBADF;
	if (pg >= end)
		return 0;
	vec = malloc(end - pg);
	if (!vec)
		return -ENOMEM;
	ret = views(r->ino, state, pg, end, vec, &buf, &stored);
	while (!ret && pg < end) {
		uint64_t n = 0, first = r->addr;
		int64_t at;

		if (!(vec[pg - first] & 1)) {
			pg++;
			continue;
		}
		while (pg + n < end && n < COMPARE_RUN && (vec[pg + n - first] & 1))
			n++;
		at = compare_run(buf, stored, pg, n, r->offset, a);
		if (at < 0) {
			ret = at;
		} else if ((uint64_t)at < pg + n) {
			a->next = (uint64_t)at;	/* the area is full */
			break;
		}
		pg += n;
	}
	free(vec);
	return ret < 0 ? ret : (int64_t)a->n;
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
	case HELPER_COMPARE:
		return -EINVAL;	/* needs the state file: see serve() */
	case HELPER_DROP:
		/* Clean pages no one maps go: what reads them next asks the daemon. */
		fd = own_dup(r->ino);
		if (fd < 0)
			return fd;
		ret = -posix_fadvise(fd, (off_t)r->offset, (off_t)r->len, POSIX_FADV_DONTNEED);
		close(fd);
		return ret;
	}
	return -EINVAL;
}

/* The answer, and with an OPEN that worked a duplicate of the descriptor, for peek.c. */
static ssize_t answer(int channel, int64_t ret, int fd)
{
	union fd_control u;
	struct iovec iov = { &ret, sizeof(ret) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	put_fd(&msg, &u, fd);
	return sendmsg(channel, &msg, MSG_NOSIGNAL);
}

struct channel {
	int fd;
	unsigned index;
};

static void *serve(void *arg)
{
	struct channel ch = *(struct channel *)arg;
	union fd_control u;
	struct helper_req r;

	free(arg);
	for (;;) {
		struct iovec iov = { &r, sizeof(r) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				      .msg_controllen = sizeof(u.buf) };
		ssize_t n = recvmsg(ch.fd, &msg, MSG_CMSG_CLOEXEC);
		int channel = ch.fd, state;
		int64_t ret;
		int fd = -1;

		if (n == 0 || (n < 0 && errno != EINTR))
			_exit(0);	/* the daemon is gone */
		state = n > 0 ? received_fd(&msg) : -1;
		if (n != (ssize_t)sizeof(r)) {
			if (state >= 0)
				close(state);
			continue;
		}
		r.path[sizeof(r.path) - 1] = '\0';
		if (r.op == HELPER_COMPARE)
			ret = do_compare(&r, state, helper_areas[ch.index]);
		else
			ret = serve_one(&r);
		if (state >= 0)
			close(state);
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
	signal(SIGBUS, on_sigbus);	/* a view read past a cut (compare_run()) */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	prctl(PR_SET_NAME, "cohmemd-helper");
	for (unsigned i = 0; i < n; i++) {
		struct channel *ch = malloc(sizeof(*ch));

		if (!ch)
			_exit(1);
		*ch = (struct channel){ fds[i], i };
		if (i + 1 == n)
			serve(ch);
		else if (pthread_create(&t, NULL, serve, ch))
			_exit(1);
	}
	_exit(0);
}

/* ---- the daemon's side ---------------------------------------------------------- */

static void areas_free(struct helper *h)
{
	for (unsigned i = 0; h->areas && i < h->nchannels; i++)
		if (h->areas[i])
			munmap(h->areas[i], h->area_size);
	free(h->areas);
}

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
	for (unsigned i = 0; i < nchannels; i++)
		h->fds[i] = theirs[i] = -1;
	h->area_size = compare_area_size(d->page_size);
	h->areas = calloc(nchannels, sizeof(*h->areas));
	if (!h->areas)
		err = -ENOMEM;
	for (unsigned i = 0; i < nchannels && !err; i++) {
		/* Shared, and mapped before the fork: the helper's threads fill them, we read them. */
		void *m = mmap(NULL, h->area_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			err = -errno;
		else
			h->areas[i] = m;
	}
	helper_areas = h->areas;
	helper_page_size = d->page_size;
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
		helper_areas = NULL;
		for (unsigned i = 0; i < nchannels; i++)
			if (h->fds[i] >= 0)
				close(h->fds[i]);
		areas_free(h);
		free(h);
		return err;
	}
	d->helper = h;
	return 0;
}

/*
 * The helper's answer to r, or -ENOTCONN without a helper (the fuzzer) or a
 * channel; *fd (if not NULL) the descriptor that came with it, or -1.
 */
static int64_t helper_call_fd(struct daemon *d, struct helper_req *r, int send_fd, int *fd)
{
	struct helper *h = d->helper;
	union fd_control u;
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
	iov = (struct iovec){ r, sizeof(*r) };
	put_fd(&msg, &u, send_fd);
	do
		n = sendmsg(h->fds[my_channel], &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(*r))
		return -ENOTCONN;
	iov = (struct iovec){ &ret, sizeof(ret) };
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
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
	return helper_call_fd(d, r, -1, NULL);
}

int helper_open(struct daemon *d, fuse_ino_t ino, int *peek_fd)
{
	struct helper_req r = { .op = HELPER_OPEN, .ino = ino, .dev = d->dev };
	int err;

	*peek_fd = -1;
	if (snprintf(r.path, sizeof(r.path), "%s/%c%llu", d->mountpoint, SELF_NAME_MARK,
		     (unsigned long long)ino) >= (int)sizeof(r.path))
		return -ENAMETOOLONG;
	err = (int)helper_call_fd(d, &r, -1, peek_fd);
	if (err && *peek_fd >= 0) {
		close(*peek_fd);
		*peek_fd = -1;
	}
	return err;
}

int64_t helper_compare(struct daemon *d, fuse_ino_t ino, uint64_t first, uint64_t end, uint64_t size, int state,
		       struct compare_area **area)
{
	struct helper_req r = { .op = HELPER_COMPARE, .ino = ino, .addr = first, .len = end, .offset = size };
	struct helper *h = d->helper;

	if (!h || my_channel < 0 || (unsigned)my_channel >= h->nchannels)
		return -ENOTCONN;
	*area = h->areas[my_channel];
	return helper_call_fd(d, &r, state, NULL);
}

int helper_sync(struct daemon *d, fuse_ino_t ino)
{
	struct helper_req r = { .op = HELPER_SYNC, .ino = ino };

	return (int)helper_call(d, &r);
}

int helper_drop(struct daemon *d, fuse_ino_t ino, uint64_t off, uint64_t len)
{
	struct helper_req r = { .op = HELPER_DROP, .ino = ino, .offset = off, .len = len };

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
	areas_free(h);
	free(h);
}
