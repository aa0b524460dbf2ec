/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

_public_ int cohmem_tracker_new(enum cohmem_backend backend, unsigned flags, cohmem_tracker **ret)
{
	cohmem_tracker *t;
	int err;

	if (!ret || flags || !cohmem_backend_name(backend))
		return -EINVAL;
	err = cohmem_backend_supported(backend);
	if (err)
		return err;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->backend = backend;
	t->pid = getpid();
	err = -pthread_rwlock_init(&t->lock, NULL);
	if (err) {
		free(t);
		return err;
	}
	/* AUTO sets its backends up when a region first needs them. */
	if (backend != COHMEM_BACKEND_AUTO) {
		struct backend_ctx *ctx;

		err = tracker_ctx(t, backend_ops_get(backend), &ctx);
		if (err) {
			cohmem_tracker_free(t);
			return err;
		}
	}
	*ret = t;
	return 0;
}

/*
 * In a forked child this only closes the tracker's descriptors. The child
 * has one thread, and every lock another thread of the parent held at
 * fork() (a fault thread's read lock on t->lock, the SIGSEGV handler's
 * index, the soft-dirty registry) stays held in its copy: taking one would
 * hang. The memory stays too, since a process-wide SIGSEGV handler may
 * still find mprotect regions in it. Nothing acts on the parent's tracking.
 */
_public_ void cohmem_tracker_free(cohmem_tracker *t)
{
	if (!t)
		return;
	if (tracker_forked(t)) {
		for (unsigned b = 0; b < COHMEM_BACKEND_COUNT; b++)
			if (t->ctx[b])
				backend_ops_get(b)->ctx_free(t->ctx[b], true);
		return;
	}
	while (t->regions.n)
		region_destroy(t->regions.regions[t->regions.n - 1]);
	for (unsigned b = 0; b < COHMEM_BACKEND_COUNT; b++)
		if (t->ctx[b])
			backend_ops_get(b)->ctx_free(t->ctx[b], false);
	pthread_rwlock_destroy(&t->lock);
	free(t->regions.regions);
	free(t);
}

_public_ enum cohmem_backend cohmem_tracker_backend(const cohmem_tracker *t)
{
	return t ? t->backend : COHMEM_BACKEND_AUTO;
}

/* Index of the first region starting at or after addr. */
static size_t index_of(const struct region_index *idx, uintptr_t addr)
{
	size_t lo = 0, hi = idx->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (idx->regions[mid]->start < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uintptr_t region_end(const cohmem_region *r)
{
	return region_addr(r, r->npages);
}

cohmem_region *region_index_at(const struct region_index *idx, uintptr_t addr)
{
	size_t i = index_of(idx, addr + 1);	/* first region starting after addr */
	cohmem_region *r = i ? idx->regions[i - 1] : NULL;

	return r && addr < region_end(r) ? r : NULL;
}

bool region_index_overlaps(const struct region_index *idx, uintptr_t start, uintptr_t end)
{
	size_t i = index_of(idx, start);

	if (i > 0 && region_end(idx->regions[i - 1]) > start)
		return true;
	return i < idx->n && idx->regions[i]->start < end;
}

int region_index_insert(struct region_index *idx, cohmem_region *r)
{
	size_t i = index_of(idx, r->start);

	if (idx->n == idx->capacity) {
		size_t capacity = idx->capacity ? 2 * idx->capacity : 8;
		cohmem_region **regions = realloc(idx->regions, capacity * sizeof(*regions));

		if (!regions)
			return -ENOMEM;
		idx->regions = regions;
		idx->capacity = capacity;
	}
	for (size_t j = idx->n; j > i; j--)
		idx->regions[j] = idx->regions[j - 1];
	idx->regions[i] = r;
	idx->n++;
	return 0;
}

void region_index_remove(struct region_index *idx, cohmem_region *r)
{
	size_t i = index_of(idx, r->start);

	if (i == idx->n || idx->regions[i] != r)
		return;
	idx->n--;
	for (; i < idx->n; i++)
		idx->regions[i] = idx->regions[i + 1];
}

/* The tracker's state for ops, set up on first use. Caller holds t->lock for writing. */
int tracker_ctx(cohmem_tracker *t, const struct backend_ops *ops, struct backend_ctx **ret)
{
	int err;

	if (!t->ctx[ops->id] && ops->ctx_new) {
		err = ops->ctx_new(t, &t->ctx[ops->id]);
		if (err)
			return err;
	}
	*ret = t->ctx[ops->id];
	return 0;
}
