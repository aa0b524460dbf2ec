/* SPDX-License-Identifier: MIT */
/*
 * The cohmem_pfn kernel module and COHMEM_BACKEND_PFN, for real: it runs in
 * the QEMU guest of the kernel matrix, where the module is loaded, and skips
 * (77) wherever /dev/cohmem-pfn is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "linux/cohmem_pfn.h"
#include "test.h"

#define PAGES 256

static void need_module(void)
{
	if (access(COHMEM_PFN_DEVICE, F_OK))
		cr_skip_test("%s is missing: the cohmem_pfn module is not loaded", COHMEM_PFN_DEVICE);
}

static int buffer(size_t pages)
{
	int fd = cohmem_pfn_open(pages * PS, 0);

	cr_assert_geq(fd, 0, "cohmem_pfn_open: %s", strerror(-fd));
	return fd;
}

static char *map(int fd, size_t pages, off_t pgoff)
{
	char *p = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, pgoff * (off_t)PS);

	cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

/* The module's clean, straight: bits relative to page 0 of the buffer. */
static long module_clean(int fd, size_t first, size_t nr, unsigned long *bm)
{
	struct cohmem_pfn_clean c = { first, nr, 0, (uintptr_t)bm, 1, 0, 0 };

	if (ioctl(fd, COHMEM_PFN_CLEAN, &c))
		return -errno;
	return (long)c.count;
}

static void set_policy(int fd, unsigned policy)
{
	struct cohmem_pfn_method m = { .policy = policy };

	cr_assert_eq(ioctl(fd, COHMEM_PFN_SET_METHOD, &m), 0, "%s", strerror(errno));
}

static struct cohmem_pfn_method method(int fd)
{
	struct cohmem_pfn_method m;

	cr_assert_eq(ioctl(fd, COHMEM_PFN_GET_METHOD, &m), 0);
	return m;
}

TestSuite(pfn, .init = need_module, .timeout = 240);

Test(pfn, buffers_are_pfnmap_and_private_mappings_are_refused)
{
	int fd = buffer(PAGES);
	char *p = map(fd, PAGES, 0);
	unsigned long *bm = bitmap_new(PAGES);
	struct cohmem_pfn_info info;

	cr_assert_eq(ioctl(fd, COHMEM_PFN_INFO, &info), 0);
	cr_assert_eq(info.size, PAGES * PS);
	cr_assert_eq(info.flags, 0, "memory of its own, not a device's");
	p[5 * PS] = 1;
	cr_assert_eq(p[5 * PS], 1);
	cr_assert_eq(p[6 * PS], 0, "pages start zeroed");
	cr_assert_eq(mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), MAP_FAILED);
	cr_assert_eq(errno, EINVAL, "a COW mapping would hide later mappings from the walk");
	cr_assert_eq(mmap(NULL, 2 * PS, PROT_READ, MAP_SHARED, fd, (off_t)(PAGES - 1) * PS), MAP_FAILED,
		     "past the end");
	cr_assert_eq(cohmem_pfn_open(PS + 1, 0), -EINVAL);
	cr_assert_eq(cohmem_pfn_open(0, 0), -EINVAL);
	cr_assert_eq(cohmem_pfn_open(PS, 1), -EINVAL, "flags are reserved");
	/* userfaultfd and friends refuse it: only the pfn backend takes it. */
	cr_assert_eq(module_clean(fd, 0, PAGES, bm), 1);
	free(bm);
	munmap(p, PAGES * PS);
	close(fd);
}

