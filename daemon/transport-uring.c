/* SPDX-License-Identifier: MIT */
/*
 * FUSE over io_uring (Linux 6.14+, CONFIG_FUSE_IO_URING, with
 * /sys/module/fuse/parameters/enable_uring set), through liburing: a request
 * lands in a ring entry, and its reply and the wait for the next request are
 * one SQE (FUSE_IO_URING_CMD_COMMIT_AND_FETCH on the /dev/fuse descriptor)
 * instead of a writev(2) and a read(2).
 *
 * Why libfuse's dispatcher, through fuse_session_custom_io() (libfuse 3.13+),
 * and not the protocol spoken here for the requests that matter:
 *  - once the ring is ready the kernel sends it every request but FORGET and
 *    INTERRUPT: LOOKUP, OPEN, IOCTL, POLL, READ, RELEASE, NOTIFY_REPLY too. A
 *    transport for "the hot requests" would still hand the rest to libfuse,
 *    and the hot ones (WRITE, the clean ioctl) would need a second handler
 *    each, with replies sent from collector threads outside fuse_req_t, kept
 *    equal to the first forever;
 *  - libfuse 3.14 cannot negotiate io_uring, but its I/O can be replaced: a
 *    request in an entry is laid out as /dev/fuse delivers it (its two
 *    headers copied in front of the payload, which stays where the kernel
 *    put it) and fed to fuse_session_process_buf(); every reply, from any
 *    thread, comes through writev_hook(), which finds the entry by the
 *    reply's unique and commits it. The INIT reply comes through the same
 *    hook: that is where FUSE_OVER_IO_URING is asked for;
 *  - INTERRUPT still works: libfuse matches it (read from /dev/fuse) to
 *    whatever request it dispatched, ring or not.
 * The cost over speaking the protocol: up to 168 bytes of headers copied
 * per request, and the reply copied into its entry (24 bytes for a WRITE).
 *
 * Threads. The kernel has a queue per possible CPU, fills the one of the
 * CPU the requesting task runs on, and uses the ring only once every queue
 * has an entry. One queue thread per queue, each with its own ring, the
 * ring's only submitter: the kernel delivers an entry's next request in
 * task work of the task that submitted the entry's command, and cancels
 * the command when that task exits — so no collector or libfuse worker
 * (which come and go) ever submits. A queue thread runs the handlers of
 * the requests its entries receive, as libfuse's workers do, under the
 * same rule (daemon.h: nothing waits on the connection). A reply from
 * another thread (a collector answering a clean) is copied into its entry
 * and handed over: put on the queue's list of commits, under the
 * transport's lock, with an eventfd write to wake the thread if it sleeps.
 *
 * Entries a handler leaves unanswered (a clean waiting for a pass, an
 * attach) stay with their request until the reply: the kernel can fetch
 * into none of them meanwhile. A queue whose every entry waits so would
 * take no WRITE, and the pass the cleans wait for needs WRITEs: so a queue
 * registers another entry whenever fewer than DEPTH are free of waiting
 * requests (entries are never unregistered; MAX_ENTRIES bounds a queue).
 *
 * The transport's lock (LOCK_TRANSPORT, the last rank: replies are sent
 * under buffer locks) covers the table of requests in entries, the
 * entries' states, the queues' lists of commits and their sleeping flags.
 * Nothing waits while holding it.
 *
 * Stop: after the unmount, when nothing replies any more. The unmount ends
 * the connection, and the kernel completes every entry with -ENOTCONN; an
 * entry still with the kernel when its queue thread exits is cancelled
 * with it. While a ring holds the /dev/fuse descriptor the connection
 * lives: a mount that could not be unmounted dies when the rings are gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon.h"
#include "kabi.h"
#include "transport.h"

#define DEPTH 4			/* entries per queue free of waiting requests */
#define MAX_ENTRIES 1024	/* per queue */
#define SQ_SIZE 64		/* a full SQ is submitted before the next SQE is taken */
#define HASH_SIZE 256
#define HEADERS (sizeof(struct fuse_in_header) + FUSE_URING_OP_IN_OUT_SZ)

enum ent_state {
	ENT_KERNEL,		/* REGISTER or COMMIT_AND_FETCH submitted: the kernel's */
	ENT_HANDLING,		/* a request in it, its handler running */
	ENT_WAITING,		/* its handler returned without replying: another thread will */
	ENT_REPLIED,		/* the reply is in it, its commit on the way */
	ENT_DEAD,		/* the kernel is done with it (the connection ended) */
};

