/* SPDX-License-Identifier: MIT */
/*
 * vnc-server: a libvncserver server on 127.0.0.1 for an animated framebuffer,
 * with damage from libcohmem instead of polling or hand-marked rectangles.
 *
 * libvncserver serves a device copy of the tracked framebuffer; every
 * interval the loop turns the pages written since the last look into
 * rectangles, refines them against the copy (so a blinking cursor is a
 * cursor), copies them into it and marks them with rfbMarkRectAsModified().
 * The copy is what the clients have: serving the tracked memory itself would
 * let a send catch a pixel newer than the copy, and a pixel that then went
 * back to the copy's value would never be sent again. After --frames frames the
 * animation stops at a sync point: a last damage pass, then the frame is
 * written to --sync-file as PPM and the server keeps serving until SIGINT or
 * SIGTERM. At exit it prints what it sent beside what raw and full-frame
 * updates would have cost.
 */
#include <errno.h>
#include <rfb/rfb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "options.h"
#include "scene.h"

static volatile sig_atomic_t quit;
static unsigned long long sent_bytes, raw_bytes, updates;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void client_gone(rfbClientPtr cl)
{
	sent_bytes += (unsigned long long)rfbStatGetSentBytes(cl);
	raw_bytes += (unsigned long long)rfbStatGetSentBytesIfRaw(cl);
}

static enum rfbNewClientAction new_client(rfbClientPtr cl)
{
	cl->clientGoneHook = client_gone;
	return RFB_CLIENT_ACCEPT;
}

/* The frame as PPM, from the scene's own pixels (0x00RRGGBB): what a client must see. */
static int write_ppm(const char *path, const struct scene *s)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return -1;
	fprintf(f, "P6\n%u %u\n255\n", s->fb.width, s->fb.height);
	for (unsigned y = 0; y < s->fb.height; y++) {
		const uint32_t *row = (const uint32_t *)(s->pixels + y * s->fb.stride);

		for (unsigned x = 0; x < s->fb.width; x++) {
			unsigned char rgb[3] = { (unsigned char)(row[x] >> 16), (unsigned char)(row[x] >> 8),
						 (unsigned char)row[x] };

			fwrite(rgb, 1, 3, f);
		}
	}
	return fclose(f);
}

/* Bring the device copy up to date and mark what changed in it: sent from there. */
static long mark_damage(rfbScreenInfoPtr screen, struct scene *s, unsigned char *shadow,
			struct cohmem_rect *rects, size_t max)
{
	long dirty, n = scene_damage(s, shadow, rects, max, &dirty);

	if (n < 0) {
		fprintf(stderr, "vnc-server: %s\n", strerror((int)-n));
		exit(1);
	}
	cohmem_fb_copy(&s->fb, shadow, s->pixels, rects, (size_t)n);
	for (long i = 0; i < n; i++)
		rfbMarkRectAsModified(screen, (int)rects[i].x, (int)rects[i].y,
				      (int)(rects[i].x + rects[i].w), (int)(rects[i].y + rects[i].h));
	updates += n > 0;
	return n;
}

struct server_options {
	struct scene_options so;
	int port;
	unsigned frames, interval;
	size_t max;
	const char *sync_file;
};

static int parse(struct server_options *o, int argc, char *argv[])
{
	const struct option_spec specs[] = {
		{ "port", 'p', OPTION_INT, &o->port, "TCP port (0: the first free one from 5900)" },
		OPTION_WIDTH(&o->so.width),
		OPTION_HEIGHT(&o->so.height),
		{ "frames", 'n', OPTION_UNSIGNED, &o->frames,
		  "animate this many frames, then stop at a sync point (0: until interrupted)" },
		OPTION_INTERVAL(&o->interval),
		OPTION_MAX_RECTS(&o->max),
		{ "sync-file", 's', OPTION_STRING, &o->sync_file, "at the sync point, write the frame there as PPM" },
		OPTION_BACKEND(&o->so.backend),
		{ 0 },
	};

	return scene_parse("Usage: vnc-server [OPTIONS]\n"
			   "Serves an animated framebuffer over VNC on 127.0.0.1; damage comes from\n"
			   "libcohmem's dirty rectangles.\n",
			   specs, &o->so, &o->max, argc, argv);
}

