/* SPDX-License-Identifier: MIT */
/*
 * COHMEM_BACKEND_PFN_SCAN for real, on three kinds of shared VM_PFNMAP
 * mapping: a DRM dumb buffer scanned out from VRAM (bochs, on TTM), BAR 2 of
 * QEMU's ivshmem-plain through sysfs, and a cohmem_pfn buffer. It runs in the
 * QEMU guest of the kernel with PM_SCAN_PFNMAP (kernel/patches/); where the
 * kernel lacks it, or a device is missing, each test skips saying why, and a
 * program whose every test skipped exits 77.
 *
 * Each mapping goes through the same scenarios (exact page sets, writers
 * racing cleans, a forked child, a partial munmap, a move by mremap), then
 * leaves what the host checks once the guest is gone: signatures in the
 * ivshmem BAR (pages 1017-1019 of its 1024; tests/pfn.c signs 1021-1023),
 * and colour bars on the display for a QEMU screendump, announced by
 * "PFN-SCAN-DRM-READY <width> <height>" (announce_picture()).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drm-kabi.h"
#include "test.h"

#define WINDOW 64	/* pages of each mapping that the scenarios track */

/* Each test skips saying why, here too (test.c). */
bool test_runs_where_unsupported(void)
{
	return true;
}

static void need_backend(void)
{
	char why[256];

	if (cohmem_backend_explain(COHMEM_BACKEND_PFN_SCAN, why, sizeof(why)))
		cr_skip_test("pfn-scan cannot work here: %s", why);
}

/* A shared pfnmap mapping the scenarios run on: they track its first WINDOW pages. */
struct target {
	char *mem;
	size_t pages;		/* mapped, >= WINDOW */
	const char *what;	/* for messages */
	int fd;			/* what it maps; a DRM card's takes its framebuffer with it */
};

/* A target; slot numbers the tests of a suite (ivshmem gives each its own pages of the BAR). */
typedef struct target (*target_fn)(unsigned slot);

/*
 * Every page faulted in before tracking (TTM maps 16 pages around each
 * fault): the scenarios then measure cleans of present entries, and a page a
 * test reads is already mapped, so only writes can dirty it.
 */
static void fault_in(const char *mem, size_t pages)
{
	for (size_t i = 0; i < pages; i++)
		(void)*(const volatile char *)(mem + i * PS);
}

static char *map_shared(int fd, size_t pages, off_t offset, const char *what)
{
	char *p = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);

	cr_assert_neq(p, MAP_FAILED, "mmap of %s: %s", what, strerror(errno));
	fault_in(p, pages);
	return p;
}

static void target_close(struct target *x)
{
	munmap(x->mem, x->pages * PS);	/* also where parts are unmapped already */
	close(x->fd);
}

static cohmem_tracker *scan_tracker(void)
{
	cohmem_tracker *t = NULL;
	int err = cohmem_tracker_new(COHMEM_BACKEND_PFN_SCAN, 0, &t);

	cr_assert_eq(err, 0, "cohmem_tracker_new(pfn-scan): %s", strerror(-err));
	return t;
}

static size_t count_pages(const size_t *pages)
{
	size_t n = 0;

	while (pages[n] != END)
		n++;
	return n;
}

/* A clean of pages [first, first + nr) of r reports exactly expect (END-terminated). */
static void assert_clean(cohmem_region *r, size_t first, size_t nr, const size_t *expect, const char *what)
{
	unsigned long *bm = bitmap_new(first + nr);
	long got = cohmem_region_clean(r, first, nr, 0, bm, NULL, NULL);

	cr_assert_eq(got, (long)count_pages(expect), "%s: %ld pages reported (%s), expected %zu", what, got,
		     got < 0 ? strerror((int)-got) : "", count_pages(expect));
	assert_bits(bm, first + nr, expect);
	free(bm);
}

/* ---- the scenarios ------------------------------------------------------------------- */

static void kernel_write(char *dst, const char *what)
{
	int pipefd[2];

	cr_assert_eq(pipe(pipefd), 0);
	cr_assert_eq(write(pipefd[1], what, strlen(what)), (ssize_t)strlen(what));
	cr_assert_eq(read(pipefd[0], dst, strlen(what)), (ssize_t)strlen(what), "read(2) into %s", what);
	close(pipefd[0]);
	close(pipefd[1]);
}