struct queue;
struct reply;

struct ent {
	struct queue *q;
	struct fuse_uring_req_header *hdr;
	char *payload;			/* R.payload_size bytes; HEADERS bytes before it are ours */
	void *map;
	size_t map_len;
	struct iovec iov[2];		/* REGISTER's argument: it must stay */
	enum fuse_uring_cmd cmd;	/* the last one submitted */
	enum ent_state state;		/* R.lock */
	uint64_t unique;		/* of the request in it */
	struct ent *hash_next;		/* R.hash, R.lock */
	struct ent *commit_next;	/* q->commits, R.lock */
	struct ent *all_next;		/* q->all: the queue thread's, and stop's */
	struct reply *stash;		/* its reply, while its handler runs (R.lock) */
};

struct queue {
	unsigned qid;
	struct io_uring ring;
	bool ring_up;
	int efd;
	uint64_t efd_count;		/* where the eventfd read lands */
	pthread_t thread;
	bool thread_up;
	struct ent *all;
	unsigned nents;			/* registered */
	unsigned live;			/* of them, not ENT_DEAD */
	unsigned waiting;		/* of them, ENT_WAITING (R.lock) */
	struct ent *commits;		/* replied from other threads (R.lock) */
	bool sleeping;			/* the thread waits for a completion (R.lock) */
	struct reply *stash;		/* the reply to the request its thread handles */
	bool grow_warned;
	int registered;			/* start: entries the kernel took, or -errno */
};

static struct {
	struct daemon *d;
	int fd;				/* /dev/fuse */
	struct lock lock;
	struct queue *queues;
	unsigned nqueues;
	size_t payload_size;		/* the kernel's max_payload_sz for our INIT reply */
	struct ent *hash[HASH_SIZE];	/* entries with a request, by unique (R.lock) */
	bool in_init;			/* main, during start: INIT's reply passes writev_hook */
	uint64_t init_unique;
	bool offered;			/* the kernel's INIT offered FUSE_OVER_IO_URING */
	bool asked;			/* our INIT reply asked for it */
	char init_why[96];		/* why we did not ask */
	atomic_bool serving;		/* entries may hold requests: replies look for them */
	atomic_bool stopping;
	pthread_mutex_t start_mutex;
	pthread_cond_t started;
	unsigned nstarted;
} R = { .fd = -1, .start_mutex = PTHREAD_MUTEX_INITIALIZER, .started = PTHREAD_COND_INITIALIZER };

static _Thread_local struct queue *my_queue;	/* on a queue thread: its queue */

/* ---- entries -------------------------------------------------------------- */

static struct ent *ent_new(struct queue *q)
{
	size_t page = R.d->page_size, len = 2 * page + R.payload_size;
	struct ent *e = calloc(1, sizeof(*e));
	char *m;

	if (!e)
		return NULL;
	/* headers in the first page, ours before the payload in the second: untouched pages cost nothing */
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		free(e);
		return NULL;
	}
	*e = (struct ent){ .q = q, .map = m, .map_len = len, .hdr = (void *)m, .payload = m + 2 * page,
			   .state = ENT_KERNEL };
	e->iov[0] = (struct iovec){ e->hdr, sizeof(*e->hdr) };
	e->iov[1] = (struct iovec){ e->payload, R.payload_size };
	e->all_next = q->all;
	q->all = e;
	q->nents++;
	q->live++;
	return e;
}

static void ents_free(struct queue *q)
{
	while (q->all) {
		struct ent *e = q->all;

		q->all = e->all_next;
		munmap(e->map, e->map_len);
		free(e);
	}
	q->nents = q->live = 0;
}

static unsigned hash_of(uint64_t unique)
{
	return (unsigned)((unique >> 1) * 0x9E3779B97F4A7C15ull >> 56) % HASH_SIZE;
}

/* Caller holds R.lock. */
static void hash_add(struct ent *e)
{
	unsigned h = hash_of(e->unique);

	lock_assert_held(&R.lock);
	e->hash_next = R.hash[h];
	R.hash[h] = e;
}

/* The entry holding the request unique, taken out of the table; caller holds R.lock. */
static struct ent *hash_take(uint64_t unique)
{
	struct ent **at = &R.hash[hash_of(unique)];

