/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: cohmemd's request handlers (daemon/fs.c, daemon/ioctl.c)
 * and its collector threads, driven by sequences of requests that a kernel
 * could send — and some it would not: ioctl payloads of any size and
 * content, attach/detach/clean sequences, sizes, truncation racing cleans,
 * users over their limits.
 *
 * Checked beyond what the sanitizers see:
 *   - every request is answered exactly once (fuse-shim.c), and none is
 *     left unanswered when an input is done (a hang);
 *   - a clean the harness waits for reports every page stored through a
 *     WRITE since that description's last clean over it (never fewer);
 *   - a clean's answer is well formed (count = bits set, none past nr);
 *   - when everything is released, forgotten and unlinked, the daemon holds
 *     no buffer and charges no user anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "fuse-shim.h"

#define MAX_PAGES 256		/* --max-bytes 1M */
#define HANDLES 12
#define NAMES 4

struct fuse_pollhandle *shim_pollhandle(void);

struct handle {
	bool open;
	fuse_ino_t ino;
	int accmode;
	struct fuse_file_info fi;
	bool model_valid;	/* false after a clean nobody checked */
	uint64_t written[MAX_PAGES / 64];	/* stored since this description's last clean over them */
};

static struct daemon *d = &daemon_state;
static struct handle handles[HANDLES];
static const char *names[NAMES] = { "a", "b", "c", "d" };
static struct {
	fuse_ino_t ino;
	uint64_t n;
} lookups[64];			/* the kernel's references */
static const uint8_t *in;
static size_t in_left;
static const uid_t uids[3] = { 0, 1000, 1001 };

static unsigned next(void)
{
	if (!in_left)
		return 0;
	in_left--;
	return *in++;
}

static unsigned next16(void)
{
	return next() | next() << 8;
}

/* ---- replies -------------------------------------------------------------------- */

enum expect { EXPECT_NOTHING, EXPECT_CLEAN, EXPECT_WRPROTECT, EXPECT_LS };

struct pending {
	enum expect expect;
	uint64_t first, nr;
};

static unsigned popcount_bitmap(const uint64_t *bm, uint64_t nr)
{
	unsigned n = 0;

	for (uint64_t i = 0; i < (nr + 63) / 64; i++)
		n += (unsigned)__builtin_popcountll(bm[i]);
	return n;
}

void on_reply(struct shim_record *req)
{
	struct pending *p = req->harness;

	if (!p || req->kind != REPLY_IOCTL)
		return;
	if (p->expect == EXPECT_CLEAN) {
		const struct cohmem_ioc_clean *io = req->out;

		if (req->outsz != sizeof(*io) || io->first != p->first || io->nr != p->nr ||
		    io->count != popcount_bitmap((const uint64_t *)io->bitmap, COHMEM_IOC_WINDOW)) {
			fprintf(stderr, "fuzz: a malformed clean answer\n");
			abort();
		}
		for (uint64_t i = p->nr; i < COHMEM_IOC_WINDOW; i++)
			if (io->bitmap[i / 64] >> (i % 64) & 1) {
				fprintf(stderr, "fuzz: a clean reported page %llu past its range\n",
					(unsigned long long)(p->first + i));
				abort();
			}
	} else if (p->expect == EXPECT_LS) {
		const struct cohmem_ioc_ls *ls = req->out;

		if (req->outsz != sizeof(*ls) || strnlen(ls->name, sizeof(ls->name)) == sizeof(ls->name) ||
		    ls->nmappings > d->nbuffers * d->limits.user.attached * 3) {
			fprintf(stderr, "fuzz: a malformed ls answer\n");
			abort();
		}
	}
}

static struct shim_record *req_as(unsigned who, const struct pending *p)
{
	uid_t uid = uids[who % 3];

	return shim_req(d, uid, uid, p, p ? sizeof(*p) : 0);
}

static void wait_all(void)
{
	if (!shim_drain(10000)) {
		fprintf(stderr, "fuzz: a request was not answered within 10 s\n");
		abort();
	}
	shim_reap();
}

/* ---- the model -------------------------------------------------------------------- */

