/* SPDX-License-Identifier: MIT */
/*
 * Collector threads: everything that may wait for this connection to answer
 * another request happens here, with no lock held, and the requests that
 * need it are answered from here once it is done.
 *
 * A pass over one buffer serves every request that arrived before it
 * started. It learns what changed the way the buffer's adapt (adapt.c)
 * says: by comparing (compare.c) or, as follows, by tracking. It makes the
 * kernel write back the buffer's dirty pages — by
 * fdatasync() of a descriptor the helper process holds on the daemon's own
 * mount (helper.c), opened by the buffer's private name (fs.c), which leads
 * to it whatever happened to its public one — so that every write through
 * any mapping that completed before the request has reached the daemon as
 * a WRITE and is stored and marked (store_write()). The kernel sends those
 * WRITEs and the FSYNC to the FUSE workers, which is why a pass must never
 * run on one; and a thread of this process must never wait for them itself
 * (helper.c says why), which is why the helper does. Then the pages whose
 * storing failed are retrieved from the page cache and stored again, the
 * state file is synced if --durable asks, and the waiting cleans are
 * answered.
 *
 * Passes of one buffer never overlap; passes of different buffers run on up
 * to --collectors threads, at most --user-collectors of them for buffers of
 * one owner that others may write, and as many for the owner's own: a
 * writer that stalls the kernel's writeback of a buffer it may write
 * (holding its inode lock across a fault on another FUSE file, say) stalls
 * the cleans of that buffer, and at worst of the others its owner lets it
 * write — never the mount, other users' buffers, or the owner's own.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

enum waiter_kind { WAIT_CLEAN, WAIT_ATTACH, WAIT_DETACH };

struct waiter {
	struct waiter *next;
	enum waiter_kind kind;
	fuse_req_t req;
	struct consumer *c;		/* CLEAN: NULL once its description is released */
	unsigned cmd;
	uint64_t first, nr;
	pid_t tid;			/* ATTACH, DETACH: the calling thread */
	uid_t uid;
	struct cohmem_ioc_attach a;	/* ATTACH; DETACH uses a.addr */
};

/* Whose collectors a pass takes: its buffer's owner's, for the buffers others may write or not. */
struct bucket {
	uid_t owner;
	bool shared;			/* group or others may write it */
};

struct queued {
	struct buffer *b;
	struct bucket of;
};

struct busy {
	struct bucket of;
	unsigned running;
};

struct collector {
	struct lock lock;
	pthread_cond_t work;
	struct queued *queue;
	size_t nqueue, capqueue;
	struct busy *busy;
	size_t nbusy;
	pthread_t *threads;
	unsigned nthreads;
	bool stop;
};

#define RETRIEVE_PAGES 256		/* per NOTIFY_RETRIEVE: the kernel stops at max_write */
#define RETRIEVE_RUNS 1024		/* per pass */
#define RETRIEVE_WAIT_S 10

static struct busy *busy_of(struct collector *k, struct bucket of)
{
	struct busy *t;

	for (size_t i = 0; i < k->nbusy; i++)
		if (k->busy[i].of.owner == of.owner && k->busy[i].of.shared == of.shared)
			return &k->busy[i];
	t = realloc(k->busy, (k->nbusy + 1) * sizeof(*t));
	if (!t)
		return NULL;
	k->busy = t;
	k->busy[k->nbusy] = (struct busy){ of, 0 };
	return &k->busy[k->nbusy++];
}

static bool push(struct collector *k, struct buffer *b)	/* k->lock */
{
	lock_assert_held(&k->lock);
	if (k->nqueue == k->capqueue) {
		size_t cap = k->capqueue ? 2 * k->capqueue : 16;
		struct queued *t = realloc(k->queue, cap * sizeof(*t));

		if (!t)
			return false;
		k->queue = t;
		k->capqueue = cap;
	}
	k->queue[k->nqueue++] = (struct queued){ b, { b->uid, (b->mode & 022) != 0 } };
	b->queued = true;
	pthread_cond_signal(&k->work);
	return true;
}

