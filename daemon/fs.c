/* SPDX-License-Identifier: MIT */
/*
 * The file system: a flat directory of buffers, regular files served from
 * their state files through the page cache (never direct_io, which would
 * refuse MAP_SHARED), plus the cohmem ioctls.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bitmap.h"
#include "daemon.h"

#define ROOT FUSE_ROOT_ID
#define TIMEOUT 1.0

static struct daemon *D(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void cohmemd_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;	/* cohmemctl ls talks to the root directory */
	/* Writes must reach the daemon (write-through), so that every consumer hears of them. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static int entry_of(struct daemon *d, struct buffer *b, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = b->ino;
	e->attr_timeout = e->entry_timeout = TIMEOUT;
	return store_stat(d, b, &e->attr);
}

static void cohmemd_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct daemon *d = D(req);
	struct fuse_entry_param e;
	struct buffer *b;
	int err = -ENOENT;

	pthread_mutex_lock(&d->lock);
	b = parent == ROOT ? store_lookup(d, name) : NULL;
	if (b) {
		err = entry_of(d, b, &e);
		if (!err)
			b->lookups++;
	}
	pthread_mutex_unlock(&d->lock);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_entry(req, &e);
}

static void cohmemd_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct daemon *d = D(req);
	struct buffer *b;

	pthread_mutex_lock(&d->lock);
	b = store_find(d, ino);
	if (b)
		store_put(d, b, nlookup);
	pthread_mutex_unlock(&d->lock);
	fuse_reply_none(req);
}

static void root_stat(struct daemon *d, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ROOT;
	st->st_nlink = 2;
	/* A shared mount is a shared directory, like /tmp; otherwise it is the mounter's. */
	st->st_mode = S_IFDIR | (d->allow_other ? 01777 : 0755);
	st->st_uid = getuid();
	st->st_gid = getgid();
}

static void cohmemd_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct stat st;
	struct buffer *b;
	int err = 0;

	(void)fi;
	if (ino == ROOT) {
		root_stat(d, &st);
		fuse_reply_attr(req, &st, TIMEOUT);
		return;
	}
	pthread_mutex_lock(&d->lock);
	b = store_find(d, ino);
	err = b ? store_stat(d, b, &st) : -ENOENT;
	pthread_mutex_unlock(&d->lock);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static int set_attrs(struct daemon *d, struct buffer *b, const struct stat *attr, int to_set)
{
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
	int err = 0;

	if (to_set & FUSE_SET_ATTR_SIZE) {
		if ((uint64_t)attr->st_size > d->max_bytes)
			return -EFBIG;
		err = store_resize(b, (uint64_t)attr->st_size);
	}
	if (!err && (to_set & FUSE_SET_ATTR_MODE) && fchmod(b->fd, attr->st_mode & 07777))
		err = -errno;
	if (!err && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    fchown(b->fd, to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1,
		   to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1))
		err = -errno;
	if (to_set & FUSE_SET_ATTR_ATIME)
		times[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME)
		times[1] = attr->st_mtim;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		times[0].tv_nsec = UTIME_NOW;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		times[1].tv_nsec = UTIME_NOW;
	if (!err && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
			       FUSE_SET_ATTR_MTIME_NOW)) &&
	    futimens(b->fd, times))
		err = -errno;
	return err;
}

static void cohmemd_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			    struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct stat st;
	struct buffer *b;
	int err;

	(void)fi;
	pthread_mutex_lock(&d->lock);
	b = store_find(d, ino);
	if (!b) {
		err = ino == ROOT ? -EPERM : -ENOENT;
	} else {
		pthread_mutex_lock(&b->lock);
		err = set_attrs(d, b, attr, to_set);
		pthread_mutex_unlock(&b->lock);
		if (!err)
			err = store_stat(d, b, &st);
	}
	pthread_mutex_unlock(&d->lock);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static void cohmemd_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	char *buf = calloc(1, size);
	size_t used = 0;
	struct stat st = { 0 };

	(void)fi;
	if (ino != ROOT || !buf) {
		free(buf);
		fuse_reply_err(req, ino != ROOT ? ENOTDIR : ENOMEM);
		return;
	}
	/* offsets: 1 ".", 2 "..", 3 + i the buffers */
	pthread_mutex_lock(&d->lock);
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
	pthread_mutex_unlock(&d->lock);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

