/* SPDX-License-Identifier: MIT */
/*
 * UFFD_ASYNC: a userfaultfd with UFFD_FEATURE_WP_ASYNC lets the kernel resolve
 * write-protect faults itself, leaving the uffd-wp bit clear on pages that were
 * written. PAGEMAP_SCAN with PM_SCAN_WP_MATCHING then reports those pages and
 * protects them again in one walk, under the page-table lock, so get-and-clean
 * is atomic per page: the kernel does for us what apply_as_clean does for
 * drivers. No message; kernel-mode writes are covered too.
 *
 * Fault storms. The kernel resolves these faults itself and tells no one
 * until a scan, so a burst over a tracked adaptive region faults on every
 * page before any clean can tell. The one live signal is the process's
 * minor-fault count (getrusage()), which every such fault raises. While an
 * adaptive region of the tracker is armed (r->storm_faults), a watcher
 * thread reads that count periodically; once WATCH_FAULTS more faults
 * happened it counts the written pages of each armed region (a PAGEMAP_SCAN
 * that protects nothing and stops at the limit) and, where they reach
 * storm_faults plus the pages the policy keeps writable (storm_base: they
 * read as written without a fault), releases the whole region with one
 * UFFDIO_WRITEPROTECT: the rest of the burst writes without faults.
 * Released pages read as written, so the next clean reports every page and
 * protects it again (nothing is lost), and the vote that follows leaves
 * tracking at once. Locking: the watcher holds the tracker's read lock
 * while it walks the regions (region_destroy() takes the write lock before
 * freeing one), only try-locks a region (a clean under way sees the storm
 * itself) and sleeps holding neither; watch_lock guards only stop/armed and
 * is never held while a region lock is taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "kabi.h"
#include "pagemap.h"
#include "sink.h"
#include "uffd.h"

/* page_region entries of a region's first PAGEMAP_SCAN vector: 6 KiB. */
#define SCAN_VEC_MIN 256

/*
 * The watcher's period while a region is armed: WATCH_IDLE_MS while the
 * process does not fault (each wakeup costs ~30 us in this VM: 16 ms is
 * ~0.2 % of a CPU, 1 ms was 2.6 %), WATCH_BUSY_MS once it does. A storm
 * starting in a quiet spell is seen within WATCH_IDLE_MS: ~800 faults at
 * this VM's 20 us, against the 8192 of a burst over 32 MiB.
 */
#define WATCH_IDLE_MS 16
#define WATCH_BUSY_MS 1
#define WATCH_FAULTS 32		/* minor faults (process-wide) that make it look */
#define WATCH_VEC 64		/* its PAGEMAP_SCAN vector */

struct backend_ctx {
	int uffd;
	int pagemap;	/* /proc/self/pagemap */
	cohmem_tracker *tracker;
	pthread_t watcher;
	bool watching;		/* the watcher runs */
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_cond;	/* CLOCK_MONOTONIC */
	bool stop, armed;	/* under watch_lock: end; a region was armed since the last look */
};

struct async_region {
	struct page_region *vec;	/* zeroed: see pagemap_scan_written() */
	size_t vec_len;
	bool stormed;		/* released by the watcher since the last clean; under r->lock */
};

static int async_supported(char *why, size_t len)
{
	const struct uffd_caps *caps = uffd_caps();
	uint64_t need = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;

	if (caps->error)
		return backend_unsupported(why, len, "userfaultfd unavailable: %s", strerror(-caps->error));
	if (!caps->wp)
		return backend_unsupported(why, len, "the kernel refuses write-protect registration (before 5.7?)");
	if ((caps->features & need) != need)
		return backend_unsupported(why, len, "the kernel lacks UFFD_FEATURE_WP_ASYNC (Linux 6.7)");
	if (!caps->pagemap_scan)
		return backend_unsupported(why, len, "the kernel lacks the PAGEMAP_SCAN ioctl (Linux 6.7)");
	return 0;
}

static unsigned async_capabilities(void)
{
	return COHMEM_CAP_EXACT_CONCURRENT | COHMEM_CAP_KERNEL_WRITES | COHMEM_CAP_SPARSE |
	       COHMEM_CAP_ANON | COHMEM_CAP_SHMEM | COHMEM_CAP_FILE;
}