/* Queue a pass of b unless one is queued or running (that one re-checks when done). */
static void enqueue(struct daemon *d, struct buffer *b)	/* d->lock, b->lock */
{
	struct collector *k = d->collect;

	lock_assert_held(&d->lock);
	lock_assert_held(&b->lock);
	lock_take(&k->lock);
	if (!b->queued && !b->running && !k->stop) {
		if (push(k, b))
			b->refs++;
		else
			logmsg("%s: out of memory queueing a pass", b->name);
	}
	lock_drop(&k->lock);
}

static struct waiter *waiter_new(struct daemon *d, struct buffer *b, enum waiter_kind kind, fuse_req_t req)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (w) {
		w->kind = kind;
		w->req = req;
		w->tid = fuse_req_ctx(req)->pid;
		w->uid = fuse_req_ctx(req)->uid;
	}
	return w;
}

static int wait_for_pass(struct daemon *d, struct buffer *b, struct waiter *w)
{
	if (!w)
		return -ENOMEM;
	lock_take(&d->lock);
	lock_take(&b->lock);
	if (atomic_load(&d->stopping)) {
		lock_drop(&b->lock);
		lock_drop(&d->lock);
		free(w);
		return -ENOTCONN;
	}
	w->next = b->waiting;
	b->waiting = w;
	enqueue(d, b);
	lock_drop(&b->lock);
	lock_drop(&d->lock);
	return 0;
}

int collect_clean(struct daemon *d, fuse_req_t req, struct consumer *c, unsigned cmd, uint64_t first,
		  uint64_t nr)
{
	struct waiter *w = waiter_new(d, c->b, WAIT_CLEAN, req);

	if (w) {
		w->c = c;
		w->cmd = cmd;
		w->first = first;
		w->nr = nr;
	}
	return wait_for_pass(d, c->b, w);
}

int collect_attach(struct daemon *d, fuse_req_t req, struct buffer *b, const struct cohmem_ioc_attach *a)
{
	struct waiter *w = waiter_new(d, b, WAIT_ATTACH, req);

	if (w)
		w->a = *a;
	return wait_for_pass(d, b, w);
}

int collect_detach(struct daemon *d, fuse_req_t req, struct buffer *b, uint64_t addr)
{
	struct waiter *w = waiter_new(d, b, WAIT_DETACH, req);

	if (w)
		w->a.addr = addr;
	return wait_for_pass(d, b, w);
}

void collect_pass(struct daemon *d, struct buffer *b)
{
	lock_assert_held(&b->lock);
	b->want_writeback = true;
	enqueue(d, b);
}

void collect_forget(struct buffer *b, struct consumer *c)
{
	lock_assert_held(&b->lock);
	for (struct waiter *w = b->waiting; w; w = w->next)
		if (w->c == c)
			w->c = NULL;
	for (struct waiter *w = b->serving; w; w = w->next)
		if (w->c == c)
			w->c = NULL;
}

/* ---- attach, detach ------------------------------------------------------------ */

static void do_attach(struct daemon *d, struct buffer *b, struct waiter *w)
{
	struct attachment a;
	int err = attach_verify(d, b, w->tid, &w->a, &a);

	if (!err) {
		a.uid = w->uid;
		lock_take(&d->lock);
		lock_take(&b->lock);
		err = attach_add(d, b, &a);
		lock_drop(&b->lock);
		lock_drop(&d->lock);
		if (err)
			close(a.pidfd);
	}
	if (err)
		fuse_reply_err(w->req, -err);
	else
		fuse_reply_ioctl(w->req, 0, NULL, 0);
}