static void model_written(fuse_ino_t ino, uint64_t off, uint64_t len)
{
	uint64_t first = off / d->page_size, last = (off + len - 1) / d->page_size;

	for (int h = 0; h < HANDLES; h++) {
		if (!handles[h].open || handles[h].ino != ino || handles[h].accmode == O_WRONLY)
			continue;
		for (uint64_t pg = first; pg <= last && pg < MAX_PAGES; pg++)
			handles[h].written[pg / 64] |= 1ULL << (pg % 64);
	}
}

/* Check a clean's answer against the model, then forget what it reported. */
static void model_cleaned(struct handle *h, const struct cohmem_ioc_clean *io)
{
	for (uint64_t i = 0; i < io->nr && io->first + i < MAX_PAGES; i++) {
		uint64_t pg = io->first + i;
		bool want = h->written[pg / 64] >> (pg % 64) & 1, got = io->bitmap[i / 64] >> (i % 64) & 1;

		if (h->model_valid && want && !got) {
			fprintf(stderr, "fuzz: page %llu was written and stored, and the clean did not report it\n",
				(unsigned long long)pg);
			abort();
		}
		h->written[pg / 64] &= ~(1ULL << (pg % 64));
	}
}

static void model_forget(struct handle *h, uint64_t first, uint64_t nr)
{
	for (uint64_t pg = first; pg < first + nr && pg < MAX_PAGES; pg++)
		h->written[pg / 64] &= ~(1ULL << (pg % 64));
}

/* ---- requests ----------------------------------------------------------------------- */

static struct handle *pick_handle(bool open)
{
	unsigned start = next();

	for (unsigned i = 0; i < HANDLES; i++) {
		struct handle *h = &handles[(start + i) % HANDLES];

		if (h->open == open)
			return h;
	}
	return NULL;
}

static fuse_ino_t pick_ino(void)
{
	unsigned k = next();

	if (k % 8 == 0)
		return FUSE_ROOT_ID;
	if (k % 8 == 1)
		return 2 + next() % 40;	/* maybe a buffer the kernel never heard of */
	for (int i = 0; i < HANDLES; i++) {
		struct handle *h = &handles[(k + (unsigned)i) % HANDLES];

		if (h->open)
			return h->ino;
	}
	return FUSE_ROOT_ID;
}

static void got_entry(struct shim_record *r)
{
	if (r->kind != REPLY_ENTRY && r->kind != REPLY_CREATE)
		return;
	for (int i = 0; i < 64; i++)
		if (lookups[i].ino == r->entry.ino || !lookups[i].n) {
			lookups[i].ino = r->entry.ino;
			lookups[i].n++;
			return;
		}
	cohmemd_ops.forget(req_as(0, NULL)->req, r->entry.ino, 1);	/* the harness is full: forget it */
}

static void do_create(void)
{
	struct handle *h = pick_handle(false);
	struct fuse_file_info fi = { .flags = (int)(next() % 3) };
	mode_t mode = next() % 4 ? S_IFREG | (next() % 2 ? 0644 : 0600) : S_IFDIR | 0755;
	struct shim_record *r = req_as(next(), NULL);

	cohmemd_ops.create(r->req, next() % 8 ? FUSE_ROOT_ID : 5, names[next() % NAMES], mode, &fi);
	got_entry(r);
	if (r->kind == REPLY_CREATE && h) {
		*h = (struct handle){ .open = true, .ino = r->entry.ino, .accmode = fi.flags & O_ACCMODE, .fi = fi,
				      .model_valid = true };
	} else if (r->kind == REPLY_CREATE) {	/* no room in the harness: the kernel closes it */
		cohmemd_ops.release(req_as(0, NULL)->req, r->entry.ino, &fi);
	}
}

static void do_lookup_open(void)
{
	struct shim_record *r = req_as(next(), NULL);
	struct handle *h;
	struct fuse_file_info fi = { .flags = (int)(next() % 3) };
	fuse_ino_t ino;

	cohmemd_ops.lookup(r->req, FUSE_ROOT_ID, names[next() % NAMES]);
	got_entry(r);
	if (r->kind != REPLY_ENTRY || !(h = pick_handle(false)))
		return;
	ino = r->entry.ino;
	r = req_as(next(), NULL);
	cohmemd_ops.open(r->req, ino, &fi);
	if (r->kind == REPLY_OPEN)
		*h = (struct handle){ .open = true, .ino = ino, .accmode = fi.flags & O_ACCMODE, .fi = fi,
				      .model_valid = true };
}

