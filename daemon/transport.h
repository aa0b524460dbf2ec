/* SPDX-License-Identifier: MIT */
/*
 * How requests reach cohmemd and replies leave it: /dev/fuse (read(2) and
 * writev(2), libfuse's own loop) or FUSE over io_uring (transport-uring.c).
 * One file per transport behind struct transport_ops; transport.c picks one
 * at start (--transport auto|uring|dev) and says which in the log and to
 * cohmemctl (struct transport_facts in daemon.h).
 *
 * Whatever the transport, libfuse's dispatcher runs every request handler
 * and the /dev/fuse loop keeps running: FORGET and INTERRUPT always come
 * that way, notifications always leave that way, and so does everything
 * before the ring is ready.
 */
#ifndef COHMEMD_TRANSPORT_H
#define COHMEMD_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

struct daemon;

enum transport_want {
	TRANSPORT_AUTO,		/* io_uring when the kernel offers it, else /dev/fuse */
	TRANSPORT_URING,	/* io_uring, or refuse to start */
	TRANSPORT_DEV,		/* /dev/fuse only */
};

struct transport_ops {
	const char *name;	/* as --transport and cohmemctl say it */
	/*
	 * After the mount, before any thread of the daemon's runs: 0 when this
	 * transport carries the requests from now on; else -errno with the
	 * reason in why (one line), the mount still served by /dev/fuse.
	 */
	int (*start)(struct daemon *d, char *why, size_t whylen);
	/* After the unmount (or its failure): stop serving, free what start made. */
	void (*stop)(struct daemon *d);
};

extern const struct transport_ops transport_dev;
#ifdef COHMEMD_HAVE_URING
extern const struct transport_ops transport_uring;
#endif

/* "auto", "uring" or "dev" into *want: 0, or -EINVAL. */
int transport_parse(const char *name, enum transport_want *want);

/*
 * Start the transport want asks for (falling back to /dev/fuse for auto),
 * fill d->transport and log which one serves and why: 0, or -1 (logged)
 * when --transport uring cannot be had; the mount is still up then.
 */
int transport_start(struct daemon *d, enum transport_want want);
void transport_stop(struct daemon *d);

#endif /* COHMEMD_TRANSPORT_H */