static void do_detach(struct daemon *d, struct buffer *b, struct waiter *w)
{
	int pidfd = -1;
	pid_t pid = thread_group(d, w->tid, &pidfd);
	int err = pid < 0 ? pid : 0;

	if (pidfd >= 0)
		close(pidfd);
	if (!err) {
		lock_take(&d->lock);
		lock_take(&b->lock);
		err = attach_remove(d, b, pid, w->a.addr);
		lock_drop(&b->lock);
		lock_drop(&d->lock);
	}
	if (err)
		fuse_reply_err(w->req, -err);
	else
		fuse_reply_ioctl(w->req, 0, NULL, 0);
}

/* ---- writeback ------------------------------------------------------------------- */

/*
 * The helper is asked about b's own descriptor (OPEN, SYNC, CLOSE) only by
 * the pass of b that runs on this thread: passes of b never overlap, so
 * they reach the helper in order (helper.c). Checked in debug and sanitized
 * builds; a CLOSE sent after the pass had ended broke it.
 */
static void assert_in_pass(struct daemon *d, struct buffer *b, const char *func)
{
#ifdef COHMEMD_LOCK_CHECKS
	struct collector *k = d->collect;
	bool ours;

	lock_take(&k->lock);
	ours = b->running && pthread_equal(b->pass_thread, pthread_self());
	lock_drop(&k->lock);
	if (!ours)
		lock_rule_broken("the helper asked about a buffer's descriptor outside its pass", func);
#else
	(void)d, (void)b, (void)func;
#endif
}

/*
 * Have the helper hold a descriptor of b on the daemon's own mount; true if
 * it holds one. It opens b by its private name, so an unlinked or renamed
 * buffer is opened all the same. Its open is answered with FOPEN_NOFLUSH
 * (fs.c): closing it sends no FLUSH that would wait for a worker.
 */
static bool self_open(struct daemon *d, struct buffer *b)
{
	bool open;
	int peek_fd;

	assert_in_pass(d, b, __func__);
	lock_take(&b->lock);
	open = b->self_open;
	lock_drop(&b->lock);
	if (!open && helper_open(d, b->ino, &peek_fd) == 0) {
		open = true;
		lock_take(&b->lock);
		b->self_open = true;	/* passes of b never overlap: nobody set it meanwhile */
		b->peek_fd = peek_fd;
		lock_drop(&b->lock);
	}
	return open;
}

/* Let the duplicate for peek() go: before the helper's CLOSE, so that its close is the last. */
static void peek_close(struct buffer *b)	/* b->lock */
{
	lock_assert_held(&b->lock);
	if (b->peek_fd >= 0)
		close(b->peek_fd);	/* NOFLUSH, and not the last reference: waits for nothing */
	b->peek_fd = -1;
}

/*
 * Nothing of b is dirty or under writeback, on a kernel that keeps pages
 * under writeback until the WRITE is answered: then every write that
 * completed has been stored and marked, and a writeback would find nothing
 * (peek.c says why). It spares the round trips through the helper and the
 * connection that an idle buffer's clean would cost.
 */
static bool nothing_to_write_back(struct buffer *b)
{
	int fd, idle;

	if (!peek_trusted())
		return false;
	lock_take(&b->lock);
	fd = b->peek_fd;
	idle = fd >= 0 ? peek_idle(fd) : 0;	/* b->lock: the pass's close cannot race it */
	lock_drop(&b->lock);
	return idle == 1;
}

/*
 * Make the kernel write b's dirty pages back to us, and wait until they are
 * stored: fdatasync() of our own descriptor, in the helper. Without one (a
 * non-root daemon's buffer of mode 000), the helper's syncfs() of the whole
 * mount does it, at the cost of every other buffer's dirty pages too. Never
 * here: this process does not wait on its own connection.
 */
static int writeback(struct daemon *d, struct buffer *b)
{
	lock_take(&b->lock);
	b->writebacks++;
	lock_drop(&b->lock);
	return self_open(d, b) ? helper_sync(d, b->ino) : helper_syncfs(d);
}

