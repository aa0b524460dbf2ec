/* SPDX-License-Identifier: MIT */
/*
 * Adaptive regions: a policy between cohmem_region_clean() and the backend that may
 * report more than was written but never less.
 *
 * Track mode. The backend cleans every run of the range that is not hot. A
 * page it finds written in three cleans in a row turns hot: it is released
 * (writable, no more faults) and every later clean reports it — or, with a
 * shadow, reports it when it differs from the shadow. Hot pages are
 * protected again after as many cleans as reporting them costs one fault
 * ("rent until renting cost the price of buying"), and reported by that
 * clean too: protect first, then report, so a write before the protection
 * is in the report and a write after it faults.
 *
 * Compare and copy modes. When tracking the whole region costs more than
 * comparing it with the shadow (or, without one, than reporting every page)
 * for SWITCH_VOTES whole-region cleans in a row, or OVERWHELMING times more
 * in one (a burst: every further tracked clean is a fault storm), the whole region is
 * released and reports come from the shadow (every differing page) or are
 * the whole range. Copy mode cannot see the dirty rate, so every
 * SAMPLE_EVERY cleans it protects a small window of pages for one interval
 * and counts what the backend finds there. When tracking would cost less
 * than RETURN_MARGIN of the mode's cost for SWITCH_VOTES decisions, the next whole-region
 * clean protects the whole region *first* and then reports as the mode does:
 * a write before the protection differs from the shadow (or is in the full
 * report); a write after it faults.
 *
 * Fault storms. The backend releases the whole region by itself once the
 * faults of one interval have cost STORM_PASSES bulk passes
 * (r->storm_faults, set in track mode only): uffd-sync and mprotect in the
 * fault path, uffd-async from its watcher thread, which follows the
 * process's minor faults (backend-uffd-async.c). The rest of a burst writes
 * without faults, the next clean reports every page, and the vote that
 * follows leaves tracking at once.
 *
 * Every decision uses struct costs: measured for the backend once per
 * process (costs.c), with scan and compare costs refined from this region's
 * own cleans. All of it runs under the region's lock (clean.c); the
 * statistics are atomics so that cohmem_region_stats() needs no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bitmap.h"
#include "internal.h"
#include "sink.h"

#define SWITCH_VOTES 3
/*
 * A storm: faults in one interval that cost STORM_PASSES bulk passes over the
 * region. Leaving tracking at once takes OVERWHELMING times the other mode's
 * cost: a burst is far past it (a storm-broken clean reports every page,
 * fault/copy ~160 here), while a sprite's first frame — 128 new pages of 8192,
 * 2.9-4.5x a copy with this VM's measured costs — must get the three cleans
 * its pages take to turn hot (at 4 it went to copy mode in some runs).
 */
#define STORM_PASSES 4
#define OVERWHELMING 8
#define SAMPLE_EVERY 8	/* cleans between samples, while the rate is near a switch */
#define SAMPLE_EVERY_MAX 64	/* ... and at most, while it is far from one */
#define SAMPLE_MIN 16
#define SAMPLE_FRACTION 512	/* the window is 1/512 of the region, at least SAMPLE_MIN pages */
/*
 * Copy mode's window grows fourfold while it finds nothing, up to the size
 * it needs to vote for tracking when empty (window_max()), and halves while
 * more than a quarter of it was written; its vote is for
 * the rate (found + 1) / window: one page it may have missed by luck. A
 * 16-page window that a moving sprite happens to miss says 0 %, and would
 * take the region back into a fault storm; an empty window of n pages says
 * at most 1/n. Going back to tracking needs a window of about
 * (fault + protect + copy) / (RETURN_MARGIN * copy - scan) pages that stays
 * empty for SWITCH_VOTES samples in a row; a big window costs little while
 * little is written, and a busy one shrinks.
 */
