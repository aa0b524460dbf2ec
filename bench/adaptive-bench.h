/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_BENCH_ADAPTIVE_H
#define COHMEM_BENCH_ADAPTIVE_H

#include <stdbool.h>
#include <stddef.h>

/* The adaptive scenario over a region of `pages` pages; quick: fewer cycles, no verdict. */
#include "cohmem.h"

/* The adaptive scenario over pages of memory, tracked with backend (AUTO: the library's pick). */
int bench_adaptive(size_t pages, bool quick, enum cohmem_backend backend);

#endif
