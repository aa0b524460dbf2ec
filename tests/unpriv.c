/* SPDX-License-Identifier: MIT */
/*
 * Without privileges: with vm.unprivileged_userfaultfd=0 the userfaultfd(2)
 * syscall is refused and /dev/userfaultfd is root's, so the library must fall
 * back to a user-mode-only userfaultfd and still track writes.
 *
 * The helper runs as nobody, who may not be able to reach the build tree (a
 * clone under /root, say): it is copied, with the library it was built
 * against, into a private directory that nobody can read.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define NOBODY 65534

static void copy_file(const char *from, const char *dir, const char *name)
{
	char to[PATH_MAX], buf[65536];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	snprintf(to, sizeof(to), "%s/%s", dir, name);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	cr_assert(in >= 0 && out >= 0, "copy %s to %s", from, to);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

TestSuite(unpriv, .timeout = 60);

Test(unpriv, tracks_as_nobody)
{
	char exe[PATH_MAX], helper[PATH_MAX], copied_lib[PATH_MAX], dir[] = "/tmp/cohmem-unpriv-XXXXXX";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 32);
	Dl_info lib;
	int status;
	pid_t pid;

	if (geteuid() != 0)
		cr_skip_test("needs root to become an unprivileged user");
	cr_assert_gt(n, 0);
	exe[n] = '\0';
	strcpy(strrchr(exe, '/') + 1, "unpriv-helper");
	cr_assert(dladdr((void *)cohmem_tracker_new, &lib) && lib.dli_fname, "where is libcohmem?");

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chmod(dir, 0755), 0);
	copy_file(exe, dir, "unpriv-helper");
	copy_file(lib.dli_fname, dir, "libcohmem.so.0");
	snprintf(helper, sizeof(helper), "%s/unpriv-helper", dir);

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(3);
		setenv("LD_LIBRARY_PATH", dir, 1);
		execl(helper, helper, (char *)NULL);
		_exit(4);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	snprintf(copied_lib, sizeof(copied_lib), "%s/libcohmem.so.0", dir);
	unlink(copied_lib);
	unlink(helper);
	rmdir(dir);
	cr_assert(WIFEXITED(status), "helper died: %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "helper failed (3: setuid, 4: exec %s)", helper);
}
