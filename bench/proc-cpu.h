/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_BENCH_PROC_CPU_H
#define COHMEM_BENCH_PROC_CPU_H

#include <sys/types.h>

/*
 * Seconds of CPU a process has run: the sum of its live threads' schedstat
 * (nanoseconds) or, if larger, its user and system ticks (which count the
 * threads that are gone too). 0 for a process that is gone.
 */
double proc_cpu_seconds(pid_t pid);

#endif
