/* SPDX-License-Identifier: MIT */
/*
 * tools/fbfile.c: XWD headers as Xvfb writes them, and as a hostile or
 * broken producer might (the file's writer is not the server's user).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fbfile.h"

enum { HEADER_SIZE, FILE_VERSION, PIXMAP_FORMAT, PIXMAP_DEPTH, PIXMAP_WIDTH, PIXMAP_HEIGHT, XOFFSET,
       BYTE_ORDER, BITMAP_UNIT, BITMAP_BIT_ORDER, BITMAP_PAD, BITS_PER_PIXEL, BYTES_PER_LINE,
       VISUAL_CLASS, RED_MASK, GREEN_MASK, BLUE_MASK, BITS_PER_RGB, COLORMAP_ENTRIES, NCOLORS };

static void put(unsigned char *h, int field, uint32_t v)
{
	unsigned char *q = h + 4 * field;

	q[0] = (unsigned char)(v >> 24), q[1] = (unsigned char)(v >> 16), q[2] = (unsigned char)(v >> 8);
	q[3] = (unsigned char)v;
}

/* The header `Xvfb -screen 0 320x200x24` writes (its name is "Xvfb main window"). */
static void xvfb_header(unsigned char *h)
{
	memset(h, 0, 160);
	put(h, HEADER_SIZE, 160);
	put(h, FILE_VERSION, 7);
	put(h, PIXMAP_FORMAT, 2);
	put(h, PIXMAP_DEPTH, 24);
	put(h, PIXMAP_WIDTH, 320);
	put(h, PIXMAP_HEIGHT, 200);
	put(h, BITMAP_UNIT, 32);
	put(h, BITMAP_PAD, 32);
	put(h, BITS_PER_PIXEL, 32);
	put(h, BYTES_PER_LINE, 1280);
	put(h, VISUAL_CLASS, 4);
	put(h, RED_MASK, 0xff0000);
	put(h, GREEN_MASK, 0xff00);
	put(h, BLUE_MASK, 0xff);
	put(h, BITS_PER_RGB, 8);
	put(h, COLORMAP_ENTRIES, 256);
	put(h, NCOLORS, 256);
}

Test(fbfile, xvfbs_header_gives_its_layout)
{
	unsigned char h[160];
	struct fb_file f;

	xvfb_header(h);
	cr_assert_eq(fb_parse_xwd(h, 160 + 256 * 12, &f), 0);
	cr_assert_eq(f.fb.offset, 160 + 256 * 12);
	cr_assert_eq(f.fb.stride, 1280);
	cr_assert_eq(f.fb.width, 320);
	cr_assert_eq(f.fb.height, 200);
	cr_assert_eq(f.fb.bpp, 4);
	cr_assert_eq(fb_mask_shift(f.format.red_mask), 16);
	cr_assert_eq(fb_mask_max(f.format.green_mask), 255);
	cr_assert_eq(fb_file_end(&f), 160 + 256 * 12 + 1280 * 200);
	cr_assert_not(f.format.big_endian);
}

Test(fbfile, what_is_not_there_yet_is_eagain)
{
	unsigned char h[160];
	struct fb_file f;

	xvfb_header(h);
	cr_assert_eq(fb_parse_xwd(h, 99, &f), -EAGAIN, "shorter than a header");
	cr_assert_eq(fb_parse_xwd(h, 160, &f), -EAGAIN, "the colour map not in yet");
	put(h, VISUAL_CLASS, 0);
	put(h, RED_MASK, 0), put(h, GREEN_MASK, 0), put(h, BLUE_MASK, 0);
	cr_assert_eq(fb_parse_xwd(h, 4096, &f), -EAGAIN, "no visual written yet");
	/*
	 * Xvfb -fbdir makes its new file whole (zeros) before it writes the header
	 * into its mapping: a restarted X server's file looked at in between made
	 * cohmem-vnc exit with "not an XWD file" (a CI run of xvfb-vnc:pull:24).
	 */
	memset(h, 0, sizeof(h));
	cr_assert_eq(fb_parse_xwd(h, 1 << 20, &f), -EAGAIN, "a file of zeros: no header written yet");
}

Test(fbfile, bad_headers_are_refused)
{
	static const struct {
		int field;
		uint32_t value;
		int err;
	} cases[] = {
		{ FILE_VERSION, 6, -EINVAL },		{ HEADER_SIZE, 99, -EINVAL },
		{ BYTE_ORDER, 2, -EINVAL },		{ PIXMAP_WIDTH, 0, -EINVAL },
		{ PIXMAP_HEIGHT, 70000, -EINVAL },	{ BYTES_PER_LINE, 1279, -EINVAL },
		{ XOFFSET, 1, -EINVAL },		{ NCOLORS, 0xffffffff, -EAGAIN },
		{ PIXMAP_FORMAT, 1, -ENOTSUP },		{ VISUAL_CLASS, 3, -ENOTSUP },
		{ BITS_PER_PIXEL, 24, -ENOTSUP },	{ BITS_PER_PIXEL, 8, -ENOTSUP },
		{ RED_MASK, 0xff00, -ENOTSUP },		{ GREEN_MASK, 0xf0f0, -ENOTSUP },
		{ BLUE_MASK, 0, -ENOTSUP },
	};
	unsigned char h[160];
	struct fb_file f;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		xvfb_header(h);
		put(h, cases[i].field, cases[i].value);
		cr_assert_eq(fb_parse_xwd(h, 1 << 20, &f), cases[i].err, "field %d = %#x", cases[i].field,
			     cases[i].value);
	}
	xvfb_header(h);
	put(h, BYTES_PER_LINE, 0xffffffff);
	put(h, PIXMAP_HEIGHT, 65535);
	cr_assert_eq(fb_parse_xwd(h, 1 << 20, &f), 0, "a size past the file is the caller's to check");
	cr_assert_gt(fb_file_end(&f), (size_t)1 << 20);
}

/* Random headers: never a crash, and a layout that is accepted always fits what it says. */
Test(fbfile, random_headers_are_refused_or_consistent)
{
	unsigned char h[160];
	struct fb_file f;

	srand(1);
	for (int i = 0; i < 200000; i++) {
		xvfb_header(h);
		for (int k = 0; k < 1 + rand() % 4; k++)
			put(h, rand() % 25, (uint32_t)rand() * (rand() % 2 ? 1u : 65537u));
		if (fb_parse_xwd(h, (size_t)rand() % (1 << 22), &f) == 0) {
			cr_assert_geq(f.fb.stride, (size_t)f.fb.width * f.fb.bpp);
			cr_assert(f.fb.bpp == 2 || f.fb.bpp == 4);
			cr_assert_geq(fb_file_end(&f), f.fb.offset);
		}
	}
}

Test(fbfile, raw_formats_by_name)
{
	struct fb_format f;

	cr_assert_eq(fb_raw_format("XRGB8888", &f), 0);
	cr_assert_eq(f.red_mask, 0xff0000);
	cr_assert_eq(fb_raw_format("bgr565", &f), 0);
	cr_assert_eq(f.blue_mask, 0xf800);
	cr_assert_eq(f.bits_per_pixel, 16);
	cr_assert_eq(fb_raw_format("rgb888", &f), -EINVAL);
}
