/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_BENCH_DAEMON_H
#define COHMEM_BENCH_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

/* What the cohmemd scenario runs; zeros and NULLs: its defaults. */
struct daemon_bench {
	const char *cohmemd;		/* the daemon's path */
	const char *transport;		/* one --transport (auto, uring, dev); NULL: dev and uring */
	const char *mode;		/* one --mode (adaptive, track, compare); NULL: each */
	unsigned writers;		/* writer processes; 0: 1, 2 and 4 */
	unsigned cycles;		/* cycles per fraction; 0: DAEMON_CYCLES */
	const double *fractions;	/* of the pages written per cycle; NULL: 0.1 % and 1 % */
	size_t nfractions;
	bool durable;			/* each combination also with --durable */
};

/*
 * The cohmemd scenario: every combination of transport and mode the daemon
 * offers (its --help says which), scattered writes to a 1 GiB buffer and
 * a window redrawn in place on an 8 MiB one. Non-zero only when it could not
 * measure anything; a combination that fails is printed as failed.
 */
int bench_daemon(const struct daemon_bench *o);

#endif
