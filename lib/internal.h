/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_INTERNAL_H
#define COHMEM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "cohmem.h"
#include "page.h"

/* Marks a definition as part of the ABI (the build hides everything else). */
#define _public_ __attribute__((visibility("default")))

#define COHMEM_BACKEND_COUNT (COHMEM_BACKEND_PFN_SCAN + 1)

struct dirty_sink;	/* where a clean puts what it found (sink.h) */
struct backend_ctx;	/* a backend's per-tracker state (a userfaultfd, a thread) */

/*
 * One backend. region_add() sets up r->priv and makes the region start clean
 * (undoing everything on failure). clean() finds the pages of
 * [first, first + nr) written since they were last cleaned, makes them clean
 * and records them in the sink; wrprotect() makes the whole range clean and
 * records (in a sink that only counts) the pages that were dirty. Both are
 * serialized per region by the caller and return 0 or -errno. A
 * clean that records pages and then fails must leave every page it did not
 * record dirty: the caller reports what was recorded and lets the next call
 * return the error.
 *
 * Removal is two steps so that fault handlers never see a freed region:
 * region_remove() gives the memory back while the region is still in the
 * tracker's index; region_free() runs after it has left the index.
 */
struct backend_ops {
	enum cohmem_backend id;
	/*
	 * 0 if this backend works in this process, else -EOPNOTSUPP with the
	 * reason, for people, in why (when why is not NULL). Every reason is
	 * written here, by the backend that knows it, and nowhere else.
	 */
	int (*supported)(char *why, size_t len);
	/* COHMEM_CAP_* bits, when supported. */
	unsigned (*capabilities)(void);
	/*
	 * Optional: backends whose state is per region or process-wide have no
	 * ctx. In a forked child (forked), ctx_free() only closes descriptors:
	 * the child has none of the parent's threads, and its memory stays.
	 */
	int (*ctx_new)(cohmem_tracker *t, struct backend_ctx **ret);
	void (*ctx_free)(struct backend_ctx *ctx, bool forked);

	/* -EOPNOTSUPP: this memory type is not for this backend. */
	int (*region_add)(cohmem_region *r);
	int (*region_remove)(cohmem_region *r);
	void (*region_free)(cohmem_region *r);
	int (*clean)(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink);
	int (*wrprotect)(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *count);
	/*
	 * Adaptive regions: make [first, first + nr) writable without faults.
	 * The pages count as dirty for the backend (a later clean() would
	 * report them); wrprotect() tracks them again. On failure some pages
	 * may still be protected: they fault and are recorded as usual.
	 */
	int (*release)(cohmem_region *r, size_t first, size_t nr);
	/* Optional: fill the backend's own fields of the statistics. */
	void (*stats)(const cohmem_region *r, struct cohmem_region_stats *st);
	/*
	 * Optional: the policy armed r->storm_faults (now non-zero), for a
	 * backend that must start watching for storms. Called with r->lock
	 * held, or before r is used; must not take locks of regions.
	 */
	void (*storm_armed)(cohmem_region *r);
};

extern const struct backend_ops uffd_async_ops;
extern const struct backend_ops uffd_sync_ops;
extern const struct backend_ops soft_dirty_ops;
extern const struct backend_ops mprotect_ops;
extern const struct backend_ops pfn_ops;
extern const struct backend_ops pfn_scan_ops;