/* Exactly the pages written, once each; reads are not writes; kernel-mode writes count. */
static void exact_pages(struct target *x)
{
	cohmem_tracker *t = scan_tracker();
	cohmem_region *r = test_region(t, x->mem, WINDOW);
	static const size_t written[] = { 0, 3, 4, 63, END };

	cr_assert_eq(cohmem_region_backend(r), COHMEM_BACKEND_PFN_SCAN);
	assert_clean(r, 0, WINDOW, (size_t[]){ END }, "a new region starts clean");
	for (size_t i = 0; written[i] != END; i++)
		x->mem[written[i] * PS + i] = (char)(i + 1);
	x->mem[4 * PS + 100] = 9;	/* twice into one page */
	assert_clean(r, 0, WINDOW, written, "pages 0, 3, 4 and 63");
	assert_clean(r, 0, WINDOW, (size_t[]){ END }, "the next clean");
	fault_in(x->mem, WINDOW);
	assert_clean(r, 0, WINDOW, (size_t[]){ END }, "after reading every page");
	x->mem[5 * PS] = 1;
	x->mem[40 * PS] = 2;
	assert_clean(r, 0, 32, (size_t[]){ 5, END }, "pages 0-31");
	assert_clean(r, 32, 32, (size_t[]){ 40, END }, "pages 32-63");
	kernel_write(x->mem + 20 * PS + 7, "kernel");
	assert_clean(r, 0, WINDOW, (size_t[]){ 20, END }, "a kernel-mode write (read(2))");
	x->mem[7 * PS] = 1;
	cr_assert_eq(cohmem_region_wrprotect(r, 0, WINDOW), 1, "wrprotect counts the page written");
	assert_clean(r, 0, WINDOW, (size_t[]){ END }, "after wrprotect: only later writes");
	cohmem_tracker_free(t);
}

/* Writers race cleans that copy what they report: the copy must end equal to the memory. */
#define WRITERS 2
#define MIN_WRITES 20000
#define MIN_CLEANS 300
#define DEADLINE_S 60

struct race {
	char *mem, *shadow;
	cohmem_region *r;
	int source;		/* memfd of random bytes, for kernel-mode writes */
	atomic_bool stop;
	atomic_long writes;
};

struct writer {
	struct race *race;
	unsigned seed;
};

static int random_source(void)
{
	int fd = memfd_create("pfn-scan-source", MFD_CLOEXEC);
	char buf[3 * 4096];

	cr_assert_geq(fd, 0, "memfd_create: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)rand();
	cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	return fd;
}

/* read(2)'s cousin pread(2) into the mapping: up to two pages from off. */
static void race_kernel_write(struct race *race, size_t off, unsigned *seed)
{
	size_t len = 1 + (size_t)rand_r(seed) % (2 * PS);

	if (off + len > WINDOW * PS)
		len = WINDOW * PS - off;
	if (pread(race->source, race->mem + off, len, (off_t)((size_t)rand_r(seed) % PS)) < 0)
		abort();
}

static void *writer(void *arg)
{
	struct writer *w = arg;
	struct race *race = w->race;

	for (unsigned long n = 1; !atomic_load_explicit(&race->stop, memory_order_relaxed); n++) {
		size_t off = (size_t)rand_r(&w->seed) % (WINDOW * PS);

		if (n % 8 == 0)
			race_kernel_write(race, off, &w->seed);
		else
			race->mem[off] = (char)n;
		atomic_fetch_add_explicit(&race->writes, 1, memory_order_relaxed);
	}
	return NULL;
}

/* Clean [first, first + nr), copy what it reported into the shadow; returns pages reported. */
static long sync_range(struct race *race, unsigned long *bm, size_t first, size_t nr)
{
	long n = cohmem_region_clean(race->r, first, nr, 0, bm, NULL, NULL);

	cr_assert_geq(n, 0, "cohmem_region_clean: %s", strerror((int)-n));
	for (size_t pg = first; pg < first + nr; pg++)
		if (bit_is_set(bm, pg))
			memcpy(race->shadow + pg * PS, race->mem + pg * PS, PS);
	memset(bm, 0, COHMEM_BITMAP_LONGS(WINDOW) * sizeof(*bm));
	return n;
}

/* Cleans of the whole window or a random part of it, until enough of both happened. */
static long clean_while_writing(struct race *race, unsigned long *bm)
{
	time_t deadline = time(NULL) + (time_t)test_deadline_s(DEADLINE_S);
	unsigned seed = 42;
	long cleans = 0, reported = 0;

	while (cleans < MIN_CLEANS || atomic_load(&race->writes) < MIN_WRITES) {
		size_t first = rand_r(&seed) % 2 ? 0 : (size_t)rand_r(&seed) % WINDOW;
		size_t nr = first ? (size_t)rand_r(&seed) % (WINDOW - first) + 1 : WINDOW;

		cr_assert_lt(time(NULL), deadline, "no progress: %ld cleans, %ld writes", cleans,
			     atomic_load(&race->writes));
		reported += sync_range(race, bm, first, nr);
		cleans++;
	}
	return reported;
}

static void no_write_lost(struct target *x)
{
	struct race race = { .mem = x->mem, .source = random_source() };
	cohmem_tracker *t = scan_tracker();
	unsigned long *bm = bitmap_new(WINDOW);
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	long reported;

	race.shadow = malloc(WINDOW * PS);
	cr_assert_not_null(race.shadow);
	memcpy(race.shadow, x->mem, WINDOW * PS);	/* device memory is not zeroed; a new region starts clean */
	race.r = test_region(t, x->mem, WINDOW);
	for (unsigned i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){ .race = &race, .seed = i + 1 };
		cr_assert_eq(pthread_create(&th[i], NULL, writer, &w[i]), 0);
	}
	reported = clean_while_writing(&race, bm);
	atomic_store(&race.stop, true);
	for (unsigned i = 0; i < WRITERS; i++)
		pthread_join(th[i], NULL);
	sync_range(&race, bm, 0, WINDOW);	/* the last clean, every writer stopped */
	cr_assert_gt(reported, 0, "the cleans reported nothing while writers ran: not a race");
	for (size_t pg = 0; pg < WINDOW; pg++)
		cr_assert(!memcmp(race.shadow + pg * PS, x->mem + pg * PS, PS),
			  "%s: page %zu was written but never reported", x->what, pg);
	assert_clean(race.r, 0, WINDOW, (size_t[]){ END }, "nothing is left");
	cohmem_tracker_free(t);
	close(race.source);
	free(race.shadow);
	free(bm);
}

