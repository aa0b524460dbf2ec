/* SPDX-License-Identifier: MIT */
/*
 * MPROTECT: the portable fallback. A region's pages are made read-only; the
 * first write to one faults, the process-wide SIGSEGV handler (segv.c) makes
 * that page writable and marks it dirty; clean() takes the marks and makes
 * those pages read-only again, one mprotect() per run.
 *
 * Ordering without locks (the handler cannot take any). The handler
 * unprotects first and marks second; clean() takes marks first and protects
 * second. So a page is, at every moment, protected or marked, or in a
 * handler that is about to mark it: a clean can never protect a page whose
 * mark it did not take, nor take a mark and leave the page writable
 * unreported. A write that completes has left its handler, so the last clean
 * after writers stop sees every mark.
 *
 * Every single-page unprotect splits the mapping; at vm.max_map_count the
 * kernel refuses (ENOMEM). Then the region degrades instead of spinning: it
 * is made writable as a whole (which merges mappings rather than splitting
 * them) and every page is marked dirty, again unprotect-then-mark. The next
 * clean protects the reported runs again; a region that is all dirty is one
 * run, one mprotect().
 *
 * Fault storms: an adaptive region sets storm_faults. The handler counts its
 * faults since the last clean and, at the limit, makes the whole region
 * writable and marks every page, as degrading does (unprotect, then mark):
 * the rest of a burst writes without signals, the next clean reports all.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bitmap.h"
#include "internal.h"
#include "segv.h"
#include "sink.h"
#include "vma.h"

struct mprotect_region {
	struct segv_target target;	/* first: the handler's view */
	atomic_ulong *dirty;		/* marks, set by the handler */
	unsigned long *taken;		/* clean()'s scratch */
	size_t npages;
	atomic_ullong degradations;
	atomic_int degraded;
	atomic_size_t faults;		/* handled since the last clean or protect */
	cohmem_region *region;		/* storm_faults, storms */
};

static int mprotect_supported(char *why, size_t len)
{
	return 0;
}

static unsigned mprotect_capabilities(void)
{
	return COHMEM_CAP_EXACT_CONCURRENT | COHMEM_CAP_SPARSE | COHMEM_CAP_ANON |
	       COHMEM_CAP_SHMEM | COHMEM_CAP_FILE;
}

/* The whole region writable, then every page marked. Async-signal-safe. */
static bool release_all(struct mprotect_region *mr)
{
	size_t len = mr->target.end - mr->target.start;

	if (mprotect((void *)mr->target.start, len, PROT_READ | PROT_WRITE))
		return false;
	bitmap_atomic_set_range(mr->dirty, 0, mr->npages);
	return true;
}

/* Async-signal-safe: called from the handler as well as from clean(). */
static bool degrade(struct mprotect_region *mr)
{
	atomic_store(&mr->degraded, 1);
	if (!release_all(mr))
		return false;
	atomic_fetch_add(&mr->degradations, 1);
	return true;
}

static bool on_write_fault(struct segv_target *t, uintptr_t addr)
{
	struct mprotect_region *mr = (struct mprotect_region *)t;
	size_t ps = page_size(), pg = (addr - t->start) / ps;
	size_t storm = atomic_load_explicit(&mr->region->storm_faults, memory_order_relaxed);

	/* Exactly one handler reaches the limit; the others go on page by page, harmlessly. */
	if (storm && atomic_fetch_add(&mr->faults, 1) + 1 == storm && release_all(mr)) {
		atomic_fetch_add(&mr->region->storms, 1);
		return true;
	}

	if (mprotect((void *)(addr & ~(ps - 1)), ps, PROT_READ | PROT_WRITE))
		return degrade(mr);	/* false: not even that; the fault is passed on */
	atomic_fetch_or(&mr->dirty[pg / LONG_BITS], 1UL << (pg % LONG_BITS));
	return true;
}

/* The range must be read-write now (it is made read-write again on removal) and not executable. */
static int check_vma(const struct vma_info *v, void *arg)
{
	(void)arg;
	if (!v->writable)
		return -EPERM;
	return v->executable ? -EOPNOTSUPP : 0;
}

static void mprotect_region_free(cohmem_region *r)
{
	struct mprotect_region *mr = r->priv;

	if (!mr)
		return;
	free(mr->dirty);
	free(mr->taken);
	free(mr);
	r->priv = NULL;
}