	lock_assert_held(&R.lock);
	for (; *at; at = &(*at)->hash_next) {
		struct ent *e = *at;

		if (e->unique == unique) {
			*at = e->hash_next;
			return e;
		}
	}
	return NULL;
}

/* ---- submissions: the queue thread's alone ---------------------------------- */

/*
 * Clear an SQE of a ring made with IORING_SETUP_SQE128: two struct
 * io_uring_sqe long (the command area is the second half). Out of line, so
 * that the compiler does not take the first half for the whole object.
 */
static __attribute__((noinline)) void sqe128_clear(void *sqe)
{
	memset(sqe, 0, 2 * sizeof(struct io_uring_sqe));
}

static struct io_uring_sqe *sqe_get(struct queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {	/* full: hand these to the kernel, which takes them all at once */
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
	}
	return sqe;
}

static void submit_cmd(struct queue *q, struct ent *e, enum fuse_uring_cmd cmd)
{
	struct io_uring_sqe *sqe = sqe_get(q);
	struct fuse_uring_cmd_req *req;

	if (!sqe) {	/* cannot happen after a submit; the entry is lost to the kernel's view */
		logmsg("io_uring: no SQE for queue %u", q->qid);
		return;
	}
	sqe128_clear(sqe);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->fd = 0;				/* R.fd, registered */
	sqe->cmd_op = cmd;
	req = (struct fuse_uring_cmd_req *)sqe->cmd;
	req->qid = (uint16_t)q->qid;
	if (cmd == FUSE_IO_URING_CMD_REGISTER) {
		sqe->addr = (uintptr_t)e->iov;
		sqe->len = 2;
	} else {
		req->commit_id = e->unique;
	}
	io_uring_sqe_set_data(sqe, e);
	e->cmd = cmd;
}

/* Read the eventfd other threads wake this queue's thread with. */
static void submit_wake_read(struct queue *q)
{
	struct io_uring_sqe *sqe = sqe_get(q);

	if (!sqe)
		return;
	io_uring_prep_read(sqe, q->efd, &q->efd_count, sizeof(q->efd_count), 0);
	io_uring_sqe_set_data(sqe, q);
}

/*
 * A reply: the out header, then the data, copied out of libfuse's iovec.
 * Why not straight into the entry: its payload still holds the request,
 * which its handler may read until it returns (cohmemd_create() logs the
 * name after answering). So a reply that comes while the handler runs is
 * kept aside and committed once it has returned; only a reply to a request
 * whose handler is done goes into the entry at once.
 */
struct reply {
	size_t len;			/* of data */
	struct fuse_out_header out;
	char data[];
};

/* iov into r (room for limit bytes of data): 0, or -EIO if it does not fit (the kernel never asks so much). */
static int reply_fill(struct reply *r, size_t limit, const struct iovec *iov, int count)
{
	memcpy(&r->out, iov[0].iov_base, sizeof(r->out));
	r->len = 0;
	for (int i = 1; i < count; i++) {
		if (iov[i].iov_len > limit - r->len) {
			r->out.error = -EIO;
			r->len = 0;
			return -EIO;
		}
		memcpy(r->data + r->len, iov[i].iov_base, iov[i].iov_len);
		r->len += iov[i].iov_len;
	}
	return 0;
}

/* The reply r into e, whose handler has returned. */
static void ent_put_reply(struct ent *e, const struct reply *r)
{
	struct fuse_out_header out = r->out;
	struct fuse_uring_ent_in_out io = { .commit_id = e->unique, .payload_sz = (uint32_t)r->len };

	out.len = (uint32_t)(sizeof(out) + r->len);
	memcpy(e->hdr->in_out, &out, sizeof(out));
	memcpy(&e->hdr->ring_ent_in_out, &io, sizeof(io));
	memcpy(e->payload, r->data, r->len);
}