struct runs {
	const struct buffer *b;
	uint64_t first[RETRIEVE_RUNS], n[RETRIEVE_RUNS];
	size_t count;
};

static int add_one_run(struct runs *r, uint64_t first, uint64_t n)
{
	if (!n)
		return 0;
	if (r->count == RETRIEVE_RUNS)
		return 1;
	r->first[r->count] = first;
	r->n[r->count++] = n;
	return 0;
}

/* A run of unstored pages, less those held (stored from the daemon's copy): the runs to retrieve. */
static int add_run(void *arg, uint64_t first, uint64_t n)
{
	struct runs *r = arg;
	uint64_t from = first;

	if (!held_any(r->b, first, n))
		return add_one_run(r, first, n);
	for (uint64_t pg = first; pg < first + n; pg++) {
		if (!held_find(r->b, pg))
			continue;
		if (add_one_run(r, from, pg - from))
			return 1;
		from = pg + 1;
	}
	return add_one_run(r, from, first + n - from);
}

/*
 * Unstored pages the daemon holds the bytes of (held.h): stored from there,
 * each whole. What cannot be stored yet stays held; the error is the
 * clean's answer. Caller holds b->lock.
 */
static void store_held(struct daemon *d, struct buffer *b)
{
	uint64_t ps = d->page_size;

	lock_assert_held(&b->lock);
	for (size_t i = 0; i < b->held.n;) {
		struct held_page h = b->held.pages[i];
		uint64_t len = b->size > h.pg * ps ? b->size - h.pg * ps : 0;
		ssize_t stored;

		len = len < ps ? len : ps;
		stored = len ? store_write(d, b, h.data, len, h.pg * ps, STORE_HELD) : 0;
		if (stored < (ssize_t)len) {
			b->store_error = stored < 0 ? (int)stored : -ENOSPC;
			i++;
		} else if (i < b->held.n && b->held.pages[i].pg == h.pg) {
			held_drop(d, b, h.pg);	/* past the end: nothing to store */
		}
	}
}

/*
 * What a retrieve asked for, in its cookie: how many pages, and the buffer's
 * unstored generation then (a later failure makes its answer too old to use).
 */
static void *retrieve_cookie(uint32_t gen, uint64_t pages)
{
	return (void *)(uintptr_t)((uint64_t)gen << 16 | pages);
}

/*
 * Pages written back whose storing failed are clean in the page cache now,
 * and only there: retrieve them (collect_retrieved() stores them) and wait,
 * for a while: a reply that never comes costs this pass, not the next.
 */
static void retry_unstored(struct daemon *d, struct buffer *b)
{
	struct runs *r = calloc(1, sizeof(*r));
	size_t ps = d->page_size;
	struct timespec until;
	uint32_t gen;

	if (!r)
		return;
	r->b = b;
	lock_take(&b->lock);
	store_held(d, b);
	pageset_for_each_run(&b->unstored, add_run, r);
	gen = b->unstored_gen;
	lock_drop(&b->lock);
	for (size_t i = 0; i < r->count; i++) {
		for (uint64_t at = r->first[i]; at < r->first[i] + r->n[i]; at += RETRIEVE_PAGES) {
			uint64_t n = r->first[i] + r->n[i] - at < RETRIEVE_PAGES ? r->first[i] + r->n[i] - at
										   : RETRIEVE_PAGES;

			lock_take(&b->lock);
			b->retrieving++;
			lock_drop(&b->lock);
			if (fuse_lowlevel_notify_retrieve(d->se, b->ino, n * ps, (off_t)(at * ps),
							  retrieve_cookie(gen, n))) {
				lock_take(&b->lock);
				b->retrieving--;
				lock_drop(&b->lock);
			}
		}
	}
	free(r);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += RETRIEVE_WAIT_S;
	lock_take(&b->lock);
	while (b->retrieving && !atomic_load(&d->stopping))
		if (lock_timedwait(&b->retrieved, &b->lock, &until) == ETIMEDOUT) {
			logmsg("%s: %u retrieves unanswered; the next pass asks again", b->name, b->retrieving);
			b->retrieving = 0;	/* what comes later is ignored */
		}
	lock_drop(&b->lock);
}

