/* SPDX-License-Identifier: MIT */
/* Memory types and writers other than plain stores. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test.h"

#define PAGES 16

TestSuite(memtypes, .timeout = 60);

/* Write pages 1 and 9, expect exactly those, then nothing. */
static void check_tracks(char *mem)
{
	cohmem_tracker *t = test_tracker();
	cohmem_region *r = test_region(t, mem, PAGES);
	unsigned long *bm;

	mem[1 * PS] = 1;
	mem[9 * PS + 17] = 1;
	cr_assert_eq(clean_all(r, PAGES, &bm), 2);
	assert_bits(bm, PAGES, (size_t[]){ 1, 9, END });
	free(bm);
	cr_assert_eq(clean_all(r, PAGES, &bm), 0);
	free(bm);
	cr_assert_eq(cohmem_region_remove(r), 0);
	cohmem_tracker_free(t);
}

/* Either tracked exactly, or refused with -EOPNOTSUPP when the backend lacks the capability. */
static void check_type(char *mem, unsigned cap)
{
	cohmem_tracker *t;
	cohmem_region *r = NULL;
	int err;

	if (test_backend_has(cap)) {
		check_tracks(mem);
		return;
	}
	t = test_tracker();
	err = cohmem_region_add(t, mem, PAGES * PS, 0, &r);
	cr_assert_eq(err, -EOPNOTSUPP, "got %d", err);
	mem[0] = 1;	/* and the memory is plain and writable */
	cohmem_tracker_free(t);
}

Test(memtypes, anonymous_private)
{
	char *mem = map_anon(PAGES);

	check_type(mem, COHMEM_CAP_ANON);
	munmap(mem, PAGES * PS);
}

/* check_type() on a mapping of a file, then both go. */
static void check_file_type(char *mem, int fd, unsigned cap)
{
	check_type(mem, cap);
	munmap(mem, PAGES * PS);
	close(fd);
}

Test(memtypes, memfd)
{
	int fd;
	char *mem = map_memfd(PAGES, &fd);

	check_file_type(mem, fd, COHMEM_CAP_SHMEM);
}

Test(memtypes, shared_anonymous)
{
	char *mem = mmap(NULL, PAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(mem, MAP_FAILED);
	check_type(mem, COHMEM_CAP_SHMEM);
	munmap(mem, PAGES * PS);
}

Test(memtypes, shared_file_mapping)
{
	int fd;
	char *mem = map_file(PAGES, &fd);

	check_file_type(mem, fd, COHMEM_CAP_FILE);
}

Test(memtypes, file_pages_already_in_the_page_cache)
{
	int fd;
	char *mem = map_file(PAGES, &fd);

	if (!test_backend_has(COHMEM_CAP_FILE))
		cr_skip_test("backend cannot track file mappings");
	memset(mem, 7, PAGES * PS);	/* populated and dirty before tracking starts */
	check_tracks(mem);
	munmap(mem, PAGES * PS);
	close(fd);
}

Test(memtypes, populated_anonymous_memory_starts_clean)
{
	char *mem = map_anon(PAGES);

	memset(mem, 7, PAGES * PS);
	check_tracks(mem);
	munmap(mem, PAGES * PS);
}

Test(memtypes, region_spanning_two_mappings)
{
	/* One region over two VMAs (different protections split the mapping). */
	char *mem = map_anon(PAGES);

	cr_assert_eq(mprotect(mem + 8 * PS, 8 * PS, PROT_READ), 0);
	cr_assert_eq(mprotect(mem + 8 * PS, 8 * PS, PROT_READ | PROT_WRITE), 0);
	cr_assert_eq(madvise(mem + 4 * PS, 4 * PS, MADV_RANDOM), 0);
	check_tracks(mem);
	munmap(mem, PAGES * PS);
}

Test(memtypes, kernel_mode_writes)
{
	struct tracked x = tracked_anon(PAGES);
	char *mem = x.mem;
	unsigned long *bm;
	int fds[2];
	char data[3 * 4096];

	cr_assert_eq(pipe(fds), 0);
	memset(data, 'k', sizeof(data));
	cr_assert_eq(write(fds[1], data, PS + 10), (ssize_t)(PS + 10));
	if (!region_has(x.r, COHMEM_CAP_KERNEL_WRITES)) {
		errno = 0;
		cr_assert_eq(read(fds[0], mem + 2 * PS, PS + 10), -1);
		cr_assert_eq(errno, EFAULT, "documented: kernel writes fail with EFAULT here");
	} else {
		/* read(2) fills pages 2 and 3 (10 bytes into 3) from inside the kernel */
		cr_assert_eq(read(fds[0], mem + 2 * PS, PS + 10), (ssize_t)(PS + 10));
		cr_assert_eq(clean_all(x.r, PAGES, &bm), 2);
		assert_bits(bm, PAGES, (size_t[]){ 2, 3, END });
		cr_assert_eq(mem[3 * PS + 9], 'k');
		free(bm);
	}
	close(fds[0]);
	close(fds[1]);
	tracked_free(&x);
}
