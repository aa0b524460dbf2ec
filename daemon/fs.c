/* SPDX-License-Identifier: MIT */
/*
 * The file system: a flat directory of buffers, regular files served from
 * their state files through the page cache (never direct_io, which would
 * refuse MAP_SHARED). These run on libfuse's workers and never wait for
 * anything but short locks; the ioctls are in ioctl.c.
 *
 * Identity comes from the kernel: the uid, gid and pid of a request, and the
 * access mode of the description (fi->flags), which the kernel checked
 * against the buffer's mode when it was opened (default_permissions).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "daemon.h"

#define ROOT FUSE_ROOT_ID
#define TIMEOUT 1.0

static struct daemon *D(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct consumer *consumer_of(const struct fuse_file_info *fi)
{
	return (struct consumer *)(uintptr_t)fi->fh;
}

static void cohmemd_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;	/* cohmemctl ls talks to the root directory */
	/* Writes must reach the daemon (write-through), so that every consumer hears of them. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/*
	 * Every change of a buffer's bytes passes through this mount's page
	 * cache, so an attribute refresh that finds a new mtime (the state file
	 * is written at every writeback) means nothing new: with
	 * AUTO_INVAL_DATA the kernel would drop the cached pages — unmapping them
	 * from every process — whenever anyone stat()s a buffer written since.
	 */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* Writeback WRITEs are background requests: let several buffers' run at once. */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static int entry_of(struct daemon *d, struct buffer *b, struct fuse_entry_param *e)
{
	int err;

	memset(e, 0, sizeof(*e));
	e->ino = b->ino;
	e->attr_timeout = e->entry_timeout = TIMEOUT;
	lock_take(&b->lock);
	err = store_stat(d, b, &e->attr);
	lock_drop(&b->lock);
	return err;
}

/*
 * A private name (SELF_NAME_MARK and an inode number), looked up by a thread
 * of the helper: the buffer, unlinked or not. Anyone else finds nothing
 * there. Caller holds d->lock.
 */
static struct buffer *self_lookup(struct daemon *d, fuse_req_t req, const char *name)
{
	unsigned long long ino;
	char *end;

	lock_assert_held(&d->lock);
	if (name[0] != SELF_NAME_MARK || !helper_owns(d, fuse_req_ctx(req)->pid) || name[1] < '0' ||
	    name[1] > '9')
		return NULL;
	errno = 0;
	ino = strtoull(name + 1, &end, 10);
	return errno || *end ? NULL : store_find(d, (fuse_ino_t)ino);
}

static void cohmemd_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct daemon *d = D(req);
	bool private = name[0] == SELF_NAME_MARK;
	struct fuse_entry_param e;
	struct buffer *b = NULL;
	int err = -ENOENT;

	lock_take(&d->lock);
	if (parent == ROOT)
		b = private ? self_lookup(d, req, name) : store_lookup(d, name);
	if (b) {
		err = entry_of(d, b, &e);
		if (!err)
			b->lookups++;
	}
	lock_drop(&d->lock);
	/*
	 * Never cached: the dentry goes with the helper's descriptor, and a
	 * walk to that name by anyone meanwhile asks again (and finds nothing).
	 */
	if (private)
		e.entry_timeout = 0;
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_entry(req, &e);
}

static void cohmemd_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct daemon *d = D(req);
	struct buffer *b;

	lock_take(&d->lock);
	b = store_find(d, ino);
	if (b)
		store_put(d, b, nlookup);
	lock_drop(&d->lock);
	fuse_reply_none(req);
}

static void root_stat(struct stat *st, bool shared)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ROOT;
	st->st_nlink = 2;
	/* A shared mount is a shared directory, like /tmp; otherwise it is the mounter's. */
	st->st_mode = S_IFDIR | (shared ? 01777 : 0755);
	st->st_uid = getuid();
	st->st_gid = getgid();
}

/* The attributes, or the error: what getattr and setattr answer. */
static void reply_attr(fuse_req_t req, int err, const struct stat *st)
{
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, st, TIMEOUT);
}