/*
 * Hysteresis: leave tracking as soon as it costs more, come back only when it
 * costs RETURN_MARGIN of the other mode or less. Staying in tracking through
 * a burst costs a fault per page (tens of times a copy); staying in copy or
 * compare mode through a quiet spell costs about a copy per page.
 */
#define RETURN_MARGIN 0.8
#define STORM_MIN 64	/* a burst, not a few writes: never fewer faults than this */
#define RENT_MIN 2
#define RENT_MAX 64
#define EWMA(old, sample) ((old) * 0.75 + (sample) * 0.25)

struct adaptive {
	enum cohmem_mode mode;
	const unsigned char *shadow;
	unsigned long *hot;	/* released pages, track mode */
	unsigned long *found;	/* what the backend found written in this clean */
	unsigned long *before;	/* ... and in the clean before */
	unsigned long *before2;	/* ... and in the one before that */
	size_t nhot;
	bool before_any, before2_any;	/* may before / before2 hold a bit (false: surely empty) */
	unsigned hot_age;	/* cleans since hot pages were last protected */
	unsigned votes;		/* consecutive decisions for vote_for */
	enum cohmem_mode vote_for;
	bool to_track;		/* protect all at the start of the next whole-region clean */
	bool sampling;		/* copy mode: the window is protected */
	size_t sample_at, sample_len;
	unsigned since_sample, sample_every;
	unsigned since_timed;	/* cleans since the scan cost was last timed */
	bool found_any;		/* may found hold a bit (false: surely clear) */
	size_t sample_min;	/* the smallest window */
	struct costs costs;
	bool pinned;		/* COHMEM_ADAPTIVE_COSTS: no refinement from the region's cleans */
	atomic_int mode_seen;
	atomic_size_t nhot_seen;
	atomic_ullong switches, faults, reprotected, hot_reports;
};

/* What keeping a page writable costs per clean: reporting it, or comparing it. */
static double hot_cost(const struct adaptive *ad)
{
	return ad->shadow ? ad->costs.compare : ad->costs.copy;
}

/*
 * Track mode: the faults in one interval past which tracking it has cost
 * STORM_PASSES bulk passes of the whole region (and at least STORM_MIN).
 * Other modes: none (0), the region is released.
 */
static void arm_storm(cohmem_region *r)
{
	struct adaptive *ad = r->adapt;
	double faults = STORM_PASSES * (double)r->npages * hot_cost(ad) / (ad->costs.fault + ad->costs.protect);
	size_t storm = faults < STORM_MIN ? STORM_MIN : (size_t)faults;

	/* A storm that needs every page to fault is no storm. */
	storm = ad->mode == COHMEM_MODE_TRACK && storm < r->npages ? storm : 0;
	atomic_store(&r->storm_base, ad->nhot);
	atomic_store(&r->storm_faults, storm);
	if (storm && r->ops->storm_armed)
		r->ops->storm_armed(r);
}

/* The hot pages changed: their count, for cohmem_region_stats() and for storm watchers. */
static void hot_changed(cohmem_region *r)
{
	atomic_store(&r->adapt->nhot_seen, r->adapt->nhot);
	atomic_store(&r->storm_base, r->adapt->nhot);
}

int adaptive_new(cohmem_region *r)
{
	size_t words = bitmap_words(r->npages);
	struct adaptive *ad = calloc(1, sizeof(*ad));
	int err;

	if (!ad)
		return -ENOMEM;
	ad->hot = calloc(words, sizeof(unsigned long));
	ad->found = calloc(words, sizeof(unsigned long));
	ad->before = calloc(words, sizeof(unsigned long));
	ad->before2 = calloc(words, sizeof(unsigned long));
	if (!ad->hot || !ad->found || !ad->before || !ad->before2) {
		r->adapt = ad;
		adaptive_free(r);
		return -ENOMEM;
	}
	err = costs_get(r, &ad->costs);
	if (err < 0) {
		r->adapt = ad;
		adaptive_free(r);
		return err;
	}
	ad->pinned = err;
	ad->sample_every = SAMPLE_EVERY;
	ad->sample_min = r->npages / SAMPLE_FRACTION;
	if (ad->sample_min < SAMPLE_MIN)
		ad->sample_min = r->npages < SAMPLE_MIN ? r->npages : SAMPLE_MIN;
	ad->sample_len = ad->sample_min;
	r->adapt = ad;
	arm_storm(r);
	return 0;
}