static void do_release(struct handle *h)
{
	cohmemd_ops.release(req_as(0, NULL)->req, h->ino, &h->fi);
	h->open = false;
}

static void do_write(struct handle *h)
{
	char data[3 * 4096];
	uint64_t off = (uint64_t)next16() * (next() % 2 ? 4096 : 13) % (2u << 20);
	size_t len = next() % 4 ? (next() % 3 + 1) * 4096 : next16() % sizeof(data);
	struct shim_record *r = req_as(next(), NULL);

	memset(data, (int)next(), sizeof(data));
	h->fi.writepage = next() % 2;
	cohmemd_ops.write(r->req, h->ino, data, len, (off_t)off, &h->fi);
	if (r->kind == REPLY_WRITE && len)
		model_written(h->ino, off, len);
}

static void do_setattr(void)
{
	struct stat attr = { .st_size = (off_t)(next16() % 400) * 4096 + (next() % 2 ? next16() : 0),
			     .st_mode = S_IFREG | (next() % 2 ? 0600 : 0644), .st_uid = uids[next() % 3],
			     .st_gid = uids[next() % 3] };
	int to_set = (int)(next() & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
				     FUSE_SET_ATTR_GID | FUSE_SET_ATTR_MTIME_NOW));

	cohmemd_ops.setattr(req_as(next(), NULL)->req, pick_ino(), &attr, to_set, NULL);
}

/* A clean, with its answer checked against the model if the harness waits for it. */
static void do_clean(struct handle *h, bool wait)
{
	struct cohmem_ioc_clean *io = calloc(1, sizeof(*io));
	unsigned cmd = next() % 4 ? COHMEM_IOC_CLEAN : COHMEM_IOC_WRPROTECT;
	struct pending p;
	struct shim_record *r;

	if (!io)
		abort();
	io->first = next() % 4 ? 0 : next() % MAX_PAGES;
	io->nr = next() % 4 ? MAX_PAGES : next() % MAX_PAGES;
	io->flags = next() % 4 ? COHMEM_CLEAN_SYNC : 0;
	io->end = next() % 8 ? io->first + io->nr : next() % (MAX_PAGES + 2);	/* the call's range */
	p = (struct pending){ cmd == COHMEM_IOC_CLEAN ? EXPECT_CLEAN : EXPECT_WRPROTECT, io->first, io->nr };
	r = req_as(next(), &p);
	if (cmd == COHMEM_IOC_CLEAN) {
		cohmemd_ioctl(r->req, h->ino, cmd, NULL, &h->fi, 0, io, sizeof(*io), sizeof(*io));
	} else {
		struct cohmem_ioc_wrprotect wp = { .first = io->first, .nr = io->nr, .end = io->end,
						   .flags = io->flags };

		cohmemd_ioctl(r->req, h->ino, cmd, NULL, &h->fi, 0, &wp, sizeof(wp), sizeof(wp));
	}
	if (!wait) {
		h->model_valid = false;	/* answered whenever: the model cannot tell what it covers */
	} else {
		if (!shim_drain(10000)) {
			fprintf(stderr, "fuzz: a clean was not answered within 10 s\n");
			abort();
		}
		if (r->kind == REPLY_IOCTL && cmd == COHMEM_IOC_CLEAN)
			model_cleaned(h, r->out);
		else if (r->kind == REPLY_IOCTL)
			model_forget(h, io->first, io->nr);
		if (r->kind == REPLY_IOCTL && io->first == 0 && io->nr == MAX_PAGES)
			h->model_valid = true;
		shim_reap();
	}
	free(io);
}

