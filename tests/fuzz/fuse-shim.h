/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for the part of libfuse's lowlevel API that cohmemd's request
 * handlers use, so that a fuzzer can call the handlers directly: a request
 * is a struct fuse_req the harness made, and a reply is recorded on it (and
 * checked: every request is answered exactly once, whichever thread does it).
 */
#ifndef COHMEM_FUSE_SHIM_H
#define COHMEM_FUSE_SHIM_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <stdbool.h>

enum reply_kind { REPLY_NONE, REPLY_ERR, REPLY_ENTRY, REPLY_CREATE, REPLY_ATTR, REPLY_OPEN, REPLY_WRITE,
		  REPLY_BUF, REPLY_IOCTL, REPLY_POLL, REPLY_STATFS, REPLY_NOTHING };

/* What the harness keeps of a request: it outlives the request, which its reply frees. */
struct shim_record {
	fuse_req_t req;			/* valid until it is answered */
	int replies;			/* how many; more than one aborts */
	enum reply_kind kind;
	int err;			/* REPLY_ERR */
	struct fuse_entry_param entry;	/* REPLY_ENTRY, REPLY_CREATE */
	void *out;			/* REPLY_IOCTL, REPLY_BUF: a copy */
	size_t outsz;
	void *harness;			/* NULL, or the copy below of what the harness gave */
	char harness_data[64];
	struct shim_record *next;	/* the harness's list of requests */
};

/* A request from the calling thread, as user uid, carrying a copy of size bytes of harness (<= 64). */
struct shim_record *shim_req(void *userdata, uid_t uid, gid_t gid, const void *harness, size_t size);
/* Called (under the shim's lock) when a request gets its reply; the harness provides it. */
void on_reply(struct shim_record *rec);
/* Wait until every request made is answered: false after the deadline. */
bool shim_drain(unsigned ms);
/* Free the answered requests. */
void shim_reap(void);
/* A NOTIFY_RETRIEVE the daemon asked for, until the harness answers it (on_drain() must). */
struct shim_retrieve {
	fuse_ino_t ino;
	size_t size;
	off_t offset;
	void *cookie;
};
/* Take the oldest retrieve asked for: false if there is none. */
bool shim_take_retrieve(struct shim_retrieve *out);
/* Called by shim_drain() while it waits, without the shim's lock: answer the retrieves. */
void on_drain(void);

#endif
