/* SPDX-License-Identifier: MIT */
/*
 * cohmemd for real, for the tests: each test starts the daemon on a
 * temporary mount (with the arguments COHMEMD_TEST_ARGS names, if set; the
 * binary COHMEMD_TEST_BIN names, else the build tree's; --transport
 * COHMEMD_TEST_TRANSPORT, dev, uring or auto, if set) and stops it after,
 * checking that it exited 0, unmounted, and logged no sanitizer report or
 * broken lock rule.
 *
 * A test that needs what this user may not have decides to skip before
 * anything starts: its suite's .init is cohmemd_setup_root() (root: other
 * users, mounts) or cohmemd_setup_fusectl() (root and fusectl). A skip that
 * can only be decided later goes through cohmemd_skip(), which stops the
 * daemon and removes its mount first. The daemon also gets SIGTERM if the
 * test's process dies: nothing outlives a test.
 */
#ifndef COHMEM_TEST_COHMEMD_H
#define COHMEM_TEST_COHMEMD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NOBODY 65534

extern char cohmemd_dir[], cohmemd_mnt[], cohmemd_state[];
extern pid_t cohmemd_pid;

/* The suites' .init (for anyone, for root only, for root with fusectl) and .fini. */
void cohmemd_setup(void);
void cohmemd_setup_root(void);
void cohmemd_setup_fusectl(void);
void cohmemd_teardown(void);
/* Stop the daemon, remove what the test made, and skip the test, saying why. */
void cohmemd_skip(const char *why) __attribute__((noreturn));

/* The default arguments (COHMEMD_TEST_ARGS, or the suite's). */
const char *cohmemd_args(void);
/* What cohmemd_start() adds to args: " --transport $COHMEMD_TEST_TRANSPORT", or "". */
const char *cohmemd_transport_arg(const char *args);
/* Start the daemon: `prefix` runs in its shell first (say "ulimit -n 64;"), state may be NULL. */
void cohmemd_start(const char *args, const char *state, const char *prefix);
/* SIGTERM it and wait: its wait status. */
int cohmemd_stop_status(void);
/* Stop it (asserting it exited 0) and start it again with these arguments, on the same state directory. */
void cohmemd_restart(const char *args);

/* Whether anything is mounted at the mount point (a dead mount included, which stat() may not tell). */
bool cohmemd_mounted(void);
/* Lines of the daemon's log that contain needle. */
int cohmemd_log_lines(const char *needle);
/* The daemon's resident set size, bytes. */
size_t cohmemd_rss(void);

/* A buffer of `pages` pages, created (O_RDWR, mode 0644) and sized; its descriptor. */
int buffer_create(const char *name, size_t pages);
/* open(2) of a buffer on the mount: the descriptor or -1. */
/* The daemon's last log line holding needle, into out; false (out empty) if none. */
bool cohmemd_log_last(const char *needle, char *out, size_t size);
int buffer_open(const char *name, int flags);
/* Bytes of a buffer's state file. */
void state_read(const char *name, void *buf, size_t len, off_t off);
/* A program next to the test programs in the build tree: ../daemon/cohmemd, ../tools/cohmemctl. */
void build_path(char *out, size_t size, const char *rel);

/* Run fn(arg) in a child as nobody; its exit status, or -1 if it did not exit. */
int as_nobody(int (*fn)(void *arg), void *arg);

#endif
