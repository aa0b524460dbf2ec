/* SPDX-License-Identifier: MIT */
/*
 * SOFT_DIRTY: bit 55 of each /proc/self/pagemap entry says a page was
 * written since the last write of "4" to /proc/self/clear_refs, which clears
 * it — for the whole process. So every soft-dirty region of the process, of
 * any tracker, is in one registry, and every clear is preceded by a harvest
 * of every region's bits into its pending bitmap: no region loses another's
 * writes. A clean then reports and drops its own pending bits.
 *
 * Reading the bits and clearing them are two steps: a write between them is
 * lost. This backend is exact only while writers are quiescent (see
 * COHMEM_REGION_QUIESCENT); adding a region clears too, so it counts as a
 * clean for every soft-dirty region.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bitmap.h"
#include "internal.h"
#include "sink.h"
#include "vma.h"

#define PM_SOFT_DIRTY (1ULL << 55)
#define PAGEMAP_CHUNK 4096	/* entries per read: 32 KiB */

struct soft_dirty_region {
	struct soft_dirty_region *next;
	cohmem_region *r;
	unsigned long *pending;	/* harvested, not yet reported */
};

/* The registry; also serializes every harvest-and-clear of the process. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct soft_dirty_region *registry;

/* Both files are opened per use: after fork() an fd opened earlier would act on the parent. */
static int clear_soft_dirty(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "4", 1) != 1)
		err = -errno;
	close(fd);
	return err;
}

/*
 * Soft-dirty bits of the pages [start, start + npages) into bm (set, never
 * cleared), reading up to buflen entries at a time into buf.
 */
static int read_soft_dirty(int pagemap, uintptr_t start, size_t npages, unsigned long *bm,
			   uint64_t *buf, size_t buflen)
{
	for (size_t done = 0; done < npages;) {
		size_t n = npages - done < buflen ? npages - done : buflen;
		off_t off = (off_t)((start / page_size() + done) * sizeof(uint64_t));
		ssize_t got = pread(pagemap, buf, n * sizeof(uint64_t), off);

		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		n = (size_t)got / sizeof(uint64_t);
		for (size_t i = 0; i < n; i++)
			if (buf[i] & PM_SOFT_DIRTY)
				bitmap_set(bm, done + i);
		done += n;
	}
	return 0;
}

/* Move every registered region's soft-dirty bits into its pending bitmap, then clear. */
static int harvest_and_clear(void)
{
	uint64_t *buf = malloc(PAGEMAP_CHUNK * sizeof(*buf));
	int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), err = 0;

	if (pagemap < 0 || !buf)
		err = pagemap < 0 ? -errno : -ENOMEM;
	for (struct soft_dirty_region *sr = registry; sr && !err; sr = sr->next)
		err = read_soft_dirty(pagemap, sr->r->start, sr->r->npages, sr->pending, buf,
				      PAGEMAP_CHUNK);
	if (pagemap >= 0)
		close(pagemap);
	free(buf);
	return err ? err : clear_soft_dirty();
}

/* Whether the page at p is soft-dirty now: 1, 0, or -errno. */
static int page_soft_dirty(volatile char *p)
{
	int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), err;
	unsigned long bit = 0;
	uint64_t entry;

	if (pagemap < 0)
		return -errno;
	err = read_soft_dirty(pagemap, (uintptr_t)p, 1, &bit, &entry, 1);
	close(pagemap);
	return err ? err : (int)bit;
}

/*
 * Effective, not just configured: with CONFIG_MEM_SOFT_DIRTY off, clear_refs
 * accepts "4" and nothing ever becomes soft-dirty. So: write, clear, expect
 * clean; write, expect dirty. Runs once, before this process has soft-dirty
 * regions (adding one needs the answer), so its clear loses nobody's bits.
 */
