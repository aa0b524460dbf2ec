/* SPDX-License-Identifier: MIT */
/*
 * cohmemd: a FUSE file system of buffers whose every mapping, in every
 * process, is kept coherent with a backing store.
 *
 * Where bytes come from. Only from the kernel: write(2) and the kernel's
 * writeback of pages written through mappings both arrive as WRITE
 * requests, which are stored in the state file and then marked for every
 * consumer. A clean makes the kernel write back the buffer's dirty pages
 * first (fdatasync() of a descriptor the daemon holds on its own mount), so
 * it reports every write that completed before it, by any process: attached
 * or not, forked, never linked with libcohmem, or dead. A buffer whose
 * writers rewrite the same pages may be compared instead (compare.c): the
 * helper reads its pages from the page cache, without cleaning them,
 * against the state file; adapt.c chooses per buffer. The daemon never
 * reads a client's memory or page tables.
 *
 * Threads, and what each may wait for. Requests are handled by FUSE
 * workers (libfuse's loop on /dev/fuse) and, with FUSE over io_uring
 * (transport-uring.c, --transport), by one ring thread per kernel queue
 * (one per possible CPU), which then carry every request but FORGET and
 * INTERRUPT while the workers wait on /dev/fuse for those. Both wait only
 * for the short mutexes below, never for anything that needs another
 * request of this connection answered. Everything that can — writing back,
 * opening the daemon's own files, reading /proc/<pid>/maps, retrieving from
 * the page cache — runs on collector threads (collect.c), holding no lock,
 * and their requests are answered from there (any thread may answer: a
 * ring's replies are handed to its thread, transport.h). The watcher
 * (watch.c) follows exits, the --interval timer and termination. The
 * transport starts after the other threads and stops after the unmount.
 *
 * Locks (lock.h): daemon.lock covers the table of buffers (names, inode
 * numbers, references); buffer.lock one buffer's attributes, consumers,
 * attachments and pending pages; users_lock the per-user accounting;
 * collect.lock the job queue; transport.lock the ring's requests and
 * replies. Order: daemon.lock, buffer.lock, users_lock, collect.lock,
 * transport.lock, never two buffers' at once. None is held across a wait on
 * the connection. A comment "caller holds X" (or a trailing "X" on a
 * declaration below) is asserted by the function in debug and sanitized
 * builds (lock_assert_held), and the order by every lock_take().
 */
#ifndef COHMEMD_H
#define COHMEMD_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cohmemd-proto.h"
#include "held.h"
#include "lock.h"
#include "pageset.h"

/* An open file description of a buffer. Every one is a consumer, but the daemon's own. */
struct consumer {
	struct buffer *b;
	struct pageset pending;		/* pages written since this description's last clean */
	size_t charged;			/* pending's heap, charged to uid (--user-pending) */
	bool overflow;			/* pending was dropped: every page of [owed_from, owed_to) is owed */
	uint64_t owed_from;		/* while overflow: pages below it are in pending as usual */
	uint64_t owed_to;		/* while overflow: past the buffer's pages, and the set's, then */
	bool internal;			/* the daemon's own writeback descriptor */
	int accmode;			/* O_RDONLY, O_WRONLY or O_RDWR */
	uid_t uid;			/* who opened it: charged for it */
	struct fuse_pollhandle *ph;	/* a poller waiting for pending pages */
};

/* A mapping a process announced with COHMEM_IOC_ATTACH (shown by cohmemctl ls). */
struct attachment {
	pid_t pid;			/* the thread group, resolved from the request's thread */
	uid_t uid;			/* of the caller, from the kernel */
	int pidfd;			/* pins the process; readable when it exits */
	uint64_t id;			/* for the watcher */
	uint64_t addr, len, offset;
};

/* A request answered after a writeback pass (collect.c). */
struct waiter;

/*
 * How a buffer's passes learn what changed (adapt.c): by tracking — the
 * kernel writes back the pages written since the last pass, which
 * write-protects them, so each costs its writer a fault and us a WRITE — or
 * by comparing every page the page cache holds with the state file
 * (compare.c), which costs a read of them all and no fault. --mode picks one
 * for every buffer, or lets each choose from what its passes measure.
 */
enum coherence { COHERENCE_TRACK, COHERENCE_COMPARE };
enum coherence_mode { MODE_ADAPTIVE, MODE_TRACK, MODE_COMPARE };