/*
 * Store the pages of a reply that are still unstored. A WRITE stored since
 * the retrieve was asked for is newer than what the reply carries (the
 * kernel copied it earlier): such pages are no longer unstored and are left
 * alone, and a reply asked for before another store failed is not used.
 */
static void store_retrieved(struct daemon *d, struct buffer *b, const char *data, size_t len, uint64_t off)
{
	size_t ps = d->page_size;

	for (size_t at = 0; at < len; at += ps) {
		uint64_t pg = (off + at) / ps;
		size_t n = len - at < ps ? len - at : ps;
		ssize_t stored;

		if (!pageset_count(&b->unstored, pg, 1) || held_find(b, pg))	/* stored, or newer held */
			continue;
		stored = store_write(d, b, data + at, n, off + at, STORE_RETRIEVED);
		if (stored < (ssize_t)n)	/* the page stays unstored: a later pass tries again */
			b->store_error = stored < 0 ? (int)stored : -ENOSPC;
	}
}

void collect_retrieved(struct daemon *d, fuse_ino_t ino, off_t off, uintptr_t cookie, struct fuse_bufvec *bufv)
{
	size_t len = fuse_buf_size(bufv), ps = d->page_size, asked = cookie & 0xffff;
	uint32_t gen = (uint32_t)(cookie >> 16);
	struct fuse_bufvec mem = FUSE_BUFVEC_INIT(len);
	struct buffer *b;
	char *data = malloc(len ? len : 1);

	mem.buf[0].mem = data;
	if (data && len && fuse_buf_copy(&mem, bufv, 0) != (ssize_t)len) {
		free(data);
		data = NULL;
	}
	lock_take(&d->lock);
	b = store_find(d, ino);
	if (b)
		lock_take(&b->lock);
	lock_drop(&d->lock);
	if (!b) {
		free(data);
		return;
	}
	if (!b->retrieving || gen != b->unstored_gen || off < 0 || (uint64_t)off % ps) {
		/* Nobody waits for it, or a store failed since: too old to use. */
	} else if (!data) {
		b->store_error = -ENOMEM;
	} else {
		store_retrieved(d, b, data, len, (uint64_t)off);
		if (len < asked * ps && pageset_count(&b->unstored, ((uint64_t)off + len) / ps, 1)) {
			/* The page cache let go of it before it could be stored. */
			logmsg("%s: page %llu was written back, could not be stored, and is gone from the page "
			       "cache: its last write is lost", b->name, (unsigned long long)((off + len) / ps));
			pageset_take(&b->unstored, ((uint64_t)off + len) / ps, 1, NULL);
		}
	}
	if (!b->unstored.count)
		b->store_error = 0;
	if (b->retrieving && !--b->retrieving)
		pthread_cond_broadcast(&b->retrieved);
	pages_notify(b);
	lock_drop(&b->lock);
	free(data);
}

struct stale_runs {
	struct daemon *d;
	struct buffer *b;
};

static int drop_run(void *arg, uint64_t first, uint64_t n)
{
	struct stale_runs *s = arg;
	size_t ps = s->d->page_size;

	helper_drop(s->d, s->b->ino, first * ps, n * ps);	/* what it cannot drop, it cannot */
	return 0;
}

/*
 * Pages of write(2)s the state file did not take (store.c's note_stale()):
 * have the helper drop them from the page cache, so that reads see what is
 * stored. With no lock held: the pages are taken first, and one noted again
 * meanwhile waits for the next pass.
 */