/*
 * In a forked child: every call on the inherited tracker and region says
 * -ECHILD and changes nothing (cohmem.h, fork()); the child writes through
 * its own copy of the mapping. Returns a mask of what went wrong.
 */
static int child_writes(cohmem_tracker *t, cohmem_region *r, char *mem)
{
	unsigned long bm[COHMEM_BITMAP_LONGS(WINDOW)] = { 0 };
	int bad = 0;

	alarm(20);
	bad |= (cohmem_region_clean(r, 0, WINDOW, 0, bm, NULL, NULL) != -ECHILD) << 0;
	bad |= (cohmem_region_wrprotect(r, 0, WINDOW) != -ECHILD) << 1;
	bad |= (bm[0] != 0) << 2;
	mem[5 * PS] = 5;
	mem[6 * PS] = 6;
	cohmem_tracker_free(t);	/* in a child: closes its descriptors, leaves the memory */
	return bad;
}

/*
 * A clean walks this process's page tables only (cohmem_region_clean(): a
 * write by another process into shared memory is not seen): the child's
 * writes are not the parent's, and the parent's tracking goes on untouched.
 */
static void forked_child(struct target *x)
{
	cohmem_tracker *t = scan_tracker();
	cohmem_region *r = test_region(t, x->mem, WINDOW);
	int status;
	pid_t child;

	x->mem[1 * PS] = 1;	/* dirty in the parent's PTE when it forks */
	child = fork();
	cr_assert_geq(child, 0, "fork: %s", strerror(errno));
	if (child == 0)
		_exit(child_writes(t, r, x->mem));
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status), "child status %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "calls in the child that did not say -ECHILD: mask %#x",
		     WEXITSTATUS(status));
	cr_assert_eq(x->mem[5 * PS], 5, "one memory: the child's write shows through the parent's mapping");
	x->mem[2 * PS] = 2;
	assert_clean(r, 0, WINDOW, (size_t[]){ 1, 2, END }, "the parent's writes, before and after the fork");
	assert_clean(r, 0, WINDOW, (size_t[]){ END }, "and nothing more");
	x->mem[3 * PS] = 3;
	assert_clean(r, 0, WINDOW, (size_t[]){ 3, END }, "tracking goes on");
	cohmem_tracker_free(t);
}

/*
 * A clean of [first, first + nr) of r, which is no longer r's memory
 * (unmapped or mapped over behind the library's back): it reports nothing.
 * Returns what it returned.
 */
static long clean_gone(cohmem_region *r, size_t first, size_t nr, const char *what)
{
	unsigned long *bm = bitmap_new(WINDOW);
	long got = cohmem_region_clean(r, first, nr, 0, bm, NULL, NULL);

	cr_assert_eq(bits_set(bm, WINDOW), 0, "%s: a clean reported pages", what);
	free(bm);
	return got;
}

/*
 * Nothing mapped any more: 0 (the scan walks no mapping there) or -EPERM
 * (what cohmem_region_clean() documents for unmapped memory; PAGEMAP_SCAN
 * walks a hole without an error, so the backend gives 0 today).
 */
static void assert_clean_unmapped(cohmem_region *r, size_t first, size_t nr, const char *what)
{
	long got = clean_gone(r, first, nr, what);

	cr_assert(got == 0 || got == -EPERM, "%s: a clean of unmapped memory returned %ld", what, got);
}

