/* SPDX-License-Identifier: MIT */
/* The targets every scenario of cohmem-bench prints, counted in one place. */
#include <stdio.h>

#include "target.h"

static int missed;

bool bench_target_judge(double ratio, double limit, bool at_most)
{
	bool held = at_most ? ratio <= limit : ratio >= limit;

	missed += !held;
	return held;
}

void bench_target(const char *what, double ratio, double limit, bool at_most)
{
	bool held = bench_target_judge(ratio, limit, at_most);

	printf("    %-60s %7.2fx  (target %s %.2fx) %s\n", what, ratio, at_most ? "<=" : ">=", limit,
	       held ? "held" : "MISSED");
}

int bench_targets_missed(void)
{
	return missed;
}