/* Any ioctl, with any payload and sizes. */
static void do_ioctl(void)
{
	static const unsigned cmds[] = { COHMEM_IOC_INFO, COHMEM_IOC_ATTACH, COHMEM_IOC_DETACH, COHMEM_IOC_CLEAN,
					 COHMEM_IOC_WRPROTECT, COHMEM_IOC_LS, _IOWR('C', 4, char[16]), 0 };
	static const struct pending ls_pending = { EXPECT_LS, 0, 0 };
	unsigned cmd = cmds[next() % 8], flags = next() % 8 ? 0 : FUSE_IOCTL_COMPAT;
	size_t size = _IOC_SIZE(cmd ? cmd : (cmd = next() << 8 | next())), in_sz = size, out_sz = size;
	struct handle *h = pick_handle(true);
	bool root = !h || next() % 4 == 0;
	char *payload = calloc(1, size + 64);

	if (!payload)
		abort();
	for (size_t i = 0; i < size && i < 64; i++)
		payload[i] = (char)next();
	switch (next() % 6) {
	case 0: in_sz = next() % (size + 2); break;
	case 1: out_sz = next() % (size + 2); break;
	default: break;
	}
	if (!(_IOC_DIR(cmd) & _IOC_WRITE) && next() % 2)
		in_sz = 0;
	cohmemd_ioctl(req_as(next(), cmd == COHMEM_IOC_LS ? &ls_pending : NULL)->req, root ? FUSE_ROOT_ID : h->ino,
		      cmd, NULL, root ? &(struct fuse_file_info){ 0 } : &h->fi, flags, payload, in_sz, out_sz);
	if (h && !root && (cmd == COHMEM_IOC_CLEAN || cmd == COHMEM_IOC_WRPROTECT))
		h->model_valid = false;
	free(payload);
}

/* Answer a retrieve the daemon asked for with up to what it asked (the page cache may hold less). */
static void answer_retrieve(const struct shim_retrieve *rq, size_t len)
{
	static char data[MAX_PAGES * 4096];
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(len < rq->size ? len : rq->size);

	memset(data, 'r', buf.buf[0].size);
	buf.buf[0].mem = data;
	cohmemd_ops.retrieve_reply(req_as(0, NULL)->req, rq->cookie, rq->ino, rq->offset, &buf);
}

void on_drain(void)
{
	struct shim_retrieve rq;

	while (shim_take_retrieve(&rq))
		answer_retrieve(&rq, rq.size);
}

/* A retrieve answered short; or a reply nobody asked for. */
static void do_retrieve_reply(void)
{
	struct shim_retrieve rq;

	if (next() % 2 && shim_take_retrieve(&rq)) {
		answer_retrieve(&rq, (size_t)(next() % 3) * 4096);
	} else {
		rq = (struct shim_retrieve){ pick_ino(), (size_t)(next() % 3) * 4096, (off_t)(next() % MAX_PAGES) * 4096,
					     (void *)(uintptr_t)(next16() << 16 | next() % 3) };
		answer_retrieve(&rq, rq.size);
	}
}

static void one_request(unsigned op)
{
	struct handle *h = pick_handle(true);
	struct fuse_file_info fi = { 0 };

	if (getenv("FUZZ_TRACE"))	/* to read a crash's input as requests */
		fprintf(stderr, "request %u (handle %td)\n", op % 18, h ? h - handles : -1);
	switch (op % 18) {
	case 0: do_create(); break;
	case 1: do_lookup_open(); break;
	case 2: if (h) do_release(h); break;
	case 3: if (h) do_write(h); break;
	case 4: if (h) cohmemd_ops.read(req_as(next(), NULL)->req, h->ino, next16(), (off_t)next16() * 97, &h->fi); break;
	case 5: do_setattr(); break;
	case 6: if (h) do_clean(h, true); break;
	case 7: if (h) do_clean(h, false); break;
	case 8: do_ioctl(); break;
	case 9: cohmemd_ops.unlink(req_as(next(), NULL)->req, next() % 8 ? FUSE_ROOT_ID : 7, names[next() % NAMES]); break;
	case 10:
		cohmemd_ops.rename(req_as(next(), NULL)->req, FUSE_ROOT_ID, names[next() % NAMES], FUSE_ROOT_ID,
				   next() % 8 ? names[next() % NAMES] : "", next() % 4 ? 0 : next() % 3);
		break;
	case 11: cohmemd_ops.getattr(req_as(next(), NULL)->req, pick_ino(), NULL); break;
	case 12: cohmemd_ops.readdir(req_as(next(), NULL)->req, FUSE_ROOT_ID, next16() % 4096, next() % 8, &fi); break;
	case 13:
		if (h)
			cohmemd_ops.poll(req_as(next(), NULL)->req, h->ino, &h->fi, next() % 2 ? shim_pollhandle() : NULL);
		break;
	case 14: if (h) cohmemd_ops.fsync(req_as(next(), NULL)->req, h->ino, (int)(next() % 2), &h->fi); break;
	case 15: do_retrieve_reply(); break;
	case 16: cohmemd_ops.statfs(req_as(next(), NULL)->req, FUSE_ROOT_ID); break;
	case 17: wait_all(); break;
	}
}

