/* SPDX-License-Identifier: MIT */
/*
 * cohmemd, for real: every test starts the daemon on a temporary mount (in
 * the coherence mode COHMEM_TEST_COHERENCE names: scan or writeback) and
 * works with processes as users would.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buffer-proto.h"
#include "test.h"

#define PAGES 64
#define NOBODY 65534

static char dir[] = "/tmp/cohmemd-test-XXXXXX", mnt[64], state[64];
static pid_t daemon_pid;

static const char *coherence(void)
{
	const char *c = getenv("COHMEM_TEST_COHERENCE");

	return c && *c ? c : "scan";
}

static const char *daemon_args(void)
{
	const char *a = getenv("COHMEMD_TEST_ARGS");

	return a ? a : "--interval 30 --max-bytes 1G";
}

static int served;	/* "serving" lines seen in the log so far */

/* Lines of the daemon's log that contain needle. */
static int log_lines(const char *needle)
{
	char path[PATH_MAX], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/log", dir);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

static int servings(void)
{
	return log_lines("cohmemd: serving");
}

static void daemon_start(const char *extra)
{
	char exe[PATH_MAX], cmd[2 * PATH_MAX + 256];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 32);
	struct stat root, m;

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	strcpy(strrchr(exe, '/') + 1, "../daemon/cohmemd");
	snprintf(cmd, sizeof(cmd), "exec %s --mount %s --state-dir %s --coherence %s %s 2>>%s/log", exe,
		 mnt, state, coherence(), extra ? extra : "", dir);
	daemon_pid = fork();
	cr_assert_geq(daemon_pid, 0);
	if (daemon_pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(stat(dir, &root), 0);
	/* Serving when it says so, and the mount answers (a dead mount may answer from its cache). */
	for (int i = 0; i < 500; i++) {
		if (servings() > served && stat(mnt, &m) == 0 && m.st_dev != root.st_dev) {
			served++;
			return;
		}
		cr_assert_eq(waitpid(daemon_pid, NULL, WNOHANG), 0, "cohmemd exited; see %s/log", dir);
		usleep(10000);
	}
	cr_assert_fail("cohmemd did not mount %s", mnt);
}

/* Whether anything is mounted at mnt (a dead mount included, which stat() may not tell). */
static bool mounted(void)
{
	char line[1024], needle[128];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	bool found = false;

	snprintf(needle, sizeof(needle), " %s ", mnt);
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
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
	fprintf(stderr, "teardown: %s (%s); the daemon's log ends:\n", what, dir);
	fflush(stderr);
	snprintf(cmd, sizeof(cmd), "tail -n 15 %s/log >&2", dir);
	system(cmd);
	abort();
}

static void daemon_stop(void)
{
	int status = 0;

	kill(daemon_pid, SIGTERM);
	fini_check(waitpid(daemon_pid, &status, 0) == daemon_pid, "cohmemd was not our child");
	fini_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "cohmemd did not exit with status 0");
	fini_check(!mounted(), "the mount outlived cohmemd (a dead mount under it?)");
	/* The daemon's own sanitizer reports go to its log, not to the test's output. */
	fini_check(log_lines("Sanitizer") + log_lines("runtime error") == 0, "sanitizer report in the log");
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	cr_assert_eq(mkdir(mnt, 0755), 0);
	chmod(dir, 0755);
	daemon_start(daemon_args());
}

static void teardown(void)
{
	char cmd[PATH_MAX + 32];

	daemon_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	system(cmd);
}

static int buffer(const char *name, size_t pages)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", mnt, name);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(ftruncate(fd, (off_t)(pages * PS)), 0);
	return fd;
}

static int reopen(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", mnt, name);
	return open(path, O_RDWR);
}

/* Bytes of the state file. */
static void state_read(const char *name, void *buf, size_t len, off_t off)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", state, name);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

/*
 * A writer process: maps name, attaches, writes 'a' + page into each page of
 * pages[] (END-terminated), tells the parent, then waits for a byte and
 * exits — or dies by SIGKILL right after writing when die is set.
 */
struct writer {
	pid_t pid;
	int go[2], done[2];
};

static struct writer writer_start(const char *name, const size_t *pages, bool die)
{
	struct writer w;

