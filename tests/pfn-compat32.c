/* SPDX-License-Identifier: MIT */
/*
 * cohmem_pfn's ioctls from a 32-bit process (built -m32 -static, run in the
 * kernel matrix's guest): every struct of the uapi has one layout on i386 and
 * x86-64, so compat_ptr_ioctl() is all the module needs, and bitmaps are
 * __u64 words whatever the caller's long is. Plain libc, no Criterion (no
 * 32-bit build of it): exit 0 on success, 77 without the module, 1 with a
 * message on the first failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "linux/cohmem_pfn.h"

/* The sizes the 64-bit kernel encodes in the commands: a 32-bit layout that differed would not match. */
_Static_assert(sizeof(struct cohmem_pfn_create) == 16, "create");
_Static_assert(sizeof(struct cohmem_pfn_lookup) == 32, "lookup");
_Static_assert(sizeof(struct cohmem_pfn_clean) == 56, "clean");
_Static_assert(sizeof(struct cohmem_pfn_wrprotect) == 24, "wrprotect");
_Static_assert(sizeof(struct cohmem_pfn_method) == 16, "method");
_Static_assert(sizeof(struct cohmem_pfn_info) == 16, "info");
_Static_assert(offsetof(struct cohmem_pfn_method, switches) == 8, "method.switches");

#define PAGES 64
#define PS 4096

static void check(int ok, const char *what)
{
	if (!ok) {
		printf("FAIL: %s (errno %d: %s)\n", what, errno, strerror(errno));
		exit(1);
	}
}

static long clean(int fd, uint64_t first, uint64_t nr, uint64_t bitmap_pgoff, uint64_t *bm,
		  struct cohmem_pfn_clean *out)
{
	struct cohmem_pfn_clean c = { first, nr, bitmap_pgoff, (uintptr_t)bm, 1, 0, 0 };

	if (ioctl(fd, COHMEM_PFN_CLEAN, &c))
		return -errno;
	if (out)
		*out = c;
	return (long)c.count;
}

int main(void)
{
	struct cohmem_pfn_create cr = { PAGES * PS, 0, -1 };
	struct cohmem_pfn_method m = { .policy = COHMEM_PFN_POLICY_PAGETABLE };
	struct cohmem_pfn_wrprotect wp = { 0, PAGES, 0 };
	struct cohmem_pfn_info info;
	struct cohmem_pfn_lookup lk;
	struct cohmem_pfn_clean c;
	uint64_t bm[1];
	int dev, fd;
	char *p;

	check(sizeof(long) == 4, "this test is built for a 32-bit process");
	dev = open(COHMEM_PFN_DEVICE, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		printf("SKIP: %s: %s\n", COHMEM_PFN_DEVICE, strerror(errno));
		return 77;
	}
	check(ioctl(dev, COHMEM_PFN_CREATE, &cr) == 0 && cr.fd >= 0, "COHMEM_PFN_CREATE");
	fd = cr.fd;
	p = mmap(NULL, PAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	check(p != MAP_FAILED, "mmap");
	check(ioctl(fd, COHMEM_PFN_SET_METHOD, &m) == 0, "COHMEM_PFN_SET_METHOD");
	memset(bm, 0, sizeof(bm));
	check(clean(fd, 0, PAGES, 0, bm, NULL) >= 0, "the first clean");

	p[1 * PS] = 1;
	p[33 * PS] = 2;
	p[63 * PS] = 3;
	memset(bm, 0, sizeof(bm));
	check(clean(fd, 0, PAGES, 0, bm, &c) == 3, "a clean reports the three pages written");
	check(bm[0] == ((1ULL << 1) | (1ULL << 33) | (1ULL << 63)), "in one __u64 word, bits 1, 33 and 63");
	check(c.start == 1 && c.end == 64, "[start, end) widened to [1, 64)");

	p[33 * PS] = 4;
	p[63 * PS] = 5;
	memset(bm, 0, sizeof(bm));
	check(clean(fd, 32, 32, 32, bm, NULL) == 2, "a clean of the upper half");
	check(bm[0] == ((1ULL << 1) | (1ULL << 31)), "relative to bitmap_pgoff 32: bits 1 and 31");

	lk = (struct cohmem_pfn_lookup){ (uintptr_t)p + 2 * PS, 4 * PS, 0, -1, 0 };
	check(ioctl(dev, COHMEM_PFN_LOOKUP, &lk) == 0 && lk.pgoff == 2 && lk.fd >= 0, "COHMEM_PFN_LOOKUP");
	p[5 * PS] = 6;
	check(ioctl(lk.fd, COHMEM_PFN_WRPROTECT, &wp) == 0 && wp.count == 1,
	      "COHMEM_PFN_WRPROTECT through the looked-up descriptor");
	check(ioctl(fd, COHMEM_PFN_GET_METHOD, &m) == 0 && m.policy == COHMEM_PFN_POLICY_PAGETABLE &&
		      m.method == COHMEM_PFN_METHOD_PAGETABLE,
	      "COHMEM_PFN_GET_METHOD");
	check(ioctl(fd, COHMEM_PFN_INFO, &info) == 0 && info.size == PAGES * PS && info.flags == 0, "COHMEM_PFN_INFO");
	check(munmap(p, PAGES * PS) == 0, "munmap");
	close(lk.fd);
	close(fd);
	close(dev);
	printf("ok: a 32-bit process creates, maps, cleans, looks up and protects through compat_ptr_ioctl\n");
	return 0;
}
