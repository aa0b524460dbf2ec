/* SPDX-License-Identifier: MIT */
/* fork() in a process with tracked memory. */
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define PAGES 32

TestSuite(fork, .timeout = 60);

static void run_child(char *mem, size_t pages)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* The child's copy is plain memory: writes neither block nor reach the parent. */
		alarm(20);
		memset(mem, 0xcc, pages * PS);
		_exit(mem[PS] == (char)0xcc ? 0 : 1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}

Test(fork, private_memory)
{
	cohmem_tracker *t = test_tracker();
	char *mem = map_anon(PAGES);
	cohmem_region *r;
	unsigned long *bm;

	memset(mem, 1, PAGES * PS);
	r = test_region(t, mem, PAGES);
	mem[2 * PS] = 2;	/* dirty before the fork: still reported after it */
	run_child(mem, PAGES);
	cr_assert_eq(mem[PS], 1, "the child wrote its own copy");

	mem[5 * PS] = 5;	/* a COW break in the parent is a tracked write */
	cr_assert_eq(clean_all(r, PAGES, &bm), 2);
	assert_bits(bm, PAGES, (size_t[]){ 2, 5, END });
	free(bm);
	mem[6 * PS] = 6;
	cr_assert_eq(clean_all(r, PAGES, &bm), 1);
	assert_bits(bm, PAGES, (size_t[]){ 6, END });
	free(bm);
	cohmem_tracker_free(t);
	munmap(mem, PAGES * PS);
}

Test(fork, tracking_goes_on_across_many_forks)
{
	struct tracked x = tracked_anon(PAGES);
	unsigned long *bm;

	for (size_t i = 0; i < 8; i++) {
		x.mem[i * PS] = (char)i;
		run_child(x.mem, PAGES);
		x.mem[(i + 16) * PS] = (char)i;
		cr_assert_eq(clean_all(x.r, PAGES, &bm), 2, "round %zu", i);
		assert_bits(bm, PAGES, (size_t[]){ i, i + 16, END });
		free(bm);
	}
	tracked_free(&x);
}