	cr_assert_eq(pipe(w.go), 0);
	cr_assert_eq(pipe(w.done), 0);
	w.pid = fork();
	cr_assert_geq(w.pid, 0);
	if (w.pid == 0) {
		int fd = reopen(name);
		char *m = mmap(NULL, PAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		char c;

		if (fd < 0 || m == MAP_FAILED || cohmem_buffer_attach(fd, m, PAGES * PS, 0))
			_exit(3);
		for (size_t i = 0; pages[i] != END; i++)
			memset(m + pages[i] * PS, 'a' + (int)pages[i], PS);
		if (die)
			raise(SIGKILL);
		if (write(w.done[1], "w", 1) != 1 || read(w.go[0], &c, 1) != 1)
			_exit(4);
		_exit(0);
	}
	return w;
}

static void writer_wait_written(struct writer *w)
{
	char c;

	cr_assert_eq(read(w->done[0], &c, 1), 1, "the writer failed");
}

static void writer_end(struct writer *w)
{
	int status;

	write(w->go[1], "g", 1);
	cr_assert_eq(waitpid(w->pid, &status, 0), w->pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer status %#x", status);
}

static void expect_clean(int fd, const size_t *expect)
{
	unsigned long *bm = bitmap_new(PAGES);

	cr_assert_geq(cohmem_buffer_clean(fd, 0, PAGES, 0, bm, NULL, NULL), 0);
	assert_bits(bm, PAGES, expect);
	free(bm);
}

TestSuite(cohmemd, .init = setup, .fini = teardown, .timeout = 120);

Test(cohmemd, files_behave_like_files)
{
	int fd = buffer("fb", 4);
	char buf[16] = { 0 }, state_buf[5];
	struct stat st;

	cr_assert_eq(pwrite(fd, "hello", 5, PS + 3), 5);
	cr_assert_eq(pread(fd, buf, 5, PS + 3), 5);
	cr_assert_str_eq(buf, "hello");
	state_read("fb", state_buf, 5, PS + 3);
	cr_assert(!memcmp(state_buf, "hello", 5), "the state file holds the bytes");
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 4 * (off_t)PS);
	cr_assert_eq(st.st_mode & 0777, 0644);
	cr_assert_eq(lseek(fd, 0, SEEK_END), 4 * (off_t)PS);
	cr_assert_eq(write(fd, "!", 1), 1, "appending grows it");
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 4 * (off_t)PS + 1);
	close(fd);

	snprintf(buf, sizeof(buf), "fb");
	{
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/fb", mnt);
		cr_assert_eq(unlink(path), 0);
		cr_assert_eq(access(path, F_OK), -1);
		snprintf(path, sizeof(path), "%s/fb", state);
		cr_assert_eq(access(path, F_OK), -1, "and its state file is gone");
	}
}

Test(cohmemd, two_processes_one_writes_another_cleans)
{
	int fd = buffer("fb", PAGES);
	struct writer w = writer_start("fb", (size_t[]){ 1, 5, 9, END }, false);
	char page[4096];

	writer_wait_written(&w);
	expect_clean(fd, (size_t[]){ 1, 5, 9, END });
	for (size_t pg = 1; pg <= 9; pg += 4) {
		state_read("fb", page, sizeof(page), (off_t)(pg * PS));
		for (size_t i = 0; i < sizeof(page); i++)
			cr_assert_eq(page[i], 'a' + (int)pg, "state file page %zu", pg);
	}
	expect_clean(fd, (size_t[]){ END });
	writer_end(&w);
}

Test(cohmemd, every_consumer_sees_every_write)
{
	int a = buffer("fb", PAGES), b = reopen("fb"), c = reopen("fb");
	struct writer w = writer_start("fb", (size_t[]){ 2, 3, END }, false);
	int other;

	writer_wait_written(&w);
	expect_clean(a, (size_t[]){ 2, 3, END });
	writer_end(&w);
	other = reopen("fb");
	cr_assert_eq(pwrite(other, "z", 1, (off_t)(4 * PS)), 1, "write(2) counts too");
	expect_clean(b, (size_t[]){ 2, 3, 4, END });
	expect_clean(c, (size_t[]){ 2, 3, 4, END });
	expect_clean(a, (size_t[]){ 4, END });
	expect_clean(a, (size_t[]){ END });
	cr_assert_eq(cohmem_buffer_wrprotect(b, 0, PAGES), 0);
	close(other);
}