static void cohmemd_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct stat st;
	struct buffer *b;
	int err;

	(void)fi;
	if (ino == ROOT) {
		root_stat(&st, d->allow_other);
		fuse_reply_attr(req, &st, TIMEOUT);
		return;
	}
	lock_take(&d->lock);
	b = store_find(d, ino);
	err = -ENOENT;
	if (b) {
		lock_take(&b->lock);
		err = store_stat(d, b, &st);
		lock_drop(&b->lock);
	}
	lock_drop(&d->lock);
	reply_attr(req, err, &st);
}

static void cohmemd_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			    struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct stat st;
	struct buffer *b;
	int err;

	(void)fi;
	lock_take(&d->lock);
	b = store_find(d, ino);
	if (!b) {
		err = ino == ROOT ? -EPERM : -ENOENT;
	} else {
		lock_take(&b->lock);
		err = store_setattr(d, b, attr, to_set);
		if (!err)
			err = store_stat(d, b, &st);
		pages_notify(b);	/* truncation marks what it cut */
		lock_drop(&b->lock);
	}
	lock_drop(&d->lock);
	reply_attr(req, err, &st);
}

static void cohmemd_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	char *buf = calloc(1, size ? size : 1);
	size_t used = 0;
	struct stat st = { 0 };

	(void)fi;
	if (ino != ROOT || !buf) {
		free(buf);
		fuse_reply_err(req, ino != ROOT ? ENOTDIR : ENOMEM);
		return;
	}
	/* offsets: 1 ".", 2 "..", 3 + i the buffers */
	lock_take(&d->lock);
	for (off_t i = off; used < size; i++) {
		const char *name;
		size_t len;

		if (i < 2) {
			name = i ? ".." : ".";
			st.st_ino = ROOT;
			st.st_mode = S_IFDIR;
		} else if ((size_t)(i - 2) < d->nbuffers) {
			if (d->buffers[i - 2]->unlinked)
				continue;
			name = d->buffers[i - 2]->name;
			st.st_ino = d->buffers[i - 2]->ino;
			st.st_mode = S_IFREG;
		} else {
			break;
		}
		len = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		if (len > size - used)
			break;
		used += len;
	}
	lock_drop(&d->lock);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

/*
 * A new description of b, for the request's user: a consumer (unless it is
 * the daemon's own), the state file open, charged to whoever opened it.
 * Caller holds d->lock.
 */
static int description_new(struct daemon *d, fuse_req_t req, struct buffer *b, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	bool internal = helper_owns(d, ctx->pid);
	struct consumer *c;
	int err;

	lock_assert_held(&d->lock);
	err = internal ? 0 : user_charge(d, ctx->uid, (struct usage){ .opens = 1 }, false);
	if (err)
		return err;
	lock_take(&b->lock);
	err = store_open(d, b);
	if (!err) {
		err = consumer_new(b, fi->flags & O_ACCMODE, ctx->uid, internal, &c);
		if (err)
			store_close(b);
	}
	lock_drop(&b->lock);
	if (err) {
		if (!internal)
			user_uncharge(d, ctx->uid, (struct usage){ .opens = 1 });
		return err;
	}
	fi->fh = (uintptr_t)c;
	fi->keep_cache = 1;	/* all changes pass through the kernel: its cache stays right */
	fi->direct_io = 0;
	/*
	 * Closing the daemon's own descriptor must never wait on the daemon:
	 * when it dies, its descriptors are flushed before the connection is
	 * aborted. Its passes fdatasync() themselves; no FLUSH is needed.
	 */
	fi->noflush = internal;
	return 0;
}

/* The description is gone (its RELEASE came, or the kernel never took it). Caller holds d->lock. */
static void description_free(struct daemon *d, struct consumer *c)
{
	struct buffer *b = c->b;

	lock_assert_held(&d->lock);
	if (!c->internal)
		user_uncharge(d, c->uid, (struct usage){ .opens = 1 });
	lock_take(&b->lock);
	collect_forget(b, c);
	consumer_free(c);
	store_close(b);
	if (!b->nexternal && b->self_open)
		collect_pass(d, b);	/* nobody left to clean: let the daemon's own descriptor go */
	lock_drop(&b->lock);
	store_put(d, b, 0);
}