static void partial_munmap(struct target *x)
{
	cohmem_tracker *t = scan_tracker();
	cohmem_region *r = test_region(t, x->mem, WINDOW);
	const size_t half = WINDOW / 2;

	x->mem[3 * PS] = 1;
	x->mem[(half + 8) * PS] = 2;	/* in the half that goes */
	cr_assert_eq(munmap(x->mem + half * PS, half * PS), 0, "munmap: %s", strerror(errno));
	x->mem[5 * PS] = 3;
	assert_clean_unmapped(r, half, half, "pages 32-63, unmapped");
	assert_clean(r, 0, half, (size_t[]){ 3, 5, END }, "pages 0-31, still mapped");
	assert_clean(r, 0, half, (size_t[]){ END }, "and cleaned");
	x->mem[7 * PS] = 4;
	assert_clean(r, 0, half, (size_t[]){ 7, END }, "and tracked on");
	cr_assert_eq(cohmem_region_remove(r), 0, "removing a region with a part unmapped");
	cohmem_tracker_free(t);
}

/* Anonymous memory mapped where the old region was: the clean fails (-EPERM), as documented. */
static void map_over(char *addr, cohmem_region *old)
{
	char *p = mmap(addr, WINDOW * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

	cr_assert_eq(p, addr, "mmap MAP_FIXED: %s", strerror(errno));
	memset(p, 1, WINDOW * PS);
	cr_assert_eq(clean_gone(old, 0, WINDOW, "mapped over"), -EPERM,
		     "a clean of the old address, mapped over by anonymous memory");
	munmap(p, WINDOW * PS);
}

/* mremap() moves the mapping: the old region's memory is gone; a new region at the new address works. */
static void moved(struct target *x)
{
	cohmem_tracker *t = scan_tracker();
	cohmem_region *old = test_region(t, x->mem, WINDOW), *r;
	size_t len = x->pages * PS;
	char *hole = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *q;

	cr_assert_neq(hole, MAP_FAILED);
	x->mem[5 * PS] = 1;	/* before the move */
	q = mremap(x->mem, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	cr_assert_eq(q, hole, "mremap of %s: %s", x->what, strerror(errno));
	assert_clean_unmapped(old, 0, WINDOW, "the old address, after mremap()");
	map_over(x->mem, old);
	x->mem = q;
	r = test_region(t, q, WINDOW);
	assert_clean(r, 0, WINDOW, (size_t[]){ END }, "a region added at the new address starts clean");
	q[6 * PS] = 2;
	q[60 * PS] = 3;
	assert_clean(r, 0, WINDOW, (size_t[]){ 6, 60, END }, "writes at the new address");
	assert_clean(r, 0, WINDOW, (size_t[]){ END }, "and cleaned");
	cr_assert_eq(cohmem_region_remove(old), 0, "removing the region of the old address");
	cohmem_tracker_free(t);
}

/* AUTO takes the mapping with the expected backend, and it tracks. */
static void auto_chooses(struct target *x, enum cohmem_backend expected)
{
	cohmem_tracker *t = NULL;
	cohmem_region *r;

	cr_assert_eq(cohmem_tracker_new(COHMEM_BACKEND_AUTO, 0, &t), 0);
	r = test_region(t, x->mem, WINDOW);
	cr_assert_eq(cohmem_region_backend(r), expected, "AUTO chose %s for %s, not %s",
		     cohmem_backend_name(cohmem_region_backend(r)), x->what, cohmem_backend_name(expected));
	x->mem[9 * PS] = 1;
	assert_clean(r, 0, WINDOW, (size_t[]){ 9, END }, "through AUTO");
	cohmem_tracker_free(t);
}

static void auto_chooses_pfn_scan(struct target *x)
{
	auto_chooses(x, COHMEM_BACKEND_PFN_SCAN);
}

/* A cohmem_pfn buffer: the module's own backend first (lib/backend.c's auto_order). */
static void auto_chooses_pfn(struct target *x)
{
	auto_chooses(x, COHMEM_BACKEND_PFN);
}

static void run(target_fn open_target, unsigned slot, void (*scenario)(struct target *))
{
	struct target x;

	need_backend();
	x = open_target(slot);
	scenario(&x);
	target_close(&x);
}

#define SCENARIO_TESTS(suite, target)                                                   \
	Test(suite, reports_exactly_the_pages_written)                                  \
	{                                                                               \
		run(target, 0, exact_pages);                                            \
	}                                                                               \
	Test(suite, loses_no_write_to_racing_cleans)                                    \
	{                                                                               \
		run(target, 1, no_write_lost);                                          \
	}                                                                               \
	Test(suite, a_forked_child_writes_through_its_own_copy)                         \
	{                                                                               \
		run(target, 2, forked_child);                                           \
	}                                                                               \
	Test(suite, a_partial_munmap_leaves_the_rest_tracked)                           \
	{                                                                               \
		run(target, 3, partial_munmap);                                         \
	}                                                                               \
	Test(suite, a_moved_mapping_is_tracked_at_its_new_address)                      \
	{                                                                               \
		run(target, 4, moved);                                                  \
	}

/* ---- not pfnmap, or not shared: refused ---------------------------------------------- */

TestSuite(pfn_scan, .timeout = 60);

Test(pfn_scan, refuses_memory_that_is_not_a_shared_pfnmap)
{
	cohmem_tracker *t;
	cohmem_region *r;
	char *anon, *shared;

	need_backend();
	t = scan_tracker();
	anon = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	shared = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(anon != MAP_FAILED && shared != MAP_FAILED);
	memset(anon, 1, 4 * PS);
	memset(shared, 1, 4 * PS);
	cr_assert_eq(cohmem_region_add(t, anon, 4 * PS, 0, &r), -EOPNOTSUPP, "private anonymous memory");
	cr_assert_eq(cohmem_region_add(t, shared, 4 * PS, 0, &r), -EOPNOTSUPP, "shared anonymous memory (shmem)");
	cohmem_tracker_free(t);
	munmap(anon, 4 * PS);
	munmap(shared, 4 * PS);
}

/* ---- a DRM dumb buffer, scanned out ---------------------------------------------------- */

#define DRM_DIR "/dev/dri"
#define DRM_CARD DRM_DIR "/card0"

/* What the test shows on the card: one CRTC, one connector, one framebuffer. */
struct display {
	int fd;
	uint32_t connector, crtc, fb, handle, pitch;
	uint64_t size;
	struct drm_mode_modeinfo mode;
};

static struct display shown;	/* this test's (Criterion runs each test in a process of its own) */

static int drm_ioctl(int fd, unsigned long request, void *arg)
{
	int ret;

	do
		ret = ioctl(fd, request, arg);
	while (ret && (errno == EINTR || errno == EAGAIN));
	return ret ? -errno : 0;
}

static uint32_t *id_array(uint32_t n)
{
	uint32_t *ids = calloc(n ? n : 1, sizeof(*ids));

	cr_assert_not_null(ids);
	return ids;
}

/*
 * One test at a time on the card: one CRTC to show a buffer on, one master.
 * The lock is a name in the abstract socket namespace, bound before the card
 * is opened (opening it may make a process master) and held until the
 * process exits, however it exits. Not flock(): the patched kernel's
 * tinyconfig has no CONFIG_FILE_LOCKING.
 */
static void lock_display(void)
{
	struct sockaddr_un name = { .sun_family = AF_UNIX, .sun_path = "\0cohmem-test-pfn-scan-drm" };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name.sun_path + 1));
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	time_t deadline = time(NULL) + (time_t)test_deadline_s(240);
	struct timespec ms = { 0, 10000000L };

	cr_assert_geq(s, 0, "socket: %s", strerror(errno));
	while (bind(s, (struct sockaddr *)&name, len)) {
		cr_assert(errno == EADDRINUSE && time(NULL) < deadline, "the display's lock: %s", strerror(errno));
		nanosleep(&ms, NULL);
	}
}

