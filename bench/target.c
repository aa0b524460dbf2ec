/* SPDX-License-Identifier: MIT */
/* The targets every scenario of cohmem-bench prints, counted in one place. */
#include <stdio.h>

#include "target.h"

static int missed;

void bench_target(const char *what, double ratio, double limit, bool at_most)
{
	bool met = at_most ? ratio <= limit : ratio >= limit;

	printf("    %-60s %7.2fx  (target %s %.2fx) %s\n", what, ratio, at_most ? "<=" : ">=", limit,
	       met ? "met" : "MISSED");
	missed += !met;
}

int bench_targets_missed(void)
{
	return missed;
}