/* A reply of error (a negative errno, or 0 with nothing else) to the request in e, committed now. */
static void reply_now(struct queue *q, struct ent *e, int error)
{
	struct reply r = { .out = { .error = error, .unique = e->unique } };

	ent_put_reply(e, &r);
	lock_take(&R.lock);
	e->state = ENT_REPLIED;
	lock_drop(&R.lock);
	submit_cmd(q, e, FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
}

/* Hand e, replied, to its queue's thread. */
static void hand_over(struct ent *e)
{
	struct queue *q = e->q;
	uint64_t one = 1;
	bool wake;

	if (my_queue == q) {	/* its own thread, inside a handler: the SQ is ours */
		submit_cmd(q, e, FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
		return;
	}
	lock_take(&R.lock);
	e->commit_next = q->commits;
	q->commits = e;
	wake = q->sleeping;
	q->sleeping = false;	/* one wake is enough */
	lock_drop(&R.lock);
	if (wake && write(q->efd, &one, sizeof(one)) != sizeof(one))
		logmsg("io_uring: cannot wake queue %u: %s", q->qid, strerror(errno));
}

/* The entry holding the request unique; caller holds R.lock. */
static struct ent *hash_find(uint64_t unique)
{
	struct ent *e = R.hash[hash_of(unique)];

	lock_assert_held(&R.lock);
	while (e && e->unique != unique)
		e = e->hash_next;
	return e;
}

/*
 * The reply in iov, if it answers a request in an entry: 1 when it was
 * taken, 0 when it is not the ring's, -errno. A queue thread answering the
 * request it is handling keeps the reply in its queue's stash: nobody else
 * touches that entry meanwhile. Any other reply is copied first, since
 * once its entry is marked replied, the entry's queue thread may commit it.
 */
static int reply_hook(const struct iovec *iov, int count)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	struct queue *mine = my_queue;
	struct reply *copy;
	enum ent_state was;
	struct ent *e;
	bool own;

	lock_take(&R.lock);
	e = hash_find(out->unique);
	/* only this thread moves its own queue's entry out of ENT_HANDLING */
	own = e && e->q == mine && e->state == ENT_HANDLING;
	if (own) {
		hash_take(out->unique);
		e->state = ENT_REPLIED;
		e->stash = mine->stash;
	}
	lock_drop(&R.lock);
	if (!e)
		return 0;
	if (own) {	/* dispatch() commits it once the handler returns */
		reply_fill(mine->stash, R.payload_size, iov, count);
		return 1;
	}
	copy = malloc(sizeof(*copy) + R.payload_size);
	if (!copy)
		return -ENOMEM;	/* the request waits; its caller can be killed */
	reply_fill(copy, R.payload_size, iov, count);
	lock_take(&R.lock);
	e = hash_take(out->unique);	/* one reply per request: nobody took it meanwhile */
	was = e ? e->state : ENT_DEAD;
	if (e) {
		e->state = ENT_REPLIED;
		if (was == ENT_HANDLING)
			e->stash = copy;	/* its handler still runs: dispatch() commits it */
		else
			e->q->waiting--;
	}
	lock_drop(&R.lock);
	if (was != ENT_WAITING) {
		if (!e)
			free(copy);
		return e ? 1 : 0;
	}
	ent_put_reply(e, copy);	/* its handler is done: into the entry, and to the kernel */
	free(copy);
	hand_over(e);
	return 1;
}

/* What the kernel makes the payload buffer of an entry hold, from our INIT reply (fuse_uring_create()). */
static size_t payload_size(const struct fuse_init_out *arg)
{
	size_t page = R.d->page_size, pages = arg->flags & FUSE_MAX_PAGES ? arg->max_pages : 32, size = 8192;

	if (arg->max_write > size)
		size = arg->max_write;
	if (pages * page > size)
		size = pages * page;
	return size;
}

/* Every queue's first DEPTH entries: made before we ask, so that asking means we can serve. */
static int ents_prepare(void)
{
	for (unsigned i = 0; i < R.nqueues; i++) {
		R.queues[i].stash = malloc(sizeof(struct reply) + R.payload_size);
		if (!R.queues[i].stash)
			return -ENOMEM;
		for (unsigned n = 0; n < DEPTH; n++)
			if (!ent_new(&R.queues[i]))
				return -ENOMEM;
	}
	return 0;
}

/*
 * libfuse's INIT reply, on its way: ask for FUSE_OVER_IO_URING if the kernel
 * offered it and the entries its answer sizes could be made.
 */
static ssize_t init_reply(int fd, struct iovec *iov, int count)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_init_out arg = { 0 };
	struct iovec v[2] = { iov[0], { &arg, count > 1 ? iov[1].iov_len : 0 } };
	size_t flags2_end = offsetof(struct fuse_init_out, flags2) + sizeof(arg.flags2);

	R.in_init = false;
	if (count != 2 || out->error || v[1].iov_len < flags2_end || v[1].iov_len > sizeof(arg)) {
		snprintf(R.init_why, sizeof(R.init_why), "libfuse's INIT reply has no flags2");
		return writev(fd, iov, count);
	}
	memcpy(&arg, iov[1].iov_base, v[1].iov_len);
	if (!R.offered) {
		snprintf(R.init_why, sizeof(R.init_why), "the kernel's INIT did not offer FUSE_OVER_IO_URING");
	} else {
		R.payload_size = payload_size(&arg);
		if (ents_prepare()) {
			snprintf(R.init_why, sizeof(R.init_why), "cannot allocate ring entries");
		} else {
			arg.flags |= FUSE_INIT_EXT;
			arg.flags2 |= (uint32_t)(FUSE_OVER_IO_URING >> 32);
			R.asked = true;
		}
	}
	return writev(fd, v, 2);
}