Test(pfn, bad_ioctl_arguments_change_nothing)
{
	int fd = buffer(PAGES), dev = open(COHMEM_PFN_DEVICE, O_RDWR);
	char *p = map(fd, PAGES, 0);
	unsigned long *bm = bitmap_new(PAGES);
	struct cohmem_pfn_clean c = { 0, PAGES, 0, 0, 1, 0, 0 };
	struct cohmem_pfn_wrprotect wp = { PAGES, 1, 0 };
	struct cohmem_pfn_create cr = { PS, 1, -1 };
	struct cohmem_pfn_lookup lk = { (uintptr_t)bm & ~(uintptr_t)(PS - 1), PS, 0, -1, 0 };
	struct cohmem_pfn_method m = { .policy = 9 };

	p[3 * PS] = 1;
	cr_assert_eq(ioctl(fd, COHMEM_PFN_CLEAN, &c), -1, "NULL bitmap");
	cr_assert_eq(errno, EINVAL);
	c = (struct cohmem_pfn_clean){ 1, PAGES, 0, (uintptr_t)bm, 1, 0, 0 };
	cr_assert_eq(ioctl(fd, COHMEM_PFN_CLEAN, &c), -1, "past the end");
	c = (struct cohmem_pfn_clean){ 0, 0, 0, (uintptr_t)bm, 1, 0, 0 };
	cr_assert_eq(ioctl(fd, COHMEM_PFN_CLEAN, &c), -1, "empty");
	c = (struct cohmem_pfn_clean){ 0, PAGES, 1, (uintptr_t)bm, 1, 0, 0 };
	cr_assert_eq(ioctl(fd, COHMEM_PFN_CLEAN, &c), -1, "bitmap_pgoff > first");
	c = (struct cohmem_pfn_clean){ 0, PAGES, 0, 8, 1, 0, 0 };
	cr_assert_eq(ioctl(fd, COHMEM_PFN_CLEAN, &c), -1, "a bitmap that is not mapped");
	cr_assert_eq(errno, EFAULT);
	cr_assert_eq(ioctl(fd, COHMEM_PFN_CLEAN, NULL), -1);
	cr_assert_eq(ioctl(fd, COHMEM_PFN_WRPROTECT, &wp), -1);
	cr_assert_eq(ioctl(fd, COHMEM_PFN_SET_METHOD, &m), -1);
	cr_assert_eq(ioctl(fd, _IO(COHMEM_PFN_IOC, 99)), -1);
	cr_assert_eq(errno, ENOTTY);
	cr_assert_eq(ioctl(dev, COHMEM_PFN_CREATE, &cr), -1, "unknown flags");
	cr_assert_eq(ioctl(dev, COHMEM_PFN_LOOKUP, &lk), -1, "not a pfn mapping");
	cr_assert_eq(errno, ENODEV);
	cr_assert_eq(ioctl(dev, COHMEM_PFN_CLEAN, &c), -1, "a buffer command on the device");
	/* The failed clean with an unmapped bitmap gave its page back: nothing was lost. */
	cr_assert_eq(module_clean(fd, 0, PAGES, bm), 1);
	cr_assert(bit_is_set(bm, 3));
	free(bm);
	munmap(p, PAGES * PS);
	close(fd);
	close(dev);
}

/* The i_mmap walk: a child's own mapping of the buffer, cleaned through the parent's fd. */
static void two_processes(unsigned policy)
{
	int fd = buffer(PAGES), go[2], done[2];
	unsigned long *bm = bitmap_new(PAGES);
	pid_t child;
	char c;

	set_policy(fd, policy);
	cr_assert_eq(pipe(go), 0);	/* one pipe each way: a process could read back its own byte */
	cr_assert_eq(pipe(done), 0);
	child = fork();
	if (child == 0) {
		char *q = map(fd, 64, 100);	/* pages 100..163 of the buffer */

		q[0] = 1;
		q[10 * PS + 7] = 2;
		_exit(write(done[1], "w", 1) == 1 && read(go[0], &c, 1) == 1 ? 0 : 1);
	}
	cr_assert_eq(read(done[0], &c, 1), 1);
	cr_assert_eq(module_clean(fd, 0, PAGES, bm), 2, "the child's writes, through its own mapping");
	assert_bits(bm, PAGES, (size_t[]){ 100, 110, END });
	memset(bm, 0, PAGES / 8 + 8);
	cr_assert_eq(module_clean(fd, 0, PAGES, bm), 0, "and cleaned");
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_assert_eq(waitpid(child, NULL, 0), child);
	free(bm);
	close(fd);
	for (int i = 0; i < 2; i++) {
		close(go[i]);
		close(done[i]);
	}
}

Test(pfn, two_processes_one_buffer_page_table_method)
{
	two_processes(COHMEM_PFN_POLICY_PAGETABLE);
}

Test(pfn, two_processes_one_buffer_mkwrite_method)
{
	two_processes(COHMEM_PFN_POLICY_MKWRITE);
}

