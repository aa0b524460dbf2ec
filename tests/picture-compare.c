/* SPDX-License-Identifier: MIT */
/*
 * picture-compare: are two pictures of a screen the same, pixel for pixel?
 *
 *   picture-compare [--bits N] [--pixel X,Y,RRGGBB]... [--find RRGGBB] A [B]
 *
 * A and B are PNG files (read with libpng: what gvnccapture and a browser's
 * screenshot write) or XWD files (what `xwd -root` writes; read through
 * tools/fbfile.c, its masks applied here). Colours are compared in their N
 * most significant bits (default 8; 5 for a 16-bit screen, whose channels a
 * client widens in its own way). --pixel requires a colour at a point of A:
 * an absolute check that two readers sharing a mistake cannot pass. --find
 * prints the box "WxH at X,Y" that A's pixels of that colour lie in (a
 * text cursor drawn in it, say), and fails if there are none.
 * Prints what it found (pictures that differ: how many pixels, in which
 * box "WxH at X,Y", and the first); exit 0 if everything holds, 1 if not,
 * 2 on errors.
 */
#include <errno.h>
#include <stdbool.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fbfile.h"

struct picture {
	unsigned width, height;
	unsigned char *rgb;	/* width * height * 3 */
};

static int read_png(FILE *f, struct picture *p)
{
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	png_bytep *rows = NULL;

	if (!info || setjmp(png_jmpbuf(png))) {
		png_destroy_read_struct(&png, &info, NULL);
		free(rows);
		return -1;
	}
	png_init_io(png, f);
	png_read_info(png, info);
	/* Whatever it holds, as 8-bit RGB. */
	png_set_expand(png);
	png_set_strip_16(png);
	png_set_strip_alpha(png);
	png_set_gray_to_rgb(png);
	png_read_update_info(png, info);
	p->width = png_get_image_width(png, info);
	p->height = png_get_image_height(png, info);
	if (png_get_rowbytes(png, info) != (size_t)p->width * 3)
		png_error(png, "not RGB after conversion");
	p->rgb = malloc((size_t)p->width * p->height * 3);
	rows = malloc(p->height * sizeof(*rows));
	if (!p->rgb || !rows)
		png_error(png, "out of memory");
	for (unsigned y = 0; y < p->height; y++)
		rows[y] = p->rgb + (size_t)y * p->width * 3;
	png_read_image(png, rows);
	png_destroy_read_struct(&png, &info, NULL);
	free(rows);
	return 0;
}

static unsigned channel(uint32_t pixel, uint32_t mask)
{
	unsigned max = fb_mask_max(mask), v = (pixel & mask) >> fb_mask_shift(mask);

	return max ? (v * 255 + max / 2) / max : 0;
}

static int read_xwd(const unsigned char *data, size_t len, struct picture *p)
{
	struct fb_file f;
	int err = fb_parse_xwd(data, len, &f);

	if (err || fb_file_end(&f) > len)
		return -1;
	p->width = f.fb.width;
	p->height = f.fb.height;
	p->rgb = malloc((size_t)p->width * p->height * 3);
	if (!p->rgb)
		return -1;
	for (unsigned y = 0; y < p->height; y++)
		for (unsigned x = 0; x < p->width; x++) {
			const unsigned char *q = data + f.fb.offset + y * f.fb.stride + (size_t)x * f.fb.bpp;
			unsigned char *out = p->rgb + ((size_t)y * p->width + x) * 3;
			uint32_t v = 0;

			for (unsigned b = 0; b < f.fb.bpp; b++)
				v |= (uint32_t)q[f.format.big_endian ? f.fb.bpp - 1 - b : b] << (8 * b);
			out[0] = (unsigned char)channel(v, f.format.red_mask);
			out[1] = (unsigned char)channel(v, f.format.green_mask);
			out[2] = (unsigned char)channel(v, f.format.blue_mask);
		}
	return 0;
}

static int read_picture(const char *path, struct picture *p)
{
	FILE *f = fopen(path, "rb");
	unsigned char *data = NULL;
	size_t len = 0, cap = 0;
	int err;

	if (!f)
		return fprintf(stderr, "picture-compare: %s: %s\n", path, strerror(errno)), -1;
	for (;;) {
		if (len == cap) {
			unsigned char *more = realloc(data, cap = cap ? 2 * cap : 1 << 20);

			if (!more)
				return fclose(f), free(data), -1;
			data = more;
		}
		size_t n = fread(data + len, 1, cap - len, f);

		if (!n)
			break;
		len += n;
	}
	if (len >= 8 && !png_sig_cmp(data, 0, 8)) {
		rewind(f);
		err = read_png(f, p);
	} else {
		err = read_xwd(data, len, p);
	}
	fclose(f);
	free(data);
	if (err)
		fprintf(stderr, "picture-compare: %s: neither a PNG nor an XWD file this reads\n", path);
	return err;
}

