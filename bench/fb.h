/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_BENCH_FB_H
#define COHMEM_BENCH_FB_H

/* The framebuffer scenario; non-zero if a device copy came out wrong. */
int bench_framebuffer(void);

#endif
