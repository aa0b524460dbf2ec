/* SPDX-License-Identifier: MIT */
/*
 * Run by the unprivileged test after it dropped root: a fresh process, so the
 * library probes as this user. Tracks writes with every backend the probe
 * allows and checks what the capabilities promise about kernel-mode writes. Prints what it found; exit 0 on success.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cohmem.h"

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			return 1;                                              \
		}                                                              \
	} while (0)

static int track(enum cohmem_backend b)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	char *mem = mmap(NULL, 8 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long bm = 0;
	unsigned caps = 0;
	cohmem_tracker *t;
	cohmem_region *r;
	int fds[2];
	ssize_t n;

	CHECK(cohmem_backend_capabilities(b, &caps) == 0, "capabilities");
	CHECK(cohmem_tracker_new(b, 0, &t) == 0, "tracker_new");
	CHECK(cohmem_region_add(t, mem, 8 * ps, 0, &r) == 0, "region_add");
	mem[3 * ps] = 1;
	CHECK(cohmem_region_clean(r, 0, 8, 0, &bm, NULL, NULL) == 1 && bm == 1UL << 3, "user write: %#lx", bm);

	CHECK(pipe(fds) == 0, "pipe");
	CHECK(write(fds[1], "kernel", 6) == 6, "write");
	n = read(fds[0], mem + 5 * ps, 6);
	if (caps & COHMEM_CAP_KERNEL_WRITES) {
		bm = 0;
		CHECK(n == 6, "kernel write failed: %s", strerror(errno));
		CHECK(cohmem_region_clean(r, 0, 8, 0, &bm, NULL, NULL) == 1 && bm == 1UL << 5,
		      "kernel write not reported: %#lx", bm);
	} else {
		CHECK(n < 0 && errno == EFAULT, "documented EFAULT, got %zd", n);
	}
	printf("%s: tracks as uid %d, kernel writes %s\n", cohmem_backend_name(b), (int)getuid(),
	       caps & COHMEM_CAP_KERNEL_WRITES ? "tracked" : "fail with EFAULT");
	cohmem_tracker_free(t);
	munmap(mem, 8 * ps);
	return 0;
}

int main(void)
{
	int tested = 0;

	for (int b = COHMEM_BACKEND_AUTO + 1; cohmem_backend_name(b); b++) {
		if (b == COHMEM_BACKEND_PFN || b == COHMEM_BACKEND_PFN_SCAN)
			continue;	/* track pfnmap memory only: tests/pfn.c, tests/pfn-scan.c */
		if (cohmem_backend_supported(b)) {
			printf("%s: not available to uid %d\n", cohmem_backend_name(b), (int)getuid());
			continue;
		}
		if (track(b))
			return 1;
		tested++;
	}
	CHECK(tested, "no backend works unprivileged");
	return 0;
}