/* A new consumer for b: every open file description is one. */
static int open_consumer(struct buffer *b, struct fuse_file_info *fi)
{
	struct consumer *c;
	int err;

	pthread_mutex_lock(&b->lock);
	err = consumer_new(b, &c);
	pthread_mutex_unlock(&b->lock);
	if (err)
		return err;
	fi->fh = (uintptr_t)c;
	fi->keep_cache = 1;	/* all changes pass through the kernel: its cache stays right */
	fi->direct_io = 0;
	return 0;
}

static void cohmemd_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			   struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct buffer *b = NULL;
	int err;

	if (parent != ROOT) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	pthread_mutex_lock(&d->lock);
	err = store_create(d, name, mode, ctx->uid, ctx->gid, &b);
	if (!err)
		err = open_consumer(b, fi);
	if (!err)
		err = entry_of(d, b, &e);
	if (!err)
		b->lookups++;
	pthread_mutex_unlock(&d->lock);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	logmsg("%s: created by uid %d", name, (int)ctx->uid);
	fuse_reply_create(req, &e, fi);
}

static void cohmemd_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct buffer *b;
	int err;

	pthread_mutex_lock(&d->lock);
	b = store_find(d, ino);
	err = b ? open_consumer(b, fi) : -ENOENT;
	pthread_mutex_unlock(&d->lock);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_open(req, fi);
}

static struct consumer *consumer_of(struct fuse_file_info *fi)
{
	return (struct consumer *)(uintptr_t)fi->fh;
}

static void cohmemd_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct consumer *c = consumer_of(fi);
	struct buffer *b = c->b;

	(void)ino;
	pthread_mutex_lock(&d->lock);
	pthread_mutex_lock(&b->lock);
	consumer_free(c);
	pthread_mutex_unlock(&b->lock);
	store_put(d, b, 0);
	pthread_mutex_unlock(&d->lock);
	fuse_reply_err(req, 0);
}

static void cohmemd_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	(void)ino;
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = consumer_of(fi)->b->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

/*
 * write(2) by anyone, and the kernel writing back pages written through
 * mappings: to the state file, then pending for every consumer.
 */
static void cohmemd_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct buffer *b = consumer_of(fi)->b;
	uint64_t end = (uint64_t)off + size;
	int err;

	(void)ino;
	if (off < 0 || end < (uint64_t)off || end > d->max_bytes) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	pthread_mutex_lock(&b->lock);
	err = state_write_news(d, b, data, size, (uint64_t)off);
	if (!err && end > b->size)
		err = store_resize(b, end);
	if (!err)
		pages_notify(b);
	pthread_mutex_unlock(&b->lock);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_write(req, size);
}

static void cohmemd_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	fuse_reply_err(req, 0);
}

static void cohmemd_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int fd = consumer_of(fi)->b->fd;

	(void)ino;
	fuse_reply_err(req, (datasync ? fdatasync(fd) : fsync(fd)) ? errno : 0);
}

static void cohmemd_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct daemon *d = D(req);
	int err = -ENOENT;

	pthread_mutex_lock(&d->lock);
	if (parent == ROOT)
		err = store_unlink(d, name);
	pthread_mutex_unlock(&d->lock);
	fuse_reply_err(req, -err);
}

