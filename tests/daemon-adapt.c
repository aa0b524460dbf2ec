/* SPDX-License-Identifier: MIT */
/*
 * How cohmemd chooses, per buffer, between tracking and comparing
 * (daemon/adapt.c), fed the costs a pass measures: the choices follow the
 * workload, and noise in the measurements does not change them — ten runs
 * with different noise make the same choices at every pass.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "daemon.h"

#define PASSES 160
#define CACHED 1280			/* pages: a 1280x1024 screen of 32 bits */

/* What is written between passes: the pass number decides. */
static uint64_t written_at(unsigned pass)
{
	if (pass < 30)
		return 3;		/* typing: a few pages */
	if (pass < 70)
		return 300;		/* a window moving: the same 300 pages rewritten */
	if (pass < 90)
		return 0;		/* idle */
	if (pass < 120)
		return 1280;		/* the whole screen */
	return pass % 3 ? 0 : 1280;	/* the whole screen, at every third tick */
}

/* The cost a pass would measure, with noise of up to ±noise (a fraction), from a seeded generator. */
static double measured(double us, double noise, unsigned *seed)
{
	return us * (1 + noise * (2.0 * rand_r(seed) / RAND_MAX - 1));
}

/* The choices of PASSES passes under --mode adaptive, into out. */
static void run(double noise, unsigned seed, enum coherence *out)
{
	struct adapt a;

	adapt_set_fault_us(14);
	memset(&a, 0, sizeof(a));
	for (unsigned i = 0; i < PASSES; i++) {
		uint64_t w = written_at(i);

		out[i] = adapt_choice(&a, MODE_ADAPTIVE);
		if (out[i] == COHERENCE_TRACK)
			adapt_tracked(&a, w, measured(25.0 * (double)w + 40, noise, &seed), CACHED);
		else
			adapt_compared(&a, w, measured(0.5 * CACHED + 40, noise, &seed), CACHED);
	}
}

Test(adapt, the_choice_follows_the_workload)
{
	enum coherence c[PASSES];

	run(0, 1, c);
	cr_assert_eq(c[0], COHERENCE_TRACK, "it starts tracking");
	cr_assert_eq(c[29], COHERENCE_TRACK, "a few pages a pass: tracking is cheaper");
	cr_assert_eq(c[69], COHERENCE_COMPARE, "300 pages rewritten a pass: comparing is");
	cr_assert_eq(c[89], COHERENCE_TRACK, "idle: back to tracking, which costs nothing then");
	cr_assert_eq(c[119], COHERENCE_COMPARE, "the whole screen: comparing again");
	cr_assert_eq(c[159], COHERENCE_COMPARE, "the whole screen at every third pass: still comparing");
}

Test(adapt, a_compare_that_paid_for_a_while_may_be_tried_again_at_once)
{
	struct adapt a;

	adapt_set_fault_us(14);
	memset(&a, 0, sizeof(a));
	for (unsigned i = 0; i < 40; i++) {	/* a window moving: compared, for long */
		if (adapt_choice(&a, MODE_ADAPTIVE) == COHERENCE_TRACK)
			adapt_tracked(&a, 300, 300 * 25.0, CACHED);
		else
			adapt_compared(&a, 300, 0.5 * CACHED, CACHED);
	}
	cr_assert_eq(adapt_choice(&a, MODE_ADAPTIVE), COHERENCE_COMPARE);
	for (unsigned i = 0; i < 10 && adapt_choice(&a, MODE_ADAPTIVE) == COHERENCE_COMPARE; i++)
		adapt_compared(&a, 0, 0.5 * CACHED, CACHED);	/* idle */
	cr_assert_eq(adapt_choice(&a, MODE_ADAPTIVE), COHERENCE_TRACK, "idle: tracked");
	cr_assert_eq(a.wait, 0, "and free to compare again as soon as it pays");
}

Test(adapt, noise_does_not_change_the_choices)
{
	enum coherence first[PASSES], other[PASSES];

	run(0.3, 1, first);
	for (unsigned seed = 2; seed <= 10; seed++) {
		run(0.3, seed, other);
		for (unsigned i = 0; i < PASSES; i++)
			cr_assert_eq(other[i], first[i], "run %u, pass %u: %s, the first run %s", seed, i,
				     other[i] == COHERENCE_COMPARE ? "compared" : "tracked",
				     first[i] == COHERENCE_COMPARE ? "compared" : "tracked");
	}
}

Test(adapt, a_buffer_that_cannot_be_compared_is_tracked_whatever_the_mode)
{
	struct adapt a;

	memset(&a, 0, sizeof(a));
	cr_assert_eq(adapt_choice(&a, MODE_COMPARE), COHERENCE_COMPARE);
	adapt_cannot_compare(&a);
	for (unsigned i = 0; i < 20; i++)
		adapt_tracked(&a, 1280, 1280 * 25.0, CACHED);
	cr_assert_eq(adapt_choice(&a, MODE_ADAPTIVE), COHERENCE_TRACK);
	cr_assert_eq(adapt_choice(&a, MODE_COMPARE), COHERENCE_TRACK);
	cr_assert_eq(adapt_choice(&a, MODE_TRACK), COHERENCE_TRACK);
}

Test(adapt, a_compare_that_did_not_pay_waits_longer_each_time)
{
	struct adapt a;
	unsigned compares = 0;

	memset(&a, 0, sizeof(a));
	/* Tracking looks dear against the guess, but comparing turns out dearer still. */
	for (unsigned i = 0; i < 400; i++) {
		if (adapt_choice(&a, MODE_ADAPTIVE) == COHERENCE_TRACK) {
			adapt_tracked(&a, 200, 200 * 25.0, CACHED);
		} else {
			compares++;
			adapt_compared(&a, 200, CACHED * 40.0, CACHED);
		}
	}
	cr_assert_gt(compares, 0, "comparing was tried");
	cr_assert_lt(compares, 40, "and, not paying, it was tried less and less (%u of 400 passes)", compares);
}