/* For supported(): format the reason into why (if not NULL) and return -EOPNOTSUPP. */
int backend_unsupported(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* NULL for AUTO, for values outside the enum and for backends not built yet. */
const struct backend_ops *backend_ops_get(enum cohmem_backend b);

#define AUTO_ORDER_LEN 6
extern const enum cohmem_backend auto_order[AUTO_ORDER_LEN];
/*
 * Whether AUTO may give a region with these cohmem_region_add() flags to ops:
 * it works here, and is exact under concurrency unless the caller promised
 * quiescent writers.
 */
bool auto_may_use(const struct backend_ops *ops, unsigned flags);

/* Regions sorted by start, never overlapping (region-index.c). The owner provides the locking. */
struct region_index {
	cohmem_region **regions;
	size_t n, capacity;
};

cohmem_region *region_index_at(const struct region_index *idx, uintptr_t addr);	/* or NULL */
bool region_index_overlaps(const struct region_index *idx, uintptr_t start, uintptr_t end);
int region_index_insert(struct region_index *idx, cohmem_region *r);
void region_index_remove(struct region_index *idx, cohmem_region *r);

struct cohmem_tracker {
	enum cohmem_backend backend;	/* as requested: may be AUTO */
	pid_t pid;			/* the process that created it: others get -ECHILD */
	/*
	 * Protects regions and ctx[]. Writers: region add and remove. Readers:
	 * fault threads mapping a fault address to its region; holding the read
	 * lock keeps that region alive while they use it.
	 */
	pthread_rwlock_t lock;
	struct region_index regions;
	struct backend_ctx *ctx[COHMEM_BACKEND_COUNT];
};

struct cohmem_region {
	cohmem_tracker *tracker;
	const struct backend_ops *ops;
	struct backend_ctx *ctx;	/* tracker->ctx[ops->id] */
	uintptr_t start;
	size_t npages;
	pthread_mutex_t lock;		/* serializes clean and wrprotect */
	atomic_ullong cleans, pages_reported;	/* statistics */
	void *priv;			/* the backend's per-region state */
	struct adaptive *adapt;		/* COHMEM_REGION_ADAPTIVE: the policy's state, else NULL */
	/*
	 * Adaptive regions only (0 otherwise): after this many write faults
	 * since its last clean, a backend that sees every fault may release
	 * the whole region at once and count every page written (as
	 * ops->release does). Set by the policy, read by fault handlers.
	 */
	atomic_size_t storm_faults;
	/*
	 * Pages the policy keeps writable (hot): a backend that counts written
	 * pages rather than faults (uffd-async) sees these without a fault.
	 */
	atomic_size_t storm_base;
	atomic_ullong storms;		/* the backend released the region in a storm */
};

static inline uintptr_t region_addr(const cohmem_region *r, size_t index)
{
	return r->start + index * page_size();
}

/* The tracker's state for ops, set up on first use (region-core.c). */
int tracker_ctx(cohmem_tracker *t, const struct backend_ops *ops, struct backend_ctx **ret);

/* True in a process forked from the one that created t (sd-event's rule: -ECHILD there). */
static inline bool tracker_forked(const cohmem_tracker *t)
{
	return t->pid != getpid();
}

/*
 * cohmem_region_add() after its checks, without adaptation (region-core.c):
 * ops NULL picks the tracker's backend (AUTO: per flags), else ops takes the
 * region.
 */
int region_new(cohmem_tracker *t, void *addr, size_t len, const struct backend_ops *ops,
	       unsigned flags, cohmem_region **ret);
/*
 * Take r out of its tracker and free it (not in a forked child: see
 * cohmem_tracker_free()). Its adaptive state, if any, is the caller's to
 * free first (cohmem_region_remove()).
 */
int region_destroy(cohmem_region *r);

/*
 * What things cost on this machine, in microseconds per page, measured once
 * per backend and process (costs.c).
 */
struct costs {
	double fault;		/* a write to a protected page */
	double protect;		/* a clean protecting a written page again */
	double scan;		/* a clean looking at a page nobody wrote */
	double compare;		/* memcmp() of a page with its copy */
	double copy;		/* memcpy() of a page */
};

/*
 * The costs for r's backend, measured the first time on a scratch region of
 * r's own tracker (no public call, no second tracker). Fills *ret; returns
 * 1 if COHMEM_ADAPTIVE_COSTS pinned some of them (then they stay as they
 * are), else 0; -ENOMEM, or -EOPNOTSUPP where the backend cannot track the
 * scratch (anonymous) memory: then nothing is known to adapt by.
 */
int costs_get(cohmem_region *r, struct costs *ret);
double now_us(void);

/* Adaptive regions (adaptive.c): the policy between clean.c and the backend. */
int adaptive_new(cohmem_region *r);
void adaptive_free(cohmem_region *r);
int adaptive_clean(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink);
int adaptive_wrprotect(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *count);
void adaptive_stats(const cohmem_region *r, struct cohmem_region_stats *st);

#endif /* COHMEM_INTERNAL_H */
