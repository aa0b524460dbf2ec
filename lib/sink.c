/* SPDX-License-Identifier: MIT */
/* The dirty sink (sink.h): runs of pages into the caller's bitmap, span and count. */
#include <stdbool.h>
#include <stdint.h>

#include "bitmap.h"
#include "page.h"
#include "sink.h"

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

/*
 * Word by word: a zero word costs one test, a run of set bits one record
 * however many words it spans (a word of ones extends it whole). Within a
 * word, each run is found with two counts of trailing zeros.
 */
void dirty_sink_record_words(struct dirty_sink *s, const __u64 *words, size_t first, size_t nbits)
{
	size_t run = 0, n = 0;	/* the run being gathered: bits [run, run + n) */

	for (size_t base = 0; base < nbits; base += 64) {
		__u64 word = words[base / 64];

		if (nbits - base < 64)
			word &= ((__u64)1 << (nbits - base)) - 1;
		while (word) {
			unsigned lo = (unsigned)__builtin_ctzll(word);
			__u64 clear = ~word >> lo;	/* its lowest set bit ends the run */
			unsigned len = clear ? (unsigned)__builtin_ctzll(clear) : 64 - lo;

			if (n && run + n == base + lo) {
				n += len;
			} else {
				dirty_sink_record(s, first + run, n);
				run = base + lo;
				n = len;
			}
			word = lo + len < 64 ? word & ~(((__u64)1 << (lo + len)) - 1) : 0;
		}
	}
	dirty_sink_record(s, first + run, n);
}

/* The apply_as_clean [*start, *end) update: an input pair with *start >= *end holds nothing yet. */
static void widen_span(size_t *start, size_t *end, size_t lo, size_t hi)
{
	bool none_set = start && end && *start >= *end;

	if (start && (none_set || lo < *start))
		*start = lo;
	if (end && (none_set || hi > *end))
		*end = hi;
}

long dirty_sink_finish(const struct dirty_sink *s, int err, size_t *start, size_t *end)
{
	if (s->hi > s->lo)
		widen_span(start, end, s->lo, s->hi);
	return s->count > 0 || err >= 0 ? s->count : err;
}

int dirty_sink_record_run(void *arg, uintptr_t start, uintptr_t end)
{
	struct sink_runs *runs = arg;
	size_t shift = (size_t)__builtin_ctzl(page_size());

	dirty_sink_record(runs->sink, (start - runs->base) >> shift, (end - start) >> shift);
	runs->runs++;
	return 0;
}
