/* SPDX-License-Identifier: MIT */
/*
 * Framebuffer files: where the pixels of a file lie and what they mean.
 *
 * An XWD file (what `Xvfb -fbdir` keeps its screen in, and what `xwd`
 * writes) describes itself in a big-endian header; a raw file is described
 * by the command line, its format named as DRM names them (the letters
 * from the most significant bits down, the pixel stored little-endian).
 * Only true-colour pixels of 16 or 32 bits are accepted: every format
 * accepted has its colours right.
 */
#ifndef COHMEM_FBFILE_H
#define COHMEM_FBFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cohmem-fb.h>

struct fb_format {
	unsigned bits_per_pixel;	/* 16 or 32 */
	unsigned depth;			/* bits that carry colour */
	bool big_endian;		/* byte order of a pixel in memory */
	uint32_t red_mask, green_mask, blue_mask;	/* of the pixel as a number, contiguous */
};

struct fb_file {
	struct cohmem_fb fb;		/* offset, stride, width, height, bytes per pixel */
	struct fb_format format;
};

/* The bytes an XWD header needs before fb_parse_xwd() can say more. */
#define FB_XWD_HEADER 100

/*
 * fb_parse_xwd() - the layout of the XWD file whose first @len bytes are at
 * @p (the header, the window name and the colour map: the pixels follow).
 * Return: 0; -EAGAIN if @len is too short to hold what the header says
 * precedes the pixels, if no header is written yet (zeros: Xvfb makes its file
 * whole before it writes one), or if the header has no visual yet (Xvfb
 * writes it once it installs its colour map); -EINVAL for a header that is not XWD's or that
 * contradicts itself (a stride too short for its width, sizes that
 * overflow); -ENOTSUP for what it is but is not served (not ZPixmap, not
 * TrueColor or DirectColor, not 16 or 32 bits per pixel, masks that
 * overlap or have holes).
 */
int fb_parse_xwd(const unsigned char *p, size_t len, struct fb_file *out);

/*
 * fb_raw_format() - the format DRM names @name (case-insensitive):
 * xrgb8888, argb8888, xbgr8888, abgr8888, rgbx8888, bgrx8888, rgb565, bgr565.
 * Return: 0, or -EINVAL for another name.
 */
int fb_raw_format(const char *name, struct fb_format *out);

/* The names fb_raw_format() takes, separated by '|', for --help. */
const char *fb_raw_format_names(void);

/* The bytes from the file's start to the end of the last pixel. */
size_t fb_file_end(const struct fb_file *f);

/* The shift of a mask's lowest bit and its value there (red: 16 and 255 for 0x00ff0000). */
unsigned fb_mask_shift(uint32_t mask);
unsigned fb_mask_max(uint32_t mask);

#endif /* COHMEM_FBFILE_H */