static void cohmemd_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
			   const char *newname, unsigned int flags)
{
	struct daemon *d = D(req);
	struct buffer *b, *old;
	int err = 0;

	if (parent != ROOT || newparent != ROOT || (flags & ~RENAME_NOREPLACE)) {
		fuse_reply_err(req, parent != ROOT || newparent != ROOT ? ENOENT : EINVAL);
		return;
	}
	if (!store_name_valid(newname)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	pthread_mutex_lock(&d->lock);
	b = store_lookup(d, name);
	old = store_lookup(d, newname);
	if (!b)
		err = -ENOENT;
	else if (old && (flags & RENAME_NOREPLACE))
		err = -EEXIST;
	else if (renameat(d->state_dir, name, d->state_dir, newname))
		err = -errno;
	if (!err && old && old != b) {
		old->unlinked = true;
		store_put(d, old, 0);
	}
	if (!err)
		snprintf(b->name, sizeof(b->name), "%s", newname);
	pthread_mutex_unlock(&d->lock);
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

/* ---- ioctls --------------------------------------------------------------------- */

static int ioc_clean(struct daemon *d, struct consumer *c, struct cohmem_ioc_clean *io, bool count_only)
{
	struct buffer *b = c->b;
	uint64_t pages;
	bool reaped;
	int err;

	/*
	 * A process that exited took its page tables along; its writes are
	 * dirty pages of the page cache now. Have the kernel write them back
	 * (WRITEs, served by other workers: so without b->lock) before looking.
	 */
	pthread_mutex_lock(&b->lock);
	reaped = mappings_reap(d, b);
	pthread_mutex_unlock(&b->lock);
	if (reaped)
		fuse_lowlevel_notify_inval_inode(d->se, b->ino, 0, 0);

	pthread_mutex_lock(&b->lock);
	pages = (b->size + d->page_size - 1) / d->page_size;
	if (io->nr > COHMEM_IOC_WINDOW || io->first > pages || io->nr > pages - io->first) {
		pthread_mutex_unlock(&b->lock);
		return -EINVAL;
	}
	err = harvest(d, b, io->first, io->nr);	/* every mapping of every process */
	if (!err) {
		io->count = bitmap_count_range(c->pending, io->first, io->nr);
		memset(io->bitmap, 0, sizeof(io->bitmap));
		if (!count_only)
			for (uint64_t pg = bitmap_next_set(c->pending, io->first, io->first + io->nr);
			     pg < io->first + io->nr; pg = bitmap_next_set(c->pending, pg + 1, io->first + io->nr))
				io->bitmap[(pg - io->first) / 64] |= 1ULL << ((pg - io->first) % 64);
		bitmap_clear_range(c->pending, io->first, io->nr);
		pages_notify(b);	/* the others may have gained pages */
	}
	pthread_mutex_unlock(&b->lock);
	return err;
}

static int ioc_ls(struct daemon *d, struct cohmem_ioc_ls *ls)
{
	struct buffer *b = NULL;
	uint32_t seen = 0;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->nbuffers && !b; i++)
		if (!d->buffers[i]->unlinked && seen++ == ls->index)
			b = d->buffers[i];
	if (!b) {
		pthread_mutex_unlock(&d->lock);
		return -ENOENT;
	}
	pthread_mutex_lock(&b->lock);
	snprintf(ls->name, sizeof(ls->name), "%s", b->name);
	ls->size = b->size;
	ls->consumers = (uint32_t)b->nconsumers;
	ls->nmappings = (uint32_t)b->nmappings;
	ls->pending = 0;
	for (size_t i = 0; i < b->nconsumers; i++) {
		uint64_t n = bitmap_count_range(b->consumers[i]->pending, 0, b->bitmap_pages);

		ls->pending = n > ls->pending ? n : ls->pending;
	}
	for (size_t i = 0; i < b->nmappings && i < COHMEM_LS_MAPPINGS; i++) {
		ls->mappings[i].pid = b->mappings[i].pid;
		ls->mappings[i].addr = b->mappings[i].addr;
		ls->mappings[i].len = b->mappings[i].len;
		ls->mappings[i].offset = b->mappings[i].offset;
	}
	{
		struct stat st;

		if (!fstat(b->fd, &st)) {
			ls->mode = st.st_mode & 07777;
			ls->uid = st.st_uid;
			ls->gid = st.st_gid;
		}
	}
	pthread_mutex_unlock(&b->lock);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* Restricted ioctls: in_buf holds exactly _IOC_SIZE(cmd) bytes for a command that writes. */
static void cohmemd_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
			  struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
			  size_t out_bufsz)
{
	struct daemon *d = D(req);
	union {
		struct cohmem_ioc_info info;
		struct cohmem_ioc_attach attach;
		struct cohmem_ioc_detach detach;
		struct cohmem_ioc_clean clean;
		struct cohmem_ioc_wrprotect wrprotect;
		struct cohmem_ioc_ls ls;
	} *io = calloc(1, sizeof(*io));
	size_t size = _IOC_SIZE(cmd);
	struct consumer *c;
	int err = 0;

	(void)arg;
	if (!io) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if ((flags & FUSE_IOCTL_COMPAT) || size > sizeof(*io) ||
	    ((_IOC_DIR(cmd) & _IOC_WRITE) && in_bufsz != size) || ((_IOC_DIR(cmd) & _IOC_READ) && out_bufsz < size)) {
		err = -EINVAL;
		goto out;
	}
	if (in_bufsz)
		memcpy(io, in_buf, in_bufsz);
	if (ino == ROOT) {
		err = cmd == COHMEM_IOC_LS ? ioc_ls(d, &io->ls) : -ENOTTY;
		goto out;
	}
	c = consumer_of(fi);
	switch (cmd) {
	case COHMEM_IOC_INFO:
		pthread_mutex_lock(&c->b->lock);
		io->info = (struct cohmem_ioc_info){ COHMEM_PROTO_VERSION, d->coherence, d->page_size, c->b->size };
		pthread_mutex_unlock(&c->b->lock);
		break;
	case COHMEM_IOC_ATTACH:
		pthread_mutex_lock(&c->b->lock);
		err = mapping_attach(d, c->b, fuse_req_ctx(req)->pid, &io->attach);
		pthread_mutex_unlock(&c->b->lock);
		break;
	case COHMEM_IOC_DETACH:
		pthread_mutex_lock(&c->b->lock);
		err = mapping_detach(d, c->b, fuse_req_ctx(req)->pid, io->detach.addr);
		pthread_mutex_unlock(&c->b->lock);
		break;
	case COHMEM_IOC_CLEAN:
		err = ioc_clean(d, c, &io->clean, false);
		break;
	case COHMEM_IOC_WRPROTECT: {
		struct cohmem_ioc_clean *window = calloc(1, sizeof(*window));

		if (!window) {
			err = -ENOMEM;
			break;
		}
		window->first = io->wrprotect.first;
		window->nr = io->wrprotect.nr;
		err = ioc_clean(d, c, window, true);
		io->wrprotect.count = window->count;
		free(window);
		break;
	}
	default:
		err = -ENOTTY;
	}
out:
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_ioctl(req, 0, (_IOC_DIR(cmd) & _IOC_READ) ? io : NULL,
				 (_IOC_DIR(cmd) & _IOC_READ) ? size : 0);
	free(io);
}

static void cohmemd_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
			 struct fuse_pollhandle *ph)
{
	struct consumer *c = consumer_of(fi);
	struct buffer *b = c->b;
	unsigned revents = 0;

	(void)ino;
	pthread_mutex_lock(&b->lock);
	if (bitmap_next_set(c->pending, 0, b->bitmap_pages) < b->bitmap_pages)
		revents = POLLIN | POLLRDNORM;
	if (ph && !revents) {
		if (c->ph)
			fuse_pollhandle_destroy(c->ph);
		c->ph = ph;	/* pages_notify() wakes it */
	} else if (ph) {
		fuse_pollhandle_destroy(ph);
	}
	pthread_mutex_unlock(&b->lock);
	fuse_reply_poll(req, revents);
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
};