struct adapt {
	enum coherence now;
	double track_us;		/* per page written back, smoothed; 0 until measured */
	double compare_us;		/* per page compared (read), smoothed; 0 until measured */
	uint64_t recent[4];		/* pages changed at the last passes (and idle ticks) */
	unsigned nrecent;
	double changed;			/* their mean */
	double cached;			/* pages the page cache holds: what a compare reads */
	unsigned votes;			/* passes in a row the other way looked cheaper by half */
	unsigned wait, patience;	/* tracking passes before comparing may be tried again */
	unsigned compared;		/* passes since it last began comparing */
	unsigned switches;		/* so far */
	bool settling;			/* switched: the next pass is not measured */
};
/* What the next pass of a buffer with a does, under --mode mode. */
enum coherence adapt_choice(const struct adapt *a, enum coherence_mode mode);
/* A pass tracked: written pages came back in us microseconds; the page cache holds cached. */
void adapt_tracked(struct adapt *a, uint64_t written, double us, uint64_t cached);
/* A pass compared: compared pages read and compared in read_us microseconds, changed of them. */
void adapt_compared(struct adapt *a, uint64_t changed, double read_us, uint64_t compared);
/* An --interval tick found nothing to write back: a pass that would have changed nothing. */
void adapt_idle(struct adapt *a);
/* Comparing cannot work for it (the helper cannot read it): it tracks from now on. */
void adapt_cannot_compare(struct adapt *a);
/* Measure what a writer's fault costs, once, at start; adapt_set_fault_us() sets it (tests). */
double adapt_calibrate(size_t page_size);	/* µs a fault */
/* The monotonic clock in µs: what passes are timed with, for adapt.c. */
double now_us(void);
void adapt_set_fault_us(double us);

struct buffer {
	fuse_ino_t ino;
	char name[256];			/* name and unlinked change under d->lock and b->lock both */
	bool unlinked;
	uint64_t lookups;		/* the kernel's references (lookup minus forget) */
	unsigned refs;			/* collector jobs holding it (daemon.lock) */

	struct lock lock;
	uint64_t size;			/* bytes */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	int fd;				/* the state file while any description is open, else -1 */
	unsigned opens;			/* open descriptions, the daemon's own included */
	struct consumer **consumers;	/* every open description, the daemon's own included */
	size_t nconsumers;
	size_t nexternal;		/* of them, not the daemon's own */
	struct attachment *attached;
	size_t nattached;
	struct pageset unstored;	/* written back, but storing failed: retried each pass */
	struct held held;		/* the bytes of unstored pages, where the owner's limit allows */
	uint32_t unstored_gen;		/* changes when page-cache copies retrieved before become stale */
	int store_error;		/* why, while unstored is not empty */
	int writeback_error;		/* the last error a writeback WRITE got whose pages are in unstored */
	bool unsynced;			/* stored since the state file was last synced (--durable) */

	/* the collector's (collect.c), under buffer.lock */
	struct waiter *waiting;		/* for the next pass to start */
	struct waiter *serving;		/* by the pass that runs */
	bool want_writeback;		/* a pass without waiters (--interval, a retirement) */
	bool queued, running;		/* under collect.lock */
	pthread_t pass_thread;		/* while running: the collector running the pass (collect.lock) */
	uint32_t writebacks;		/* passes that had the kernel write it back (cohmemctl ls) */
	uint64_t written_back;		/* pages of writeback WRITEs, ever */
	bool verify_writeback;		/* writeback WRITEs equal to the state file are not marked */
	bool comparing;			/* a compare pass runs (compare.c) */
	bool meanwhile_lost;		/* meanwhile could not take a WRITE's pages */
	struct pageset meanwhile;	/* while comparing: pages WRITEs stored */
	struct pageset stale;		/* pages of write(2)s not stored: to drop from the page cache */
	struct adapt adapt;		/* how its passes learn what changed (adapt.c) */
	bool self_open;			/* the helper holds the daemon's own descriptor of it */
	int peek_fd;			/* while self_open: a duplicate of it, for peek() only, or -1 */
	unsigned retrieving;		/* NOTIFY_RETRIEVE replies outstanding */
	pthread_cond_t retrieved;
};

/*
 * What a user holds, each of it limited by a --user-* option (root is not
 * limited): buffers owned and their bytes, open descriptions, attached
 * mappings, and the heap that pages pending for its descriptions take.
 */
struct usage {
	uint64_t buffers, bytes, opens, attached, pending;
};