/* A clean of the whole buffer reports exactly expect (END-terminated), and clears bm. */
static void assert_clean(int fd, unsigned long *bm, const size_t *expect, const char *what, unsigned policy)
{
	size_t n = 0;

	while (expect[n] != END)
		n++;
	cr_assert_eq(module_clean(fd, 0, PAGES, bm), (long)n, "%s (policy %u)", what, policy);
	assert_bits(bm, PAGES, expect);
	memset(bm, 0, PAGES / 8 + 8);
}

static unsigned long *clean_slate(int fd, unsigned policy)
{
	unsigned long *bm = bitmap_new(PAGES);

	set_policy(fd, policy);
	module_clean(fd, 0, PAGES, bm);
	memset(bm, 0, PAGES / 8 + 8);
	return bm;
}

/*
 * munmap() zaps a mapping's PTEs, and their dirty bits with them, before the
 * module's close runs: the notifier harvests them first. Exactly the pages
 * written are reported, in both methods, for a whole and a partial unmap.
 */
Test(pfn, an_unmapped_mapping_reports_exactly_the_pages_written)
{
	int fd = buffer(PAGES);

	for (unsigned policy = COHMEM_PFN_POLICY_PAGETABLE; policy <= COHMEM_PFN_POLICY_MKWRITE; policy++) {
		unsigned long *bm = clean_slate(fd, policy);
		char *p = map(fd, PAGES, 0);

		p[3 * PS] = 1;
		p[42 * PS + 9] = 2;
		p[200 * PS] = 3;
		cr_assert_eq(munmap(p, PAGES * PS), 0);
		assert_clean(fd, bm, (size_t[]){ 3, 42, 200, END }, "whole munmap", policy);
		p = map(fd, PAGES, 0);
		p[10 * PS] = 1;
		p[20 * PS] = 2;
		p[30 * PS] = 3;
		cr_assert_eq(munmap(p + 15 * PS, 10 * PS), 0, "a hole: the VMA splits");
		assert_clean(fd, bm, (size_t[]){ 10, 20, 30, END }, "partial munmap", policy);
		p[11 * PS] = 4;
		p[31 * PS] = 5;
		cr_assert_eq(munmap(p, PAGES * PS), 0, "both halves");
		assert_clean(fd, bm, (size_t[]){ 11, 31, END }, "the halves of a split", policy);
		free(bm);
	}
	close(fd);
}

