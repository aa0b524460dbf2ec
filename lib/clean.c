/* SPDX-License-Identifier: MIT */
/*
 * The apply_as_clean contract (clean_record_shared_mapping_range() and
 * wp_shared_mapping_range()), common to every backend: argument checks and
 * the per-region serialization. The sink (sink.c) turns what the backend
 * found into the caller's bitmap, span and result.
 */
#include <errno.h>
#include <stdint.h>

#include "internal.h"
#include "sink.h"

static bool range_valid(const cohmem_region *r, size_t first, size_t nr)
{
	return first <= r->npages && nr <= r->npages - first;
}

_public_ long cohmem_region_clean(cohmem_region *r, size_t first_index, size_t nr,
				  size_t bitmap_pgoff, unsigned long *bitmap, size_t *start, size_t *end)
{
	struct dirty_sink sink;
	int err;

	if (!r || !bitmap || bitmap_pgoff > first_index || !range_valid(r, first_index, nr))
		return -EINVAL;
	if (tracker_forked(r->tracker))
		return -ECHILD;
	if (!nr)
		return 0;

	dirty_sink_init(&sink, bitmap, bitmap_pgoff);
	pthread_mutex_lock(&r->lock);
	err = r->adapt ? adaptive_clean(r, first_index, nr, &sink) : r->ops->clean(r, first_index, nr, &sink);
	pthread_mutex_unlock(&r->lock);

	if (!err) {
		atomic_fetch_add_explicit(&r->cleans, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&r->pages_reported, (unsigned long long)sink.count,
					  memory_order_relaxed);
	}
	return dirty_sink_finish(&sink, err, start, end);
}

_public_ long cohmem_region_wrprotect(cohmem_region *r, size_t first_index, size_t nr)
{
	struct dirty_sink count;
	int err;

	if (!r || !range_valid(r, first_index, nr))
		return -EINVAL;
	if (tracker_forked(r->tracker))
		return -ECHILD;
	if (!nr)
		return 0;

	dirty_sink_init(&count, NULL, 0);
	pthread_mutex_lock(&r->lock);
	err = r->adapt ? adaptive_wrprotect(r, first_index, nr, &count)
		       : r->ops->wrprotect(r, first_index, nr, &count);
	pthread_mutex_unlock(&r->lock);
	return dirty_sink_finish(&count, err, NULL, NULL);
}
