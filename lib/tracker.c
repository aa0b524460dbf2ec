/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

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
	err = -pthread_rwlock_init(&t->lock, NULL);
	if (err) {
		free(t);
		return err;
	}
	/* AUTO sets its backends up when a region first needs them. */
	if (backend != COHMEM_BACKEND_AUTO) {
		err = backend_ops_get(backend)->ctx_new(t, &t->ctx[backend]);
		if (err) {
			cohmem_tracker_free(t);
			return err;
		}
	}
	*ret = t;
	return 0;
}

_public_ void cohmem_tracker_free(cohmem_tracker *t)
{
	if (!t)
		return;
	while (t->nregions)
		cohmem_region_remove(t->regions[t->nregions - 1]);
	for (unsigned b = 0; b < COHMEM_BACKEND_COUNT; b++)
		if (t->ctx[b])
			backend_ops_get(b)->ctx_free(t->ctx[b]);
	pthread_rwlock_destroy(&t->lock);
	free(t->regions);
	free(t);
}

_public_ enum cohmem_backend cohmem_tracker_backend(const cohmem_tracker *t)
{
	return t ? t->backend : COHMEM_BACKEND_AUTO;
}

/* Index of the first region starting at or after addr. */
static size_t region_index(const cohmem_tracker *t, uintptr_t addr)
{
	size_t lo = 0, hi = t->nregions;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->regions[mid]->start < addr)
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

cohmem_region *tracker_region_at(cohmem_tracker *t, uintptr_t addr)
{
	size_t i = region_index(t, addr + 1);	/* first region starting after addr */
	cohmem_region *r = i ? t->regions[i - 1] : NULL;

	return r && addr < region_end(r) ? r : NULL;
}

bool tracker_overlaps(const cohmem_tracker *t, uintptr_t start, uintptr_t end)
{
	size_t i = region_index(t, start);

	if (i > 0 && region_end(t->regions[i - 1]) > start)
		return true;
	return i < t->nregions && t->regions[i]->start < end;
}

int tracker_insert(cohmem_tracker *t, cohmem_region *r)
{
	size_t i = region_index(t, r->start);

	if (t->nregions == t->capacity) {
		size_t capacity = t->capacity ? 2 * t->capacity : 8;
		cohmem_region **regions = realloc(t->regions, capacity * sizeof(*regions));

		if (!regions)
			return -ENOMEM;
		t->regions = regions;
		t->capacity = capacity;
	}
	for (size_t j = t->nregions; j > i; j--)
		t->regions[j] = t->regions[j - 1];
	t->regions[i] = r;
	t->nregions++;
	return 0;
}

void tracker_unlink(cohmem_tracker *t, cohmem_region *r)
{
	size_t i = region_index(t, r->start);

	if (i == t->nregions || t->regions[i] != r)
		return;
	t->nregions--;
	for (; i < t->nregions; i++)
		t->regions[i] = t->regions[i + 1];
}

/* The tracker's state for ops, set up on first use. Caller holds t->lock for writing. */
int tracker_ctx(cohmem_tracker *t, const struct backend_ops *ops, struct backend_ctx **ret)
{
	int err;

	if (!t->ctx[ops->id]) {
		err = ops->ctx_new(t, &t->ctx[ops->id]);
		if (err)
			return err;
	}
	*ret = t->ctx[ops->id];
	return 0;
}