/* mremap() moves the PTEs (the notifier sees it as an unmap of the old range). */
Test(pfn, a_moved_mapping_reports_exactly_the_pages_written)
{
	int fd = buffer(PAGES);

	for (unsigned policy = COHMEM_PFN_POLICY_PAGETABLE; policy <= COHMEM_PFN_POLICY_MKWRITE; policy++) {
		unsigned long *bm = clean_slate(fd, policy);
		char *p = map(fd, PAGES, 0);
		char *hole = mmap(NULL, PAGES * PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		char *q;

		cr_assert_neq(hole, MAP_FAILED);
		p[5 * PS] = 1;
		q = mremap(p, PAGES * PS, PAGES * PS, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
		cr_assert_eq(q, hole, "mremap: %s", strerror(errno));
		assert_clean(fd, bm, (size_t[]){ 5, END }, "written before the move", policy);
		q[6 * PS] = 2;
		assert_clean(fd, bm, (size_t[]){ 6, END }, "written after the move", policy);
		q[7 * PS] = 3;
		cr_assert_eq(munmap(q, PAGES * PS), 0);
		assert_clean(fd, bm, (size_t[]){ 7, END }, "then unmapped", policy);
		free(bm);
	}
	close(fd);
}

/* A process that exits (or is killed) with the buffer mapped: exit_mmap() zaps it all. */
Test(pfn, an_exited_process_reports_exactly_the_pages_it_wrote)
{
	int fd = buffer(PAGES);

	for (unsigned policy = COHMEM_PFN_POLICY_PAGETABLE; policy <= COHMEM_PFN_POLICY_MKWRITE; policy++) {
		unsigned long *bm = clean_slate(fd, policy);
		int ready[2];
		pid_t child;
		char c;

		cr_assert_eq(pipe(ready), 0);
		child = fork();
		if (child == 0) {
			char *q = map(fd, PAGES, 0);

			q[7 * PS] = 1;
			q[8 * PS] = 2;
			if (write(ready[1], "w", 1) != 1)
				_exit(1);
			pause();	/* killed with the mapping in place */
			_exit(1);
		}
		cr_assert_eq(read(ready[0], &c, 1), 1);
		kill(child, SIGKILL);
		cr_assert_eq(waitpid(child, NULL, 0), child);
		assert_clean(fd, bm, (size_t[]){ 7, 8, END }, "killed", policy);
		child = fork();
		if (child == 0) {
			char *q = map(fd, 16, 100);

			q[2 * PS] = 1;
			_exit(0);
		}
		cr_assert_eq(waitpid(child, NULL, 0), child);
		assert_clean(fd, bm, (size_t[]){ 102, END }, "exited", policy);
		close(ready[0]);
		close(ready[1]);
		free(bm);
	}
	close(fd);
}

/*
 * A forked child's copy of a mapping: the child's writes are reported while
 * it lives and after it exits, exactly, and the parent's mapping is tracked
 * exactly before, during and after. No MADV_DONTFORK needed.
 */
Test(pfn, a_forked_copy_of_a_mapping_reports_exactly_the_pages_written)
{
	int fd = buffer(PAGES);

	for (unsigned policy = COHMEM_PFN_POLICY_PAGETABLE; policy <= COHMEM_PFN_POLICY_MKWRITE; policy++) {
		unsigned long *bm = clean_slate(fd, policy);
		char *p = map(fd, PAGES, 0);
		int go[2], done[2];
		pid_t child;
		char c;

		cr_assert_eq(pipe(go), 0);
		cr_assert_eq(pipe(done), 0);
		p[1 * PS] = 1;	/* dirty in the parent's PTE when it forks */
		child = fork();
		if (child == 0) {
			p[5 * PS] = 1;
			p[6 * PS] = 2;
			if (write(done[1], "w", 1) != 1 || read(go[0], &c, 1) != 1)
				_exit(1);
			p[5 * PS] = 3;	/* again, after the parent's clean */
			p[9 * PS] = 4;
			_exit(0);	/* no munmap: the copy goes with the child */
		}
		cr_assert_eq(read(done[0], &c, 1), 1);
		assert_clean(fd, bm, (size_t[]){ 1, 5, 6, END }, "the child's and the parent's", policy);
		p[2 * PS] = 1;
		cr_assert_eq(write(go[1], "g", 1), 1);
		cr_assert_eq(waitpid(child, NULL, 0), child);
		assert_clean(fd, bm, (size_t[]){ 2, 5, 9, END }, "after the child's exit", policy);
		p[3 * PS] = 1;
		assert_clean(fd, bm, (size_t[]){ 3, END }, "the parent alone again", policy);
		assert_clean(fd, bm, (size_t[]){ END }, "and nothing", policy);
		cr_assert_eq(munmap(p, PAGES * PS), 0);
		for (int i = 0; i < 2; i++) {
			close(go[i]);
			close(done[i]);
		}
		free(bm);
	}
	close(fd);
}

Test(pfn, the_policy_switches_methods_both_ways)
{
	int fd = buffer(1024);	/* >= 512 pages: starts with mkwrite, as vmwgfx */
	char *p = map(fd, 1024, 0);
	unsigned long *bm = bitmap_new(1024);

	cr_assert_eq(method(fd).method, COHMEM_PFN_METHOD_MKWRITE);
	for (unsigned c = 0; c < 3; c++) {	/* more than 10 % dirty, three scans */
		memset(p, (int)c + 1, 1024 * PS / 2);
		cr_assert_eq(module_clean(fd, 0, 1024, bm), 512);
	}
	cr_assert_eq(method(fd).method, COHMEM_PFN_METHOD_PAGETABLE);
	for (unsigned c = 0; c < 3; c++)	/* idle, three scans */
		cr_assert_eq(module_clean(fd, 0, 1024, bm), 0);
	cr_assert_eq(method(fd).method, COHMEM_PFN_METHOD_MKWRITE);
	cr_assert_eq(method(fd).switches, 2);
	p[7 * PS] = 1;
	memset(bm, 0, 1024 / 8 + 8);
	cr_assert_eq(module_clean(fd, 0, 1024, bm), 1);
	cr_assert(bit_is_set(bm, 7));
	free(bm);
	munmap(p, 1024 * PS);
	close(fd);
}

Test(pfn, auto_and_pfn_backends_track_it_with_the_public_api)
{
	int fd = buffer(PAGES);
	char *p = map(fd, PAGES, 0);
	char *anon = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cohmem_tracker *t, *pt;
	cohmem_region *r, *pr;
	unsigned long *bm = bitmap_new(PAGES);
	size_t start = 1, end = 0;
	int src[2];

	p[9 * PS] = 1;	/* before the region: not reported */
	cr_assert_eq(cohmem_tracker_new(COHMEM_BACKEND_AUTO, 0, &t), 0);
	cr_assert_eq(cohmem_region_add(t, p + 8 * PS, 64 * PS, 0, &r), 0);
	cr_assert_eq(cohmem_region_backend(r), COHMEM_BACKEND_PFN);
	cr_assert_eq(cohmem_tracker_new(COHMEM_BACKEND_PFN, 0, &pt), 0);
	cr_assert_eq(cohmem_region_add(pt, anon, 4 * PS, 0, &pr), -EOPNOTSUPP, "not pfn memory");
	cr_assert_eq(cohmem_region_clean(r, 0, 64, 0, bm, &start, &end), 0, "a new region starts clean");
	p[10 * PS] = 1;
	/* A kernel-mode write into pfnmap memory goes through pfn_mkwrite or sets the dirty bit. */
	cr_assert_eq(pipe(src), 0);
	cr_assert_eq(write(src[1], "kernel", 6), 6);
	cr_assert_eq(read(src[0], p + 40 * PS, 6), 6);
	cr_assert_eq(cohmem_region_clean(r, 0, 64, 0, bm, &start, &end), 2);
	assert_bits(bm, 64, (size_t[]){ 2, 32, END });	/* region pages: buffer page - 8 */
	cr_assert_eq(start, 2);
	cr_assert_eq(end, 33);
	p[20 * PS] = 1;
	cr_assert_eq(cohmem_region_wrprotect(r, 0, 64), 1);
	memset(bm, 0, PAGES / 8 + 8);
	cr_assert_eq(cohmem_region_clean(r, 0, 64, 0, bm, NULL, NULL), 0, "only later writes");
	cohmem_tracker_free(t);
	cohmem_tracker_free(pt);
	free(bm);
	munmap(p, PAGES * PS);
	munmap(anon, 4 * PS);
	close(fd);
	close(src[0]);
	close(src[1]);
}

/*
 * Writer threads race a cleaner that copies; munmap/close race cleans on the
 * side, and forked children write through their copies and exit.
 */
struct race {
	int fd;
	char *mem, *shadow;
	atomic_bool stop;
	atomic_long writes, cleans;
};

static void *writer(void *arg)
{
	struct race *r = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed;

	for (unsigned long n = 1; !atomic_load_explicit(&r->stop, memory_order_relaxed); n++) {
		r->mem[(size_t)rand_r(&seed) % (PAGES * PS)] = (char)n;
		atomic_fetch_add(&r->writes, 1);
	}
	return NULL;
}

static void *unmapper(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {	/* other mappings come and go while cleans walk */
		char *q = map(r->fd, 16, 8);
		int dup_fd = dup(r->fd);

		q[PS] = 1;
		munmap(q, 16 * PS);
		close(dup_fd);
	}
	return NULL;
}

/* Forked children write through their copies of the mapping, and exit with them. */
static void *forker(void *arg)
{
	struct race *r = arg;

	for (unsigned seed = 1; !atomic_load(&r->stop); seed++) {
		pid_t child = fork();

		if (child == 0) {
			for (int i = 0; i < 64; i++)
				r->mem[(size_t)rand_r(&seed) % (PAGES * PS)] = (char)i;
			_exit(0);
		}
		if (child > 0)
			waitpid(child, NULL, 0);
	}
	return NULL;
}

/* On the first PAGES pages of the buffer behind fd (which it closes). */
static void race_on(int fd, unsigned policy)
{
	struct race r = { .fd = fd };
	unsigned long *bm = bitmap_new(PAGES);
	pthread_t w[2], u, f;

	r.mem = map(r.fd, PAGES, 0);
	r.shadow = calloc(PAGES, PS);
	set_policy(r.fd, policy);
	module_clean(r.fd, 0, PAGES, bm);
	memset(bm, 0, PAGES / 8 + 8);
	memcpy(r.shadow, r.mem, PAGES * PS);	/* device memory is not zeroed */
	for (int i = 0; i < 2; i++)
		pthread_create(&w[i], NULL, writer, &r);
	pthread_create(&u, NULL, unmapper, &r);
	pthread_create(&f, NULL, forker, &r);
	while (atomic_load(&r.cleans) < 300 || atomic_load(&r.writes) < 20000) {
		long n = module_clean(r.fd, 0, PAGES, bm);

		cr_assert_geq(n, 0);
		for (size_t pg = 0; pg < PAGES; pg++)
			if (bit_is_set(bm, pg))
				memcpy(r.shadow + pg * PS, r.mem + pg * PS, PS);
		memset(bm, 0, PAGES / 8 + 8);
		atomic_fetch_add(&r.cleans, 1);
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(w[i], NULL);
	pthread_join(u, NULL);
	pthread_join(f, NULL);
	module_clean(r.fd, 0, PAGES, bm);
	for (size_t pg = 0; pg < PAGES; pg++)
		if (bit_is_set(bm, pg))
			memcpy(r.shadow + pg * PS, r.mem + pg * PS, PS);
	for (size_t pg = 0; pg < PAGES; pg++)
		cr_assert(!memcmp(r.shadow + pg * PS, r.mem + pg * PS, PS),
			  "policy %u: page %zu was written but never reported", policy, pg);
	free(bm);
	free(r.shadow);
	munmap(r.mem, PAGES * PS);
	close(r.fd);
}

static void race(unsigned policy)
{
	race_on(buffer(PAGES), policy);
}

Test(pfn, no_write_is_lost_page_table_method)
{
	race(COHMEM_PFN_POLICY_PAGETABLE);
}

Test(pfn, no_write_is_lost_mkwrite_method)
{
	race(COHMEM_PFN_POLICY_MKWRITE);
}

Test(pfn, no_write_is_lost_while_the_policy_switches)
{
	race(COHMEM_PFN_POLICY_AUTO);
}

/*
 * A forked child's copy of a mapping has no notifier: only pfn_mkwrite
 * records what it writes, and its PTEs die with it. A clean that takes the
 * page's bit while the fault is still making the PTE writable must not lose
 * the store that follows when the child exits before the next clean. Each
 * child writes every page once and exits; a thread cleans and copies all the
 * while; after each child the copy must equal the memory.
 */
#define CHILD_PAGES 64
#define CHILDREN 300

struct child_race {
	int fd;
	char *mem, *shadow;
	unsigned long *bm;
	pthread_mutex_t lock;
	atomic_bool stop;
	atomic_long clean_error;
};

/* A clean and the copy of what it reported, as a device would make it. Under lock. */
static void clean_and_copy(struct child_race *c)
{
	long n = module_clean(c->fd, 0, CHILD_PAGES, c->bm);

	if (n < 0)	/* asserted by the test's thread */
		atomic_store(&c->clean_error, n);
	for (size_t pg = 0; pg < CHILD_PAGES; pg++)
		if (bit_is_set(c->bm, pg))
			memcpy(c->shadow + pg * PS, c->mem + pg * PS, PS);
	memset(c->bm, 0, CHILD_PAGES / 8 + 8);
}

static void *child_race_cleaner(void *arg)
{
	struct child_race *c = arg;

	while (!atomic_load(&c->stop)) {
		pthread_mutex_lock(&c->lock);
		clean_and_copy(c);
		pthread_mutex_unlock(&c->lock);
	}
	return NULL;
}

/*
 * Each store straddles two pages that are both read-only: it faults on the
 * first, then on the second, and lands only after both faults, so that a
 * clean has the whole second fault to report the first page and copy it
 * before the store.
 */
typedef uint64_t __attribute__((aligned(1), may_alias)) unaligned_u64;

static _Noreturn void child_writes(char *mem, unsigned gen, bool reprotect)
{
	for (size_t pg = 0; pg + 1 < CHILD_PAGES; pg += 2) {
		/* mprotect() makes read-only dirty PTEs writable without a fault: none may be left so. */
		if (reprotect && (mprotect(mem, CHILD_PAGES * PS, PROT_READ) ||
				  mprotect(mem, CHILD_PAGES * PS, PROT_READ | PROT_WRITE)))
			_exit(3);
		*(volatile unaligned_u64 *)(mem + (pg + 1) * PS - 4) = 0x0101010101010101ULL * (gen & 0xff);
	}
	_exit(0);
}

static void children_race_cleans(unsigned policy, bool reprotect)
{
	struct child_race c = { .fd = buffer(CHILD_PAGES), .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t cleaner;

	c.mem = map(c.fd, CHILD_PAGES, 0);
	c.shadow = calloc(CHILD_PAGES, PS);
	c.bm = bitmap_new(CHILD_PAGES);
	set_policy(c.fd, policy);
	clean_and_copy(&c);
	memcpy(c.shadow, c.mem, CHILD_PAGES * PS);
	pthread_create(&cleaner, NULL, child_race_cleaner, &c);
	for (unsigned gen = 1; gen <= CHILDREN; gen++) {
		pid_t child = fork();
		int status;

		cr_assert_geq(child, 0);
		if (child == 0)
			child_writes(c.mem, gen, reprotect);
		cr_assert_eq(waitpid(child, &status, 0), child);
		cr_assert_eq(status, 0);
		pthread_mutex_lock(&c.lock);
		clean_and_copy(&c);
		cr_assert_eq(atomic_load(&c.clean_error), 0, "a clean failed: %s", strerror((int)-atomic_load(&c.clean_error)));
		for (size_t pg = 0; pg < CHILD_PAGES; pg++)
			cr_assert(!memcmp(c.shadow + pg * PS, c.mem + pg * PS, PS),
				  "policy %u, child %u: page %zu was written but never reported", policy, gen, pg);
		pthread_mutex_unlock(&c.lock);
	}
	atomic_store(&c.stop, true);
	pthread_join(cleaner, NULL);
	free(c.bm);
	free(c.shadow);
	munmap(c.mem, CHILD_PAGES * PS);
	close(c.fd);
}

Test(pfn, a_forked_childs_writes_survive_its_exit_while_cleans_race)
{
	children_race_cleans(COHMEM_PFN_POLICY_PAGETABLE, false);
	children_race_cleans(COHMEM_PFN_POLICY_MKWRITE, false);
}

Test(pfn, a_forked_child_that_mprotects_its_mapping_loses_nothing_either)
{
	children_race_cleans(COHMEM_PFN_POLICY_PAGETABLE, true);
	children_race_cleans(COHMEM_PFN_POLICY_MKWRITE, true);
}

/*
 * Device memory: the BAR of a PCI device bound to the driver. The kernel
 * matrix boots QEMU with an ivshmem-plain device (its BAR 2 is a file of the
 * host), binds it, and names its node in COHMEM_TEST_PFN_BAR; after the guest
 * powers off, the host finds in that file the signatures written here.
 * One test, so that nothing else uses the BAR while it is unbound.
 */
static const char *bar_node(void)
{
	const char *node = getenv("COHMEM_TEST_PFN_BAR");

	if (!node || !*node)
		cr_skip_test("no PCI device is bound to cohmem_pfn (COHMEM_TEST_PFN_BAR is unset; "
			     "the kernel matrix binds QEMU's ivshmem-plain)");
	return node;
}

static int bar_open(const char *node, struct cohmem_pfn_info *info)
{
	int fd = open(node, O_RDWR | O_CLOEXEC);

	cr_assert_geq(fd, 0, "%s: %s", node, strerror(errno));
	cr_assert_eq(ioctl(fd, COHMEM_PFN_INFO, info), 0, "%s", strerror(errno));
	cr_assert(info->flags & COHMEM_PFN_INFO_DEVICE, "a device buffer says so");
	cr_assert_geq(info->size, (PAGES + 8) * PS, "a BAR of %llu bytes", (unsigned long long)info->size);
	return fd;
}

/* The public API on the BAR; a child that opened the node itself writes too: the i_mmap walk. */
static void bar_tracked(const char *node, unsigned policy)
{
	struct cohmem_pfn_info info;
	int fd = bar_open(node, &info), go[2], done[2], status;
	unsigned long *bm = bitmap_new(PAGES);
	cohmem_tracker *t;
	cohmem_region *r;
	pid_t child;
	char *p, c;

	/* Forked before the parent maps the BAR: a child's copy of a mapping reports it all on exit. */
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(done), 0);
	child = fork();
	if (child == 0) {
		int own = open(node, O_RDWR);
		char *q = own < 0 ? MAP_FAILED : mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, own,
						      40 * (off_t)PS);

		if (q == MAP_FAILED || read(go[0], &c, 1) != 1)
			_exit(3);
		q[7] = 'c';
		_exit(write(done[1], "w", 1) == 1 ? 0 : 1);
	}
	p = map(fd, PAGES, 0);
	set_policy(fd, policy);
	cr_assert_eq(cohmem_tracker_new(COHMEM_BACKEND_AUTO, 0, &t), 0);
	cr_assert_eq(cohmem_region_add(t, p, PAGES * PS, 0, &r), 0);
	cr_assert_eq(cohmem_region_backend(r), COHMEM_BACKEND_PFN);
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, NULL, NULL), 0, "a new region starts clean");
	p[3 * PS] = 'a';
	p[17 * PS + 100] = 'b';
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_assert_eq(read(done[0], &c, 1), 1);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert_eq(status, 0);
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, NULL, NULL), 3, "policy %u", policy);
	assert_bits(bm, PAGES, (size_t[]){ 3, 17, 40, END });
	cr_assert_eq(p[40 * PS + 7], 'c', "one memory, every mapping");
	memset(bm, 0, PAGES / 8 + 8);
	cr_assert_eq(cohmem_region_clean(r, 0, PAGES, 0, bm, NULL, NULL), 0, "and cleaned");
	cohmem_tracker_free(t);
	free(bm);
	munmap(p, PAGES * PS);
	close(fd);
	for (int i = 0; i < 2; i++) {
		close(go[i]);
		close(done[i]);
	}
}

