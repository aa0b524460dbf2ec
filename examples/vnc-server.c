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
#include <getopt.h>
#include <rfb/rfb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

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

/* The frame as PPM, through the server's pixel format (what a client sees). */
static int write_ppm(const char *path, const struct scene *s, const rfbPixelFormat *pf)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return -1;
	fprintf(f, "P6\n%u %u\n255\n", s->fb.width, s->fb.height);
	for (unsigned y = 0; y < s->fb.height; y++) {
		const uint32_t *row = (const uint32_t *)(s->pixels + y * s->fb.stride);

		for (unsigned x = 0; x < s->fb.width; x++) {
			unsigned char rgb[3] = {
				(unsigned char)((row[x] >> pf->redShift) & pf->redMax),
				(unsigned char)((row[x] >> pf->greenShift) & pf->greenMax),
				(unsigned char)((row[x] >> pf->blueShift) & pf->blueMax),
			};

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

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vnc-server [OPTIONS]\n"
		"Serves an animated framebuffer over VNC on 127.0.0.1; damage comes from\n"
		"libcohmem's dirty rectangles.\n\n"
		"  -p, --port N         TCP port (default 5900; 0: the first free one from 5900)\n"
		"  -W, --width N        pixels (default 640)\n"
		"  -H, --height N       pixels (default 480)\n"
		"  -n, --frames N       animate this many frames, then stop at a sync point\n"
		"                       (default 0: animate until interrupted)\n"
		"  -i, --interval MS    time between damage passes (default 16)\n"
		"  -m, --max-rects N    rectangles per pass at most (default 32)\n"
		"  -s, --sync-file F    at the sync point, write the frame there as PPM\n"
		"  -b, --backend NAME   auto (default), uffd-async, uffd-sync, soft-dirty, mprotect\n"
		"  -h, --help           this text\n");
}

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' }, { "width", required_argument, NULL, 'W' },
		{ "height", required_argument, NULL, 'H' }, { "frames", required_argument, NULL, 'n' },
		{ "interval", required_argument, NULL, 'i' }, { "max-rects", required_argument, NULL, 'm' },
		{ "sync-file", required_argument, NULL, 's' }, { "backend", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	struct scene_options so;
	struct scene s;
	int port = 5900, opt, err;
	unsigned frames = 0, interval = 16, frame = 0;
	size_t max = 32;
	const char *sync_file = NULL;
	unsigned char *shadow;
	struct cohmem_rect *rects;
	rfbScreenInfoPtr screen;
	struct timeval next;
	int one = 1;

	scene_defaults(&so);
	while ((opt = getopt_long(argc, argv, "p:W:H:n:i:m:s:b:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'W': so.width = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'H': so.height = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'n': frames = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'i': interval = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'm': max = strtoul(optarg, NULL, 0); break;
		case 's': sync_file = optarg; break;
		case 'b':
			if (scene_backend(optarg, &so.backend)) {
				fprintf(stderr, "vnc-server: unknown backend '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !so.width || !so.height || !max || port < 0) {
		usage(stderr);
		return 2;
	}
	err = scene_open(&s, &so);
	shadow = calloc(s.fb.stride, so.height);
	rects = calloc(max, sizeof(*rects));
	if (err || !shadow || !rects) {
		fprintf(stderr, "vnc-server: %s\n", strerror(err ? -err : ENOMEM));
		return 1;
	}

	screen = rfbGetScreen(&one, argv, (int)so.width, (int)so.height, 8, 3, 4);
	if (!screen)
		return 1;
	screen->frameBuffer = (char *)shadow;	/* the device copy: what the clients have */
	screen->paddedWidthInBytes = (int)s.fb.stride;
	screen->desktopName = "cohmem";
	screen->cursor = NULL;	/* the framebuffer draws its own; libvncserver's would be painted into updates */
	screen->alwaysShared = TRUE;
	screen->newClientHook = new_client;
	screen->port = port ? port : 5900;
	screen->autoPort = port == 0;
	screen->ipv6port = 0;	/* IPv4 loopback only */
	rfbStringToAddr("127.0.0.1", &screen->listenInterface);
	rfbLogEnable(0);
	rfbInitServer(screen);
	if (screen->listenSock == RFB_INVALID_SOCKET) {
		fprintf(stderr, "vnc-server: cannot listen on 127.0.0.1:%d\n", screen->port);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("vnc-server: listening on 127.0.0.1:%d, %ux%u, %s backend\n", screen->port, so.width,
	       so.height, cohmem_backend_name(cohmem_region_backend(s.r)));
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
		next.tv_usec += (long)interval * 1000;
		next.tv_sec += next.tv_usec / 1000000;
		next.tv_usec %= 1000000;
		if (!s.running)
			continue;
		if (frames && ++frame == frames) {
			scene_stop(&s);	/* the sync point: nothing changes from here on */
			mark_damage(screen, &s, shadow, rects, max);
			if (sync_file && write_ppm(sync_file, &s, &screen->serverFormat)) {
				perror(sync_file);
				return 1;
			}
			printf("vnc-server: sync point after %u frames%s%s\n", frames,
			       sync_file ? ", frame in " : "", sync_file ? sync_file : "");
			fflush(stdout);
			continue;
		}
		mark_damage(screen, &s, shadow, rects, max);
	}
	rfbShutdownServer(screen, TRUE);	/* disconnects: the clients' statistics are counted */
	printf("vnc-server: %llu damage passes; sent %llu bytes (raw encoding would be %llu); "
	       "a full frame per pass would be %llu bytes\n",
	       updates, sent_bytes, raw_bytes, updates * so.width * so.height * 4ULL);
	rfbScreenCleanup(screen);
	scene_close(&s);
	free(shadow);
	free(rects);
	return 0;
}