static void async_ctx_free(struct backend_ctx *c, bool forked)
{
	if (!forked && c->watching) {	/* a child has no watcher, and its watch_lock may be held */
		pthread_mutex_lock(&c->watch_lock);
		c->stop = true;
		pthread_cond_signal(&c->watch_cond);
		pthread_mutex_unlock(&c->watch_lock);
		pthread_join(c->watcher, NULL);
	}
	if (c->uffd >= 0)
		close(c->uffd);
	if (c->pagemap >= 0)
		close(c->pagemap);
	if (forked)	/* a child leaves the memory: see cohmem_tracker_free() */
		return;
	pthread_cond_destroy(&c->watch_cond);
	pthread_mutex_destroy(&c->watch_lock);
	free(c);
}

static int async_ctx_new(cohmem_tracker *t, struct backend_ctx **ret)
{
	uint64_t features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
			    (uffd_caps()->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	struct backend_ctx *c = calloc(1, sizeof(*c));
	pthread_condattr_t attr;

	if (!c)
		return -ENOMEM;
	c->tracker = t;
	pthread_mutex_init(&c->watch_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->watch_cond, &attr);
	pthread_condattr_destroy(&attr);
	c->uffd = uffd_new(features);
	c->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (c->uffd < 0 || c->pagemap < 0) {
		int err = c->uffd < 0 ? c->uffd : -errno;

		async_ctx_free(c, false);
		return err;
	}
	*ret = c;
	return 0;
}

/* The most runs of written pages a clean of this region can find: every other page. */
static size_t most_runs(const cohmem_region *r)
{
	return r->npages / 2 + 1;
}

static int async_region_add(cohmem_region *r)
{
	size_t len = r->npages * page_size();
	struct async_region *ar = calloc(1, sizeof(*ar));
	int err;

	if (!ar)
		return -ENOMEM;
	ar->vec_len = most_runs(r) < SCAN_VEC_MIN ? most_runs(r) : SCAN_VEC_MIN;
	ar->vec = calloc(ar->vec_len, sizeof(*ar->vec));
	err = ar->vec ? uffd_track(r->ctx->uffd, r->start, len) : -ENOMEM;
	if (err) {
		free(ar->vec);
		free(ar);
		return err;
	}
	r->priv = ar;
	return 0;
}

static int async_region_remove(cohmem_region *r)
{
	return uffd_release(r->ctx->uffd, r->start, r->npages * page_size());
}

static void async_region_free(cohmem_region *r)
{
	struct async_region *ar = r->priv;

	if (ar)
		free(ar->vec);
	free(ar);
}

/*
 * A full vector ends a PAGEMAP_SCAN call, and every further call walks the
 * page tables and flushes the TLB again: with 256 entries, a clean of 1 %
 * scattered writes in 256 MiB (655 runs, three calls) took 1.6x one call.
 * After a clean that filled the vector, it grows to twice the runs found, up
 * to the most the region can have; it never shrinks (24 bytes per run seen).
 * A failed allocation keeps the old one: slower, not wrong.
 */
static void fit_vector(cohmem_region *r, size_t runs)
{
	struct async_region *ar = r->priv;
	size_t want = runs * 2 < most_runs(r) ? runs * 2 : most_runs(r);
	struct page_region *vec;

	if (runs < ar->vec_len || want <= ar->vec_len)
		return;
	vec = calloc(want, sizeof(*vec));
	if (!vec)
		return;
	free(ar->vec);
	ar->vec = vec;
	ar->vec_len = want;
}

static int async_clean(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink)
{
	struct async_region *ar = r->priv;
	struct sink_runs runs = { r->start, sink, 0 };
	int err = pagemap_scan_written(r->ctx->pagemap, region_addr(r, first), region_addr(r, first + nr),
				       ar->vec, ar->vec_len, dirty_sink_record_run, &runs);

	fit_vector(r, runs.runs);
	ar->stormed = false;	/* counting starts again from this clean */
	return err;
}

/* Unprotected pages read as written to PAGEMAP_SCAN: dirty, as release() must leave them. */
static int async_release(cohmem_region *r, size_t first, size_t nr)
{
	return uffd_writeprotect(r->ctx->uffd, region_addr(r, first), nr * page_size(), false);
}


static long minor_faults(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) ? 0 : ru.ru_minflt;
}