/* The previous test's process may still be dropping its mastership (EBUSY). */
static void become_master(int fd)
{
	struct timespec ms = { 0, 1000000L };
	unsigned long limit = test_deadline_s(10) * 1000UL;

	for (unsigned long waited = 0; ioctl(fd, DRM_IOCTL_SET_MASTER, 0); waited++) {
		cr_assert(errno == EBUSY && waited < limit, "DRM_IOCTL_SET_MASTER on %s: %s", DRM_CARD,
			  strerror(errno));
		nanosleep(&ms, NULL);
	}
}

static struct drm_mode_modeinfo preferred_mode(const struct drm_mode_modeinfo *modes, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (modes[i].type & DRM_MODE_TYPE_PREFERRED)
			return modes[i];
	return modes[0];
}

/* The CRTC the encoder drives, or one it can drive; 0 if none. */
static uint32_t crtc_for(int fd, uint32_t encoder, const uint32_t *crtcs, uint32_t ncrtcs)
{
	struct drm_mode_get_encoder e = { .encoder_id = encoder };

	if (drm_ioctl(fd, DRM_IOCTL_MODE_GETENCODER, &e))
		return 0;
	if (e.crtc_id)
		return e.crtc_id;
	for (uint32_t i = 0; i < ncrtcs && i < 32; i++)
		if (e.possible_crtcs & (1u << i))
			return crtcs[i];
	return 0;
}

