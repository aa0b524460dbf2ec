/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_BENCH_TARGET_H
#define COHMEM_BENCH_TARGET_H

#include <stdbool.h>

/*
 * Print one of the project's targets: what is measured, its ratio, the limit
 * (at_most: ratio <= limit, else ratio >= limit) and whether it holds. A
 * missed target is counted; bench_targets_missed() says how many were.
 */
void bench_target(const char *what, double ratio, double limit, bool at_most);

/* bench_target() without the line, for a caller that prints its own: true if it holds. */
bool bench_target_judge(double ratio, double limit, bool at_most);

/* How many targets so far were found missed. */
int bench_targets_missed(void);

#endif
