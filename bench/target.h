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

/* How many bench_target() calls so far found their target missed. */
int bench_targets_missed(void);

#endif
