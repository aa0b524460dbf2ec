/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_BENCH_ADAPTIVE_H
#define COHMEM_BENCH_ADAPTIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "cohmem.h"

/*
 * The adaptive scenario over a region of `pages` pages, tracked with backend
 * (AUTO: the library's pick); quick: fewer cycles, no verdict.
 */
int bench_adaptive(size_t pages, bool quick, enum cohmem_backend backend);

#endif
