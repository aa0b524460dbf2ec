/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_BENCH_ADAPTIVE_H
#define COHMEM_BENCH_ADAPTIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "cohmem.h"

/*
 * The adaptive scenario over a region of `pages` pages, tracked with backend
 * (AUTO: the library's pick); quick: fewer cycles, no verdict. decisions
 * (len bytes, "" on entry) gets the adaptive regions' final mode per workload.
 */
int bench_adaptive(size_t pages, bool quick, enum cohmem_backend backend, char *decisions, size_t len);

#endif
