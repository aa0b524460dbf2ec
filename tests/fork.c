/* SPDX-License-Identifier: MIT */
/* fork() in a process with tracked memory. */
#include <errno.h>
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

/*
 * In the child, every call on the inherited tracker and region says -ECHILD
 * and changes nothing; freeing the tracker there releases only the child's
 * copy. The parent's tracking goes on untouched.
 */
Test(fork, inherited_objects_answer_echild_in_the_child)
{
	struct tracked x = tracked_anon(PAGES);
	unsigned long *bm;
	pid_t pid;
	int status;

	x.mem[3 * PS] = 3;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		unsigned long cbm[COHMEM_BITMAP_LONGS(PAGES)] = { 0 };
		struct cohmem_region_stats st;
		cohmem_region *r2;
		unsigned caps;
		int bad = 0;

		alarm(20);
		bad |= (cohmem_region_clean(x.r, 0, PAGES, 0, cbm, NULL, NULL) != -ECHILD) << 0;
		bad |= (cohmem_region_wrprotect(x.r, 0, PAGES) != -ECHILD) << 1;
		bad |= (cohmem_region_stats(x.r, &st, sizeof(st)) != -ECHILD) << 2;
		bad |= (cohmem_region_add(x.t, x.mem + PS, PS, 0, &r2) != -ECHILD) << 3;
		bad |= (cohmem_tracker_capabilities(x.t, &caps) != -ECHILD) << 4;
		bad |= (cohmem_region_remove(x.r) != -ECHILD) << 5;
		bad |= (cbm[0] != 0) << 6;
		x.mem[4 * PS] = 4;	/* plain memory here */
		cohmem_tracker_free(x.t);
		_exit(bad);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child status %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "calls that did not say -ECHILD: mask %#x",
		     WEXITSTATUS(status));

	x.mem[5 * PS] = 5;
	cr_assert_eq(clean_all(x.r, PAGES, &bm), 2, "the child's free left the parent's tracking alone");
	assert_bits(bm, PAGES, (size_t[]){ 3, 5, END });
	free(bm);
	x.mem[6 * PS] = 6;
	cr_assert_eq(clean_all(x.r, PAGES, &bm), 1);
	assert_bits(bm, PAGES, (size_t[]){ 6, END });
	free(bm);
	tracked_free(&x);
}
