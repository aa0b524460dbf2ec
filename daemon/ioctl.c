/* SPDX-License-Identifier: MIT */
/*
 * The cohmem ioctls (shared/cohmemd-proto.h). FUSE passes restricted ioctls
 * only: in_buf holds exactly _IOC_SIZE(cmd) bytes for a command that
 * writes, and the answer is at most out_bufsz bytes. Each command checks
 * what the description may do, every time: attaching needs it open for
 * writing, cleaning for reading.
 *
 * What waits for a writeback pass (a clean with COHMEM_CLEAN_SYNC) or reads
 * another process's /proc files (attach, detach) is answered later, from a
 * collector thread; the rest is answered here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

#define ROOT FUSE_ROOT_ID

/* Who may see which processes map what: root, the daemon's user, and that process's own user. */
static bool may_see(uid_t caller, uid_t owner)
{
	return caller == 0 || caller == getuid() || caller == owner;
}

static void ls_one(struct buffer *b, uid_t caller, struct cohmem_ioc_ls *ls)
{
	snprintf(ls->name, sizeof(ls->name), "%s", b->name);
	ls->size = b->size;
	ls->mode = b->mode;
	ls->uid = b->uid;
	ls->gid = b->gid;
	ls->consumers = (uint32_t)b->nexternal;
	ls->writebacks = b->writebacks;
	ls->pending = 0;
	for (size_t i = 0; i < b->nconsumers; i++) {
		uint64_t n = consumer_owed(b->consumers[i]);

		ls->pending = n > ls->pending ? n : ls->pending;
	}
	ls->nmappings = ls->hidden = 0;
	for (size_t i = 0; i < b->nattached; i++) {
		const struct attachment *a = &b->attached[i];

		if (!may_see(caller, a->uid)) {
			ls->hidden++;
		} else if (ls->nmappings++ < COHMEM_LS_MAPPINGS) {
			ls->mappings[ls->nmappings - 1].pid = a->pid;
			ls->mappings[ls->nmappings - 1].addr = a->addr;
			ls->mappings[ls->nmappings - 1].len = a->len;
			ls->mappings[ls->nmappings - 1].offset = a->offset;
		}
	}
}

static int ioc_ls(struct daemon *d, uid_t caller, struct cohmem_ioc_ls *ls)
{
	struct buffer *b = NULL;
	uint32_t seen = 0, index = ls->index;

	memset(ls, 0, sizeof(*ls));
	ls->index = index;
	lock_take(&d->lock);
	for (size_t i = 0; i < d->nbuffers && !b; i++)
		if (!d->buffers[i]->unlinked && seen++ == index)
			b = d->buffers[i];
	if (b) {
		lock_take(&b->lock);
		ls_one(b, caller, ls);
		lock_drop(&b->lock);
	}
	lock_drop(&d->lock);
	return b ? 0 : -ENOENT;
}

/* How the daemon is served: anyone may ask. */
static void ioc_daemon(struct daemon *d, struct cohmem_ioc_daemon *out)
{
	const struct transport_facts *t = &d->transport;
	const char *name = atomic_load(&t->name);	/* then the rest is set (transport.c) */

	memset(out, 0, sizeof(*out));
	snprintf(out->transport, sizeof(out->transport), "%s", name ? name : "uring");	/* NULL: the ring starts */
	if (name) {
		snprintf(out->why, sizeof(out->why), "%s", t->why);
		out->queues = t->queues;
	}
	out->entries = atomic_load(&t->entries);
	out->flags = d->durable ? COHMEM_INFO_DURABLE : 0;
}

/*
 * A clean or wrprotect: checked here, the caller's whole range [first, end)
 * too, so that it needs no INFO first; answered now, or after a pass when
 * it asks for one.
 */
