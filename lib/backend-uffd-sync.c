/* SPDX-License-Identifier: MIT */
/*
 * UFFD_SYNC: the "mkwrite" method. Pages are write-protected with a plain
 * userfaultfd; a write blocks the writer and queues a message; the tracker's
 * fault thread records the page in the region's dirty bitmap and removes the
 * protection, which wakes the writer. clean() takes the bits and protects
 * exactly those pages again, coalesced into runs.
 *
 * Locking. Each region's state_lock covers its dirty bitmap *and* the
 * protection of its pages, so that "dirty bit clear => page protected" holds
 * whenever the lock is free:
 *  - the fault thread sets the bit and unprotects under the lock;
 *  - clean() takes the bits and re-protects them under the lock.
 * Without it, a clean could take a bit the fault thread had just set and
 * protect the page, after which the fault thread's unprotect would leave the
 * page writable with its bit clear: every later write would be lost.
 *
 * Stale messages. The fault thread handles a whole read() batch of messages
 * before reading again, holding each region's lock across that region's
 * messages. A writer woken by an unprotect before its own message was read is
 * taken off the queue by the kernel and never reported; a message that was
 * read in the same batch finds its page already unprotected and changes
 * nothing. So a clean never runs between a page's unprotect and a duplicate
 * message for it, and no page is reported that was not written.
 *
 * The caller's bitmap may lie in tracked memory: clean() fills it after
 * dropping state_lock, so that its own write faults can be served.
 *
 * Fault storms. An adaptive region sets storm_faults: the faults after which
 * tracking this interval has cost several copies of the whole region. The
 * fault thread then releases the whole region at once, under state_lock and
 * as release() does (every dirty bit set, then unprotected), instead of
 * serving a burst one page at a time: the next clean reports every page, and
 * the policy sees a fully written region and leaves tracking.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bitmap.h"
#include "internal.h"
#include "kabi.h"
#include "sink.h"
#include "uffd.h"
#include "vma.h"

#define FAULT_BATCH 64

struct backend_ctx {
	cohmem_tracker *tracker;
	int uffd;
	int stop;		/* eventfd: the fault thread exits when it is readable */
	bool thread_started;
	pthread_t thread;
};

struct sync_region {
	pthread_mutex_t state_lock;
	unsigned long *dirty;	/* pages written since last cleaned: unprotected */
	unsigned long *taken;	/* clean()'s scratch: the bits it took */
	size_t faults;		/* served since the last clean or protect */
	bool stormed;		/* released whole by the fault thread since then */
};

static int sync_supported(char *why, size_t len)
{
	const struct uffd_caps *caps = uffd_caps();

	if (caps->error)
		return backend_unsupported(why, len, "userfaultfd unavailable: %s", strerror(-caps->error));
	if (!caps->wp)
		return backend_unsupported(why, len, "the kernel refuses write-protect registration (before 5.7?)");
	return 0;
}

static unsigned sync_capabilities(void)
{
	const struct uffd_caps *caps = uffd_caps();
	unsigned ret = COHMEM_CAP_EXACT_CONCURRENT | COHMEM_CAP_ANON;

	/* A user-mode-only uffd turns kernel-mode faults into EFAULT. */
	if (caps->method != UFFD_OPEN_USER_MODE_ONLY)
		ret |= COHMEM_CAP_KERNEL_WRITES;
	if (caps->features & UFFD_FEATURE_WP_UNPOPULATED)
		ret |= COHMEM_CAP_SPARSE;
	if (caps->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM)
		ret |= COHMEM_CAP_SHMEM;
	return ret;
}

static void sort_by_address(struct uffd_msg *msgs, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct uffd_msg m = msgs[i];
		size_t j = i;

		for (; j > 0 && msgs[j - 1].arg.pagefault.address > m.arg.pagefault.address; j--)
			msgs[j] = msgs[j - 1];
		msgs[j] = m;
	}
}

/*
 * Record a write fault and let the writer go on, or, at an adaptive region's
 * storm limit, all of the region's. Caller holds the region's state_lock.
 */
