/* SPDX-License-Identifier: MIT */
/*
 * The apply_as_clean contract (clean_record_shared_mapping_range() and
 * wp_shared_mapping_range()), common to every backend: argument checks, the
 * per-region serialization, and recording dirty runs into the caller's bitmap.
 */
#include <errno.h>
#include <stdint.h>

#include "bitmap.h"
#include "internal.h"

void dirty_sink_init(struct dirty_sink *s, unsigned long *bitmap, size_t bitmap_pgoff)
{
	*s = (struct dirty_sink){
		.bitmap = bitmap,
		.bitmap_pgoff = bitmap_pgoff,
		.lo = SIZE_MAX,
		.hi = 0,
	};
}

void dirty_sink_record(struct dirty_sink *s, size_t first, size_t n)
{
	size_t bit = first - s->bitmap_pgoff;

	if (!n)
		return;
	s->count += (long)n;
	if (!s->bitmap)
		return;
	bitmap_set_range(s->bitmap, bit, n);
	if (bit < s->lo)
		s->lo = bit;
	if (bit + n > s->hi)
		s->hi = bit + n;
}

static int record_run(void *sink, size_t first, size_t n)
{
	dirty_sink_record(sink, first, n);
	return 0;
}

void dirty_sink_record_bitmap(struct dirty_sink *s, const unsigned long *bm, size_t first, size_t end)
{
	bitmap_for_each_run(bm, first, end, record_run, s);
}

static bool range_valid(const cohmem_region *r, size_t first, size_t nr)
{
	return first <= r->npages && nr <= r->npages - first;
}

/*
 * Widen the caller's [*start, *end) to cover [lo, hi), as
 * clean_record_shared_mapping_range() does: an input pair with
 * *start >= *end holds nothing yet and is replaced.
 */
void widen_span(size_t *start, size_t *end, size_t lo, size_t hi)
{
	bool none_set = start && end && *start >= *end;

	if (start && (none_set || lo < *start))
		*start = lo;
	if (end && (none_set || hi > *end))
		*end = hi;
}

/*
 * Pages a backend recorded before failing are reported and the error waits
 * for the next call (which then records nothing first): those pages are clean
 * now, so dropping them with the error would lose their writes.
 */
long harvest_result(int err, long recorded)
{
	return recorded > 0 || err >= 0 ? recorded : err;
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

	if (sink.hi > sink.lo)
		widen_span(start, end, sink.lo, sink.hi);
	if (!err) {
		atomic_fetch_add_explicit(&r->cleans, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&r->pages_reported, (unsigned long long)sink.count,
					  memory_order_relaxed);
	}
	return harvest_result(err, sink.count);
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
	return harvest_result(err, count.count);
}