/* Release, forget and unlink everything: the daemon must let go of all of it. */
static void reset(void)
{
	wait_all();
	for (int i = 0; i < HANDLES; i++)
		if (handles[i].open)
			do_release(&handles[i]);
	for (int i = 0; i < 64; i++)
		if (lookups[i].n) {
			cohmemd_ops.forget(req_as(0, NULL)->req, lookups[i].ino, lookups[i].n);
			lookups[i].n = 0;
		}
	for (int i = 0; i < NAMES; i++)
		cohmemd_ops.unlink(req_as(0, NULL)->req, FUSE_ROOT_ID, names[i]);
	wait_all();
	/* A pass may still hold a buffer: wait for the collectors to let go (under the daemon's locks). */
	for (int tries = 0;; tries++) {
		size_t left;

		lock_take(&d->lock);
		left = d->nbuffers;
		lock_drop(&d->lock);
		if (!left)
			break;
		if (tries == 1000) {
			fprintf(stderr, "fuzz: %zu buffers left after everything was released and unlinked\n", left);
			abort();
		}
		usleep(1000);
	}
	lock_take(&d->lock);
	lock_take(&d->users_lock);
	for (size_t i = 0; i < d->nusers; i++) {
		const struct usage *h = &d->users[i].held;

		if (h->buffers || h->bytes || h->opens || h->attached || h->pending) {
			fprintf(stderr, "fuzz: uid %d is still charged %llu buffers, %llu bytes, %llu opens, "
				"%llu attached, %llu bytes pending\n", (int)d->users[i].uid,
				(unsigned long long)h->buffers, (unsigned long long)h->bytes,
				(unsigned long long)h->opens, (unsigned long long)h->attached,
				(unsigned long long)h->pending);
			abort();
		}
	}
	lock_drop(&d->users_lock);
	lock_drop(&d->lock);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/cohmemd-fuzz-XXXXXX";

	(void)argc, (void)argv;
	if (!mkdtemp(dir))
		abort();
	d->page_size = (size_t)sysconf(_SC_PAGESIZE);
	d->next_ino = FUSE_ROOT_ID + 1;
	/* pending: a few leaves, so that consumers overflow and report everything too */
	d->limits = (struct limits){ .max_bytes = 1 << 20,
				     .user = { .buffers = 3, .bytes = 2 << 20, .opens = 10, .attached = 4,
					       .pending = 2048 },
				     .collectors = 2, .user_collectors = 1 };
	log_fd = -1;	/* the daemon's log: not wanted here */
	/*
	 * No FUSE mount: the helper finds no private names to open there, and a
	 * pass's writeback is its syncfs() of this directory (the state's).
	 */
	snprintf(d->mountpoint, sizeof(d->mountpoint), "%s", dir);
	lock_init(&d->lock, LOCK_TABLE, "daemon.lock");
	lock_init(&d->users_lock, LOCK_USERS, "daemon.users_lock");
	/*
	 * Stores that fail: a small tmpfs when it can be had (as root), in a
	 * mount namespace of our own, so that it goes when we do, crash or not.
	 */
	if (geteuid() == 0 && (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
			       mount("cohmemd-fuzz", dir, "tmpfs", 0, "size=256k")))
		fprintf(stderr, "fuzz: no tmpfs for the state directory: %s\n", strerror(errno));
	d->state_dir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d->epoll = epoll_create1(EPOLL_CLOEXEC);
	/* The helper reads the fuzzer's own /proc files for attaches, as the daemon's would. */
	if (d->state_dir < 0 || d->epoll < 0 || helper_start(d, d->limits.collectors + 1) || collect_start(d))
		abort();
	cohmemd_ops.init(d, &(struct fuse_conn_info){ 0 });
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	in = data;
	in_left = size;
	while (in_left)
		one_request(next());
	reset();
	return 0;
}