static ssize_t writev_hook(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	ssize_t len = 0;
	int taken = 0;

	(void)userdata;
	if (R.in_init && out->unique == R.init_unique)
		return init_reply(fd, iov, count);
	if (out->unique && atomic_load(&R.serving))	/* not a notification: it may answer a request in an entry */
		taken = reply_hook(iov, count);
	if (!taken)
		return writev(fd, iov, count);
	if (taken < 0) {
		errno = -taken;
		return -1;
	}
	for (int i = 0; i < count; i++)
		len += (ssize_t)iov[i].iov_len;
	return len;
}

static ssize_t read_hook(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	return read(fd, buf, len);
}

/* ---- the queue threads ------------------------------------------------------------ */

/* One more entry for q, registered with the next submit: the queue thread's. */
static void ent_grow(struct queue *q)
{
	struct ent *e = q->nents < MAX_ENTRIES ? ent_new(q) : NULL;

	if (!e) {
		if (!q->grow_warned)
			logmsg("io_uring: queue %u cannot have more than %u entries; requests on it wait for "
			       "the ones answered later", q->qid, q->nents);
		q->grow_warned = true;
		return;
	}
	atomic_fetch_add(&R.d->transport.entries, 1);
	submit_cmd(q, e, FUSE_IO_URING_CMD_REGISTER);
}

static bool no_reply(uint32_t opcode)
{
	return opcode == FUSE_NOTIFY_REPLY || opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET ||
	       opcode == FUSE_INTERRUPT;
}