static void resolve_fault(struct backend_ctx *c, cohmem_region *r, uintptr_t page)
{
	struct sync_region *sr = r->priv;
	size_t storm = atomic_load_explicit(&r->storm_faults, memory_order_relaxed);

	if (!sr->stormed && storm && ++sr->faults >= storm) {
		/* Bits first: a failed unprotect leaves pages protected and counted, never the reverse. */
		bitmap_set_range(sr->dirty, 0, r->npages);
		/* Not uffd_writeprotect(): its retry per mapping allocates, and a writer may hold malloc's lock. */
		sr->stormed = !uffd_writeprotect_one(c->uffd, r->start, r->npages * page_size(), false);
		if (sr->stormed)
			atomic_fetch_add(&r->storms, 1);
		else
			sr->faults = 0;	/* try again after as many faults */
	}
	if (sr->stormed) {	/* released whole: every writer of the region was woken */
		uffd_wake(c->uffd, page, page_size());
		return;
	}
	bitmap_set(sr->dirty, (page - r->start) / page_size());
	if (uffd_writeprotect(c->uffd, page, page_size(), false))
		uffd_wake(c->uffd, page, page_size());
}

static void handle_faults(struct backend_ctx *c, struct uffd_msg *msgs, size_t n)
{
	cohmem_region *r = NULL;
	uintptr_t prev = 0;

	/* Sorted, each region's messages are handled under one hold of its lock. */
	sort_by_address(msgs, n);
	pthread_rwlock_rdlock(&c->tracker->lock);
	for (size_t i = 0; i < n; i++) {
		uintptr_t page = msgs[i].arg.pagefault.address & ~(uintptr_t)(page_size() - 1);

		if (msgs[i].event != UFFD_EVENT_PAGEFAULT || (i && page == prev))
			continue;
		prev = page;
		if (r && (page < r->start || page >= region_addr(r, r->npages))) {
			pthread_mutex_unlock(&((struct sync_region *)r->priv)->state_lock);
			r = NULL;
		}
		if (!r) {
			r = region_index_at(&c->tracker->regions, page);
			/* Gone, or a region that reused the address under another backend. */
			if (!r || r->ops != &uffd_sync_ops) {
				r = NULL;
				uffd_wake(c->uffd, page, page_size());
				continue;
			}
			pthread_mutex_lock(&((struct sync_region *)r->priv)->state_lock);
		}
		resolve_fault(c, r, page);
	}
	if (r)
		pthread_mutex_unlock(&((struct sync_region *)r->priv)->state_lock);
	pthread_rwlock_unlock(&c->tracker->lock);
}

static void *fault_thread(void *arg)
{
	struct backend_ctx *c = arg;
	struct uffd_msg msgs[FAULT_BATCH];
	struct pollfd fds[2] = {
		{ .fd = c->uffd, .events = POLLIN },
		{ .fd = c->stop, .events = POLLIN },
	};

	/* Writers stay blocked until this thread answers: it never gives up on errors. */
	for (;;) {
		ssize_t len;

		if (poll(fds, 2, -1) < 0)
			continue;
		if (fds[1].revents)
			return NULL;
		len = read(c->uffd, msgs, sizeof(msgs));
		if (len > 0)
			handle_faults(c, msgs, (size_t)len / sizeof(msgs[0]));
	}
}