/* Whether connector id is connected, with a mode and a CRTC: then d has them. */
static bool use_connector(struct display *d, uint32_t id, const uint32_t *crtcs, uint32_t ncrtcs)
{
	struct drm_mode_get_connector c = { .connector_id = id };
	struct drm_mode_modeinfo *modes;
	uint32_t *encoders, nmodes, nencoders;
	bool ok = false;

	/* The first call, with no room for modes, probes the connector (we are master). */
	if (drm_ioctl(d->fd, DRM_IOCTL_MODE_GETCONNECTOR, &c) || c.connection != DRM_MODE_CONNECTED ||
	    !c.count_modes || !c.count_encoders)
		return false;
	nmodes = c.count_modes;
	nencoders = c.count_encoders;
	modes = calloc(nmodes, sizeof(*modes));
	encoders = id_array(nencoders);
	cr_assert_not_null(modes);
	c = (struct drm_mode_get_connector){ .connector_id = id, .modes_ptr = (uintptr_t)modes,
		.count_modes = nmodes, .encoders_ptr = (uintptr_t)encoders, .count_encoders = nencoders };
	if (!drm_ioctl(d->fd, DRM_IOCTL_MODE_GETCONNECTOR, &c) && c.count_modes && c.count_modes <= nmodes &&
	    c.count_encoders && c.count_encoders <= nencoders) {
		d->mode = preferred_mode(modes, c.count_modes);
		d->crtc = crtc_for(d->fd, c.encoder_id ? c.encoder_id : encoders[0], crtcs, ncrtcs);
		d->connector = id;
		ok = d->crtc != 0;
	}
	free(modes);
	free(encoders);
	return ok;
}

static void pick_output(struct display *d)
{
	struct drm_mode_card_res res = { 0 };
	uint32_t *crtcs, *connectors, ncrtcs, nconnectors;
	bool found = false;

	cr_assert_eq(drm_ioctl(d->fd, DRM_IOCTL_MODE_GETRESOURCES, &res), 0, "%s: GETRESOURCES: %s (no KMS?)",
		     DRM_CARD, strerror(errno));
	ncrtcs = res.count_crtcs;
	nconnectors = res.count_connectors;
	crtcs = id_array(ncrtcs);
	connectors = id_array(nconnectors);
	res = (struct drm_mode_card_res){ .crtc_id_ptr = (uintptr_t)crtcs, .count_crtcs = ncrtcs,
		.connector_id_ptr = (uintptr_t)connectors, .count_connectors = nconnectors };
	cr_assert_eq(drm_ioctl(d->fd, DRM_IOCTL_MODE_GETRESOURCES, &res), 0);
	ncrtcs = res.count_crtcs < ncrtcs ? res.count_crtcs : ncrtcs;
	nconnectors = res.count_connectors < nconnectors ? res.count_connectors : nconnectors;
	for (uint32_t i = 0; i < nconnectors && !found; i++)
		found = use_connector(d, connectors[i], crtcs, ncrtcs);
	free(crtcs);
	free(connectors);
	if (!found)
		cr_skip_test("%s has no connected output with a mode and a CRTC to show a buffer on", DRM_CARD);
}

/* A dumb buffer the size of the mode, XRGB8888, as a framebuffer. */
static void create_framebuffer(struct display *d)
{
	struct drm_mode_create_dumb dumb = { .width = d->mode.hdisplay, .height = d->mode.vdisplay, .bpp = 32 };
	struct drm_mode_fb_cmd fb;
	int err = drm_ioctl(d->fd, DRM_IOCTL_MODE_CREATE_DUMB, &dumb);

	cr_assert_eq(err, 0, "CREATE_DUMB %ux%u: %s", dumb.width, dumb.height, strerror(-err));
	d->handle = dumb.handle;
	d->pitch = dumb.pitch;
	d->size = dumb.size;
	fb = (struct drm_mode_fb_cmd){ .width = dumb.width, .height = dumb.height, .pitch = dumb.pitch,
		.bpp = 32, .depth = 24, .handle = dumb.handle };
	err = drm_ioctl(d->fd, DRM_IOCTL_MODE_ADDFB, &fb);
	cr_assert_eq(err, 0, "ADDFB: %s", strerror(-err));
	d->fb = fb.fb_id;
}

/*
 * Scanout pins the buffer where the display reads it (bochs: GEM VRAM pins
 * to VRAM, and TTM's move zaps every mapping of the buffer, dirty bits with
 * them). Shown first, mapped after, it stays put while the test runs.
 */
static void show_framebuffer(struct display *d)
{
	struct drm_mode_crtc crtc = { .set_connectors_ptr = (uintptr_t)&d->connector, .count_connectors = 1,
		.crtc_id = d->crtc, .fb_id = d->fb, .mode_valid = 1, .mode = d->mode };
	int err = drm_ioctl(d->fd, DRM_IOCTL_MODE_SETCRTC, &crtc);

	cr_assert_eq(err, 0, "SETCRTC %ux%u on CRTC %u: %s", d->mode.hdisplay, d->mode.vdisplay, d->crtc,
		     strerror(-err));
}

static char *map_framebuffer(struct display *d)
{
	struct drm_mode_map_dumb map = { .handle = d->handle };
	int err = drm_ioctl(d->fd, DRM_IOCTL_MODE_MAP_DUMB, &map);

	cr_assert_eq(err, 0, "MAP_DUMB: %s", strerror(-err));
	cr_assert_eq(d->size % PS, 0, "a dumb buffer of %llu bytes", (unsigned long long)d->size);
	return map_shared(d->fd, d->size / PS, (off_t)map.offset, "a DRM dumb buffer");
}