struct user {
	uid_t uid;
	struct usage held;
	double refused_logged_us;	/* when a refusal of its was last logged (at most one per 10 s) */
};

struct limits {
	uint64_t max_bytes;		/* one buffer */
	struct usage user;		/* per user */
	unsigned collectors;		/* threads */
	unsigned user_collectors;	/* of them, busy for one user at most */
};

/* The most one user can make the daemon hold, given the limits (users.c). */
struct user_bound {
	uint64_t memory;		/* bytes of heap */
	uint64_t descriptors;		/* the daemon's (and as many in its helper) */
};

struct collector;

/* transport.h: how requests reach the daemon, as cohmemctl shows it (ioctl.c). */
struct transport_facts {
	/*
	 * "dev" or "uring"; NULL until transport_start() has set the others:
	 * published last, for the ring threads serve before it returns.
	 */
	_Atomic(const char *) name;
	char why[160];			/* why not io_uring, when it was not used; else empty */
	unsigned queues;		/* io_uring: the kernel's queues (one per possible CPU) */
	_Atomic unsigned entries;	/* io_uring: ring entries registered, in all queues */
};

struct daemon {
	struct fuse_session *se;
	char mountpoint[4096];		/* absolute */
	int state_dir;
	dev_t dev;			/* of the mount, as stat() and /proc/<pid>/maps show it */
	unsigned interval_ms;
	enum coherence_mode mode;	/* --mode */
	bool allow_other;
	bool durable;
	size_t page_size;
	struct limits limits;

	struct lock lock;		/* the table */
	struct buffer **buffers;
	size_t nbuffers;
	fuse_ino_t next_ino;
	struct lock users_lock;
	struct user *users;
	size_t nusers;
	uint64_t next_attachment;

	struct transport_facts transport;
	struct collector *collect;
	struct helper *helper;		/* helper.c */
	int epoll, stop, timer;		/* the watcher's */
	pthread_t watcher, main_thread;
	atomic_int stopping;		/* 1: asked to (a signal), 2: the loop ended by itself */
};

extern struct daemon daemon_state;

/* store.c: buffers and their state files */
int store_load(struct daemon *d);
struct buffer *store_find(struct daemon *d, fuse_ino_t ino);	/* d->lock */
struct buffer *store_lookup(struct daemon *d, const char *name);	/* d->lock */
int store_create(struct daemon *d, const char *name, mode_t mode, uid_t uid, gid_t gid,
		 struct buffer **ret);	/* d->lock */
int store_unlink(struct daemon *d, const char *name);	/* d->lock */
int store_rename(struct daemon *d, const char *name, const char *newname, unsigned flags); /* d->lock */
void store_put(struct daemon *d, struct buffer *b, uint64_t forgets);	/* d->lock */
void store_unref(struct daemon *d, struct buffer *b);	/* a collector job is done; d->lock */
int store_resize(struct daemon *d, struct buffer *b, uint64_t size);	/* b->lock */
int store_setattr(struct daemon *d, struct buffer *b, const struct stat *attr, int to_set); /* d->lock */
int store_stat(struct daemon *d, struct buffer *b, struct stat *st);	/* b->lock */
int store_open(struct daemon *d, struct buffer *b);	/* a description opens; b->lock */
void store_close(struct buffer *b);	/* a description was released; b->lock */
/* Where bytes to store come from. */
enum store_from {
	STORE_WRITE,			/* write(2) */
	STORE_WRITEBACK,		/* the kernel's writeback of pages written through mappings */
	STORE_RETRIEVED,		/* a page-cache copy of an unstored page (collect.c) */
	STORE_HELD,			/* a held copy of an unstored page (held.h) */
	STORE_COMPARED,			/* a page-cache page that differed from the state file (compare.c) */
};
/*
 * Store bytes and mark them for every consumer: how many were stored (a
 * full file system may take a part; writeback's WRITEs are whole or fail),
 * or -errno when none; b->lock.
 */
ssize_t store_write(struct daemon *d, struct buffer *b, const char *data, size_t len, uint64_t off,
		    enum store_from from);
bool store_name_valid(const char *name);