static void cohmemd_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			   struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	uid_t uid = ctx->uid;	/* req and its ctx are gone once answered */
	struct fuse_entry_param e;
	struct buffer *b = NULL;
	int err;

	if (parent != ROOT || !S_ISREG(mode)) {
		fuse_reply_err(req, parent != ROOT ? ENOENT : EPERM);
		return;
	}
	lock_take(&d->lock);
	err = store_create(d, name, mode, ctx->uid, ctx->gid, &b);
	if (!err)
		err = description_new(d, req, b, fi);
	if (!err) {
		err = entry_of(d, b, &e);
		if (err) {
			description_free(d, consumer_of(fi));
		} else {
			b->lookups++;
			if (fuse_reply_create(req, &e, fi)) {	/* the caller is gone */
				b->lookups--;
				description_free(d, consumer_of(fi));
			}
		}
	}
	lock_drop(&d->lock);
	if (err)
		fuse_reply_err(req, -err);
	else
		logmsg("%s: created by uid %d", name, (int)uid);
}

static void cohmemd_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct buffer *b;
	int err;

	lock_take(&d->lock);
	b = store_find(d, ino);
	err = b ? description_new(d, req, b, fi) : -ENOENT;
	if (!err && fuse_reply_open(req, fi))
		description_free(d, consumer_of(fi));
	lock_drop(&d->lock);
	if (err)
		fuse_reply_err(req, -err);
}

static void cohmemd_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);

	(void)ino;
	lock_take(&d->lock);
	description_free(d, consumer_of(fi));
	lock_drop(&d->lock);
	fuse_reply_err(req, 0);
}

/*
 * Pages of [off, off + size) whose newest bytes the daemon holds (held.h):
 * the state file's bytes with those over them, in mem (malloc'd); its
 * length, or -errno. Caller holds b->lock.
 */
static ssize_t read_with_held(struct daemon *d, struct buffer *b, size_t size, uint64_t off, char **mem)
{
	uint64_t ps = d->page_size;
	ssize_t n;

	lock_assert_held(&b->lock);
	*mem = malloc(size);
	if (!*mem)
		return -ENOMEM;
	n = pread(b->fd, *mem, size, (off_t)off);
	if (n < 0)
		return -errno;
	for (uint64_t pg = off / ps; n > 0 && pg <= (off + (uint64_t)n - 1) / ps; pg++) {
		const char *copy = held_find(b, pg);
		uint64_t from = pg * ps > off ? pg * ps : off;
		uint64_t to = (pg + 1) * ps < off + (uint64_t)n ? (pg + 1) * ps : off + (uint64_t)n;

		if (copy)
			memcpy(*mem + (from - off), copy + (from - pg * ps), to - from);
	}
	return n;
}

static void cohmemd_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct buffer *b = consumer_of(fi)->b;
	struct daemon *d = D(req);
	char *mem = NULL;
	ssize_t n = 0;
	bool held;

	(void)ino;
	lock_take(&b->lock);
	if (size && off >= 0) {
		uint64_t first = (uint64_t)off / d->page_size, last = ((uint64_t)off + size - 1) / d->page_size;

		held = held_any(b, first, last - first + 1);
	} else {
		held = false;
	}
	if (held)
		n = read_with_held(d, b, size, (uint64_t)off, &mem);
	lock_drop(&b->lock);
	if (held) {
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_buf(req, mem, (size_t)n);
		free(mem);
		return;
	}
	/* b->fd stays open while this description is. */
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = b->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

/*
 * write(2) by anyone, and the kernel writing back pages written through
 * mappings (fi->writepage): to the state file, then pending for every
 * consumer. The answer is the count stored (store_write()).
 */