/* The request the kernel put in e: laid out as /dev/fuse would have it, and handled. */
static void dispatch(struct queue *q, struct ent *e)
{
	struct fuse_in_header in;
	struct fuse_uring_ent_in_out io;
	struct reply *stash;
	enum ent_state st;
	size_t op;
	char *at;
	bool grow = false;

	memcpy(&in, e->hdr->in_out, sizeof(in));
	memcpy(&io, &e->hdr->ring_ent_in_out, sizeof(io));
	e->unique = io.commit_id;
	/* in.len counts the headers and every argument: what is not in the payload is in op_in */
	if (in.len < sizeof(in) + (uint64_t)io.payload_sz || io.payload_sz > R.payload_size ||
	    (op = in.len - sizeof(in) - io.payload_sz) > FUSE_URING_OP_IN_OUT_SZ) {
		logmsg("io_uring: request %llu (opcode %u) with %u bytes in %u of payload: refused",
		       (unsigned long long)in.unique, in.opcode, in.len, io.payload_sz);
		reply_now(q, e, -EIO);
		return;
	}
	at = e->payload - sizeof(in) - op;
	memcpy(at, &in, sizeof(in));
	memcpy(at + sizeof(in), e->hdr->op_in, op);
	if (!no_reply(in.opcode)) {
		lock_take(&R.lock);
		e->state = ENT_HANDLING;
		hash_add(e);
		lock_drop(&R.lock);
	}
	fuse_session_process_buf(R.d->se, &(struct fuse_buf){ .size = in.len, .mem = at });
	if (no_reply(in.opcode)) {	/* libfuse answers none: the kernel still waits for the entry */
		reply_now(q, e, 0);
		return;
	}
	lock_take(&R.lock);
	st = e->state;
	stash = e->stash;
	e->stash = NULL;
	if (st == ENT_HANDLING) {	/* answered later, from another thread */
		e->state = ENT_WAITING;
		grow = q->nents - ++q->waiting < DEPTH;
	}
	lock_drop(&R.lock);
	if (st == ENT_REPLIED) {	/* answered while it ran: the payload is free now */
		ent_put_reply(e, stash);
		if (stash != q->stash)
			free(stash);
		submit_cmd(q, e, FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
	} else if (grow) {
		ent_grow(q);
	}
}

/* A completion of q's ring. */
static void complete(struct queue *q, void *data, int res)
{
	struct ent *e = data;

	if (data == q) {	/* the eventfd: someone handed commits over, or stop */
		if (!atomic_load(&R.stopping))
			submit_wake_read(q);
		return;
	}
	if (res == 0) {
		dispatch(q, e);
	} else if (res == -EAGAIN || res == -EINTR) {
		submit_cmd(q, e, e->cmd);
	} else {
		/* -ENOTCONN: the connection ended, or the entry was cancelled */
		if (res != -ENOTCONN && res != -ECONNABORTED)
			logmsg("io_uring: queue %u: %s of an entry failed: %s", q->qid,
			       e->cmd == FUSE_IO_URING_CMD_REGISTER ? "REGISTER" : "COMMIT_AND_FETCH",
			       strerror(-res));
		lock_take(&R.lock);
		e->state = ENT_DEAD;
		lock_drop(&R.lock);
		q->live--;
	}
}

/* The completions there are, taken off the ring first: handlers may submit meanwhile. */
static void reap(struct queue *q)
{
	struct io_uring_cqe *cqes[32];
	struct {
		void *data;
		int res;
	} done[32];
	unsigned n;

	while ((n = io_uring_peek_batch_cqe(&q->ring, cqes, 32)) > 0) {
		for (unsigned i = 0; i < n; i++)
			done[i].data = io_uring_cqe_get_data(cqes[i]), done[i].res = cqes[i]->res;
		io_uring_cq_advance(&q->ring, n);
		for (unsigned i = 0; i < n; i++)
			complete(q, done[i].data, done[i].res);
	}
}

/*
 * Register q's entries; the count the kernel took, or -errno. A REGISTER is
 * refused at once or taken: the completions of the refused ones are there
 * when the submit returns. Completions of requests (res 0) stay for the loop.
 */
static int register_queue(struct queue *q)
{
	struct io_uring_cqe *cqe;
	unsigned head, refused = 0;
	int err = 0, ret;

	for (struct ent *e = q->all; e; e = e->all_next)
		submit_cmd(q, e, FUSE_IO_URING_CMD_REGISTER);
	submit_wake_read(q);
	ret = io_uring_submit(&q->ring);
	if (ret < 0)
		return ret;
	io_uring_for_each_cqe(&q->ring, head, cqe) {
		if (cqe->res < 0 && io_uring_cqe_get_data(cqe) != q) {
			refused++;
			err = cqe->res;
		}
	}
	if (refused) {	/* their completions are read by the loop, which counts them dead */
		if (refused == q->nents)
			return err;
		logmsg("io_uring: queue %u: %u of %u entries refused: %s", q->qid, refused, q->nents,
		       strerror(-err));
	}
	return (int)(q->nents - refused);
}

static void *queue_thread(void *arg)
{
	struct queue *q = arg;
	char name[16];

	my_queue = q;
	snprintf(name, sizeof(name), "cohmemd-ring%u", q->qid);
	pthread_setname_np(pthread_self(), name);
	q->registered = register_queue(q);
	pthread_mutex_lock(&R.start_mutex);
	R.nstarted++;
	pthread_cond_broadcast(&R.started);
	pthread_mutex_unlock(&R.start_mutex);
	while (!atomic_load(&R.stopping)) {
		struct ent *commits;
		int ret;

		lock_take(&R.lock);
		commits = q->commits;
		q->commits = NULL;
		q->sleeping = true;
		lock_drop(&R.lock);
		while (commits) {
			struct ent *e = commits;

			commits = e->commit_next;
			submit_cmd(q, e, FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
		}
		ret = io_uring_submit_and_wait(&q->ring, 1);
		lock_take(&R.lock);
		q->sleeping = false;
		lock_drop(&R.lock);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			logmsg("io_uring: queue %u: %s; it serves no more", q->qid, strerror(-ret));
			break;
		}
		reap(q);
	}
	return NULL;
}

/* ---- start and stop ------------------------------------------------------------ */

/* How many queues the kernel makes: num_possible_cpus(). */
static unsigned possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	unsigned n = 0, a, b;
	char sep;

	while (f && fscanf(f, "%u", &a) == 1) {
		b = a;
		if (fscanf(f, "%c", &sep) == 1 && sep == '-' && fscanf(f, "%u%c", &b, &sep) < 1)
			break;
		n += b - a + 1;
		if (sep != ',')
			break;
	}
	if (f)
		fclose(f);
	return n ? n : (unsigned)get_nprocs_conf();
}