static int ioc_clean(struct daemon *d, fuse_req_t req, struct consumer *c, unsigned cmd, uint64_t first,
		     uint64_t nr, uint64_t end, uint32_t flags, bool *answered)
{
	struct buffer *b = c->b;
	uint64_t pages;

	*answered = false;
	if (c->accmode == O_WRONLY)
		return -EBADF;
	if (nr > COHMEM_IOC_WINDOW || (flags & ~COHMEM_CLEAN_SYNC) || first > end || nr > end - first)
		return -EINVAL;
	lock_take(&b->lock);
	pages = (b->size + d->page_size - 1) / d->page_size;
	if (end > pages) {
		lock_drop(&b->lock);
		return -EINVAL;
	}
	if (!(flags & COHMEM_CLEAN_SYNC)) {
		clean_answer(req, c, cmd, first, nr);
		*answered = true;
	}
	lock_drop(&b->lock);
	return *answered ? 0 : collect_clean(d, req, c, cmd, first, nr);
}

/* Every command's argument, copied out of the request. */
union ioc_arg {
	struct cohmem_ioc_info info;
	struct cohmem_ioc_attach attach;
	struct cohmem_ioc_detach detach;
	struct cohmem_ioc_clean clean;
	struct cohmem_ioc_wrprotect wrprotect;
	struct cohmem_ioc_ls ls;
	struct cohmem_ioc_daemon daemon;
};

/* 0: answered; 1: answered later (by a collector); -errno: answer with it. */
static int ioc_buffer(struct daemon *d, fuse_req_t req, struct consumer *c, unsigned cmd, union ioc_arg *io)
{
	struct buffer *b = c->b;
	bool answered;
	int err;

	switch (cmd) {
	case COHMEM_IOC_INFO:
		lock_take(&b->lock);
		io->info = (struct cohmem_ioc_info){ .version = COHMEM_PROTO_VERSION, .page_size = d->page_size,
						     .size = b->size, .flags = d->durable ? COHMEM_INFO_DURABLE : 0 };
		lock_drop(&b->lock);
		return fuse_reply_ioctl(req, 0, &io->info, sizeof(io->info)), 0;
	case COHMEM_IOC_ATTACH:
		if (c->accmode == O_RDONLY)
			return -EBADF;
		err = collect_attach(d, req, b, &io->attach);
		return err ? err : 1;
	case COHMEM_IOC_DETACH:
		err = collect_detach(d, req, b, io->detach.addr);
		return err ? err : 1;
	case COHMEM_IOC_CLEAN:
		err = ioc_clean(d, req, c, cmd, io->clean.first, io->clean.nr, io->clean.end, io->clean.flags,
				&answered);
		return err ? err : answered ? 0 : 1;
	case COHMEM_IOC_WRPROTECT:
		err = ioc_clean(d, req, c, cmd, io->wrprotect.first, io->wrprotect.nr, io->wrprotect.end,
				io->wrprotect.flags, &answered);
		return err ? err : answered ? 0 : 1;
	default:
		return -ENOTTY;
	}
}

void cohmemd_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg, struct fuse_file_info *fi,
		   unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct daemon *d = fuse_req_userdata(req);
	union ioc_arg *io = calloc(1, sizeof(*io));
	size_t size = _IOC_SIZE(cmd);
	int err;

	(void)arg;
	if (!io) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if ((flags & FUSE_IOCTL_COMPAT) || size > sizeof(*io) ||
	    ((_IOC_DIR(cmd) & _IOC_WRITE) && in_bufsz != size) || ((_IOC_DIR(cmd) & _IOC_READ) && out_bufsz < size)) {
		err = -EINVAL;
	} else {
		if (in_bufsz)
			memcpy(io, in_buf, in_bufsz);
		if (ino == ROOT && cmd == COHMEM_IOC_DAEMON) {
			ioc_daemon(d, &io->daemon);
			fuse_reply_ioctl(req, 0, &io->daemon, sizeof(io->daemon));
			err = 0;
		} else if (ino == ROOT) {
			err = cmd == COHMEM_IOC_LS ? ioc_ls(d, fuse_req_ctx(req)->uid, &io->ls) : -ENOTTY;
			if (!err)
				fuse_reply_ioctl(req, 0, &io->ls, sizeof(io->ls));
		} else {
			err = ioc_buffer(d, req, (struct consumer *)(uintptr_t)fi->fh, cmd, io);
		}
	}
	if (err < 0)
		fuse_reply_err(req, -err);
	free(io);
}