static void cohmemd_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct buffer *b = consumer_of(fi)->b;
	uint64_t end = (uint64_t)off + size;
	ssize_t stored;

	(void)ino;
	if (off < 0 || end < (uint64_t)off || end > d->limits.max_bytes) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	lock_take(&b->lock);
	if (fi->writepage && b->peek_fd >= 0)
		peek_learn(b->peek_fd, (uint64_t)off, size);	/* still under writeback? (peek.c) */
	stored = store_write(d, b, data, size, (uint64_t)off, fi->writepage ? STORE_WRITEBACK : STORE_WRITE);
	if (stored > 0)
		pages_notify(b);
	lock_drop(&b->lock);
	if (stored < 0)
		fuse_reply_err(req, (int)-stored);
	else
		fuse_reply_write(req, (size_t)stored);	/* a part, when that is all that fitted */
}

static void cohmemd_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	fuse_reply_err(req, 0);
}

/*
 * The kernel sends FSYNC after it wrote the dirty pages back and every WRITE
 * was answered. The daemon's own (a pass) needs nothing more; anybody else's
 * fsync(2) asks for durability: the state file is synced.
 */
static void cohmemd_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct consumer *c = consumer_of(fi);
	struct buffer *b = c->b;
	int err = 0;

	(void)ino;
	if (!c->internal) {
		lock_take(&b->lock);
		if ((datasync ? fdatasync(b->fd) : fsync(b->fd)) == 0)
			b->unsynced = false;
		else
			err = errno;
		lock_drop(&b->lock);
	}
	fuse_reply_err(req, err);
}

static void cohmemd_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct daemon *d = D(req);
	int err = -ENOENT;

	lock_take(&d->lock);
	if (parent == ROOT)
		err = store_unlink(d, name);
	lock_drop(&d->lock);
	fuse_reply_err(req, -err);
}

static void cohmemd_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
			   const char *newname, unsigned int flags)
{
	struct daemon *d = D(req);
	int err;

	if (parent != ROOT || newparent != ROOT || (flags & ~RENAME_NOREPLACE)) {
		fuse_reply_err(req, parent != ROOT || newparent != ROOT ? ENOENT : EINVAL);
		return;
	}
	lock_take(&d->lock);
	err = store_rename(d, name, newname, flags);
	lock_drop(&d->lock);
	fuse_reply_err(req, -err);
}

static void cohmemd_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	fuse_reply_err(req, EPERM);	/* a flat directory of buffers */
}

static void cohmemd_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	(void)ino;
	if (fstatvfs(D(req)->state_dir, &st))
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &st);
}

static void cohmemd_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
			 struct fuse_pollhandle *ph)
{
	struct consumer *c = consumer_of(fi);
	struct buffer *b = c->b;
	unsigned revents = 0;

	(void)ino;
	lock_take(&b->lock);
	if (pages_pending(c))
		revents = POLLIN | POLLRDNORM;
	if (ph && !revents) {
		if (c->ph)
			fuse_pollhandle_destroy(c->ph);
		c->ph = ph;	/* pages_notify() wakes it */
	} else if (ph) {
		fuse_pollhandle_destroy(ph);
	}
	lock_drop(&b->lock);
	fuse_reply_poll(req, revents);
}

static void cohmemd_retrieve_reply(fuse_req_t req, void *cookie, fuse_ino_t ino, off_t offset,
				   struct fuse_bufvec *bufv)
{
	collect_retrieved(D(req), ino, offset, (uintptr_t)cookie, bufv);
	fuse_reply_none(req);
}

const struct fuse_lowlevel_ops cohmemd_ops = {
	.init = cohmemd_init,
	.lookup = cohmemd_lookup,
	.forget = cohmemd_forget,
	.getattr = cohmemd_getattr,
	.setattr = cohmemd_setattr,
	.readdir = cohmemd_readdir,
	.create = cohmemd_create,
	.open = cohmemd_open,
	.release = cohmemd_release,
	.read = cohmemd_read,
	.write = cohmemd_write,
	.flush = cohmemd_flush,
	.fsync = cohmemd_fsync,
	.unlink = cohmemd_unlink,
	.rename = cohmemd_rename,
	.mkdir = cohmemd_mkdir,
	.statfs = cohmemd_statfs,
	.ioctl = cohmemd_ioctl,
	.poll = cohmemd_poll,
	.retrieve_reply = cohmemd_retrieve_reply,
};
