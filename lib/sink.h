/* SPDX-License-Identifier: MIT */
/*
 * Where a clean puts what it found. Backends (and the daemon's answers)
 * only find dirty pages; turning them into the caller's bitmap, its
 * [start, end) span and the call's result happens here, in one place, the
 * way mapping_dirty_helpers.c separates its walkers from the callbacks that
 * act on entries. A sink without a bitmap only counts. Not thread-safe: a
 * sink belongs to one call.
 */
#ifndef COHMEM_SINK_H
#define COHMEM_SINK_H

#include <linux/types.h>
#include <stddef.h>
#include <stdint.h>

struct dirty_sink {
	unsigned long *bitmap;	/* NULL: count only */
	size_t bitmap_pgoff;
	size_t lo, hi;		/* bits set, relative to bitmap_pgoff; lo >= hi: none */
	long count;		/* pages recorded */
};

void dirty_sink_init(struct dirty_sink *s, unsigned long *bitmap, size_t bitmap_pgoff);
/* Record pages [first, first + n) as dirty. */
void dirty_sink_record(struct dirty_sink *s, size_t first, size_t n);
/* Record every page whose bit is set in bm[first, end) (bit i is page i). */
void dirty_sink_record_bitmap(struct dirty_sink *s, const unsigned long *bm, size_t first, size_t end);
/*
 * Record the pages of [first, first + nbits) whose bit is set in words, bit
 * i (bit i % 64 of words[i / 64]) being page first + i: a bitmap as the
 * daemon sends it (cohmemd-proto.h), whatever the width of unsigned long.
 * Bits past nbits are ignored.
 */
void dirty_sink_record_words(struct dirty_sink *s, const __u64 *words, size_t first, size_t nbits);
/*
 * The call's result, as cohmem_region_clean() gives it: widens the caller's
 * [*start, *end) (either may be NULL) over the pages recorded, and returns
 * their count, or err if it failed before recording any. Pages recorded
 * before an error are clean now, so dropping them with the error would
 * lose their writes: the error waits for the next call.
 */
long dirty_sink_finish(const struct dirty_sink *s, int err, size_t *start, size_t *end);

/*
 * Runs of addresses, as a PAGEMAP_SCAN walk reports them
 * (pagemap_scan_written()'s fn, with a struct sink_runs as its arg): the
 * pages of [start, end) from base, the region's first byte, recorded into
 * sink, and the runs counted.
 */
struct sink_runs {
	uintptr_t base;
	struct dirty_sink *sink;
	size_t runs;
};
int dirty_sink_record_run(void *arg, uintptr_t start, uintptr_t end);

#endif /* COHMEM_SINK_H */
