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
 * a compare (measured too), and stores the pages that changed, as a
 * tracking pass stores the WRITEs of the same pages: that part is the same
 * both ways, and left out of the comparison (it is in a WRITE's cost, so it
 * leans towards comparing, by what a store costs). What a pass
 * changed is taken as the mean of the last four (an --interval tick that
 * found a tracked buffer clean counts as a pass that changed nothing):
 * a screen redrawn at every third tick costs a compare at every tick. Each pass updates
 * smoothed costs per page (times are noisy; counts of pages are taken as they
 * are; the first pass after a switch is not measured: it does what the other
 * way left, or sets up); the other way is taken when it has looked cheaper by half
 * for VOTES passes in a row, so that noise does not flip it. A compare is
 * tried first with a guess of its cost; if it did not pay (it lasted fewer
 * than PAID passes), comparing is not tried again for a number of tracking
 * passes that doubles each time; one that paid until the writes changed
 * leaves it free to be tried again.
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
#define PAID 16			/* passes a compare lasted: it paid */
#define PATIENCE_FIRST 8
#define PATIENCE_MAX 1024

static double fault_us = 1;	/* a writer's fault: adapt_calibrate() */

double now_us(void)
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
 * A new measurement into a smoothed one. A busy machine only ever adds to
 * a cost (a pass preempted, a first touch of pages that later passes find
 * mapped): a lower one is believed at once, a higher one slowly, and for at
 * most twice the estimate, so that it takes several such in a row to move
 * it far.
 */
static double smooth(double old, double now)
{
	if (!old || now <= old)
		return now;
	if (now > 2 * old)
		now = 2 * old;
	return old + SMOOTH * (now - old);
}

/* A pass's count of changed pages into the recent ones; changed is their mean. */
static void note_changed(struct adapt *a, uint64_t n)
{
	unsigned size = sizeof(a->recent) / sizeof(a->recent[0]);
	double sum = 0;

	a->recent[a->nrecent++ % size] = n;
	for (unsigned i = 0; i < size && i < a->nrecent; i++)
		sum += (double)a->recent[i];
	a->changed = sum / (a->nrecent < size ? a->nrecent : size);
}

static double cost_tracking(const struct adapt *a)
{
	return a->changed * (a->track_us + fault_us);
}

/* Stores are left out: both ways store the same pages, and a WRITE's store is in track_us. */
static double cost_comparing(const struct adapt *a)
{
	return a->cached * (a->compare_us ? a->compare_us : a->track_us / GUESS_COMPARE);
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
		a->compared = 0;
		return;
	}
	a->now = COHERENCE_TRACK;
	if (a->compared >= PAID) {	/* it paid, until the writes changed: try again at will */
		a->patience = a->wait = 0;
		return;
	}
	/* It did not pay: comparing waits, the longer the more often so. */
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

/* A tracking pass, or idle tick, measured: vote, unless comparing is out of the question for now. */
static void tracking_vote(struct adapt *a)
{
	if (a->wait) {
		a->wait--;
		return;
	}
	if (a->patience == UINT_MAX || !a->track_us)
		return;		/* cannot compare, or nothing measured to compare with */
	vote(a, 2 * cost_comparing(a) < cost_tracking(a));
}

void adapt_idle(struct adapt *a)
{
	if (a->now != COHERENCE_TRACK)
		return;		/* compared buffers stay dirty: their ticks are passes */
	note_changed(a, 0);
	tracking_vote(a);
}

void adapt_tracked(struct adapt *a, uint64_t written, double us, uint64_t cached)
{
	note_changed(a, written);
	a->cached = (double)cached;
	if (a->settling) {
		a->settling = false;	/* it wrote back what the compares left dirty: not a measure */
		return;
	}
	if (written)
		a->track_us = smooth(a->track_us, us / (double)written);
	tracking_vote(a);
}

void adapt_compared(struct adapt *a, uint64_t changed, double read_us, uint64_t compared)
{
	a->compared++;
	note_changed(a, changed);
	a->cached = (double)compared;
	if (a->settling) {
		a->settling = false;	/* the helper's first look maps and allocates: not a measure */
		return;
	}
	if (compared)
		a->compare_us = smooth(a->compare_us, read_us / (double)compared);
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