/* For the host: a signature in each of the BAR's last three pages. */
static void bar_sign(const char *node)
{
	struct cohmem_pfn_info info;
	int fd = bar_open(node, &info);
	size_t pages = info.size / PS;
	char *p = map(fd, 3, (off_t)(pages - 3));

	for (size_t i = 0; i < 3; i++)
		snprintf(p + i * PS, PS, "cohmem ivshmem page %zu", pages - 3 + i);
	munmap(p, 3 * PS);
	close(fd);
}

static void sysfs_write(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, value, strlen(value)), (ssize_t)strlen(value), "%s: %s", path, strerror(errno));
	close(fd);
}

/* Unbinding while a process has the BAR mapped and a descriptor open: SIGBUS, not a crash; then back. */
static void bar_unbind(const char *node)
{
	const char *pci = node + strlen(COHMEM_PFN_DEVICE_PREFIX);
	struct cohmem_pfn_info info;
	int fd = bar_open(node, &info), status;
	char *p = map(fd, PAGES, 0);
	unsigned long *bm = bitmap_new(PAGES);
	pid_t child;

	module_clean(fd, 0, PAGES, bm);
	memset(bm, 0, PAGES / 8 + 8);
	p[5 * PS] = 'x';
	sysfs_write("/sys/bus/pci/drivers/cohmem_pfn/unbind", pci);
	cr_assert_eq(access(node, F_OK), -1, "the node is gone");
	child = fork();
	if (child == 0) {
		p[6 * PS] = 'y';
		_exit(0);
	}
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "status %#x", status);
	cr_assert_eq(mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED);
	cr_assert_eq(errno, ENODEV, "no new mappings of a device that is gone");
	/* The child's copy of the mapping went with it: its pages count as written too. */
	cr_assert_geq(module_clean(fd, 0, PAGES, bm), 1, "what was written before still reports");
	cr_assert(bit_is_set(bm, 5));
	munmap(p, PAGES * PS);
	close(fd);
	sysfs_write("/sys/bus/pci/drivers/cohmem_pfn/bind", pci);
	cr_assert_eq(access(node, F_OK), 0, "and back: %s", strerror(errno));
	free(bm);
}

Test(pfn, a_device_bar_is_tracked_page_by_page)
{
	const char *node = bar_node();
	struct cohmem_pfn_info info;
	int fd;

	bar_tracked(node, COHMEM_PFN_POLICY_PAGETABLE);
	bar_tracked(node, COHMEM_PFN_POLICY_MKWRITE);
	fd = bar_open(node, &info);
	cr_assert_eq(mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), MAP_FAILED);
	cr_assert_eq(errno, EINVAL, "no private mappings of device memory");
	close(fd);
	race_on(open(node, O_RDWR), COHMEM_PFN_POLICY_AUTO);
	bar_unbind(node);
	bar_sign(node);
}
