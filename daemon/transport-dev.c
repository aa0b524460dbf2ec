/* SPDX-License-Identifier: MIT */
/*
 * /dev/fuse: libfuse's own loop (main.c) reads requests with read(2) and
 * its replies leave with writev(2), from whichever thread answers. Nothing
 * to set up: the mount made the connection.
 */
#include "daemon.h"
#include "transport.h"

static int dev_start(struct daemon *d, char *why, size_t whylen)
{
	(void)d;
	(void)why;
	(void)whylen;
	return 0;
}

static void dev_stop(struct daemon *d)
{
	(void)d;
}

const struct transport_ops transport_dev = {
	.name = "dev",
	.start = dev_start,
	.stop = dev_stop,
};