static const char *probe(void)
{
	size_t ps = page_size();
	volatile char *page = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	const char *why = NULL;

	if (page == MAP_FAILED)
		return "no memory for the probe";
	page[0] = 1;
	if (clear_soft_dirty())
		why = "/proc/self/clear_refs cannot be written";
	else if (page_soft_dirty(page) != 0)
		why = "a page stays soft-dirty after a clear";
	page[0] = 2;
	if (!why && page_soft_dirty(page) != 1)
		why = "clear_refs accepts \"4\" but pages never become soft-dirty "
		      "(CONFIG_MEM_SOFT_DIRTY is off)";
	munmap((void *)page, ps);
	return why;
}

static const char *unsupported_why;	/* NULL: works */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void run_probe(void)
{
	unsupported_why = probe();
}

static int soft_dirty_supported(char *why, size_t len)
{
	pthread_once(&probe_once, run_probe);
	return unsupported_why ? backend_unsupported(why, len, "%s", unsupported_why) : 0;
}

static unsigned soft_dirty_capabilities(void)
{
	return COHMEM_CAP_KERNEL_WRITES | COHMEM_CAP_SPARSE | COHMEM_CAP_ANON | COHMEM_CAP_SHMEM |
	       COHMEM_CAP_FILE;
}

static int check_writable(const struct vma_info *v, void *arg)
{
	(void)arg;
	return v->writable ? 0 : -EPERM;
}

static int soft_dirty_region_add(cohmem_region *r)
{
	struct soft_dirty_region *sr = calloc(1, sizeof(*sr));
	int err;

	if (!sr)
		return -ENOMEM;
	sr->r = r;
	sr->pending = calloc(bitmap_words(r->npages), sizeof(unsigned long));
	err = sr->pending ? vma_walk(0, r->start, region_addr(r, r->npages), check_writable, NULL)
			  : -ENOMEM;
	if (err)
		goto fail;

	/* The others keep their bits; this one starts clean. */
	pthread_mutex_lock(&registry_lock);
	err = harvest_and_clear();
	if (!err) {
		sr->next = registry;
		registry = sr;
	}
	pthread_mutex_unlock(&registry_lock);
	if (err)
		goto fail;
	r->priv = sr;
	return 0;
fail:
	free(sr->pending);
	free(sr);
	return err;
}

static int soft_dirty_region_remove(cohmem_region *r)
{
	pthread_mutex_lock(&registry_lock);
	for (struct soft_dirty_region **p = &registry; *p; p = &(*p)->next) {
		if (*p == r->priv) {
			*p = (*p)->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return 0;
}

static void soft_dirty_region_free(cohmem_region *r)
{
	struct soft_dirty_region *sr = r->priv;

	free(sr->pending);
	free(sr);
}

/* Harvest everything, then hand this region's pending bits in range to the caller. */
static int soft_dirty_clean(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink)
{
	struct soft_dirty_region *sr = r->priv;
	int err;

	pthread_mutex_lock(&registry_lock);
	err = harvest_and_clear();
	if (!err) {
		dirty_sink_record_bitmap(sink, sr->pending, first, first + nr);
		bitmap_clear_range(sr->pending, first, nr);
	}
	pthread_mutex_unlock(&registry_lock);
	return err;
}

static int soft_dirty_wrprotect(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *count)
{
	struct soft_dirty_region *sr = r->priv;
	int err;

	pthread_mutex_lock(&registry_lock);
	err = harvest_and_clear();
	if (!err) {
		dirty_sink_record(count, first, bitmap_count_range(sr->pending, first, nr));
		bitmap_clear_range(sr->pending, first, nr);
	}
	pthread_mutex_unlock(&registry_lock);
	return err;
}

/* Soft-dirty never protects: every page is writable already. */
static int soft_dirty_release(cohmem_region *r, size_t first, size_t nr)
{
	(void)r;
	(void)first;
	(void)nr;
	return 0;
}

const struct backend_ops soft_dirty_ops = {
	.id = COHMEM_BACKEND_SOFT_DIRTY,
	.supported = soft_dirty_supported,
	.capabilities = soft_dirty_capabilities,
	.region_add = soft_dirty_region_add,
	.region_remove = soft_dirty_region_remove,
	.region_free = soft_dirty_region_free,
	.clean = soft_dirty_clean,
	.wrprotect = soft_dirty_wrprotect,
	.release = soft_dirty_release,
};