/* pages.c: what consumers are owed */
void pages_mark(struct buffer *b, uint64_t first, uint64_t n);	/* every consumer; b->lock */
void pages_notify(struct buffer *b);	/* wake pollers with pages pending; b->lock */
bool pages_pending(const struct consumer *c);	/* consumer_owed() > 0; b->lock */
uint64_t consumer_owed(const struct consumer *c);	/* pages its next clean of all would report; b->lock */
int consumer_new(struct buffer *b, int accmode, uid_t uid, bool internal, struct consumer **ret);
void consumer_free(struct consumer *c);	/* b->lock */
/* Report [first, first + nr) into bitmap (NULL: count only) and forget it; b->lock. */
uint64_t consumer_take(struct consumer *c, uint64_t first, uint64_t nr, uint64_t *bitmap);
/* Give back what a clean took but could not deliver; b->lock. */
void consumer_untake(struct consumer *c, uint64_t first, uint64_t nr, const uint64_t *bitmap);
/* Answer COHMEM_IOC_CLEAN or _WRPROTECT over [first, first + nr) for c; b->lock. */
void clean_answer(fuse_req_t req, struct consumer *c, unsigned cmd, uint64_t first, uint64_t nr);

/*
 * users.c: per-user limits, under d->users_lock (taken last). Charging past
 * a limit fails with -EDQUOT and charges nothing, unless force (what is on
 * disk already, what root hands over). Root is never limited.
 */
int user_charge(struct daemon *d, uid_t uid, struct usage add, bool force);
void user_uncharge(struct daemon *d, uid_t uid, struct usage sub);
/* The defaults of the --user-* limits for a daemon that may hold nofile descriptors. */
struct usage user_default_limits(uint64_t nofile);
/* The most one user can make the daemon hold under l, with pages of page_size bytes. */
struct user_bound user_bound(const struct limits *l, size_t page_size);

/* collect.c: writeback passes and everything else that may wait on the connection */
int collect_start(struct daemon *d);
void collect_stop(struct daemon *d);	/* answers what is still queued, closes own descriptors */
/* Answer req (COHMEM_IOC_CLEAN or _WRPROTECT on c) after a pass that starts from now. */
int collect_clean(struct daemon *d, fuse_req_t req, struct consumer *c, unsigned cmd, uint64_t first,
		  uint64_t nr);
int collect_attach(struct daemon *d, fuse_req_t req, struct buffer *b, const struct cohmem_ioc_attach *a);
int collect_detach(struct daemon *d, fuse_req_t req, struct buffer *b, uint64_t addr);
void collect_pass(struct daemon *d, struct buffer *b);	/* a pass nobody waits for; d->lock, b->lock */
void collect_forget(struct buffer *b, struct consumer *c);	/* c is released; b->lock */
/* A NOTIFY_RETRIEVE reply: cookie is what was asked for, bufv what the page cache had. */
void collect_retrieved(struct daemon *d, fuse_ino_t ino, off_t off, uintptr_t cookie, struct fuse_bufvec *bufv);

/*
 * peek.c: what the page cache holds of a buffer, by cachestat(2) of a
 * descriptor on our own mount (b->peek_fd), which never waits on the
 * connection. peek() returns 0 or -errno (ENOSYS before Linux 6.5);
 * peek_idle() 1 if no page of the file is dirty or under writeback, 0 if
 * some is, or -errno. peek_learn() looks at the pages of a writeback WRITE
 * being served; peek_trusted() is true once those showed that this kernel
 * holds pages under writeback until the WRITE is answered, so that an idle
 * file has nothing on its way to us either (peek.c says why that matters).
 */
struct peek_result {
	uint64_t cached, dirty, writeback;	/* pages */
};
int peek(int fd, uint64_t off, uint64_t len, struct peek_result *ret);
int peek_idle(int fd);
void peek_learn(int fd, uint64_t off, uint64_t len);
bool peek_trusted(void);

/* compare.c: a pass that compares (see there); 0 or -errno, and what it did in *ret. */
struct compare_result {
	uint64_t changed;		/* pages */
	double read_us;			/* the helper's reads and compares, µs */
};
int compare_pass(struct daemon *d, struct buffer *b, struct compare_result *ret);

/* attach.c: what processes announce */
int attach_verify(struct daemon *d, struct buffer *b, pid_t tid, const struct cohmem_ioc_attach *a,
		  struct attachment *ret);	/* may wait: collector threads only */
int attach_add(struct daemon *d, struct buffer *b, struct attachment *a);	/* d->lock, b->lock */
int attach_remove(struct daemon *d, struct buffer *b, pid_t pid, uint64_t addr);	/* d->lock, b->lock */
void attach_exited(struct daemon *d, uint64_t id);	/* the watcher: a process exited */
void attach_close(struct daemon *d, struct attachment *a);
/* The thread group of tid, pinned by a pidfd in *pidfd: the tgid or -errno. Collector threads only. */
pid_t thread_group(struct daemon *d, pid_t tid, int *pidfd);

