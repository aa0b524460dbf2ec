/* SPDX-License-Identifier: MIT */
/* A frame as a PNG file, written with libpng. */
#ifndef COHMEM_FRAME_PNG_H
#define COHMEM_FRAME_PNG_H

#include <stddef.h>

/* Write 32-bit 0x00RRGGBB pixels as an RGB PNG. 0 or -errno. */
int png_write(const char *path, const void *pixels, unsigned width, unsigned height, size_t stride);

#endif /* COHMEM_FRAME_PNG_H */
