/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <strings.h>

#include "fbfile.h"

/* From <X11/XWDFile.h> and <X11/X.h>: the values, not the headers (no X11 build dependency). */
#define XWD_FILE_VERSION 7
#define XWD_COLOR_SIZE 12
#define Z_PIXMAP 2
#define LSB_FIRST 0
#define MSB_FIRST 1
#define TRUE_COLOR 4
#define DIRECT_COLOR 5

enum xwd_field {
	HEADER_SIZE, FILE_VERSION, PIXMAP_FORMAT, PIXMAP_DEPTH, PIXMAP_WIDTH, PIXMAP_HEIGHT, XOFFSET,
	BYTE_ORDER, BITMAP_UNIT, BITMAP_BIT_ORDER, BITMAP_PAD, BITS_PER_PIXEL, BYTES_PER_LINE,
	VISUAL_CLASS, RED_MASK, GREEN_MASK, BLUE_MASK, BITS_PER_RGB, COLORMAP_ENTRIES, NCOLORS,
};

static uint32_t field(const unsigned char *p, enum xwd_field f)
{
	const unsigned char *q = p + 4 * (size_t)f;

	return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
}

unsigned fb_mask_shift(uint32_t mask)
{
	return mask ? (unsigned)__builtin_ctz(mask) : 0;
}

unsigned fb_mask_max(uint32_t mask)
{
	return mask >> fb_mask_shift(mask);
}

/* One run of ones, within the pixel's bits. */
static bool mask_ok(uint32_t mask, unsigned bits)
{
	uint32_t v = mask >> fb_mask_shift(mask);

	return mask && (v & (v + 1)) == 0 && (bits == 32 || mask >> bits == 0);
}

static int format_check(const struct fb_format *f)
{
	if (f->bits_per_pixel != 16 && f->bits_per_pixel != 32)
		return -ENOTSUP;
	if (!mask_ok(f->red_mask, f->bits_per_pixel) || !mask_ok(f->green_mask, f->bits_per_pixel) ||
	    !mask_ok(f->blue_mask, f->bits_per_pixel))
		return -ENOTSUP;
	if ((f->red_mask & f->green_mask) || (f->red_mask & f->blue_mask) || (f->green_mask & f->blue_mask))
		return -ENOTSUP;
	return 0;
}

int fb_parse_xwd(const unsigned char *p, size_t len, struct fb_file *out)
{
	struct fb_file f = { 0 };
	uint64_t pixels_at, end;
	int err;

	if (len < FB_XWD_HEADER)
		return -EAGAIN;
	/* Xvfb -fbdir makes its file whole (zeros) first, then writes the header into its mapping. */
	if (!field(p, HEADER_SIZE) && !field(p, FILE_VERSION))
		return -EAGAIN;
	if (field(p, FILE_VERSION) != XWD_FILE_VERSION || field(p, HEADER_SIZE) < FB_XWD_HEADER)
		return -EINVAL;
	if (field(p, BYTE_ORDER) != LSB_FIRST && field(p, BYTE_ORDER) != MSB_FIRST)
		return -EINVAL;
	f.format = (struct fb_format){
		.bits_per_pixel = field(p, BITS_PER_PIXEL),
		.depth = field(p, PIXMAP_DEPTH),
		.big_endian = field(p, BYTE_ORDER) == MSB_FIRST,
		.red_mask = field(p, RED_MASK),
		.green_mask = field(p, GREEN_MASK),
		.blue_mask = field(p, BLUE_MASK),
	};
	/* Xvfb writes the visual once it installs its colour map: not yet, then. */
	if (!field(p, VISUAL_CLASS) && !f.format.red_mask && !f.format.green_mask && !f.format.blue_mask)
		return -EAGAIN;
	if (field(p, PIXMAP_FORMAT) != Z_PIXMAP ||
	    (field(p, VISUAL_CLASS) != TRUE_COLOR && field(p, VISUAL_CLASS) != DIRECT_COLOR))
		return -ENOTSUP;
	err = format_check(&f.format);
	if (err)
		return err;
	f.fb.bpp = f.format.bits_per_pixel / 8;
	f.fb.width = field(p, PIXMAP_WIDTH);
	f.fb.height = field(p, PIXMAP_HEIGHT);
	f.fb.stride = field(p, BYTES_PER_LINE);
	if (!f.fb.width || !f.fb.height || f.fb.width > 65535 || f.fb.height > 65535 ||
	    field(p, XOFFSET) != 0 || f.fb.stride < (size_t)f.fb.width * f.fb.bpp)
		return -EINVAL;
	pixels_at = (uint64_t)field(p, HEADER_SIZE) + (uint64_t)field(p, NCOLORS) * XWD_COLOR_SIZE;
	end = pixels_at + (uint64_t)f.fb.stride * f.fb.height;
	if (end > SIZE_MAX / 2)
		return -EINVAL;
	if (pixels_at > len)
		return -EAGAIN;
	f.fb.offset = (size_t)pixels_at;
	*out = f;
	return 0;
}

static const struct raw_format {
	const char *name;
	struct fb_format format;
} raw_formats[] = {
	{ "xrgb8888", { 32, 24, false, 0x00ff0000, 0x0000ff00, 0x000000ff } },
	{ "argb8888", { 32, 24, false, 0x00ff0000, 0x0000ff00, 0x000000ff } },
	{ "xbgr8888", { 32, 24, false, 0x000000ff, 0x0000ff00, 0x00ff0000 } },
	{ "abgr8888", { 32, 24, false, 0x000000ff, 0x0000ff00, 0x00ff0000 } },
	{ "rgbx8888", { 32, 24, false, 0xff000000, 0x00ff0000, 0x0000ff00 } },
	{ "bgrx8888", { 32, 24, false, 0x0000ff00, 0x00ff0000, 0xff000000 } },
	{ "rgb565", { 16, 16, false, 0xf800, 0x07e0, 0x001f } },
	{ "bgr565", { 16, 16, false, 0x001f, 0x07e0, 0xf800 } },
};

int fb_raw_format(const char *name, struct fb_format *out)
{
	for (size_t i = 0; i < sizeof(raw_formats) / sizeof(raw_formats[0]); i++)
		if (!strcasecmp(name, raw_formats[i].name)) {
			*out = raw_formats[i].format;
			return 0;
		}
	return -EINVAL;
}

const char *fb_raw_format_names(void)
{
	return "xrgb8888|argb8888|xbgr8888|abgr8888|rgbx8888|bgrx8888|rgb565|bgr565";
}

size_t fb_file_end(const struct fb_file *f)
{
	return f->fb.offset + f->fb.stride * (f->fb.height - 1) + (size_t)f->fb.width * f->fb.bpp;
}