static void drop_stale(struct daemon *d, struct buffer *b)
{
	struct pageset stale = PAGESET_INIT;
	struct stale_runs s = { d, b };

	lock_take(&b->lock);
	stale = b->stale;
	b->stale = (struct pageset)PAGESET_INIT;
	lock_drop(&b->lock);
	if (stale.count && self_open(d, b))
		pageset_for_each_run(&stale, drop_run, &s);
	pageset_clear(&stale);
}

static int durable_sync(struct buffer *b)
{
	int err = 0;

	lock_take(&b->lock);
	if (b->unsynced && b->fd >= 0) {
		if (fdatasync(b->fd))
			err = -errno;
		else
			b->unsynced = false;
	}
	lock_drop(&b->lock);
	return err;
}

/* ---- the pass -------------------------------------------------------------------- */

static void answer(struct buffer *b, int err)	/* b->lock */
{
	struct waiter *w = b->serving, *next;

	lock_assert_held(&b->lock);
	for (; w; w = next) {
		next = w->next;
		if (!w->c)
			fuse_reply_err(w->req, EBADF);	/* its description is gone */
		else if (fuse_req_interrupted(w->req))
			/*
			 * Its caller was killed (the kernel sent an INTERRUPT): what it
			 * would have taken stays pending for the description, which
			 * another process may share.
			 */
			fuse_reply_err(w->req, EINTR);
		else if (err)
			fuse_reply_err(w->req, -err);
		else
			clean_answer(w->req, w->c, w->cmd, w->first, w->nr);
		free(w);
	}
	b->serving = NULL;
}

/*
 * Write b back; 0, or why not. The kernel reports an error our own reply to
 * a writeback WRITE gave, and may report it again to later syncs (Linux 6.1
 * does, after the pages it concerned were cut): the unstored pages answer
 * for it, in the ranges that hold them (clean_answer()). Any other error is
 * the clean's answer.
 */
static int writeback_stored(struct daemon *d, struct buffer *b)
{
	int err = writeback(d, b);

	lock_take(&b->lock);
	if (err && err == b->writeback_error)
		err = 0;
	lock_drop(&b->lock);
	return err;
}

/* Pages of b the page cache holds, as far as peek() can tell (else all of them). */
static uint64_t cached_pages(struct daemon *d, struct buffer *b)
{
	struct peek_result r;
	uint64_t pages;

	lock_take(&b->lock);
	pages = (b->size + d->page_size - 1) / d->page_size;
	if (b->peek_fd >= 0 && !peek(b->peek_fd, 0, 0, &r) && r.cached < pages)
		pages = r.cached;
	lock_drop(&b->lock);
	return pages;
}

/*
 * Compare b's pages with the state file (compare.c); 0 or the clean's
 * error, or 1 if this pass must write back instead: the helper cannot read
 * b (its mode lets it only write), a WRITE's pages could not be noted, or b
 * was cut while the helper compared.
 */
static int compare(struct daemon *d, struct buffer *b)
{
	struct compare_result r;
	int err;

	err = self_open(d, b) ? compare_pass(d, b, &r) : -EBADF;

	lock_take(&b->lock);
	if (err == -EACCES || err == -EBADF) {
		if (b->adapt.patience != UINT_MAX)
			logmsg("%s: cannot be compared (%s): it is tracked", b->name, strerror(-err));
		adapt_cannot_compare(&b->adapt);
	} else if (err != -ENOMEM && err != -EAGAIN) {
		b->verify_writeback = true;	/* what we stored, a writeback brings back unmarked */
	}
	lock_drop(&b->lock);
	if (err == -EACCES || err == -EBADF || err == -ENOMEM || err == -EAGAIN)
		return 1;	/* EAGAIN: b was cut while the helper compared */
	if (!err) {
		uint64_t cached = cached_pages(d, b);

		lock_take(&b->lock);
		adapt_compared(&b->adapt, r.changed, r.read_us, cached);
		lock_drop(&b->lock);
	}
	return err;
}