static struct target drm_target(unsigned slot)
{
	struct target x = { .what = "a DRM dumb buffer, scanned out" };

	(void)slot;
	if (access(DRM_CARD, F_OK))
		cr_skip_test("%s is missing: no DRM display (QEMU: -vga std or -device bochs-display)", DRM_CARD);
	lock_display();
	shown.fd = open(DRM_CARD, O_RDWR | O_CLOEXEC);
	cr_assert_geq(shown.fd, 0, "%s: %s", DRM_CARD, strerror(errno));
	become_master(shown.fd);
	pick_output(&shown);
	create_framebuffer(&shown);
	show_framebuffer(&shown);
	x.mem = map_framebuffer(&shown);
	x.fd = shown.fd;
	x.pages = shown.size / PS;
	cr_assert_geq(x.pages, WINDOW, "a framebuffer of %zu pages", x.pages);
	return x;
}

TestSuite(drm, .timeout = 300);

SCENARIO_TESTS(drm, drm_target)

Test(drm, auto_chooses_pfn_scan)
{
	run(drm_target, 5, auto_chooses_pfn_scan);
}

/* 8 vertical bars, XRGB8888: red, green, blue, white, black, yellow, cyan, magenta. */
static void paint_bars(char *fb, const struct display *d)
{
	static const uint32_t colour[8] = { 0xff0000, 0x00ff00, 0x0000ff, 0xffffff,
					    0x000000, 0xffff00, 0x00ffff, 0xff00ff };
	uint32_t width = d->mode.hdisplay;

	for (uint32_t y = 0; y < d->mode.vdisplay; y++) {
		uint32_t *row = (uint32_t *)(void *)(fb + (size_t)y * d->pitch);

		for (uint32_t x = 0; x < width; x++)
			row[x] = colour[x * 8 / width];
	}
}

/* For the host: the picture, every page of it reported, then a pause for a screendump. */
/*
 * "PFN-SCAN-DRM-READY <width> <height>" on stdout, and on COHMEM_TEST_CONSOLE
 * (the matrix's guest sets /dev/console: it keeps the programs' output in a
 * file until they end, and the host must take its screendump meanwhile).
 */
static void announce_picture(unsigned width, unsigned height)
{
	const char *console = getenv("COHMEM_TEST_CONSOLE");
	FILE *f = console ? fopen(console, "w") : NULL;

	printf("PFN-SCAN-DRM-READY %u %u\n", width, height);
	fflush(stdout);
	if (f) {
		fprintf(f, "PFN-SCAN-DRM-READY %u %u\n", width, height);
		fclose(f);
	}
}

Test(drm, shows_colour_bars_for_the_host)
{
	struct target x;
	cohmem_tracker *t;
	cohmem_region *r;
	unsigned long *bm;
	size_t visible;

	need_backend();
	x = drm_target(6);
	visible = ((size_t)shown.pitch * shown.mode.vdisplay + PS - 1) / PS;
	t = scan_tracker();
	r = test_region(t, x.mem, visible);
	paint_bars(x.mem, &shown);
	cr_assert_eq(clean_all(r, visible, &bm), (long)visible, "every page of the picture is reported");
	cr_assert_eq(bits_set(bm, visible), visible);
	announce_picture(shown.mode.hdisplay, shown.mode.vdisplay);
	sleep(5);
	free(bm);
	cohmem_tracker_free(t);
	target_close(&x);
}

/* ---- QEMU's ivshmem-plain: BAR 2 through sysfs --------------------------------------- */

#define PCI_DEVICES "/sys/bus/pci/devices"
#define BAR_SLOTS 8	/* a window of WINDOW pages for each test that tracks the BAR */
#define BAR_TAIL 7	/* the last pages: 3 signed here, one spare, 3 signed by tests/pfn.c */

struct bar {
	int fd;
	size_t pages;
	char path[PATH_MAX];
};

static void path_of(char *path, size_t len, const char *dir, const char *name)
{
	cr_assert_lt((size_t)snprintf(path, len, "%s/%s", dir, name), len, "a path too long: %s/%s", dir, name);
}

/* Whether dir/name holds the hex number want ("0x1af4\n"). */
static bool sysfs_hex_is(const char *dir, const char *name, unsigned want)
{
	char path[PATH_MAX];
	unsigned value = 0;
	bool is;
	FILE *f;

	path_of(path, sizeof(path), dir, name);
	f = fopen(path, "r");
	if (!f)
		return false;
	is = fscanf(f, "%x", &value) == 1 && value == want;
	fclose(f);
	return is;
}

