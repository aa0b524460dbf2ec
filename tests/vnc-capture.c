/* SPDX-License-Identifier: MIT */
/*
 * vnc-capture: connect to a VNC server, take its first full frame in a
 * 32-bit format (libvncclient translates nothing: the server does), write
 * it as PNG (libpng), and leave.
 *
 *   vnc-capture HOST PORT FILE.png
 *   vnc-capture --follow HOST PORT FILE.png   (a capture per line "capture" on stdin)
 *
 * A second client beside gvnccapture: gtk-vnc 1.3.1 shows a 16-bit
 * server's red (0xf800) as c007c0, x11vnc's as well as cohmem-vnc's.
 * It waits for a frame as long as the connection lasts, however slow the
 * machine: its caller bounds the wait (timeout(1), read -t).
 * Exit 0, or 1 with the reason.
 */
#define _GNU_SOURCE
#include <png.h>
#include <rfb/rfbclient.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rfbBool got_frame;
static unsigned long long got_pixels;	/* in rectangles of the update under way */

static void got_rect(rfbClient *c, int x, int y, int w, int h)
{
	(void)c, (void)x, (void)y;
	got_pixels += (unsigned long long)w * (unsigned long long)h;
}

/* An update ends: the frame is in once an update brought as many pixels as it has. */
static void update_done(rfbClient *c)
{
	got_frame = got_pixels >= (unsigned long long)c->width * (unsigned long long)c->height;
	got_pixels = 0;
}

static void quiet(const char *format, ...)
{
	(void)format;
}

static int write_png(const char *path, const rfbClient *c)
{
	FILE *f = fopen(path, "wb");
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	unsigned char *row = malloc((size_t)c->width * 3);

	if (!f || !info || !row || setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		free(row);
		if (f)
			fclose(f);
		return -1;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)c->width, (png_uint_32)c->height, 8, PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < c->height; y++) {
		const uint32_t *px = (const uint32_t *)c->frameBuffer + (size_t)y * c->width;

		/* rfbGetClient(8, 3, 4): red in bits 0-7, green 8-15, blue 16-23 */
		for (int x = 0; x < c->width; x++) {
			row[3 * x] = (unsigned char)px[x];
			row[3 * x + 1] = (unsigned char)(px[x] >> 8);
			row[3 * x + 2] = (unsigned char)(px[x] >> 16);
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	return fclose(f);
}

/*
 * Whether a server message can be read within usecs: one libvncclient has
 * already read into its buffer is, and WaitForMessage() (a select() on the
 * socket) does not see those. Two updates that arrive together (the
 * server's pseudo-encodings, then the frame) are read at once; waiting on
 * the socket for the second one waited for good (raw-vnc, under load).
 */
static int message_ready(rfbClient *c, unsigned usecs)
{
	return c->buffered ? 1 : WaitForMessage(c, usecs);
}

/* Serve the connection until an update has brought a whole frame's pixels: false if it ends first. */
static bool wait_frame(rfbClient *c)
{
	got_frame = FALSE;
	while (!got_frame) {
		int ready = message_ready(c, 1000000);

		if (ready < 0 || (ready > 0 && !HandleRFBServerMessage(c)))
			return false;
	}
	return true;
}

/* --follow: a line "capture" on stdin asks for the whole frame again and writes it; EOF ends. */
static int follow(rfbClient *c, const char *path)
{
	char line[64];

	while (fgets(line, sizeof(line), stdin)) {
		if (strcmp(line, "capture\n"))
			continue;
		/* Everything up to now first (a resize included), then the frame as it is. */
		while (message_ready(c, 50000) > 0)
			if (!HandleRFBServerMessage(c))
				return 1;
		if (!SendFramebufferUpdateRequest(c, 0, 0, c->width, c->height, FALSE) || !wait_frame(c) ||
		    write_png(path, c))
			return fprintf(stderr, "vnc-capture: no frame\n"), 1;
		printf("captured %dx%d\n", c->width, c->height);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char *argv[])
{
	bool following = argc == 5 && !strcmp(argv[1], "--follow");
	char **arg = argv + following;
	rfbClient *c;
	int status = 1;

	if (argc != 4 + following) {
		fprintf(stderr, "usage: vnc-capture [--follow] HOST PORT FILE.png\n");
		return 2;
	}
	rfbClientLog = quiet;
	c = rfbGetClient(8, 3, 4);
	free(c->serverHost);	/* rfbGetClient()'s "": rfbClientCleanup() frees ours */
	c->serverHost = strdup(arg[1]);
	c->serverPort = atoi(arg[2]);
	c->GotFrameBufferUpdate = got_rect;
	c->FinishedFrameBufferUpdate = update_done;
	if (!rfbInitClient(c, NULL, NULL)) {
		fprintf(stderr, "vnc-capture: cannot connect to %s:%s\n", arg[1], arg[2]);
		return 1;
	}
	/*
	 * rfbInitClient() asked for the whole frame, after its pixel format; the
	 * updates that end first may hold only pseudo-encodings (what the
	 * server supports, its name): wait for the one that holds the pixels.
	 */
	if (!wait_frame(c))
		fprintf(stderr, "vnc-capture: the connection ended before a whole frame\n");
	else if (following)
		status = follow(c, arg[3]);
	else if (write_png(arg[3], c))
		fprintf(stderr, "vnc-capture: cannot write %s\n", arg[3]);
	else
		status = 0;
	free(c->frameBuffer);	/* libvncclient allocates it, rfbClientCleanup() leaves it */
	rfbClientCleanup(c);
	return status;
}