/* Whether the kernel would offer io_uring: 0, or -errno with why. */
static int uring_enabled(char *why, size_t whylen)
{
	const char *path = "/sys/module/fuse/parameters/enable_uring";
	FILE *f = fopen(path, "re");
	int c = f ? fgetc(f) : EOF;

	if (f)
		fclose(f);
	if (!f) {
		snprintf(why, whylen, "this kernel has no FUSE over io_uring (no %s; Linux 6.14+ with "
			 "CONFIG_FUSE_IO_URING)", path);
		return -EOPNOTSUPP;
	}
	if (c != 'Y' && c != '1') {
		snprintf(why, whylen, "%s is off (as root: echo 1 > %s)", path, path);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int queues_make(char *why, size_t whylen)
{
	unsigned n = possible_cpus();

	R.queues = calloc(n, sizeof(*R.queues));
	if (!R.queues) {
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	R.nqueues = n;
	for (unsigned i = 0; i < n; i++)
		R.queues[i].efd = -1;
	for (unsigned i = 0; i < n; i++) {
		struct queue *q = &R.queues[i];
		int err;

		q->qid = i;
		q->efd = eventfd(0, EFD_CLOEXEC);
		if (q->efd < 0) {
			snprintf(why, whylen, "eventfd: %s", strerror(errno));
			return -errno;
		}
		err = io_uring_queue_init(SQ_SIZE, &q->ring, IORING_SETUP_SQE128);
		if (!err) {
			q->ring_up = true;
			err = io_uring_register_files(&q->ring, &R.fd, 1);
		}
		if (err) {
			snprintf(why, whylen, "%s: %s", q->ring_up ? "io_uring_register_files" : "io_uring_setup",
				 strerror(-err));
			return err;
		}
	}
	return 0;
}

/* INIT, read and answered here (asking for the ring if we may); 0 or -errno with why. */
static int init_here(struct daemon *d, char *why, size_t whylen)
{
	struct fuse_buf buf = { 0 };

	for (;;) {
		const struct fuse_in_header *in;
		int n = fuse_session_receive_buf(d->se, &buf);

		if (n == -EINTR)
			continue;
		if (n <= 0) {
			snprintf(why, whylen, "reading INIT: %s", strerror(n ? -n : ENOTCONN));
			free(buf.mem);
			return n ? n : -ENOTCONN;
		}
		in = buf.mem;
		if ((size_t)n >= sizeof(*in) && in->opcode == FUSE_INIT) {
			const struct fuse_init_in *arg = (const void *)(in + 1);

			R.in_init = true;
			R.init_unique = in->unique;
			R.offered = (size_t)n >= sizeof(*in) + sizeof(*arg) && (arg->flags & FUSE_INIT_EXT) &&
				    (arg->flags2 & (FUSE_OVER_IO_URING >> 32));
		}
		fuse_session_process_buf(d->se, &buf);	/* the INIT reply passes init_reply() */
		if (R.init_unique)
			break;
	}
	free(buf.mem);
	R.in_init = false;
	if (!R.asked) {
		snprintf(why, whylen, "%s", R.init_why[0] ? R.init_why : "INIT failed");
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Start every queue thread and wait for their registrations: how many queues registered entries. */
static unsigned threads_start(void)
{
	unsigned ok = 0, want = 0;

	for (unsigned i = 0; i < R.nqueues; i++) {
		struct queue *q = &R.queues[i];

		q->thread_up = !pthread_create(&q->thread, NULL, queue_thread, q);
		if (!q->thread_up)
			q->registered = -EAGAIN;
		want += q->thread_up;
	}
	pthread_mutex_lock(&R.start_mutex);
	while (R.nstarted < want)
		pthread_cond_wait(&R.started, &R.start_mutex);
	pthread_mutex_unlock(&R.start_mutex);
	for (unsigned i = 0; i < R.nqueues; i++)
		ok += R.queues[i].registered > 0;
	return ok;
}

/*
 * Our INIT reply asked for the ring, which is not ready: the kernel holds
 * every request until it is. A REGISTER it refuses makes it give up the
 * ring (fuse_uring_cmd() clears fc->io_uring) and use /dev/fuse.
 */
static void give_up_ring(void)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct iovec none[2] = { { NULL, 0 }, { NULL, 0 } };

	if (io_uring_queue_init(2, &ring, IORING_SETUP_SQE128))
		return;
	sqe = io_uring_get_sqe(&ring);
	sqe128_clear(sqe);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = R.fd;
	sqe->cmd_op = FUSE_IO_URING_CMD_REGISTER;
	sqe->addr = (uintptr_t)none;	/* a header buffer too small: -EINVAL */
	sqe->len = 2;
	if (io_uring_submit(&ring) == 1 && !io_uring_wait_cqe(&ring, &cqe))
		io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
}

static void uring_stop(struct daemon *d)
{
	uint64_t one = 1;

	atomic_store(&R.stopping, true);
	for (unsigned i = 0; i < R.nqueues; i++) {
		struct queue *q = &R.queues[i];

		if (q->thread_up && write(q->efd, &one, sizeof(one)) == sizeof(one))
			pthread_join(q->thread, NULL);
		q->thread_up = false;
	}
	/* Nothing replies any more (daemon.h: stop comes last); a late one would go to /dev/fuse. */
	atomic_store(&R.serving, false);
	lock_take(&R.lock);
	memset(R.hash, 0, sizeof(R.hash));
	lock_drop(&R.lock);
	for (unsigned i = 0; i < R.nqueues; i++) {
		struct queue *q = &R.queues[i];

		if (q->ring_up)
			io_uring_queue_exit(&q->ring);	/* cancels what the kernel still holds */
		q->ring_up = false;
		if (q->efd >= 0)
			close(q->efd);
		q->efd = -1;
		ents_free(q);
		free(q->stash);
		q->stash = NULL;
	}
	free(R.queues);
	R.queues = NULL;
	R.nqueues = 0;
	atomic_store(&d->transport.entries, 0);
}

static int uring_start(struct daemon *d, char *why, size_t whylen)
{
	static const struct fuse_custom_io io = { .writev = writev_hook, .read = read_hook };
	unsigned ok;
	int err;

	R.d = d;
	R.fd = fuse_session_fd(d->se);
	lock_init(&R.lock, LOCK_TRANSPORT, "transport.lock");
	err = uring_enabled(why, whylen);
	if (!err)
		err = queues_make(why, whylen);
	if (!err && (err = fuse_session_custom_io(d->se, &io, R.fd)))
		snprintf(why, whylen, "fuse_session_custom_io: %s", strerror(-err));
	if (err) {	/* nothing asked yet: libfuse's loop serves /dev/fuse as it would have */
		uring_stop(d);
		return err;
	}
	/* From here, /dev/fuse goes through our hooks, which pass what is not the ring's through. */
	err = init_here(d, why, whylen);
	if (err) {
		uring_stop(d);
		return err;
	}
	atomic_store(&R.serving, true);	/* requests may come as soon as a thread registers */
	ok = threads_start();
	if (ok < R.nqueues) {	/* a queue without an entry: the ring is not ready, nor ever will be */
		for (unsigned i = 0; i < R.nqueues; i++) {
			if (R.queues[i].registered <= 0) {
				snprintf(why, whylen, "REGISTER on queue %u of %u: %s", i, R.nqueues,
					 strerror(R.queues[i].registered ? -R.queues[i].registered : EIO));
				break;
			}
		}
		give_up_ring();
		uring_stop(d);
		return -EOPNOTSUPP;
	}
	d->transport.queues = R.nqueues;
	for (unsigned i = 0; i < R.nqueues; i++)
		atomic_fetch_add(&d->transport.entries, (unsigned)R.queues[i].registered);
	return 0;
}

const struct transport_ops transport_uring = {
	.name = "uring",
	.start = uring_start,
	.stop = uring_stop,
};
