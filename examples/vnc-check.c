/* SPDX-License-Identifier: MIT */
/*
 * vnc-check: a VNC client (libvncclient's RFB implementation) that follows a
 * server's incremental updates and, once the server has reached its sync
 * point (its --sync-file exists), checks that the picture it received equals
 * the server's frame. Only incremental updates are requested, so a rectangle
 * the server's damage missed would show as a difference.
 */
#include <rfb/rfbclient.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "options.h"

static unsigned long long updates;

static void quiet(const char *fmt, ...)
{
	(void)fmt;
}

static void got_update(rfbClient *client, int x, int y, int w, int h)
{
	(void)client, (void)x, (void)y, (void)w, (void)h;
	updates++;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char mismatch[128];	/* what the first difference was */

/* The first differing pixel of the client's picture and the PPM, or -1 if equal; -2: bad PPM. */
static long compare(rfbClient *c, const char *ppm)
{
	FILE *f = fopen(ppm, "rb");
	unsigned w, h, maxval;
	const rfbPixelFormat *pf = &c->format;
	long first = -1;

	if (!f || fscanf(f, "P6 %u %u %u", &w, &h, &maxval) != 3 || fgetc(f) == EOF ||
	    w != (unsigned)c->width || h != (unsigned)c->height || maxval != 255) {
		if (f)
			fclose(f);
		return -2;
	}
	for (unsigned long i = 0; i < (unsigned long)w * h && first < 0; i++) {
		uint32_t px = ((const uint32_t *)c->frameBuffer)[i];
		int r = fgetc(f), g = fgetc(f), b = fgetc(f);

		if (b == EOF)
			first = -2;
		else if ((unsigned)r != ((px >> pf->redShift) & pf->redMax) ||
			 (unsigned)g != ((px >> pf->greenShift) & pf->greenMax) ||
			 (unsigned)b != ((px >> pf->blueShift) & pf->blueMax)) {
			first = (long)i;
			snprintf(mismatch, sizeof(mismatch), "received %02x%02x%02x, the server has %02x%02x%02x",
				 (px >> pf->redShift) & pf->redMax, (px >> pf->greenShift) & pf->greenMax,
				 (px >> pf->blueShift) & pf->blueMax, r, g, b);
		}
	}
	fclose(f);
	return first;
}

int main(int argc, char *argv[])
{
	const char *sync_file = NULL;
	unsigned timeout = 60;
	double start = now_s(), synced = 0, last_update = 0;
	unsigned long long seen = 0;
	int port = 0;
	const struct option_spec specs[] = {
		{ "port", 'p', OPTION_INT, &port, "the server's TCP port on 127.0.0.1" },
		{ "sync-file", 's', OPTION_STRING, &sync_file, "the server's frame (PPM) at its sync point" },
		{ "timeout", 't', OPTION_UNSIGNED, &timeout, "seconds to wait for a matching picture" },
		{ 0 },
	};
	int status = options_parse("Usage: vnc-check --port N --sync-file F [--timeout S]\n"
				   "Follows a VNC server on 127.0.0.1:N and, once F exists, checks that the\n"
				   "picture received equals the frame in F (PPM). Exit 0 if it does.\n",
				   specs, argc, argv);
	struct stat st;
	rfbClient *c;
	long diff = -2;

	if (status >= 0)
		return status;
	if (!port || !sync_file) {
		fprintf(stderr, "vnc-check: --port and --sync-file are needed\n");
		return 2;
	}
	rfbClientLog = rfbClientErr = quiet;
	c = rfbGetClient(8, 3, 4);
	free(c->serverHost);	/* rfbGetClient's default */
	c->serverHost = strdup("127.0.0.1");
	c->serverPort = port;
	c->GotFrameBufferUpdate = got_update;
	if (!rfbInitClient(c, NULL, NULL)) {	/* frees c on failure */
		fprintf(stderr, "vnc-check: cannot connect to 127.0.0.1:%d\n", port);
		return 1;
	}
	while (now_s() - start < timeout) {
		int ready = WaitForMessage(c, 50000);

		if (ready < 0 || (ready > 0 && !HandleRFBServerMessage(c))) {
			fprintf(stderr, "vnc-check: the connection failed\n");
			return 1;
		}
		if (updates != seen) {
			seen = updates;
			last_update = now_s();
		}
		if (!synced && stat(sync_file, &st) == 0)
			synced = now_s();
		/* After the sync point, compare once the updates have been quiet for a while. */
		if (synced && now_s() - last_update > 0.5 && now_s() - synced > 0.5) {
			diff = compare(c, sync_file);
			if (diff == -1)
				break;
			last_update = now_s();	/* maybe still on its way: look again later */
		}
	}
	if (diff != -1) {
		if (diff == -2)
			fprintf(stderr, "vnc-check: no usable frame in %s\n", sync_file);
		else
			fprintf(stderr, "vnc-check: FAILED: pixel %ld,%ld differs from the server's frame: %s\n",
				diff % c->width, diff / c->width, mismatch);
		return 1;
	}
	printf("vnc-check: %dx%d, %llu rectangles received; the picture equals the server's frame at "
	       "its sync point\n",
	       c->width, c->height, updates);
	free(c->frameBuffer);	/* the caller's: rfbClientCleanup() leaves it */
	rfbClientCleanup(c);
	return 0;
}
