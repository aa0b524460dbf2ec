/* SPDX-License-Identifier: MIT */
/*
 * Scan mode: the pages written through every attached mapping, in every
 * process, reach the state file and every consumer.
 *
 * Each mapping's process registered it with a WP_ASYNC userfaultfd (in
 * cohmem_buffer_attach()), so PAGEMAP_SCAN on /proc/<pid>/pagemap reports its
 * written pages and protects them again, atomically per page. Their bytes are
 * read out of that process with process_vm_readv() — every mapping shows the
 * same page-cache page — and written to the state file through io_uring,
 * batched, before the pages are marked for the consumers. A write that lands
 * after the scan protected its page faults and is reported by the next
 * harvest; the copy read may already hold it, which is harmless.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon.h"
#include "pagemap.h"

#define BATCH_BYTES (4u << 20)
#define BATCH_OPS 64

/* Each thread that harvests has its own ring and staging buffer: no lock on the hot path. */
struct writer {
	struct io_uring ring;
	char *buf;
	size_t used;
	unsigned ops;
	bool ready;
};

static __thread struct writer writer;
static pthread_key_t writer_key;	/* tears a thread's writer down when the thread exits */
static pthread_once_t writer_key_once = PTHREAD_ONCE_INIT;

static void writer_exit(void *arg)
{
	struct writer *w = arg;

	io_uring_queue_exit(&w->ring);
	free(w->buf);
	w->ready = false;
}

static void writer_key_create(void)
{
	pthread_key_create(&writer_key, writer_exit);
}

static int writer_init(struct writer *w)
{
	int err;

	if (w->ready)
		return 0;
	pthread_once(&writer_key_once, writer_key_create);
	w->buf = malloc(BATCH_BYTES);
	if (!w->buf)
		return -ENOMEM;
	err = io_uring_queue_init(BATCH_OPS, &w->ring, 0);
	if (!err && pthread_setspecific(writer_key, w)) {
		io_uring_queue_exit(&w->ring);
		err = -ENOMEM;
	}
	if (err) {
		free(w->buf);
		return err;
	}
	w->ready = true;
	return 0;
}

/* Submit what is staged and wait for all of it: the state file has it on return. */
static int writer_flush(struct writer *w)
{
	int err = 0;

	if (!w->ops)
		return 0;
	io_uring_submit_and_wait(&w->ring, w->ops);
	for (unsigned i = 0; i < w->ops; i++) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe(&w->ring, &cqe);

		if (!ret && cqe->res < 0 && !err)
			err = cqe->res;
		else if (!ret && (unsigned)cqe->res != (unsigned)cqe->user_data && !err)
			err = -EIO;	/* short write */
		if (!ret)
			io_uring_cqe_seen(&w->ring, cqe);
	}
	w->ops = 0;
	w->used = 0;
	return err;
}

struct harvest {
	struct daemon *d;
	struct buffer *b;
	struct mapping *m;
	struct writer *w;
};

/* Read len bytes at the process's addr into the staging buffer and queue their write. */
static int stage(struct harvest *h, uintptr_t addr, size_t len, uint64_t file_off)
{
	struct writer *w = h->w;
	struct iovec local, remote;
	struct io_uring_sqe *sqe;
	ssize_t got;
	int err;

	if (w->used + len > BATCH_BYTES || w->ops == BATCH_OPS) {
		err = writer_flush(w);
		if (err)
			return err;
	}
	local = (struct iovec){ w->buf + w->used, len };
	remote = (struct iovec){ (void *)addr, len };
	got = process_vm_readv(h->m->pid, &local, 1, &remote, 1, 0);
	if (got != (ssize_t)len)
		return got < 0 ? -errno : -EIO;
	sqe = io_uring_get_sqe(&w->ring);
	io_uring_prep_write(sqe, h->b->fd, local.iov_base, (unsigned)len, file_off);
	io_uring_sqe_set_data64(sqe, len);	/* what the completion must say */
	w->used += len;
	w->ops++;
	return 0;
}

/* One written run of the mapping: its bytes to the state file, its pages to the consumers. */
static int on_written(void *arg, uintptr_t start, uintptr_t end)
{
	struct harvest *h = arg;
	size_t ps = h->d->page_size;
	uint64_t off = h->m->offset + (start - h->m->addr);
	int err = 0;

	for (uintptr_t a = start; a < end && !err;) {
		size_t len = end - a < BATCH_BYTES ? end - a : BATCH_BYTES;

		err = stage(h, a, len, off + (a - start));
		a += len;
	}
	if (!err)
		pages_mark(h->b, off / ps, (end - start) / ps);
	return err;
}

int harvest(struct daemon *d, struct buffer *b, uint64_t first, uint64_t n)
{
	struct harvest h = { .d = d, .b = b, .w = &writer };
	size_t ps = d->page_size;
	int err = writer_init(&writer), ret;

	if (err || d->coherence != COHMEM_COHERENCE_SCAN)
		return err;
	for (size_t i = 0; i < b->nmappings; i++) {
		struct mapping *m = &b->mappings[i];
		uint64_t lo = m->offset / ps, hi = (m->offset + m->len) / ps;

		lo = lo > first ? lo : first;
		hi = hi < first + n ? hi : first + n;
		if (lo >= hi)
			continue;
		h.m = m;
		ret = pagemap_scan_written(m->pagemap, m->addr + (lo * ps - m->offset),
					   m->addr + (hi * ps - m->offset), b->vec, SCAN_VEC, on_written, &h);
		/* The bytes of what was marked must be written before anyone is told. */
		err = writer_flush(&writer);
		if (ret == -ESRCH || ret == -EPERM || ret == -ENOENT)
			continue;	/* the process is gone or unmapped it: the watcher drops it */
		if (ret)
			return ret;
		if (err)
			return err;
	}
	return 0;
}

/*
 * A WRITE request: write(2) by anyone, or the kernel writing back pages
 * written through mappings. In scan mode the second kind is mostly pages a
 * harvest already stored: bytes the state file holds are not news, so each
 * page is marked for the consumers only if it differs.
 */
int state_write_news(struct daemon *d, struct buffer *b, const char *data, size_t len, uint64_t off)
{
	size_t ps = d->page_size;
	char *old = malloc(ps);
	ssize_t done;

	if (!old)
		return -ENOMEM;
	for (uint64_t at = off; at < off + len;) {
		uint64_t page_end = (at / ps + 1) * ps < off + len ? (at / ps + 1) * ps : off + len;
		size_t n = (size_t)(page_end - at);
		ssize_t got = pread(b->fd, old, n, (off_t)at);

		if (got != (ssize_t)n || memcmp(old, data + (at - off), n))
			pages_mark(b, at / ps, 1);
		at = page_end;
	}
	free(old);
	done = pwrite(b->fd, data, len, (off_t)off);
	if (done < 0)
		return -errno;
	return done == (ssize_t)len ? 0 : -EIO;
}