/* watch.c */
int watch_start(struct daemon *d);
void watch_stop(struct daemon *d);

/* fs.c, ioctl.c */
extern const struct fuse_lowlevel_ops cohmemd_ops;
void cohmemd_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg, struct fuse_file_info *fi,
		   unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz);

/*
 * helper.c: the daemon's requests to its own mount, and its reads of other
 * processes' /proc files, made by a helper process (see there why), over
 * one channel per thread that uses it. helper_start() forks it, before the
 * mount and before any thread; helper_use_channel() picks the calling
 * thread's channel (collector i: i; the watcher and main: the last). The
 * calls return what the helper's syscalls did (0 or -errno; helper_tgid()
 * the tgid; helper_maps() 1 if the range maps the buffer as attaching needs),
 * or -ENOTCONN without a helper.
 */
int helper_start(struct daemon *d, unsigned nchannels);
void helper_use_channel(unsigned channel);
/* By its private name (SELF_NAME_MARK); *peek_fd: a duplicate for peek(), or -1. */
int helper_open(struct daemon *d, fuse_ino_t ino, int *peek_fd);
int helper_sync(struct daemon *d, fuse_ino_t ino);
/*
 * Where the helper puts the pages a compare found: a channel's own, shared
 * memory. pg[i]'s bytes (len[i] of them: less for a last partial page) are
 * at compare_data(a, i, page size).
 */
#define COMPARE_PAGES 256		/* per answer */
#define COMPARE_RUN 64			/* pages read at once */
struct compare_area {
	uint64_t n;			/* pages found */
	uint64_t next;			/* where the next COMPARE goes on from */
	uint64_t pg[COMPARE_PAGES];
	uint32_t len[COMPARE_PAGES];
};
static inline size_t compare_area_size(size_t page_size)
{
	return ((sizeof(struct compare_area) + page_size - 1) / page_size + COMPARE_PAGES) * page_size;
}
static inline char *compare_data(struct compare_area *a, uint64_t i, size_t page_size)
{
	return (char *)a + compare_area_size(page_size) - (COMPARE_PAGES - i) * page_size;
}
/*
 * Of pages [first, end) of buffer ino (size bytes), those the page cache
 * holds with bytes other than the state file's (state): into *area (the
 * calling thread's), at most COMPARE_PAGES; (*area)->next says where to go
 * on. The count, or -errno (-EACCES: the helper's descriptor cannot read).
 */
int64_t helper_compare(struct daemon *d, fuse_ino_t ino, uint64_t first, uint64_t end, uint64_t size, int state,
		       struct compare_area **area);
int helper_close(struct daemon *d, fuse_ino_t ino);
/* Drop bytes [off, off + len) of buffer ino from the page cache (POSIX_FADV_DONTNEED). */
int helper_drop(struct daemon *d, fuse_ino_t ino, uint64_t off, uint64_t len);
int helper_syncfs(struct daemon *d);
pid_t helper_tgid(struct daemon *d, pid_t tid);
int helper_maps(struct daemon *d, pid_t pid, fuse_ino_t ino, uint64_t addr, uint64_t len,
		uint64_t offset);
void helper_stop(struct daemon *d);
/* Is thread tid (of a FUSE request) the helper's: an open of the daemon's own? */
bool helper_owns(struct daemon *d, pid_t tid);

/*
 * A buffer's private name: SELF_NAME_MARK, then its inode number in decimal.
 * The helper opens buffers by it (helper_open()), and only the helper's
 * threads may look it up (fs.c). It leads to the buffer whatever became of
 * its public name — unlinked, renamed, renamed over — and no buffer can be
 * called that: names with control characters are refused
 * (store_name_valid()).
 */
#define SELF_NAME_MARK '\001'

/*
 * mount.c. mount_start(): clear a stale mount at d->mountpoint, mount and
 * make d->se; 0 or -1 (logged). mount_stop(): unmount; -1 (logged) if the
 * mount is still there (something mounted over it).
 */
int mount_start(struct daemon *d, struct fuse_args *args, const char *argv0);
int mount_stop(struct daemon *d);

/*
 * log.c: one line per event to log_fd (stderr; -1: nowhere, for the
 * fuzzer), systemd style, every control character and malformed byte
 * escaped (shared/text.h): names in it come from users.
 */
extern int log_fd;
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* COHMEMD_H */
