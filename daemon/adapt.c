/* SPDX-License-Identifier: MIT */
/*
 * Tracking or comparing, per buffer, from what its passes cost — as the
 * library's adaptive regions choose between tracking and comparing.
 *
 * A tracking pass costs, per page written since the last one, its share
 * of the WRITEs here (measured: the pass's writeback time over its pages;
 * pages side by side come back in one WRITE) and a write fault in the
 * process that wrote it, which the daemon cannot see: that one is measured
 * once at start, as the cost of a minor fault on a shared mapping of our own
 * (adapt_calibrate(); 10-20 µs in a virtual machine, less than 1 on bare
 * metal). A comparing pass costs, per page the page cache holds, a read and
 * a compare (measured too). Each pass updates
 * smoothed costs per page (times are noisy; counts of pages are taken as they
 * are; the first pass after a switch is not measured: it does what the other
 * way left, or sets up); the other way is taken when it has looked cheaper by half
 * for VOTES passes in a row, so that noise does not flip it. A compare is
 * tried first with a guess of its cost; if it did not pay, comparing is not
 * tried again for a number of tracking passes that doubles each time.
 */
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

#define SMOOTH 0.25		/* weight of a new measurement */
#define GUESS_COMPARE 16	/* until measured: a compared page costs a written one / this */
#define CALIBRATE_PAGES 64
#define VOTES 3
#define PATIENCE_FIRST 8
#define PATIENCE_MAX 1024

static double fault_us = 1;	/* a writer's fault: adapt_calibrate() */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One round: CALIBRATE_PAGES write faults on m, in µs a fault. */
static double fault_round(char *m, size_t ps)
{
	double t0;

	madvise(m, CALIBRATE_PAGES * ps, MADV_DONTNEED);	/* the pages stay; their entries go */
	t0 = now_us();
	for (size_t i = 0; i < CALIBRATE_PAGES; i++)
		m[i * ps] = (char)i;
	return (now_us() - t0) / CALIBRATE_PAGES;
}

double adapt_calibrate(size_t page_size)
{
	int fd = memfd_create("cohmemd-calibrate", MFD_CLOEXEC);
	double best = 0;
	char *m;

	if (fd < 0 || ftruncate(fd, (off_t)(CALIBRATE_PAGES * page_size))) {
		if (fd >= 0)
			close(fd);
		return fault_us;
	}
	m = mmap(NULL, CALIBRATE_PAGES * page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return fault_us;
	memset(m, 1, CALIBRATE_PAGES * page_size);
	for (int i = 0; i < 5; i++) {	/* the best of five: a busy machine only adds */
		double us = fault_round(m, page_size);

		best = !best || us < best ? us : best;
	}
	munmap(m, CALIBRATE_PAGES * page_size);
	if (best > 0)
		fault_us = best;
	return fault_us;
}

void adapt_set_fault_us(double us)
{
	fault_us = us;
}

/*
 * A new measurement into a smoothed one. A busy machine stretches some
 * passes many times over (preempted, a fault's worth of waiting): one
 * counts for at most twice the estimate, so that it takes several such in a
 * row to move it far.
 */
static double smooth(double old, double now)
{
	if (!old)
		return now;
	if (now > 2 * old)
		now = 2 * old;
	return old + SMOOTH * (now - old);
}

static double cost_tracking(const struct adapt *a)
{
	return a->changed * (a->track_us + fault_us);
}

static double cost_comparing(const struct adapt *a)
{
	double per_page = a->compare_us ? a->compare_us : a->track_us / GUESS_COMPARE;

	return a->cached * per_page;
}

/* Another vote for the other way if it looks cheaper by half; switched after VOTES in a row. */
static void vote(struct adapt *a, bool other_cheaper)
{
	a->votes = other_cheaper ? a->votes + 1 : 0;
	if (a->votes < VOTES)
		return;
	a->votes = 0;
	a->switches++;
	a->settling = true;
	if (a->now == COHERENCE_TRACK) {
		a->now = COHERENCE_COMPARE;
		return;
	}
	a->now = COHERENCE_TRACK;
	/* Back to tracking: comparing waits, the longer the more often it did not pay. */
	a->patience = !a->patience ? PATIENCE_FIRST
		    : a->patience < PATIENCE_MAX ? 2 * a->patience : PATIENCE_MAX;
	a->wait = a->patience;
}

enum coherence adapt_choice(const struct adapt *a, enum coherence_mode mode)
{
	switch (mode) {
	case MODE_TRACK:
		return COHERENCE_TRACK;
	case MODE_COMPARE:
		return a->patience == UINT_MAX ? COHERENCE_TRACK : COHERENCE_COMPARE;
	case MODE_ADAPTIVE:
		break;
	}
	return a->now;
}

void adapt_tracked(struct adapt *a, uint64_t written, double us, uint64_t cached)
{
	a->changed = (double)written;
	a->cached = (double)cached;
	if (a->settling) {
		a->settling = false;	/* it wrote back what the compares left dirty: not a measure */
		return;
	}
	if (written)
		a->track_us = smooth(a->track_us, us / (double)written);
	if (a->wait) {
		a->wait--;
		return;
	}
	if (a->patience == UINT_MAX || !a->track_us)
		return;		/* cannot compare, or nothing measured to compare with */
	vote(a, 2 * cost_comparing(a) < cost_tracking(a));
}

void adapt_compared(struct adapt *a, uint64_t changed, double us, uint64_t compared)
{
	a->changed = (double)changed;
	a->cached = (double)compared;
	if (a->settling) {
		a->settling = false;	/* the helper's first look maps and allocates: not a measure */
		return;
	}
	if (compared)
		a->compare_us = smooth(a->compare_us, us / (double)compared);
	if (!a->track_us)
		return;		/* tracking never measured: nothing to weigh against */
	vote(a, 2 * cost_tracking(a) < cost_comparing(a));
}

void adapt_cannot_compare(struct adapt *a)
{
	a->now = COHERENCE_TRACK;
	a->votes = 0;
	a->patience = UINT_MAX;
	a->wait = 0;
}
