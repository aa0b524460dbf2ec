/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cohmemd-fixture.h"
#include "test.h"

char cohmemd_dir[] = "/tmp/cohmemd-test-XXXXXX", cohmemd_mnt[64], cohmemd_state[64];
pid_t cohmemd_pid;
static char state_now[PATH_MAX];	/* the state directory of the running daemon */
static int served;			/* "serving" lines seen in the log so far */

const char *cohmemd_args(void)
{
	const char *a = getenv("COHMEMD_TEST_ARGS");

	return a ? a : "--interval 30 --max-bytes 1G";
}

int cohmemd_log_lines(const char *needle)
{
	char path[PATH_MAX], line[1024];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/log", cohmemd_dir);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

bool cohmemd_log_last(const char *needle, char *out, size_t size)
{
	char path[PATH_MAX], line[1024];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/log", cohmemd_dir);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (strstr(line, needle)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, size, "%s", line);
			found = true;
		}
	}
	if (f)
		fclose(f);
	if (!found && size)
		out[0] = '\0';
	return found;
}

void build_path(char *out, size_t size, const char *rel)
{
	ssize_t n = readlink("/proc/self/exe", out, size - 64);

	cr_assert_gt(n, 0);
	out[n] = '\0';
	snprintf(strrchr(out, '/') + 1, 64, "%s", rel);
}

/* --transport COHMEMD_TEST_TRANSPORT, unless unset or args name one. */
const char *cohmemd_transport_arg(const char *args)
{
	static char arg[64];
	const char *t = getenv("COHMEMD_TEST_TRANSPORT");

	if (!t || !*t || strstr(args, "--transport"))
		return "";
	snprintf(arg, sizeof(arg), " --transport %s", t);
	return arg;
}

void cohmemd_start(const char *args, const char *state, const char *prefix)
{
	char exe[PATH_MAX], cmd[3 * PATH_MAX + 512];
	struct stat root, m;

	if (getenv("COHMEMD_TEST_BIN"))	/* another build of it (tests/tsan-daemon.sh) */
		snprintf(exe, sizeof(exe), "%s", getenv("COHMEMD_TEST_BIN"));
	else
		build_path(exe, sizeof(exe), "../daemon/cohmemd");
	snprintf(state_now, sizeof(state_now), "%s", state ? state : cohmemd_state);
	snprintf(cmd, sizeof(cmd), "%s exec %s --mount %s --state-dir %s %s%s 2>>%s/log", prefix ? prefix : "",
		 exe, cohmemd_mnt, state_now, args, cohmemd_transport_arg(args), cohmemd_dir);
	cohmemd_pid = fork();
	cr_assert_geq(cohmemd_pid, 0);
	if (cohmemd_pid == 0) {
		/* A test that dies takes its daemon along, in an orderly stop that unmounts. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(stat(cohmemd_dir, &root), 0);
	/* Serving when it says so, and the mount answers (a dead mount may answer from its cache). */
	for (unsigned ms = 0, limit = test_deadline_s(20) * 1000; ms < limit; ms += 10) {
		if (cohmemd_log_lines("cohmemd: serving") > served && stat(cohmemd_mnt, &m) == 0 &&
		    m.st_dev != root.st_dev) {
			served++;
			return;
		}
		cr_assert_eq(waitpid(cohmemd_pid, NULL, WNOHANG), 0, "cohmemd exited; see %s/log", cohmemd_dir);
		usleep(10000);
	}
	cr_assert_fail("cohmemd did not mount %s", cohmemd_mnt);
}

int cohmemd_stop_status(void)
{
	int status = -1;

	kill(cohmemd_pid, SIGTERM);
	if (waitpid(cohmemd_pid, &status, 0) != cohmemd_pid)
		return -1;
	return status;
}

void cohmemd_restart(const char *args)
{
	char state[PATH_MAX];
	int status = cohmemd_stop_status();

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "cohmemd stopped with status %#x", status);
	snprintf(state, sizeof(state), "%s", state_now);
	cohmemd_start(args, state, NULL);
}

size_t cohmemd_rss(void)
{
	char path[64], line[256];
	size_t kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)cohmemd_pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %zu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

bool cohmemd_mounted(void)
{
	char line[1024], needle[128];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	bool found = false;

	snprintf(needle, sizeof(needle), " %s ", cohmemd_mnt);
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

/*
 * What a test mounted below the test's directory (a tmpfs for the state,
 * one over the mount point) and left there when it failed half way: lazily
 * unmounted, newest first, so that nothing outlives the test.
 */
static void unmount_below_dir(void)
{
	char line[1024], point[PATH_MAX], prefix[PATH_MAX];
	bool again = true;

	snprintf(prefix, sizeof(prefix), "%s/", cohmemd_dir);
	while (again) {
		FILE *f = fopen("/proc/self/mountinfo", "r");
		char last[PATH_MAX] = "";

		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "%*u %*u %*s %*s %4095s", point) == 1 &&
			    !strncmp(point, prefix, strlen(prefix)))
				snprintf(last, sizeof(last), "%s", point);
		if (f)
			fclose(f);
		again = last[0] && umount2(last, MNT_DETACH) == 0;
	}
}