/* A libvncserver screen on 127.0.0.1 whose framebuffer is shadow (what the clients have), or NULL. */
static rfbScreenInfoPtr serve(const struct server_options *o, const struct scene *s, unsigned char *shadow,
			      char *argv[])
{
	int one = 1;
	rfbScreenInfoPtr screen = rfbGetScreen(&one, argv, (int)o->so.width, (int)o->so.height, 8, 3, 4);

	if (!screen)
		return NULL;
	/*
	 * The frame is 0x00RRGGBB; libvncserver's default format for 32 bits
	 * puts red in the low byte, and every client showed red and blue swapped.
	 */
	screen->serverFormat.redShift = 16;
	screen->serverFormat.greenShift = 8;
	screen->serverFormat.blueShift = 0;
	screen->frameBuffer = (char *)shadow;
	screen->paddedWidthInBytes = (int)s->fb.stride;
	screen->desktopName = "cohmem";
	screen->cursor = NULL;	/* the framebuffer draws its own; libvncserver's would be painted into updates */
	screen->alwaysShared = TRUE;
	screen->newClientHook = new_client;
	screen->port = o->port ? o->port : 5900;
	screen->autoPort = o->port == 0;
	screen->ipv6port = 0;	/* IPv4 loopback only */
	rfbStringToAddr("127.0.0.1", &screen->listenInterface);
	rfbLogEnable(0);
	rfbInitServer(screen);
	if (screen->listenSock == RFB_INVALID_SOCKET) {
		fprintf(stderr, "vnc-server: cannot listen on 127.0.0.1:%d\n", screen->port);
		rfbScreenCleanup(screen);
		return NULL;
	}
	return screen;
}

/* Stop the animation, send the last damage, and write the frame for vnc-check. 0 or -1. */
static int sync_point(const struct server_options *o, rfbScreenInfoPtr screen, struct scene *s,
		      unsigned char *shadow, struct cohmem_rect *rects)
{
	scene_stop(s);	/* nothing changes from here on */
	mark_damage(screen, s, shadow, rects, o->max);
	if (o->sync_file && write_ppm(o->sync_file, s)) {
		perror(o->sync_file);
		return -1;
	}
	printf("vnc-server: sync point after %u frames%s%s\n", o->frames, o->sync_file ? ", frame in " : "",
	       o->sync_file ? o->sync_file : "");
	fflush(stdout);
	return 0;
}

int main(int argc, char *argv[])
{
	struct server_options o = { .port = 5900, .interval = 16, .max = 32 };
	struct scene s;
	unsigned frame = 0;
	unsigned char *shadow;
	struct cohmem_rect *rects;
	rfbScreenInfoPtr screen;
	struct timeval next;
	int status = parse(&o, argc, argv), err;

	if (status >= 0)
		return status;
	err = scene_open(&s, &o.so);
	shadow = calloc(s.fb.stride, o.so.height);
	rects = calloc(o.max, sizeof(*rects));
	if (err || !shadow || !rects) {
		fprintf(stderr, "vnc-server: %s\n", strerror(err ? -err : ENOMEM));
		return 1;
	}

	screen = serve(&o, &s, shadow, argv);
	if (!screen)
		return 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("vnc-server: listening on 127.0.0.1:%d, %ux%u, %s backend\n", screen->port, o.so.width,
	       o.so.height, cohmem_backend_name(cohmem_region_backend(s.r)));
	fflush(stdout);

	scene_start(&s);
	gettimeofday(&next, NULL);
	while (!quit) {
		struct timeval now;

		rfbProcessEvents(screen, 2000);
		gettimeofday(&now, NULL);
		if (timercmp(&now, &next, <))
			continue;
		next = now;
		next.tv_usec += (long)o.interval * 1000;
		next.tv_sec += next.tv_usec / 1000000;
		next.tv_usec %= 1000000;
		if (!s.running)
			continue;
		if (o.frames && ++frame == o.frames) {
			if (sync_point(&o, screen, &s, shadow, rects))
				return 1;
			continue;
		}
		mark_damage(screen, &s, shadow, rects, o.max);
	}
	rfbShutdownServer(screen, TRUE);	/* disconnects: the clients' statistics are counted */
	printf("vnc-server: %llu damage passes; sent %llu bytes (raw encoding would be %llu); "
	       "a full frame per pass would be %llu bytes\n",
	       updates, sent_bytes, raw_bytes, updates * o.so.width * o.so.height * 4ULL);
	rfbScreenCleanup(screen);
	scene_close(&s);
	free(shadow);
	free(rects);
	return 0;
}
