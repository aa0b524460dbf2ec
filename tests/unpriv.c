/* SPDX-License-Identifier: MIT */
/*
 * Without privileges: with vm.unprivileged_userfaultfd=0 the userfaultfd(2)
 * syscall is refused and /dev/userfaultfd is root's, so the library must fall
 * back to a user-mode-only userfaultfd and still track writes.
 */

#include <grp.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define NOBODY 65534

TestSuite(unpriv, .timeout = 60);

Test(unpriv, tracks_as_nobody)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 32);
	int status;
	pid_t pid;

	if (geteuid() != 0)
		cr_skip_test("needs root to become an unprivileged user");
	cr_assert_gt(n, 0);
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	strcpy(slash + 1, "unpriv-helper");

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(3);
		execl(exe, exe, (char *)NULL);
		_exit(4);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "helper died: %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "helper failed (3: setuid, 4: exec %s)", exe);
}