/* The resource2 file of the first ivshmem-plain device (1af4:1110); skips if there is none. */
static void find_ivshmem(char *resource, size_t len)
{
	DIR *d = opendir(PCI_DEVICES);
	struct dirent *e;
	char dev[PATH_MAX];

	cr_assert_not_null(d, "%s: %s", PCI_DEVICES, strerror(errno));
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		path_of(dev, sizeof(dev), PCI_DEVICES, e->d_name);
		if (sysfs_hex_is(dev, "vendor", 0x1af4) && sysfs_hex_is(dev, "device", 0x1110)) {
			path_of(resource, len, dev, "resource2");
			closedir(d);
			return;
		}
	}
	closedir(d);
	cr_skip_test("no ivshmem-plain PCI device (1af4:1110) in %s (QEMU: -device ivshmem-plain)", PCI_DEVICES);
}

static struct bar bar_open(void)
{
	struct bar b;
	struct stat st;

	find_ivshmem(b.path, sizeof(b.path));
	b.fd = open(b.path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(b.fd, 0, "%s: %s", b.path, strerror(errno));
	cr_assert_eq(fstat(b.fd, &st), 0);
	b.pages = (size_t)st.st_size / PS;
	cr_assert_geq(b.pages, BAR_SLOTS * WINDOW + BAR_TAIL, "%s: a BAR of %zu pages", b.path, b.pages);
	return b;
}

/* A driver holds the BAR (cohmem_pfn, in the kernel matrix): CONFIG_IO_STRICT_DEVMEM would refuse this. */
static char *bar_map(const struct bar *b, size_t first, size_t pages, int flags)
{
	char *p = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, flags, b->fd, (off_t)(first * PS));

	cr_assert_neq(p, MAP_FAILED, "mmap of %s, pages %zu-%zu: %s (a kernel with CONFIG_IO_STRICT_DEVMEM "
		      "refuses BARs that a driver holds)", b->path, first, first + pages - 1, strerror(errno));
	fault_in(p, pages);
	return p;
}

/* Each test its own window of the BAR: Criterion runs tests in parallel. */
static struct target bar_target(unsigned slot)
{
	struct bar b = bar_open();
	struct target x = { .fd = b.fd, .pages = WINDOW, .what = "ivshmem's BAR 2 (sysfs resource2)" };

	cr_assert_lt(slot, BAR_SLOTS);
	x.mem = bar_map(&b, slot * WINDOW, WINDOW, MAP_SHARED);
	return x;
}

TestSuite(ivshmem, .timeout = 300);

SCENARIO_TESTS(ivshmem, bar_target)

Test(ivshmem, auto_chooses_pfn_scan)
{
	run(bar_target, 5, auto_chooses_pfn_scan);
}

/* A private mapping of a BAR is a VM_PFNMAP COW mapping: its writes never reach the device. */
Test(ivshmem, refuses_a_private_mapping)
{
	struct bar b;
	cohmem_tracker *t;
	cohmem_region *r;
	char *p;

	need_backend();
	b = bar_open();
	p = bar_map(&b, 6 * WINDOW, WINDOW, MAP_PRIVATE);
	t = scan_tracker();
	cr_assert_eq(cohmem_region_add(t, p, WINDOW * PS, 0, &r), -EOPNOTSUPP);
	cohmem_tracker_free(t);
	munmap(p, WINDOW * PS);
	close(b.fd);
}

/* For the host: "cohmem pfn-scan page N" at the start of pages N = 1017-1019, written tracked. */
Test(ivshmem, signs_pages_for_the_host)
{
	struct bar b;
	cohmem_tracker *t;
	cohmem_region *r;
	size_t first;
	char *p;

	need_backend();
	b = bar_open();
	first = b.pages - BAR_TAIL;
	p = bar_map(&b, first, 3, MAP_SHARED);
	t = scan_tracker();
	r = test_region(t, p, 3);
	for (size_t i = 0; i < 3; i++)
		snprintf(p + i * PS, PS, "cohmem pfn-scan page %zu", first + i);
	assert_clean(r, 0, 3, (size_t[]){ 0, 1, 2, END }, "the three signed pages");
	cohmem_tracker_free(t);
	munmap(p, 3 * PS);
	close(b.fd);
}

/* ---- a cohmem_pfn buffer, tracked by PAGEMAP_SCAN instead of the module's ioctl ------------ */

static struct target pfn_target(unsigned slot)
{
	struct target x = { .pages = WINDOW, .what = "a cohmem_pfn buffer" };

	(void)slot;
	if (access(COHMEM_PFN_DEVICE, F_OK))
		cr_skip_test("%s is missing: the cohmem_pfn module is not loaded", COHMEM_PFN_DEVICE);
	x.fd = cohmem_pfn_open(WINDOW * PS, 0);
	cr_assert_geq(x.fd, 0, "cohmem_pfn_open: %s", strerror(-x.fd));
	x.mem = map_shared(x.fd, WINDOW, 0, x.what);
	return x;
}

TestSuite(cohmem_pfn, .timeout = 300);

SCENARIO_TESTS(cohmem_pfn, pfn_target)

Test(cohmem_pfn, auto_chooses_the_modules_own_backend)
{
	run(pfn_target, 5, auto_chooses_pfn);
}
