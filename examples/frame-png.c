/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "frame-png.h"

int png_write(const char *path, const void *pixels, unsigned width, unsigned height, size_t stride)
{
	FILE *f = fopen(path, "wb");
	png_structp png = f ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL) : NULL;
	png_infop info = png ? png_create_info_struct(png) : NULL;
	unsigned char *volatile row = info ? malloc((size_t)width * 3) : NULL;
	int err = f ? -ENOMEM : -errno;

	if (!row || setjmp(png_jmpbuf(png))) {	/* libpng reports its errors by longjmp() */
		png_destroy_write_struct(&png, &info);
		free(row);
		if (f)
			fclose(f);
		return row ? -EIO : err;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (unsigned y = 0; y < height; y++) {
		const uint32_t *px = (const uint32_t *)((const unsigned char *)pixels + y * stride);

		for (unsigned x = 0; x < width; x++) {
			row[3 * x] = (unsigned char)(px[x] >> 16);
			row[3 * x + 1] = (unsigned char)(px[x] >> 8);
			row[3 * x + 2] = (unsigned char)px[x];
		}
		png_write_row(png, row);
	}
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	free(row);
	return fclose(f) ? -errno : 0;
}
