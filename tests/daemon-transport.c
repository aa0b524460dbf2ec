/* SPDX-License-Identifier: MIT */
/*
 * cohmemd's transports (daemon/transport.h), part of test-daemon. The whole
 * suite runs with the transport COHMEMD_TEST_TRANSPORT asks for (ctest:
 * cohmemd with this machine's setting, cohmemd:uring with enable_uring on
 * and --transport uring, cohmemd:uring-off with it off and auto); these
 * check that the one asked for is the one serving, that auto falls back
 * and uring refuses when the kernel offers no ring, and what a ring must
 * survive: writers racing cleans, and a stop while clients wait on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cohmem-buffer.h"
#include "cohmemd-fixture.h"
#include "test.h"

#define ENABLE_URING "/sys/module/fuse/parameters/enable_uring"

TestSuite(transport, .init = cohmemd_setup, .fini = cohmemd_teardown, .timeout = 300);

/* 1 on, 0 off, -1 no such parameter: a kernel without FUSE over io_uring. */
static int enable_uring(void)
{
	FILE *f = fopen(ENABLE_URING, "r");
	int c = f ? fgetc(f) : EOF;

	if (f)
		fclose(f);
	return !f ? -1 : c == 'Y' || c == '1';
}

/* What should serve the fixture's daemon: "uring" or "dev". */
static const char *transport_expected(void)
{
	const char *t = getenv("COHMEMD_TEST_TRANSPORT");

	if (t && !strcmp(t, "dev"))
		return "dev";
	if (t && !strcmp(t, "uring"))
		return "uring";
#ifdef COHMEMD_TEST_HAVE_URING
	return enable_uring() == 1 ? "uring" : "dev";
#else
	return "dev";
#endif
}

static void cohmemctl_out(const char *args, char *out, size_t size)
{
	char exe[PATH_MAX], cmd[2 * PATH_MAX];
	FILE *p;

	build_path(exe, sizeof(exe), "../tools/cohmemctl");
	snprintf(cmd, sizeof(cmd), "%s %s %s", exe, args, cohmemd_mnt);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	memset(out, 0, size);
	cr_assert_gt(fread(out, 1, size - 1, p), 0, "%s printed nothing", cmd);
	cr_assert_eq(WEXITSTATUS(pclose(p)), 0, "%s failed", cmd);
}

/* The transport cohmemctl status says serves, asserted to be want; its output in out. */
static void assert_transport(const char *want, char *out, size_t size)
{
	char needle[64];

	cohmemctl_out("status --json", out, size);
	snprintf(needle, sizeof(needle), "\"transport\": \"%s\"", want);
	cr_assert_not_null(strstr(out, needle), "want %s: %s", want, out);
}

Test(transport, cohmemctl_says_which_transport_serves)
{
	const char *want = transport_expected();
	char out[2048], line[64];
	unsigned queues = 0, entries = 0;

	assert_transport(want, out, sizeof(out));
	cr_assert_eq(sscanf(strstr(out, "\"queues\""), "\"queues\": %u, \"entries\": %u", &queues, &entries), 2,
		     "%s", out);
	if (!strcmp(want, "uring")) {
		cr_assert(queues > 0 && entries >= queues, "a ring has an entry per queue at least: %s", out);
		cr_assert_eq(cohmemd_log_lines("cohmemd: transport: io_uring"), 1);
	} else {
		cr_assert(queues == 0 && entries == 0, "%s", out);
		cr_assert_eq(cohmemd_log_lines("cohmemd: transport: /dev/fuse"), 1);
	}
	/* and ls says it first */
	cohmemctl_out("ls", out, sizeof(out));
	snprintf(line, sizeof(line), "transport: %s", want);
	cr_assert_eq(strncmp(out, line, strlen(line)), 0, "%s", out);
}

/* Pages written since the last clean, as fd's consumer is told: a clean must work. */
static void expect_one_clean(int fd, size_t pages, size_t page)
{
	unsigned long *bm = bitmap_new(pages);
	long n = cohmem_buffer_clean(fd, 0, pages, 0, bm, NULL, NULL);

	cr_assert_eq(n, 1, "clean: %ld", n);
	cr_assert(bit_is_set(bm, page));
	free(bm);
}