void adaptive_free(cohmem_region *r)
{
	struct adaptive *ad = r->adapt;

	if (!ad)
		return;
	free(ad->hot);
	free(ad->found);
	free(ad->before);
	free(ad->before2);
	free(ad);
	r->adapt = NULL;
}

_public_ int cohmem_region_set_shadow(cohmem_region *r, const void *shadow)
{
	struct adaptive *ad;

	if (!r || !r->adapt)
		return -EINVAL;
	if (tracker_forked(r->tracker))
		return -ECHILD;
	pthread_mutex_lock(&r->lock);
	ad = r->adapt;
	ad->shadow = shadow;
	if (ad->sampling && shadow) {	/* compare mode sees the rate without a window */
		r->ops->release(r, ad->sample_at, ad->sample_len);
		ad->sampling = false;
	}
	if (ad->mode != COHMEM_MODE_TRACK) {
		ad->mode = shadow ? COHMEM_MODE_COMPARE : COHMEM_MODE_COPY;
		atomic_store(&ad->mode_seen, (int)ad->mode);
	}
	arm_storm(r);	/* a bulk pass costs a compare now, or a copy again */
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Cleans a hot page stays writable: until its reports have cost one fault and re-protect. */
static unsigned rent_cleans(const struct adaptive *ad)
{
	double rent = (ad->costs.fault + ad->costs.protect) / hot_cost(ad);

	return rent < RENT_MIN ? RENT_MIN : rent > RENT_MAX ? RENT_MAX : (unsigned)rent;
}

struct report {
	cohmem_region *r;
	struct dirty_sink *sink;
};

/* Report [first, first + n): the pages that differ from the shadow, or (copy mode) all of them. */
static int report_run(void *arg, size_t first, size_t n)
{
	struct report *rep = arg;
	struct adaptive *ad = rep->r->adapt;
	size_t ps = page_size();
	double t0;

	if (!ad->shadow || ad->mode == COHMEM_MODE_COPY) {
		dirty_sink_record(rep->sink, first, n);
		return 0;
	}
	t0 = now_us();
	for (size_t pg = first; pg < first + n; pg++)
		if (memcmp((const void *)region_addr(rep->r, pg), ad->shadow + pg * ps, ps))
			dirty_sink_record(rep->sink, pg, 1);
	if (n >= 64 && !ad->pinned)
		ad->costs.compare = EWMA(ad->costs.compare, (now_us() - t0) / (double)n);
	return 0;
}

#define TIME_EVERY 8	/* a clean times its walk once in this many */

/*
 * The backend cleans one run that is not hot, into ad->found; adds what it
 * found to *count. Timed (timed), a walk that found nothing refines
 * ad->costs.scan.
 */
static int clean_cold_run(cohmem_region *r, size_t first, size_t n, bool timed, long *count)
{
	struct adaptive *ad = r->adapt;
	struct dirty_sink found;
	double t0 = timed ? now_us() : 0;
	int err;

	dirty_sink_init(&found, ad->found, 0);
	err = r->ops->clean(r, first, n, &found);
	/* A walk that found nothing: the cost of looking, without writers in the way. */
	if (timed && !err && n >= 1024 && !found.count)
		ad->costs.scan = EWMA(ad->costs.scan, (now_us() - t0) / (double)n);
	*count += found.count;
	return err;
}

/* Clean the runs of [first, end) that are not hot; *found: the pages found written. */
static int clean_cold_runs(cohmem_region *r, size_t first, size_t end, long *found)
{
	struct adaptive *ad = r->adapt;
	bool timed = !ad->pinned && ++ad->since_timed >= TIME_EVERY;
	int err = 0;

	if (timed)
		ad->since_timed = 0;
	*found = 0;
	if (!ad->nhot)	/* no hot page: one run, no bitmap to walk */
		err = clean_cold_run(r, first, end - first, timed, found);
	for (size_t a = ad->nhot ? bitmap_next_clear(ad->hot, first, end) : end; a < end && !err;) {
		size_t b = bitmap_next_set(ad->hot, a, end);

		err = clean_cold_run(r, a, b - a, timed, found);
		a = bitmap_next_clear(ad->hot, b, end);
	}
	if (*found) {
		atomic_fetch_add(&ad->faults, (unsigned long long)*found);
		atomic_fetch_add(&ad->reprotected, (unsigned long long)*found);
	}
	return err;
}

/* Protect one hot run again (it turns cold), then report it. */
static int cool_run(void *arg, size_t first, size_t n)
{
	struct report *rep = arg;
	struct adaptive *ad = rep->r->adapt;
	struct dirty_sink ignored;
	int err;

	dirty_sink_init(&ignored, NULL, 0);
	err = rep->r->ops->wrprotect(rep->r, first, n, &ignored);
	if (err)
		return err;	/* still released, still hot: reported by every clean */
	bitmap_clear_range(ad->hot, first, n);
	ad->nhot -= n;
	atomic_fetch_add(&ad->reprotected, (unsigned long long)n);
	return report_run(rep, first, n);
}

/* Pages found written again and again turn hot: released, and reported from now on. */
static void heat_run(cohmem_region *r, size_t first, size_t n)
{
	struct adaptive *ad = r->adapt;

	if (r->ops->release(r, first, n))
		return;	/* they stay tracked: nothing lost, only faults */
	bitmap_set_range(ad->hot, first, n);
	ad->nhot += n;
}

/* Within a run found written now, the pages also found by the two cleans before turn hot. */
static int heat_found_run(void *arg, size_t first, size_t n)
{
	cohmem_region *r = arg;
	struct adaptive *ad = r->adapt;
	size_t end = first + n, a = first;

	while (a < end) {
		size_t b;

		while (a < end && !(bitmap_test(ad->before, a) && bitmap_test(ad->before2, a)))
			a++;
		for (b = a; b < end && bitmap_test(ad->before, b) && bitmap_test(ad->before2, b); b++)
			;
		if (b > a)
			heat_run(r, a, b - a);
		a = b;
	}
	return 0;
}

/*
 * Shift the history by one clean: before2 = before, before = found, over
 * [first, end), found holding `found` pages there. An idle region skips the
 * bitmap work: the flags say when both histories are surely empty.
 */
static void remember(cohmem_region *r, size_t first, size_t end, long found)
{
	struct adaptive *ad = r->adapt;
	bool whole = end - first == r->npages;

	if (!found && !ad->before_any && !ad->before2_any)
		return;
	bitmap_clear_range(ad->before2, first, end - first);
	bitmap_or_range(ad->before2, ad->before, first, end - first);
	bitmap_clear_range(ad->before, first, end - first);
	bitmap_or_range(ad->before, ad->found, first, end - first);
	ad->before2_any = whole ? ad->before_any : ad->before2_any || ad->before_any;
	ad->before_any = whole ? found > 0 : ad->before_any || found > 0;
}

/* Returns how many pages turned hot: they will not fault again for a while. */
static size_t heat(cohmem_region *r, size_t first, size_t end, long found)
{
	struct adaptive *ad = r->adapt;
	size_t hot_before = ad->nhot;

	/* Where a fault costs less than a report, no page is worth keeping hot. */
	if (found && ad->before_any && ad->before2_any && ad->costs.fault + ad->costs.protect > hot_cost(ad))
		bitmap_for_each_run(ad->found, first, end, heat_found_run, r);
	remember(r, first, end, found);
	return ad->nhot - hot_before;
}

static void set_mode(cohmem_region *r, enum cohmem_mode mode)
{
	struct adaptive *ad = r->adapt;

	ad->mode = mode;
	ad->votes = 0;
	ad->sample_len = ad->sample_min;	/* copy mode's samples start afresh */
	ad->sample_every = SAMPLE_EVERY;
	atomic_store(&ad->mode_seen, (int)mode);
	atomic_fetch_add(&ad->switches, 1);
	arm_storm(r);
}

/* Per page and clean, at a dirty fraction f (the caller's copies included). */
static double mode_cost(const struct adaptive *ad, enum cohmem_mode mode, double f)
{
	const struct costs *c = &ad->costs;

	switch (mode) {
	case COHMEM_MODE_TRACK:
		return c->scan + f * (c->fault + c->protect + c->copy);
	case COHMEM_MODE_COMPARE:
		return c->compare + f * c->copy;
	default:
		return c->copy;
	}
}

/*
 * Whole-region clean in track mode: would the other mode be cheaper from now
 * on? Pages that just turned hot will not fault again, so only the other
 * pages found written count as faults to come.
 */
static void vote_in_track(cohmem_region *r, long faulting, long reported)
{
	struct adaptive *ad = r->adapt;
	const struct costs *c = &ad->costs;
	double n = (double)r->npages, f_found = (double)faulting / n, f_rep = (double)reported / n;
	double track = c->scan + f_found * (c->fault + c->protect) + f_rep * c->copy +
		       (ad->shadow ? (double)ad->nhot / n * c->compare : 0);
	enum cohmem_mode bulk = ad->shadow && mode_cost(ad, COHMEM_MODE_COMPARE, f_rep) <
						      mode_cost(ad, COHMEM_MODE_COPY, f_rep)
					? COHMEM_MODE_COMPARE
					: COHMEM_MODE_COPY;
	double other = mode_cost(ad, bulk, f_rep);

	ad->votes = track > OVERWHELMING * other ? SWITCH_VOTES : track > other ? ad->votes + 1 : 0;
	if (ad->votes < SWITCH_VOTES || r->ops->release(r, 0, r->npages))
		return;
	bitmap_clear_range(ad->hot, 0, r->npages);
	bitmap_clear_range(ad->before, 0, r->npages);
	bitmap_clear_range(ad->before2, 0, r->npages);
	ad->nhot = 0;
	hot_changed(r);
	ad->hot_age = 0;
	ad->sampling = false;
	ad->since_sample = 0;
	set_mode(r, bulk);
}

/*
 * Compare or copy mode, at a dirty fraction f: is another mode clearly
 * cheaper (compare only with a shadow)? Between compare and copy the switch
 * is immediate; to tracking it waits for the next whole-region clean.
 */
static void vote_in_bulk(cohmem_region *r, double f)
{
	struct adaptive *ad = r->adapt;
	static const enum cohmem_mode modes[] = { COHMEM_MODE_TRACK, COHMEM_MODE_COMPARE, COHMEM_MODE_COPY };
	enum cohmem_mode best = ad->mode;

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if ((modes[i] != COHMEM_MODE_COMPARE || ad->shadow) &&
		    mode_cost(ad, modes[i], f) < mode_cost(ad, best, f))
			best = modes[i];
	if (best == ad->mode || mode_cost(ad, best, f) >= RETURN_MARGIN * mode_cost(ad, ad->mode, f)) {
		ad->votes = 0;
		return;
	}
	ad->votes = best == ad->vote_for ? ad->votes + 1 : 1;
	ad->vote_for = best;
	if (ad->votes < SWITCH_VOTES)
		return;
	if (best == COHMEM_MODE_TRACK)
		ad->to_track = true;
	else
		set_mode(r, best);
}

/*
 * A sample costs a write-protect, a scan and a release of its window plus
 * the faults in it (in this VM 0.3-0.5 ms for 16 pages: each of the three
 * calls flushes the TLB): while a window that caught writes says tracking
 * would cost twice copying or more, sample half as often, down to every
 * SAMPLE_EVERY_MAX cleans; nearer a switch, every SAMPLE_EVERY. An empty
 * window of at least half window_max() halves the wait again (next_window()).
 */
static unsigned backoff(const struct adaptive *ad, double f)
{
	unsigned every = ad->sample_every * 2 < SAMPLE_EVERY_MAX ? ad->sample_every * 2 : SAMPLE_EVERY_MAX;

	if (mode_cost(ad, COHMEM_MODE_TRACK, f) < 2 * mode_cost(ad, ad->mode, f))
		return SAMPLE_EVERY;
	return every;
}

/*
 * The biggest window copy mode needs: one that, empty, votes for tracking
 * ((0 + 1) / pages at most 2/3 of the rate where tracking costs
 * RETURN_MARGIN of copying), and at most half the region. Where tracking
 * never wins, the smallest.
 */
static size_t window_max(const cohmem_region *r)
{
	const struct adaptive *ad = r->adapt;
	const struct costs *c = &ad->costs;
	double rate = (RETURN_MARGIN * c->copy - c->scan) / (c->fault + c->protect + c->copy);
	double pages = rate > 0 ? 1.5 / rate : 0;

	if (pages <= (double)ad->sample_min)
		return ad->sample_min;
	return pages < (double)(r->npages / 2) ? (size_t)pages : r->npages / 2;
}

/* After a window of sample_len pages caught `found`: vote, then size and time the next one. */
static void next_window(cohmem_region *r, size_t found)
{
	struct adaptive *ad = r->adapt;
	double f = (double)(found + 1) / (double)ad->sample_len;
	size_t len = ad->sample_len, most = window_max(r);

	vote_in_bulk(r, f);
	if (ad->mode != COHMEM_MODE_COPY)
		return;
	if (!found) {
		/*
		 * A bigger window; and sooner, if this one was big enough for its
		 * emptiness to mean something (a small one misses a sprite's pages
		 * by chance, and a busy region's big windows cost faults).
		 */
		if (len * 2 >= most)
			ad->sample_every = ad->sample_every / 2 > SAMPLE_EVERY ? ad->sample_every / 2 : SAMPLE_EVERY;
		len = len * 4 < most ? len * 4 : most;
		ad->sample_len = len > ad->sample_min ? len : ad->sample_min;
		return;
	}
	if (found * 4 > len)
		ad->sample_len = len / 2 > ad->sample_min ? len / 2 : ad->sample_min;
	ad->sample_every = backoff(ad, f);
}

/* Copy mode: protect the next window for one interval, or count what it caught. */
static void sample(cohmem_region *r)
{
	struct adaptive *ad = r->adapt;
	struct dirty_sink found;
	int err;

	if (ad->sampling) {
		dirty_sink_init(&found, NULL, 0);
		ad->sampling = false;
		err = r->ops->clean(r, ad->sample_at, ad->sample_len, &found);
		r->ops->release(r, ad->sample_at, ad->sample_len);
		ad->sample_at += ad->sample_len;
		if (!err)
			next_window(r, (size_t)found.count);
		if (ad->sample_at + ad->sample_len > r->npages)	/* the next window starts over */
			ad->sample_at = 0;
		return;
	}
	if (++ad->since_sample < ad->sample_every)
		return;
	ad->since_sample = 0;
	dirty_sink_init(&found, NULL, 0);
	ad->sampling = !r->ops->wrprotect(r, ad->sample_at, ad->sample_len, &found);
}

static int clean_track(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink)
{
	struct adaptive *ad = r->adapt;
	struct report rep = { r, sink };
	size_t end = first + nr;
	bool whole = first == 0 && nr == r->npages;
	long found, hot_reported;
	size_t heated;
	int err;

	if (ad->found_any)	/* else it is clear already */
		bitmap_clear_range(ad->found, first, nr);
	err = clean_cold_runs(r, first, end, &found);
	/* a partial clean leaves bits of the last whole one outside [first, end) */
	ad->found_any = found || (!whole && ad->found_any);
	if (found) {
		found = (long)bitmap_count_range(ad->found, first, nr);	/* pages, not records */
		dirty_sink_record_bitmap(sink, ad->found, first, end);
	}
	if (ad->nhot && ++ad->hot_age >= rent_cleans(ad)) {
		ad->hot_age = 0;
		bitmap_for_each_run(ad->hot, first, end, cool_run, &rep);
	} else if (ad->nhot) {
		bitmap_for_each_run(ad->hot, first, end, report_run, &rep);
	}
	hot_reported = sink->count - found;
	atomic_fetch_add(&ad->hot_reports, (unsigned long long)hot_reported);
	if (err)
		return err;
	heated = heat(r, first, end, found);
	hot_changed(r);
	if (whole)
		vote_in_track(r, found - (long)heated, sink->count);
	return 0;
}

/* Compare or copy mode. A pending switch to tracking protects everything before looking. */
static int clean_bulk(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink)
{
	struct adaptive *ad = r->adapt;
	struct report rep = { r, sink };
	bool whole = first == 0 && nr == r->npages;
	struct dirty_sink ignored;

	dirty_sink_init(&ignored, NULL, 0);
	if (whole && ad->to_track) {
		ad->to_track = false;
		ad->sampling = false;	/* the window is protected with the rest */
		if (!r->ops->wrprotect(r, 0, r->npages, &ignored)) {
			atomic_fetch_add(&ad->reprotected, (unsigned long long)r->npages);
			bitmap_clear_range(ad->before, 0, r->npages);
			bitmap_clear_range(ad->before2, 0, r->npages);
			set_mode(r, COHMEM_MODE_TRACK);
			report_run(&rep, first, nr);
			atomic_fetch_add(&ad->hot_reports, (unsigned long long)sink->count);
			return 0;
		}
	}
	report_run(&rep, first, nr);
	atomic_fetch_add(&ad->hot_reports, (unsigned long long)sink->count);
	if (whole && ad->mode == COHMEM_MODE_COMPARE)
		vote_in_bulk(r, (double)sink->count / (double)r->npages);
	else if (whole)
		sample(r);
	return 0;
}

int adaptive_clean(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *sink)
{
	return r->adapt->mode == COHMEM_MODE_TRACK ? clean_track(r, first, nr, sink)
						   : clean_bulk(r, first, nr, sink);
}

int adaptive_wrprotect(cohmem_region *r, size_t first, size_t nr, struct dirty_sink *count)
{
	struct adaptive *ad = r->adapt;
	bool whole = first == 0 && nr == r->npages;
	int err;

	if (ad->mode != COHMEM_MODE_TRACK && !whole)
		return 0;	/* stays released: later cleans report it as the mode does */
	err = r->ops->wrprotect(r, first, nr, count);
	if (err)
		return err;
	ad->nhot -= bitmap_count_range(ad->hot, first, nr);
	bitmap_clear_range(ad->hot, first, nr);
	bitmap_clear_range(ad->before, first, nr);
	bitmap_clear_range(ad->before2, first, nr);
	hot_changed(r);
	if (ad->mode != COHMEM_MODE_TRACK) {
		ad->to_track = false;
		ad->sampling = false;
		set_mode(r, COHMEM_MODE_TRACK);
	}
	return 0;
}

void adaptive_stats(const cohmem_region *r, struct cohmem_region_stats *st)
{
	struct adaptive *ad = r->adapt;

	st->adaptive = 1;
	st->mode = (enum cohmem_mode)atomic_load(&ad->mode_seen);
	st->mode_switches = atomic_load(&ad->switches);
	st->faults_inferred = atomic_load(&ad->faults);
	st->pages_reprotected = atomic_load(&ad->reprotected);
	st->hot_reports = atomic_load(&ad->hot_reports);
	st->hot_pages = atomic_load(&ad->nhot_seen);
}