/*
 * Criterion does not fail a test for an assertion in its .fini: a check that
 * fails there ends the test's process instead, which Criterion reports as a
 * crash (and CTest as a failure).
 */
static void fini_check(bool ok, const char *what)
{
	char cmd[PATH_MAX + 32];

	if (ok)
		return;
	fprintf(stderr, "teardown: %s (%s); the daemon's log ends:\n", what, cohmemd_dir);
	fflush(stderr);
	snprintf(cmd, sizeof(cmd), "tail -n 15 %s/log >&2", cohmemd_dir);
	if (system(cmd))
		fprintf(stderr, "(no log)\n");
	unmount_below_dir();	/* the test fails; its mounts go all the same */
	abort();
}

/*
 * Before Criterion's runner starts: without a /dev/fuse this user may open
 * (udev makes it 0666; some containers leave it 0600), no cohmemd can mount,
 * and the whole program is skipped (CTest's 77), saying why.
 */
__attribute__((constructor)) static void need_fuse(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("SKIP: cannot open /dev/fuse (%s): cohmemd cannot mount for uid %d here\n",
		       strerror(errno), (int)getuid());
		exit(77);
	}
	close(fd);
}

/* Whether FUSE lets this user mount with allow_other: root, or user_allow_other in /etc/fuse.conf. */
static bool may_allow_other(void)
{
	char line[256];
	bool allowed = geteuid() == 0;
	FILE *f = fopen("/etc/fuse.conf", "r");

	while (f && !allowed && fgets(line, sizeof(line), f))
		allowed = strncmp(line, "user_allow_other", 16) == 0;
	if (f)
		fclose(f);
	return allowed;
}

void cohmemd_setup(void)
{
	if (strstr(cohmemd_args(), "--allow-other") && !may_allow_other())
		cr_skip_test("--allow-other needs root, or user_allow_other in /etc/fuse.conf");
	cr_assert_not_null(mkdtemp(cohmemd_dir));
	snprintf(cohmemd_mnt, sizeof(cohmemd_mnt), "%s/mnt", cohmemd_dir);
	snprintf(cohmemd_state, sizeof(cohmemd_state), "%s/state", cohmemd_dir);
	cr_assert_eq(mkdir(cohmemd_mnt, 0755), 0);
	chmod(cohmemd_dir, 0755);
	cohmemd_start(cohmemd_args(), NULL, NULL);
}

void cohmemd_setup_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root: other users, mounts of its own");
	cohmemd_setup();
}

/*
 * fusectl, where an administrator aborts a FUSE connection: mounted already
 * on most systems, not in every container (mounted here if it can be).
 */
void cohmemd_setup_fusectl(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root: aborting a FUSE connection in /sys/fs/fuse/connections");
	if (access("/sys/fs/fuse/connections/", F_OK) ||
	    (mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) && errno != EBUSY))
		cr_skip_test("no fusectl to abort a connection with: %s", strerror(errno));
	cohmemd_setup();
}

void cohmemd_teardown(void)
{
	char cmd[PATH_MAX + 32];
	int status = cohmemd_stop_status();

	fini_check(status != -1, "cohmemd was not our child");
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fprintf(stderr, "teardown: cohmemd's wait status %#x (%s %d)\n", status,
			WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	fini_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "cohmemd did not exit with status 0");
	fini_check(!cohmemd_mounted(), "the mount outlived cohmemd (a dead mount under it?)");
	/* The daemon's own sanitizer reports and lock checks go to its log, not to the test's output. */
	fini_check(cohmemd_log_lines("Sanitizer") + cohmemd_log_lines("runtime error") == 0,
		   "sanitizer report in the log");
	fini_check(cohmemd_log_lines("lock rule broken") == 0, "a broken lock rule in the log");
	unmount_below_dir();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", cohmemd_dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", cohmemd_dir);
}

int buffer_open(const char *name, int flags)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", cohmemd_mnt, name);
	return open(path, flags, 0644);
}

int buffer_create(const char *name, size_t pages)
{
	int fd = buffer_open(name, O_RDWR | O_CREAT);

	cr_assert_geq(fd, 0, "%s: %s", name, strerror(errno));
	cr_assert_eq(ftruncate(fd, (off_t)(pages * PS)), 0);
	return fd;
}

void state_read(const char *name, void *buf, size_t len, off_t off)
{
	char path[2 * PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", state_now, name);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

int as_nobody(int (*fn)(void *arg), void *arg)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgid(NOBODY) || setuid(NOBODY))
			_exit(125);
		_exit(fn(arg));
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void cohmemd_skip(const char *why)
{
	cohmemd_teardown();
	cr_skip_test("%s", why);
	abort();	/* cr_skip_test() does not return */
}