Test(transport, auto_falls_back_to_dev_when_the_kernel_offers_no_ring)
{
	char out[2048];
	int fd;

	if (enable_uring() == 1)
		cr_skip_test("enable_uring is on here (ctest's cohmemd:uring-off runs this with it off)");
	cohmemd_restart("--interval 30 --max-bytes 1G --transport auto");
	assert_transport("dev", out, sizeof(out));
	cr_assert(strstr(out, enable_uring() == 0 ? "enable_uring is off" : "no FUSE over io_uring") ||
		  strstr(out, "built without liburing"), "why not io_uring: %s", out);
	cr_assert_geq(cohmemd_log_lines("cohmemd: transport: /dev/fuse (io_uring not used: "), 1);
	fd = buffer_create("fb", 4);
	cr_assert_eq(pwrite(fd, "x", 1, (off_t)(2 * PS)), 1);
	expect_one_clean(fd, 4, 2);
	close(fd);
}

/* Start cohmemd with args on a mount of its own and wait for it to end: its wait status. */
static int run_to_end(const char *args, const char *mnt, const char *log)
{
	char exe[PATH_MAX], cmd[5 * PATH_MAX + 256], state[PATH_MAX];
	int status = -1;
	pid_t pid;

	build_path(exe, sizeof(exe), "../daemon/cohmemd");
	snprintf(state, sizeof(state), "%s/state-refused", cohmemd_dir);
	snprintf(cmd, sizeof(cmd), "exec %s --mount %s --state-dir %s %s 2>%s", exe, mnt, state, args, log);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	for (unsigned ms = 0, limit = test_deadline_s(30) * 1000; ms < limit; ms += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	cr_assert_fail("cohmemd --transport uring neither served nor ended");
	return -1;
}

static int lines_in(const char *path, const char *needle)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	int n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

Test(transport, uring_refuses_to_start_when_the_kernel_offers_no_ring)
{
	char mnt[PATH_MAX], log[PATH_MAX];
	int status;

	if (enable_uring() == 1)
		cr_skip_test("enable_uring is on here (ctest's cohmemd:uring-off runs this with it off)");
	snprintf(mnt, sizeof(mnt), "%s/mnt-refused", cohmemd_dir);
	snprintf(log, sizeof(log), "%s/log-refused", cohmemd_dir);
	cr_assert_eq(mkdir(mnt, 0755), 0);
	status = run_to_end("--transport uring", mnt, log);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %#x", status);
	cr_assert_eq(lines_in(log, "cohmemd: --transport uring: cannot use FUSE over io_uring: "), 1,
		     "one line says why (see %s)", log);
	cr_assert_eq(lines_in(log, "serving"), 0);
	cr_assert_eq(lines_in(log, "Sanitizer") + lines_in(log, "runtime error"), 0);
	/* nothing left mounted there */
	cr_assert_eq(lines_in("/proc/self/mountinfo", mnt), 0);
}

#define RACE_PAGES 256
#define RACE_WRITERS 3
#define RACE_WRITES 20000

/* A writer process: RACE_WRITES stores of its counter into pseudo-random pages, at its own offset. */
static void race_writer(unsigned id)
{
	int fd = buffer_open("race", O_RDWR);
	char *m = fd < 0 ? MAP_FAILED : mmap(NULL, RACE_PAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	uint64_t x = 0x9E3779B97F4A7C15ull * (id + 1);

	if (m == MAP_FAILED)
		_exit(1);
	for (uint64_t i = 1; i <= RACE_WRITES; i++) {
		size_t pg;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		pg = (size_t)(x % RACE_PAGES);
		*(volatile uint64_t *)(m + pg * PS + id * sizeof(uint64_t)) = i;
		if (i % 500 == 0)
			usleep(200);	/* let cleans fall between bursts, not only after them */
	}
	_exit(0);
}

/*
 * No write is lost while writers race cleans: a consumer that copies what
 * each clean reports from the state file ends with what the buffer holds.
 */
Test(transport, a_clean_during_concurrent_writers_reports_every_write)
{
	int fd = buffer_create("race", RACE_PAGES), done = 0;
	char *copy = calloc(RACE_PAGES, PS), *now = malloc(RACE_PAGES * PS), out[2048];
	unsigned long *bm = bitmap_new(RACE_PAGES);
	pid_t writers[RACE_WRITERS];
	long cleans = 0;

	assert_transport(transport_expected(), out, sizeof(out));
	for (unsigned i = 0; i < RACE_WRITERS; i++) {
		writers[i] = fork();
		cr_assert_geq(writers[i], 0);
		if (writers[i] == 0)
			race_writer(i);
	}
	while (done < RACE_WRITERS + 1) {	/* one more clean after the last writer ended */
		long n;

		for (unsigned i = 0; i < RACE_WRITERS; i++) {
			int status;

			if (writers[i] > 0 && waitpid(writers[i], &status, WNOHANG) == writers[i]) {
				cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %u: %#x", i, status);
				writers[i] = 0;
			}
		}
		done = 0;
		for (unsigned i = 0; i < RACE_WRITERS; i++)
			done += writers[i] == 0;
		if (done == RACE_WRITERS)
			done++;
		memset(bm, 0, (RACE_PAGES + 7) / 8);
		n = cohmem_buffer_clean(fd, 0, RACE_PAGES, 0, bm, NULL, NULL);
		cr_assert_geq(n, 0, "clean: %s", strerror((int)-n));
		cleans++;
		for (size_t pg = 0; pg < RACE_PAGES; pg++)
			if (bit_is_set(bm, pg))
				state_read("race", copy + pg * PS, PS, (off_t)(pg * PS));
	}
	cr_assert_eq(pread(fd, now, RACE_PAGES * PS, 0), (ssize_t)(RACE_PAGES * PS));
	for (size_t pg = 0; pg < RACE_PAGES; pg++)
		cr_assert_eq(memcmp(copy + pg * PS, now + pg * PS, PS), 0, "page %zu: a write was lost (%ld cleans)",
			     pg, cleans);
	free(bm);
	free(now);
	free(copy);
	close(fd);
}

/* A client that writes and cleans until the daemon is gone. */
static void cleaner(void)
{
	int fd = buffer_open("busy", O_RDWR);
	char *m = fd < 0 ? MAP_FAILED : mmap(NULL, 64 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	unsigned long *bm = bitmap_new(64);

	if (m == MAP_FAILED)
		_exit(1);
	for (unsigned i = 0;; i++) {
		m[(i % 64) * PS] = (char)i;
		if (cohmem_buffer_clean(fd, 0, 64, 0, bm, NULL, NULL) < 0)
			_exit(0);
	}
}

/*
 * SIGTERM while clients clean: requests in flight, entries waiting for
 * collectors, entries with the kernel. The daemon stores, unmounts and
 * exits 0, and the clients end (their next request fails), all in time.
 */
Test(transport, a_daemon_stopped_while_clients_clean_exits_and_lets_them_go)
{
	int fd = buffer_create("busy", 64), status = -1;
	pid_t clients[3];
	unsigned ms = 0, limit = test_deadline_s(30) * 1000;

	close(fd);
	for (unsigned i = 0; i < 3; i++) {
		clients[i] = fork();
		cr_assert_geq(clients[i], 0);
		if (clients[i] == 0)
			cleaner();
	}
	usleep((useconds_t)(200000 * test_slowdown()));	/* all of them cleaning */
	kill(cohmemd_pid, SIGTERM);
	for (; ms < limit && waitpid(cohmemd_pid, &status, WNOHANG) != cohmemd_pid; ms += 10)
		usleep(10000);
	if (ms >= limit) {
		kill(cohmemd_pid, SIGKILL);
		waitpid(cohmemd_pid, &status, 0);
	}
	cr_assert_lt(ms, limit, "cohmemd did not exit");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_assert_not(cohmemd_mounted());
	for (unsigned i = 0; i < 3; i++) {
		for (ms = 0; ms < limit && waitpid(clients[i], &status, WNOHANG) != clients[i]; ms += 10)
			usleep(10000);
		if (ms >= limit) {
			kill(clients[i], SIGKILL);
			waitpid(clients[i], &status, 0);
		}
		cr_assert_lt(ms, limit, "client %u still waits on the stopped daemon", i);
	}
	cohmemd_start(cohmemd_args(), NULL, NULL);	/* for the teardown */
}