static int check_pixel(const struct picture *a, const char *spec, unsigned bits)
{
	unsigned x, y, rgb;
	const unsigned char *q;

	if (sscanf(spec, "%u,%u,%x", &x, &y, &rgb) != 3 || x >= a->width || y >= a->height)
		return fprintf(stderr, "picture-compare: --pixel %s: not X,Y,RRGGBB inside the picture\n", spec), 2;
	q = a->rgb + ((size_t)y * a->width + x) * 3;
	for (unsigned c = 0; c < 3; c++)
		if ((q[c] ^ (rgb >> (16 - 8 * c) & 0xff)) >> (8 - bits)) {
			printf("pixel %u,%u is %02x%02x%02x, not %06x\n", x, y, q[0], q[1], q[2], rgb);
			return 1;
		}
	return 0;
}

static int find(const struct picture *a, const char *spec, unsigned bits)
{
	unsigned rgb, left = a->width, top = a->height, right = 0, bottom = 0;
	char *end;

	errno = 0;
	rgb = (unsigned)strtoul(spec, &end, 16);
	if (errno || end == spec || *end || rgb > 0xffffff)
		return fprintf(stderr, "picture-compare: --find %s: not RRGGBB\n", spec), 2;
	for (unsigned y = 0; y < a->height; y++)
		for (unsigned x = 0; x < a->width; x++) {
			const unsigned char *q = a->rgb + ((size_t)y * a->width + x) * 3;
			bool same = true;

			for (unsigned c = 0; c < 3; c++)
				same = same && !((q[c] ^ (rgb >> (16 - 8 * c) & 0xff)) >> (8 - bits));
			if (!same)
				continue;
			left = x < left ? x : left;
			right = x + 1 > right ? x + 1 : right;
			top = y < top ? y : top;
			bottom = y + 1;
		}
	if (!bottom) {
		printf("no %06x\n", rgb);
		return 1;
	}
	printf("%06x in %ux%u at %u,%u\n", rgb, right - left, bottom - top, left, top);
	return 0;
}

static int compare(const struct picture *a, const struct picture *b, unsigned bits)
{
	size_t differ = 0, first = 0;
	unsigned left = a->width, top = a->height, right = 0, bottom = 0;

	if (a->width != b->width || a->height != b->height) {
		printf("sizes differ: %ux%u and %ux%u\n", a->width, a->height, b->width, b->height);
		return 1;
	}
	for (size_t i = 0; i < (size_t)a->width * a->height; i++)
		for (unsigned c = 0; c < 3; c++)
			if ((a->rgb[3 * i + c] ^ b->rgb[3 * i + c]) >> (8 - bits)) {
				unsigned x = (unsigned)(i % a->width), y = (unsigned)(i / a->width);

				if (!differ++)
					first = i;
				left = x < left ? x : left;
				right = x + 1 > right ? x + 1 : right;
				top = y < top ? y : top;
				bottom = y + 1;
				break;
			}
	if (differ) {
		const unsigned char *p = a->rgb + 3 * first, *q = b->rgb + 3 * first;

		printf("%zu pixels differ, in %ux%u at %u,%u; the first at %zu,%zu: %02x%02x%02x and %02x%02x%02x\n",
		       differ, right - left, bottom - top, left, top, first % a->width, first / a->width, p[0], p[1],
		       p[2], q[0], q[1], q[2]);
		return 1;
	}
	printf("equal: %ux%u\n", a->width, a->height);
	return 0;
}

int main(int argc, char *argv[])
{
	struct picture a = { 0 }, b = { 0 };
	const char *pixels[64], *colour = NULL;
	unsigned npixels = 0, bits = 8;
	int i = 1, status = 0;

	for (; i < argc && argv[i][0] == '-'; i += 2) {
		if (i + 1 >= argc)
			return fprintf(stderr, "picture-compare: %s needs a value\n", argv[i]), 2;
		if (!strcmp(argv[i], "--bits"))
			bits = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--pixel") && npixels < 64)
			pixels[npixels++] = argv[i + 1];
		else if (!strcmp(argv[i], "--find"))
			colour = argv[i + 1];
		else
			return fprintf(stderr, "picture-compare: %s: unknown\n", argv[i]), 2;
	}
	if (i == argc || argc - i > 2 || bits < 1 || bits > 8)
		return fprintf(stderr, "usage: picture-compare [--bits N] [--pixel X,Y,RRGGBB]... [--find RRGGBB] A [B]\n"), 2;
	if (read_picture(argv[i], &a) || (argc - i == 2 && read_picture(argv[i + 1], &b)))
		return 2;
	for (unsigned k = 0; k < npixels && !status; k++)
		status = check_pixel(&a, pixels[k], bits);
	if (!status && colour)
		status = find(&a, colour, bits);
	if (!status && argc - i == 2)
		status = compare(&a, &b, bits);
	free(a.rgb);
	free(b.rgb);
	return status;
}