static void sync_ctx_free(struct backend_ctx *c, bool forked)
{
	if (forked) {	/* the fault thread is the parent's */
		close(c->stop);
		close(c->uffd);
		return;
	}
	if (c->thread_started) {
		uint64_t one = 1;

		while (write(c->stop, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		pthread_join(c->thread, NULL);
	}
	if (c->stop >= 0)
		close(c->stop);
	if (c->uffd >= 0)
		close(c->uffd);
	free(c);
}

/* The thread takes no signals: they belong to the application's threads. */
static int start_fault_thread(struct backend_ctx *c)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&c->thread, NULL, fault_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return err;
	c->thread_started = true;
	pthread_setname_np(c->thread, "cohmem-fault");
	return 0;
}

static int sync_ctx_new(cohmem_tracker *t, struct backend_ctx **ret)
{
	uint64_t features = uffd_caps()->features &
			    (UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	struct backend_ctx *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->tracker = t;
	c->uffd = uffd_new(features);
	c->stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->uffd < 0 || c->stop < 0) {
		err = c->uffd < 0 ? c->uffd : -errno;
		goto fail;
	}
	err = start_fault_thread(c);
	if (err)
		goto fail;
	*ret = c;
	return 0;
fail:
	sync_ctx_free(c, false);
	return err;
}

static int populate_anon(const struct vma_info *v, void *arg)
{
	(void)arg;
	if (!vma_is_anon_private(v))
		return 0;
	if (!madvise((void *)v->start, v->end - v->start, MADV_POPULATE_WRITE))
		return 0;
	return errno == EINVAL ? -EOPNOTSUPP : -errno;	/* EINVAL: before 5.14 */
}

static void sync_region_free(cohmem_region *r)
{
	struct sync_region *sr = r->priv;

	if (!sr)
		return;
	pthread_mutex_destroy(&sr->state_lock);
	free(sr->dirty);
	free(sr->taken);
	free(sr);
	r->priv = NULL;
}

static int sync_region_add(cohmem_region *r)
{
	size_t len = r->npages * page_size();
	struct sync_region *sr = calloc(1, sizeof(*sr));
	int err = -ENOMEM;

	if (!sr)
		return -ENOMEM;
	r->priv = sr;
	pthread_mutex_init(&sr->state_lock, NULL);
	sr->dirty = calloc(bitmap_words(r->npages), sizeof(unsigned long));
	sr->taken = calloc(bitmap_words(r->npages), sizeof(unsigned long));
	if (!sr->dirty || !sr->taken)
		goto fail;
	/*
	 * Without WP_UNPOPULATED (before 6.4) protection skips anonymous pages
	 * that have no PTE yet, and their first write would go unseen: give
	 * them PTEs first, as QEMU's background snapshot does.
	 */
	if (!(uffd_caps()->features & UFFD_FEATURE_WP_UNPOPULATED)) {
		err = vma_walk(0, r->start, r->start + len, populate_anon, NULL);
		if (err)
			goto fail;
	}
	err = uffd_track(r->ctx->uffd, r->start, len);
	if (err)
		goto fail;
	return 0;
fail:
	sync_region_free(r);
	return err;
}

static int sync_region_remove(cohmem_region *r)
{
	return uffd_release(r->ctx->uffd, r->start, r->npages * page_size());
}

static int protect_run(void *r, size_t first, size_t n)
{
	cohmem_region *region = r;

	return uffd_writeprotect(region->ctx->uffd, region_addr(region, first), n * page_size(), true);
}

static int sync_clean(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink)
{
	struct sync_region *sr = r->priv;
	int err;

	pthread_mutex_lock(&sr->state_lock);
	sr->faults = 0;
	sr->stormed = false;
	bitmap_take_range(sr->taken, sr->dirty, first, nr);
	err = bitmap_for_each_run(sr->taken, first, first + nr, protect_run, r);
	if (err)	/* some pages stay writable: keep them all dirty */
		bitmap_or_range(sr->dirty, sr->taken, first, nr);
	pthread_mutex_unlock(&sr->state_lock);

	if (!err)
		dirty_sink_record_bitmap(sink, sr->taken, first, first + nr);
	return err;
}

static int sync_wrprotect(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *count)
{
	struct sync_region *sr = r->priv;
	int err;

	pthread_mutex_lock(&sr->state_lock);
	/* The whole range, not just the dirty runs: tracking starts afresh. */
	err = uffd_writeprotect(r->ctx->uffd, region_addr(r, first), nr * page_size(), true);
	sr->faults = 0;
	sr->stormed = false;
	if (!err) {
		dirty_sink_record(count, first, bitmap_count_range(sr->dirty, first, nr));
		bitmap_clear_range(sr->dirty, first, nr);
	}
	pthread_mutex_unlock(&sr->state_lock);
	return err;
}

/* Dirty bits first, under the lock: "bit clear => protected" must keep holding. */
static int sync_release(cohmem_region *r, size_t first, size_t nr)
{
	struct sync_region *sr = r->priv;
	int err;

	pthread_mutex_lock(&sr->state_lock);
	bitmap_set_range(sr->dirty, first, nr);
	err = uffd_writeprotect(r->ctx->uffd, region_addr(r, first), nr * page_size(), false);
	pthread_mutex_unlock(&sr->state_lock);
	return err;
}

const struct backend_ops uffd_sync_ops = {
	.id = COHMEM_BACKEND_UFFD_SYNC,
	.supported = sync_supported,
	.capabilities = sync_capabilities,
	.ctx_new = sync_ctx_new,
	.ctx_free = sync_ctx_free,
	.region_add = sync_region_add,
	.region_remove = sync_region_remove,
	.region_free = sync_region_free,
	.clean = sync_clean,
	.wrprotect = sync_wrprotect,
	.release = sync_release,
};
