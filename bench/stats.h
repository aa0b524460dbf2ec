/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_BENCH_STATS_H
#define COHMEM_BENCH_STATS_H

/* The median of v[0..n) (n > 0), sorting v in place: the mean of the middle two for even n. */
double bench_median(double *v, unsigned n);

#endif