/* Have the kernel write b back (unless nothing is to be), and learn what it cost; 0 or the clean's error. */
static int track(struct daemon *d, struct buffer *b)
{
	uint64_t before, written;
	double t0 = now_us(), took;
	int err = 0;

	lock_take(&b->lock);
	before = b->written_back;
	lock_drop(&b->lock);
	if (!nothing_to_write_back(b))
		err = writeback_stored(d, b);
	took = now_us() - t0;
	lock_take(&b->lock);
	written = b->written_back - before;
	b->verify_writeback = false;
	lock_drop(&b->lock);
	if (!err) {
		uint64_t cached = cached_pages(d, b);

		lock_take(&b->lock);
		adapt_tracked(&b->adapt, written, took, cached);
		lock_drop(&b->lock);
	}
	return err;
}

/* Learn what changed in b since its last pass, as its adapt (and --mode) choose. */
static int learn(struct daemon *d, struct buffer *b)
{
	enum coherence before, how;
	int err;

	lock_take(&b->lock);
	before = how = adapt_choice(&b->adapt, d->mode);
	lock_drop(&b->lock);
	err = how == COHERENCE_COMPARE ? compare(d, b) : track(d, b);
	if (err == 1)
		err = track(d, b);
	lock_take(&b->lock);
	how = adapt_choice(&b->adapt, d->mode);
	lock_drop(&b->lock);
	if (how != before && d->mode == MODE_ADAPTIVE)
		logmsg("%s: %s from its next pass", b->name, how == COHERENCE_COMPARE ? "compared" : "tracked");
	return err;
}

static void run_pass(struct daemon *d, struct buffer *b)
{
	struct collector *k = d->collect;
	struct waiter *w, *next, *others = NULL;
	bool wb, requeue, retire;
	int err = 0;

	/* What this pass serves: what arrived before it started. */
	lock_take(&b->lock);
	wb = b->want_writeback;
	b->want_writeback = false;
	for (w = b->waiting; w; w = next) {
		next = w->next;
		if (w->kind == WAIT_CLEAN) {
			w->next = b->serving;
			b->serving = w;
			wb = true;
		} else {
			w->next = others;
			others = w;
		}
	}
	b->waiting = NULL;
	lock_drop(&b->lock);

	for (w = others; w; w = next) {
		next = w->next;
		if (w->kind == WAIT_ATTACH)
			do_attach(d, b, w);
		else
			do_detach(d, b, w);
		free(w);
	}
	if (wb) {
		err = learn(d, b);
		retry_unstored(d, b);
		drop_stale(d, b);
		if (!err && d->durable)
			err = durable_sync(b);
	}

	lock_take(&b->lock);
	answer(b, err);
	pages_notify(b);
	retire = !b->nexternal && b->self_open;	/* nobody left to clean: let our descriptor go */
	if (retire) {
		b->self_open = false;
		peek_close(b);
	}
	lock_drop(&b->lock);
	/*
	 * Closed before this pass ends: until then no other pass of b can start,
	 * so the helper never gets b's next OPEN or SYNC before this CLOSE —
	 * a SYNC racing it could sync whatever file reused the descriptor's
	 * number, and a clean would miss b's writes. Its RELEASE is answered by
	 * the workers and waited for by nobody (NOFLUSH).
	 */
	if (retire) {
		assert_in_pass(d, b, __func__);
		helper_close(d, b->ino);
	}

	lock_take(&b->lock);
	requeue = b->waiting || b->want_writeback;
	lock_take(&k->lock);
	b->running = false;
	requeue = requeue && !k->stop && push(k, b);	/* keeps our reference */
	lock_drop(&k->lock);
	lock_drop(&b->lock);
	if (!requeue) {
		lock_take(&d->lock);
		store_unref(d, b);
		lock_drop(&d->lock);
	}
}

