/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_BENCH_ADAPTIVE_H
#define COHMEM_BENCH_ADAPTIVE_H

#include <stdbool.h>
#include <stddef.h>

/* The adaptive scenario over a region of `pages` pages; quick: fewer cycles, no verdict. */
int bench_adaptive(size_t pages, bool quick);

#endif