static int mprotect_region_add(cohmem_region *r)
{
	size_t len = r->npages * page_size();
	struct mprotect_region *mr = calloc(1, sizeof(*mr));
	int err;

	if (!mr)
		return -ENOMEM;
	r->priv = mr;
	*mr = (struct mprotect_region){
		.target = { .start = r->start, .end = r->start + len, .on_fault = on_write_fault },
		.dirty = calloc(bitmap_words(r->npages), sizeof(atomic_ulong)),
		.taken = calloc(bitmap_words(r->npages), sizeof(unsigned long)),
		.npages = r->npages,
		.region = r,
	};
	err = vma_walk(0, r->start, r->start + len, check_vma, NULL);
	if (!err && (!mr->dirty || !mr->taken))
		err = -ENOMEM;
	/* Registered first, so that no write can fault where nobody handles it. */
	if (!err)
		err = segv_register(&mr->target);
	if (err)
		goto fail;
	if (mprotect((void *)r->start, len, PROT_READ)) {
		err = -errno;
		/* Part of it may be read-only already. */
		mprotect((void *)r->start, len, PROT_READ | PROT_WRITE);
		segv_unregister(&mr->target);
		goto fail;
	}
	return 0;
fail:
	mprotect_region_free(r);
	return err;
}

static int mprotect_region_remove(cohmem_region *r)
{
	struct mprotect_region *mr = r->priv;
	int err = 0;

	/* Writable first: then no new fault can reach the target being removed. */
	if (mprotect((void *)r->start, r->npages * page_size(), PROT_READ | PROT_WRITE) &&
	    errno != ENOMEM)	/* ENOMEM: unmapped meanwhile */
		err = -errno;
	segv_unregister(&mr->target);
	return err;
}

static int protect(void *r, size_t first, size_t n)
{
	cohmem_region *region = r;

	return mprotect((void *)region_addr(region, first), n * page_size(), PROT_READ) ? -errno : 0;
}

static int mprotect_clean(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink)
{
	struct mprotect_region *mr = r->priv;
	int err;

	atomic_store(&mr->faults, 0);
	bitmap_atomic_take_range(mr->taken, mr->dirty, first, nr);
	err = bitmap_for_each_run(mr->taken, first, first + nr, protect, r);
	if (err == -ENOMEM) {
		/*
		 * A refused split leaves taken pages writable: degrading marks
		 * them all again, so reporting them now loses nothing.
		 */
		if (degrade(mr))
			err = 0;
	} else if (!err && first == 0 && nr == mr->npages) {
		atomic_store(&mr->degraded, 0);	/* all of it protected or marked again */
	}
	dirty_sink_record_bitmap(sink, mr->taken, first, first + nr);
	return err;
}

static int mprotect_wrprotect(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *count)
{
	struct mprotect_region *mr = r->priv;
	int err;

	atomic_store(&mr->faults, 0);
	bitmap_atomic_take_range(mr->taken, mr->dirty, first, nr);
	err = protect(r, first, nr);
	if (err) {
		/* Pages of the range may still be writable: count them all dirty again. */
		if (err != -ENOMEM || !degrade(mr))
			bitmap_atomic_set_range(mr->dirty, first, nr);
		return err;
	}
	dirty_sink_record(count, first, bitmap_count_range(mr->taken, first, nr));
	return 0;
}

/* Marked before they are writable, as the handler does: a clean in between protects them again. */
static int mprotect_release(cohmem_region *r, size_t first, size_t nr)
{
	struct mprotect_region *mr = r->priv;

	bitmap_atomic_set_range(mr->dirty, first, nr);
	if (!mprotect((void *)region_addr(r, first), nr * page_size(), PROT_READ | PROT_WRITE))
		return 0;
	return errno == ENOMEM && degrade(mr) ? 0 : -errno;
}

static void mprotect_stats(const cohmem_region *r, struct cohmem_region_stats *st)
{
	struct mprotect_region *mr = r->priv;

	st->degradations = atomic_load(&mr->degradations);
	st->degraded = atomic_load(&mr->degraded);
}

const struct backend_ops mprotect_ops = {
	.id = COHMEM_BACKEND_MPROTECT,
	.supported = mprotect_supported,
	.capabilities = mprotect_capabilities,
	.region_add = mprotect_region_add,
	.region_remove = mprotect_region_remove,
	.region_free = mprotect_region_free,
	.clean = mprotect_clean,
	.wrprotect = mprotect_wrprotect,
	.release = mprotect_release,
	.stats = mprotect_stats,
};