Test(cohmemd, poll_wakes_a_consumer)
{
	int fd = buffer("fb", PAGES);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct writer w;

	cr_assert_eq(poll(&p, 1, 0), 0, "nothing pending yet");
	w = writer_start("fb", (size_t[]){ 7, END }, false);
	writer_wait_written(&w);
	/* the daemon collects on its --interval: no one cleans */
	cr_assert_eq(poll(&p, 1, 10000), 1, "poll woke");
	cr_assert(p.revents & POLLIN);
	expect_clean(fd, (size_t[]){ 7, END });
	p.revents = 0;
	cr_assert_eq(poll(&p, 1, 200), 0, "and sleeps again once cleaned");
	writer_end(&w);
}

Test(cohmemd, a_client_killed_mid_write_loses_nothing)
{
	int fd = buffer("fb", PAGES), status;
	struct writer w = writer_start("fb", (size_t[]){ 3, 7, END }, true);
	char page[4096];

	cr_assert_eq(waitpid(w.pid, &status, 0), w.pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	expect_clean(fd, (size_t[]){ 3, 7, END });
	state_read("fb", page, sizeof(page), (off_t)(7 * PS));
	cr_assert_eq(page[100], 'a' + 7, "its pages reached the state file");
}

Test(cohmemd, a_daemon_killed_and_restarted_serves_the_last_clean)
{
	int fd = buffer("fb", PAGES), status;
	struct writer w = writer_start("fb", (size_t[]){ 2, 11, END }, false);
	char buf[8];

	writer_wait_written(&w);
	expect_clean(fd, (size_t[]){ 2, 11, END });
	cr_assert_eq(pwrite(fd, "written", 7, (off_t)(20 * PS)), 7);
	writer_end(&w);
	close(fd);

	kill(daemon_pid, SIGKILL);
	cr_assert_eq(waitpid(daemon_pid, &status, 0), daemon_pid);
	daemon_start(daemon_args());	/* clears the dead mount first */

	fd = reopen("fb");
	cr_assert_geq(fd, 0, "the buffer is back: %s", strerror(errno));
	cr_assert_eq(pread(fd, buf, 1, (off_t)(11 * PS + 9)), 1);
	cr_assert_eq(buf[0], 'a' + 11, "the last clean's content");
	cr_assert_eq(pread(fd, buf, 7, (off_t)(20 * PS)), 7);
	cr_assert(!memcmp(buf, "written", 7), "the last write's content");
	close(fd);
}

Test(cohmemd, bad_input_is_refused_and_changes_nothing)
{
	int fd = buffer("fb", PAGES);
	char *anon = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *m = mmap(NULL, 8 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char *priv = mmap(NULL, 8 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	char path[PATH_MAX + 300], longname[300], small[16];
	unsigned long bm[2];

	cr_assert_eq(cohmem_buffer_attach(fd, anon, PS, 0), -EINVAL, "not a mapping of this buffer");
	cr_assert_eq(cohmem_buffer_attach(fd, m, 8 * PS, PS), -EINVAL, "at another offset");
	cr_assert_eq(cohmem_buffer_attach(fd, priv, 8 * PS, 0), -EINVAL, "a private mapping");
	cr_assert_eq(cohmem_buffer_attach(fd, m + 1, PS, 0), -EINVAL, "unaligned");
	cr_assert_eq(cohmem_buffer_attach(fd, m, 128 * PS, 0), -EINVAL, "past the end");
	cr_assert_eq(cohmem_buffer_attach(0, m, PS, 0), -ENOTTY, "not a cohmemd file");
	cr_assert_eq(cohmem_buffer_attach(fd, m, 8 * PS, 0), 0, "and the right one works");
	cr_assert_eq(cohmem_buffer_attach(fd, m, 8 * PS, 0), -EEXIST);
	cr_assert_eq(cohmem_buffer_clean(fd, 0, PAGES + 1, 0, bm, NULL, NULL), -EINVAL, "past the end");
	cr_assert_eq(cohmem_buffer_clean(fd, 0, 4, 0, NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(cohmem_buffer_detach(fd, anon), -ENOENT);
	cr_assert_eq(cohmem_buffer_detach(fd, m), 0);

	errno = 0;
	cr_assert_eq(ioctl(fd, _IO('C', 99)), -1);
	cr_assert_eq(errno, ENOTTY, "unknown command");
	cr_assert_eq(ioctl(fd, _IOWR('C', 4, char[16]), small), -1);
	cr_assert_eq(errno, ENOTTY, "a known number with another size is another command");

	snprintf(path, sizeof(path), "%s/a/b", mnt);
	cr_assert_eq(open(path, O_RDWR | O_CREAT, 0644), -1);
	cr_assert_eq(errno, ENOENT, "no directories inside");
	cr_assert_eq(mkdir(path, 0755), -1);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	snprintf(path, sizeof(path), "%s/%s", mnt, longname);
	cr_assert_eq(open(path, O_RDWR | O_CREAT, 0644), -1);
	cr_assert_eq(errno, ENAMETOOLONG);
	cr_assert_eq(ftruncate(fd, 1LL << 40), -1, "over --max-bytes");
	cr_assert_eq(errno, EFBIG);
	cr_assert_eq(pwrite(fd, "x", 1, 1LL << 40), -1);
	cr_assert_eq(errno, EFBIG);

	snprintf(path, sizeof(path), "%s", state);
	{
		char cmd[PATH_MAX + 32];
		FILE *p;
		char out[256] = { 0 };

		snprintf(cmd, sizeof(cmd), "ls %s", state);
		p = popen(cmd, "r");
		cr_assert_gt(fread(out, 1, sizeof(out) - 1, p), 0);
		pclose(p);
		cr_assert_str_eq(out, "fb\n", "nothing else appeared in the state directory");
	}
	cr_assert_eq(fstat(fd, &(struct stat){ 0 }), 0);
	expect_clean(fd, (size_t[]){ END });
}

Test(cohmemd, only_the_mounting_user_gets_in)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct stat st;

		if (setgid(NOBODY) || setuid(NOBODY))
			_exit(3);
		_exit(stat(mnt, &st) == -1 && errno == EACCES ? 0 : 1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	if (strstr(daemon_args(), "allow-other"))
		cr_assert_eq(WEXITSTATUS(status), 1, "--allow-other lets others in");
	else
		cr_assert_eq(WEXITSTATUS(status), 0, "without --allow-other, nobody gets EACCES");
}

Test(cohmemd, modes_and_ownership)
{
	int fd = buffer("fb", 1);
	char path[PATH_MAX];
	struct stat st;

	cr_assert_eq(fchmod(fd, 0600), 0);
	cr_assert_eq(fchown(fd, NOBODY, NOBODY), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(st.st_uid, NOBODY);
	snprintf(path, sizeof(path), "%s/fb", state);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(st.st_uid == NOBODY && (st.st_mode & 07777) == 0600, "kept on the state file");
}

Test(cohmemd, cohmemctl_ls_shows_buffers_consumers_and_mappings)
{
	int fd = buffer("fb", PAGES), other = reopen("fb");
	struct writer w = writer_start("fb", (size_t[]){ 1, END }, false);
	char exe[PATH_MAX], cmd[2 * PATH_MAX], out[4096] = { 0 }, want[64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 32);
	FILE *p;

	writer_wait_written(&w);
	exe[n] = '\0';
	strcpy(strrchr(exe, '/') + 1, "../tools/cohmemctl");
	snprintf(cmd, sizeof(cmd), "%s ls %s", exe, mnt);
	p = popen(cmd, "r");
	cr_assert_gt(fread(out, 1, sizeof(out) - 1, p), 0);
	cr_assert_eq(WEXITSTATUS(pclose(p)), 0);
	cr_assert_not_null(strstr(out, "\nfb "), "%s", out);
	snprintf(want, sizeof(want), " %d 0x", (int)w.pid);
	cr_assert_not_null(strstr(out, want), "the writer's mapping, by pid: %s", out);
	cr_assert_not_null(strstr(out, "         3 "), "three open descriptions: %s", out);
	writer_end(&w);
	close(other);
	close(fd);
}
