/* SPDX-License-Identifier: MIT */
/* What is particular to the mprotect backend: its SIGSEGV handler, kernel writes, degradation. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define PAGES 16

TestSuite(mprotect, .timeout = 240);

static volatile sig_atomic_t previous_calls;
static void *volatile previous_addr;
static volatile char *untracked;	/* volatile: the stores must happen before the checks */

/* An application's own handler: it fixes its own read-only page. */
static void previous_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	previous_calls++;
	previous_addr = si->si_addr;
	if (si->si_code > 0)
		mprotect((void *)untracked, PS, PROT_READ | PROT_WRITE);
}

Test(mprotect, other_faults_go_to_the_handler_installed_before)
{
	struct sigaction sa = { .sa_sigaction = previous_handler, .sa_flags = SA_SIGINFO };
	struct tracked x;
	unsigned long *bm;

	untracked = mmap(NULL, PS, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(untracked, MAP_FAILED);
	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	x = tracked_anon(PAGES);	/* installs the library's handler over it */

	untracked[0] = 1;
	cr_assert_eq(previous_calls, 1, "a fault outside tracked memory reaches the previous handler");
	cr_assert_eq(previous_addr, (void *)untracked);

	((volatile char *)x.mem)[3 * PS] = 1;
	cr_assert_eq(previous_calls, 1, "tracked writes stay with the library");
	cr_assert_eq(clean_all(x.r, PAGES, &bm), 1);
	assert_bits(bm, PAGES, (size_t[]){ 3, END });
	free(bm);

	raise(SIGSEGV);
	cr_assert_eq(previous_calls, 2, "so does a SIGSEGV sent by kill()");
	tracked_free(&x);
	mprotect((void *)untracked, PS, PROT_READ);
	untracked[0] = 2;
	cr_assert_eq(previous_calls, 3, "and everything, once no memory is tracked");
	munmap((void *)untracked, PS);
}

Test(mprotect, the_default_action_stays_for_other_faults)
{
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct tracked x = tracked_anon(PAGES);
		char *ro = mmap(NULL, PS, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int devnull = open("/dev/null", O_WRONLY);

		x.mem[0] = 1;	/* tracked: fine */
		dup2(devnull, 2);	/* a sanitizer's own report is not this test's failure */
		ro[0] = 1;	/* not tracked: the process must die of it */
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
#ifdef __SANITIZE_ADDRESS__
	cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 0, "the sanitizer's handler took it");
#else
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status %#x", status);
#endif
}

Test(mprotect, kernel_writes_fail_with_efault)
{
	struct tracked x = tracked_anon(PAGES);
	unsigned long *bm;
	int fds[2];

	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(write(fds[1], "abcdef", 6), 6);
	errno = 0;
	cr_assert_eq(read(fds[0], x.mem + 5 * PS, 3), -1, "documented: the kernel cannot write a protected page");
	cr_assert_eq(errno, EFAULT);

	x.mem[5 * PS] = 'x';	/* a user write unprotects it until the next clean */
	cr_assert_eq(read(fds[0], x.mem + 5 * PS, 3), 3);
	cr_assert_eq(clean_all(x.r, PAGES, &bm), 1);
	free(bm);
	close(fds[0]);
	close(fds[1]);
	tracked_free(&x);
}

static size_t max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	unsigned long n = 0;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%lu", &n), 1);
	fclose(f);
	return n;
}

/*
 * Every other page written splits the mapping in three each time; past
 * vm.max_map_count the kernel refuses. The region must degrade — no write
 * lost, no spinning fault — say so, and track exactly again after a clean.
 */
Test(mprotect, degrades_at_max_map_count_without_losing_writes)
{
	size_t limit = max_map_count(), pages = limit + 4096;
	struct cohmem_region_stats st;
	struct tracked x;
	unsigned long *bm;
	long n;

	if (limit > (1UL << 20))
		cr_skip_test("vm.max_map_count is %zu: too large to reach here", limit);
	x = tracked_anon(pages);
	for (size_t pg = 0; pg < pages; pg += 2)
		x.mem[pg * PS] = 1;

	cr_assert_eq(cohmem_region_stats(x.r, &st, sizeof(st)), 0);
	cr_assert_geq(st.degradations, 1, "the kernel should have refused a split");
	cr_assert_eq(st.degraded, 1);

	n = clean_all(x.r, pages, &bm);
	for (size_t pg = 0; pg < pages; pg += 2)
		cr_assert(bit_is_set(bm, pg), "written page %zu lost", pg);
	cr_assert_eq(n, (long)pages, "degraded: every page counts as dirty");
	free(bm);

	cr_assert_eq(cohmem_region_stats(x.r, &st, sizeof(st)), 0);
	cr_assert_eq(st.degraded, 0, "the clean protected the region again");
	x.mem[7 * PS] = 1;
	x.mem[(pages - 1) * PS] = 1;
	cr_assert_eq(clean_all(x.r, pages, &bm), 2, "and tracking is exact again");
	assert_bits(bm, pages, (size_t[]){ 7, pages - 1, END });
	free(bm);
	tracked_free(&x);
}
