/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_BENCH_DAEMON_H
#define COHMEM_BENCH_DAEMON_H

/* The cohmemd scenario, with the daemon at path cohmemd; non-zero on failure. */
int bench_daemon(const char *cohmemd);

#endif