/* The first queued buffer whose bucket has a collector to spare. */
static bool pick(struct collector *k, unsigned cap, struct queued *out)
{
	lock_assert_held(&k->lock);
	for (size_t i = 0; i < k->nqueue; i++) {
		struct busy *u = busy_of(k, k->queue[i].of);

		if (u && u->running >= cap)
			continue;
		*out = k->queue[i];
		memmove(&k->queue[i], &k->queue[i + 1], (k->nqueue - i - 1) * sizeof(*k->queue));
		k->nqueue--;
		return true;
	}
	return false;
}

struct thread_arg {
	struct daemon *d;
	unsigned index;
};

static void *collector_main(void *arg)
{
	struct thread_arg *t = arg;
	struct daemon *d = t->d;
	struct collector *k = d->collect;

	helper_use_channel(t->index);
	free(t);
	lock_take(&k->lock);
	while (!k->stop) {
		struct queued q;
		struct busy *u;

		if (!pick(k, d->limits.user_collectors, &q)) {
			lock_wait(&k->work, &k->lock);
			continue;
		}
		q.b->queued = false;
		q.b->running = true;
		q.b->pass_thread = pthread_self();
		u = busy_of(k, q.of);
		if (u)
			u->running++;
		lock_drop(&k->lock);
		run_pass(d, q.b);
		lock_take(&k->lock);
		if (u)
			busy_of(k, q.of)->running--;
		pthread_cond_broadcast(&k->work);	/* one of this bucket's may run now */
	}
	lock_drop(&k->lock);
	return NULL;
}

int collect_start(struct daemon *d)
{
	struct collector *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	lock_init(&k->lock, LOCK_COLLECT, "collector.lock");
	pthread_cond_init(&k->work, NULL);
	k->threads = calloc(d->limits.collectors, sizeof(*k->threads));
	if (!k->threads)
		return -ENOMEM;
	d->collect = k;
	for (unsigned i = 0; i < d->limits.collectors; i++) {
		struct thread_arg *t = malloc(sizeof(*t));
		int err;

		if (!t)
			return -ENOMEM;
		*t = (struct thread_arg){ d, i };
		err = pthread_create(&k->threads[i], NULL, collector_main, t);
		if (err) {
			free(t);
			return -err;
		}
		k->nthreads++;
	}
	return 0;
}

/* Every dirty page of the mount to the state files, before we go. */
static void sync_all(struct daemon *d)
{
	int err = helper_syncfs(d);

	if (err)
		logmsg("%s: cannot write back before stopping: %s", d->mountpoint, strerror(-err));
}

void collect_stop(struct daemon *d)
{
	struct collector *k = d->collect;
	size_t nheld = 0;
	fuse_ino_t *held;

	if (!k)
		return;
	lock_take(&k->lock);
	k->stop = true;
	pthread_cond_broadcast(&k->work);
	lock_drop(&k->lock);
	for (unsigned i = 0; i < k->nthreads; i++) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		if (pthread_timedjoin_np(k->threads[i], NULL, &until)) {
			logmsg("a collector is stuck; stopping without it");
			pthread_detach(k->threads[i]);
		}
	}
	sync_all(d);
	lock_take(&d->lock);
	held = calloc(d->nbuffers + 1, sizeof(*held));
	for (size_t i = 0; i < d->nbuffers; i++) {
		struct buffer *b = d->buffers[i];

		lock_take(&b->lock);
		for (struct waiter *w = b->waiting, *next; w; w = next) {
			next = w->next;
			fuse_reply_err(w->req, ENOTCONN);
			free(w);
		}
		b->waiting = NULL;
		if (held && b->self_open) {
			held[nheld++] = b->ino;
			b->self_open = false;
			peek_close(b);
		}
		lock_drop(&b->lock);
	}
	lock_drop(&d->lock);
	/* Their RELEASE needs the workers and d->lock: closed with no lock held. */
	for (size_t i = 0; i < nheld; i++)
		helper_close(d, held[i]);
	free(held);
}
