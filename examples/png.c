/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "png.h"

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[n] = c;
	}
}

static uint32_t crc(uint32_t c, const unsigned char *p, size_t n)
{
	c = ~c;
	while (n-- && p)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static int chunk(FILE *f, const char *type, const unsigned char *data, size_t len)
{
	unsigned char head[8], tail[4];

	put32(head, (uint32_t)len);
	memcpy(head + 4, type, 4);
	put32(tail, crc(crc(0, head + 4, 4), data, len));
	return fwrite(head, 1, 8, f) == 8 && (!len || fwrite(data, 1, len, f) == len) &&
			       fwrite(tail, 1, 4, f) == 4
		       ? 0
		       : -EIO;
}

int png_write(const char *path, const void *pixels, unsigned width, unsigned height, size_t stride)
{
	static const unsigned char signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	size_t row = 1 + (size_t)width * 3, raw = row * height;
	size_t blocks = raw / 65535 + 1, zlen = 2 + raw + 5 * blocks + 4;
	unsigned char ihdr[13] = { 0 }, *z = malloc(zlen), *p;
	uint32_t a = 1, b = 0;
	FILE *f;
	int err;

	if (!z)
		return -ENOMEM;
	crc_init();
	put32(ihdr, width);
	put32(ihdr + 4, height);
	ihdr[8] = 8;	/* bit depth */
	ihdr[9] = 2;	/* RGB */
	p = z;
	*p++ = 0x78;	/* zlib: deflate, 32K window, no dictionary */
	*p++ = 0x01;
	for (size_t done = 0, y = 0, x = 0; done < raw;) {
		size_t n = raw - done < 65535 ? raw - done : 65535;

		*p++ = done + n == raw;	/* BFINAL, stored */
		*p++ = (unsigned char)n;
		*p++ = (unsigned char)(n >> 8);
		*p++ = (unsigned char)~n;
		*p++ = (unsigned char)(~n >> 8);
		for (size_t i = 0; i < n; i++, done++) {	/* filter byte 0, then R, G, B */
			const unsigned *px = (const unsigned *)((const char *)pixels + y * stride);
			unsigned char v = x == 0 ? 0 : (unsigned char)(px[(x - 1) / 3] >> (16 - 8 * ((x - 1) % 3)));

			*p++ = v;
			a = (a + v) % 65521;
			b = (b + a) % 65521;
			if (++x == row) {
				x = 0;
				y++;
			}
		}
	}
	put32(p, b << 16 | a);
	p += 4;
	f = fopen(path, "wb");
	if (!f) {
		free(z);
		return -errno;
	}
	err = fwrite(signature, 1, 8, f) == 8 ? 0 : -EIO;
	if (!err)
		err = chunk(f, "IHDR", ihdr, sizeof(ihdr));
	if (!err)
		err = chunk(f, "IDAT", z, (size_t)(p - z));
	if (!err)
		err = chunk(f, "IEND", NULL, 0);
	if (fclose(f) && !err)
		err = -errno;
	free(z);
	return err;
}
