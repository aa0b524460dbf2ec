/* SPDX-License-Identifier: MIT */
/*
 * cohmemd: a FUSE file system of buffers whose every mapping, in every
 * process that attached it, is kept coherent with a backing store — the
 * user-space twin of the kernel walking a file's i_mmap tree in
 * clean_record_shared_mapping_range().
 *
 * Locking: daemon.lock covers the table of buffers (names, inode numbers);
 * buffer.lock covers everything of one buffer (size, consumers, mappings,
 * their pending bits) and is held across a harvest. Order: daemon.lock, then
 * buffer.lock, then the ring lock.
 */
#ifndef COHMEMD_H
#define COHMEMD_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "buffer-proto.h"
#include "kabi.h"

#define SCAN_VEC 256

/* One process's mapping of a buffer, announced with COHMEM_IOC_ATTACH. */
struct mapping {
	uint64_t id;		/* for the watcher's epoll data */
	pid_t pid;
	int pidfd;		/* pins the process; readable when it exits */
	int pagemap;		/* /proc/<pid>/pagemap, scan mode */
	uint64_t addr, len, offset;
};

/* An open file description of a buffer: it sees every write since its last clean. */
struct consumer {
	struct buffer *b;
	unsigned long *pending;	/* bit per page of the buffer */
	struct fuse_pollhandle *ph;	/* a poller waiting for pending pages */
};

struct buffer {
	fuse_ino_t ino;
	char name[256];
	int fd;			/* the state file */
	bool unlinked;
	uint64_t lookups;	/* the kernel's references (lookup minus forget) */
	pthread_mutex_t lock;
	uint64_t size;		/* bytes */
	size_t bitmap_pages;	/* what the consumers' bitmaps can hold */
	struct consumer **consumers;
	size_t nconsumers;
	struct mapping *mappings;
	size_t nmappings;
	struct page_region vec[SCAN_VEC];	/* PAGEMAP_SCAN output, kept zeroed */
};

struct daemon {
	struct fuse_session *se;
	const char *mountpoint;
	int state_dir;
	dev_t dev;		/* of the mount, as /proc/<pid>/maps shows it */
	uint64_t max_bytes;
	unsigned interval_ms;
	bool allow_other;
	enum cohmem_coherence coherence;
	size_t page_size;

	pthread_mutex_t lock;	/* the table */
	struct buffer **buffers;
	size_t nbuffers;
	fuse_ino_t next_ino;
	uint64_t next_mapping;

	pthread_mutex_t ring_lock;
	struct io_uring ring;	/* state-file writes */

	int epoll, stop, timer;	/* the watcher's: epoll, an eventfd, a timerfd */
	pthread_t watcher;
};

extern struct daemon daemon_state;

/* store.c: buffers and their state files */
int store_load(struct daemon *d);
struct buffer *store_find(struct daemon *d, fuse_ino_t ino);	/* caller holds d->lock */
struct buffer *store_lookup(struct daemon *d, const char *name);	/* caller holds d->lock */
int store_create(struct daemon *d, const char *name, mode_t mode, uid_t uid, gid_t gid,
		 struct buffer **ret);	/* caller holds d->lock */
int store_unlink(struct daemon *d, const char *name);	/* caller holds d->lock */
void store_put(struct daemon *d, struct buffer *b, uint64_t forgets);	/* caller holds d->lock */
int store_resize(struct buffer *b, uint64_t size);	/* caller holds b->lock */
int store_stat(struct daemon *d, struct buffer *b, struct stat *st);
bool store_name_valid(const char *name);

/* pages.c: what consumers are owed */
void pages_mark(struct buffer *b, uint64_t first, uint64_t n);	/* for every consumer; b->lock */
void pages_notify(struct buffer *b);	/* wake pollers with pending pages; b->lock */
int consumer_new(struct buffer *b, struct consumer **ret);	/* b->lock */
void consumer_free(struct consumer *c);	/* b->lock */

/* harvest.c: scan mode */
int harvest(struct daemon *d, struct buffer *b, uint64_t first, uint64_t n);	/* b->lock */
/* Store a WRITE request's bytes; mark the pages whose bytes change. b->lock */
int state_write_news(struct daemon *d, struct buffer *b, const char *data, size_t len, uint64_t off);

/* mappings.c: attach, detach, and processes that exit */
int mapping_attach(struct daemon *d, struct buffer *b, pid_t pid, const struct cohmem_ioc_attach *a);
int mapping_detach(struct daemon *d, struct buffer *b, pid_t pid, uint64_t addr);
void mapping_close(struct daemon *d, struct mapping *m);
bool mappings_reap(struct daemon *d, struct buffer *b);	/* b->lock */
int watcher_start(struct daemon *d);
void watcher_stop(struct daemon *d);

/* fs.c */
extern const struct fuse_lowlevel_ops cohmemd_ops;

/* Log to stderr, systemd style: one line per event. */
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* COHMEMD_H */