/* Under r->lock: release r whole if the pages written since its last clean make a storm. */
static void break_storm(cohmem_region *r, struct page_region *vec, size_t storm)
{
	struct async_region *ar = r->priv;
	size_t limit = storm + atomic_load(&r->storm_base);
	long written;

	if (ar->stormed)
		return;
	written = pagemap_count_written(r->ctx->pagemap, r->start, region_addr(r, r->npages), vec, WATCH_VEC,
					limit);
	if (written < (long)limit)
		return;
	if (uffd_writeprotect(r->ctx->uffd, r->start, r->npages * page_size(), false))
		return;	/* still protected: the faults go on, nothing is lost */
	ar->stormed = true;
	atomic_fetch_add(&r->storms, 1);
}

/* Look at the armed regions (look: and break their storms); returns whether any is armed. */
static bool watch_regions(struct backend_ctx *c, struct page_region *vec, bool look)
{
	cohmem_tracker *t = c->tracker;
	bool armed = false;

	pthread_rwlock_rdlock(&t->lock);
	for (size_t i = 0; i < t->regions.n; i++) {
		cohmem_region *r = t->regions.regions[i];
		size_t storm = r->ops == &uffd_async_ops ? atomic_load(&r->storm_faults) : 0;

		if (!storm)
			continue;
		armed = true;
		if (!look || pthread_mutex_trylock(&r->lock))
			continue;
		break_storm(r, vec, storm);
		pthread_mutex_unlock(&r->lock);
	}
	pthread_rwlock_unlock(&t->lock);
	return armed;
}

static void *storm_watcher(void *arg)
{
	struct backend_ctx *c = arg;
	struct page_region vec[WATCH_VEC] = { 0 };
	long last = minor_faults(), pending = 0;
	long period_ms = WATCH_IDLE_MS;

	pthread_mutex_lock(&c->watch_lock);
	while (!c->stop) {
		long now = minor_faults();
		bool armed;

		c->armed = false;
		pthread_mutex_unlock(&c->watch_lock);
		period_ms = now != last ? WATCH_BUSY_MS : WATCH_IDLE_MS;
		pending += now - last;
		last = now;
		armed = watch_regions(c, vec, pending >= WATCH_FAULTS);
		if (pending >= WATCH_FAULTS)
			pending = 0;
		pthread_mutex_lock(&c->watch_lock);
		if (c->stop)
			break;
		if (armed || c->armed) {
			struct timespec until;

			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_nsec += period_ms * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&c->watch_cond, &c->watch_lock, &until);
		} else {
			while (!c->stop && !c->armed)	/* nothing to watch: sleep until armed */
				pthread_cond_wait(&c->watch_cond, &c->watch_lock);
			last = minor_faults();
			pending = 0;
		}
	}
	pthread_mutex_unlock(&c->watch_lock);
	return NULL;
}

/* The watcher takes no signals: they belong to the application's threads. */
static bool start_watcher(struct backend_ctx *c)
{
	sigset_t all, old;
	bool started;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	started = !pthread_create(&c->watcher, NULL, storm_watcher, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started)
		pthread_setname_np(c->watcher, "cohmem-storms");
	return started;
}

/*
 * The first armed region starts the watcher; later ones wake it. Without a
 * thread (pthread_create() failed) storms are not broken: slower, not wrong.
 */
static void async_storm_armed(cohmem_region *r)
{
	struct backend_ctx *c = r->ctx;

	pthread_mutex_lock(&c->watch_lock);
	c->armed = true;
	if (!c->watching)
		c->watching = start_watcher(c);
	else
		pthread_cond_signal(&c->watch_cond);
	pthread_mutex_unlock(&c->watch_lock);
}

const struct backend_ops uffd_async_ops = {
	.id = COHMEM_BACKEND_UFFD_ASYNC,
	.supported = async_supported,
	.capabilities = async_capabilities,
	.ctx_new = async_ctx_new,
	.ctx_free = async_ctx_free,
	.region_add = async_region_add,
	.region_remove = async_region_remove,
	.region_free = async_region_free,
	.clean = async_clean,
	.wrprotect = async_clean,	/* counting sink: protect what was written */
	.release = async_release,
	.storm_armed = async_storm_armed,
};
