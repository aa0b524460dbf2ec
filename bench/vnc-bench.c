/* SPDX-License-Identifier: MIT */
/*
 * vnc-bench: one VNC server under one workload, as a client sees it.
 *
 *   vnc-bench --port N --display :D --pids PID,... [--helpers PID,...]
 *             --workload idle|typing|window|full [--seconds S] [--probes P]
 *
 * It draws the workload on the X display itself (Xlib, TrueColor 24), is
 * a libvncclient client of the server (Tight, ZRLE, Hextile or raw, no
 * JPEG: lossless for every server), and measures:
 *  - CPU seconds per second of the server's processes (--pids: their
 *    threads' run time from /proc/PID/task/ * /schedstat, nanoseconds; the
 *    threads that ended, at clock-tick resolution) and of --helpers (the
 *    daemon, the X server): the work the server makes others do;
 *  - bytes the client received (TCP_INFO's tcpi_bytes_received);
 *  - latency: with the workload still running, a 16x16 square in the top
 *    right corner changes colour P times; from XSync() after the drawing to
 *    the update that shows the new colour at the client. A probe not shown
 *    within PROBE_WAIT_S counts as that long (the median and p90 say "at
 *    least"), and "probes N/P" says how many were shown: a measurement, not
 *    a failure (a loaded machine can make any server that slow).
 * Prints one line, for bench/vnc-compare.sh to read:
 *   workload W cpu C helpers H bytes B updates U latency_ms MEDIAN P90 probes N/P
 * Exits 0 once it measured, 1 if it could not (no connection, no display).
 */
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <dirent.h>
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <rfb/rfbclient.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "proc-cpu.h"

#define MAX_PIDS 16
#define MAX_PROBES 200
#define PROBE 16
#define PROBE_WAIT_S 5.0

struct options {
	int port, seconds, probes;
	const char *display, *workload;
	pid_t pids[MAX_PIDS], helpers[MAX_PIDS];
	unsigned npids, nhelpers;
};

struct workload {
	Display *dpy;
	Window root, win;
	GC gc;
	int width, height;
	unsigned tick;
	double period;		/* seconds between ticks */
	XImage *frames[2];	/* full: what it alternates */
	void (*step)(struct workload *w);
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(struct workload *w, Drawable d, unsigned long rgb, int x, int y, int width, int height)
{
	XSetForeground(w->dpy, w->gc, rgb);
	XFillRectangle(w->dpy, d, w->gc, x, y, (unsigned)width, (unsigned)height);
}

/* Typing: a character cell every 100 ms along a line, and a cursor that blinks after it. */
static void typing_step(struct workload *w)
{
	int col = (int)(w->tick % 60), row = (int)(w->tick / 60 % 20), x = 40 + col * 8, y = 100 + row * 16;

	fill(w, w->root, 0x202020 + (w->tick % 7) * 0x101010, x, y + 2, 7, 12);
	fill(w, w->root, w->tick % 2 ? 0xffffff : 0x808080, x + 8, y, 2, 16);
}

/* A 320x240 window moving along the screen, 30 steps a second. */
static void window_step(struct workload *w)
{
	int span = w->width - 320 - PROBE, x = (int)(w->tick * 8 % (unsigned)(2 * span));

	XMoveWindow(w->dpy, w->win, x < span ? x : 2 * span - x, 120 + (int)(w->tick % 40));
}

/*
 * The whole screen (but the probe's corner) new, 10 times a second: one of
 * two pictures of noise over gradients, which no encoding squeezes much.
 */
static void full_step(struct workload *w)
{
	XImage *img = w->frames[w->tick % 2];

	XPutImage(w->dpy, w->root, w->gc, img, 0, PROBE, 0, PROBE, (unsigned)w->width, (unsigned)(w->height - PROBE));
	XPutImage(w->dpy, w->root, w->gc, img, 0, 0, 0, 0, (unsigned)(w->width - PROBE), PROBE);
}

static XImage *noise_picture(struct workload *w, unsigned seed)
{
	Visual *v = DefaultVisual(w->dpy, DefaultScreen(w->dpy));
	uint32_t *px = malloc((size_t)w->width * (size_t)w->height * 4);

	if (!px)
		return NULL;
	for (int y = 0; y < w->height; y++)
		for (int x = 0; x < w->width; x++) {
			seed = seed * 1103515245u + 12345u;
			px[(size_t)y * (size_t)w->width + (size_t)x] =
				((uint32_t)(x * 255 / w->width) << 16 | (uint32_t)(y * 255 / w->height) << 8 |
				 (seed >> 16 & 0xff)) & 0xffffff;
		}
	return XCreateImage(w->dpy, v, 24, ZPixmap, 0, (char *)px, (unsigned)w->width, (unsigned)w->height, 32, 0);
}

static int workload_open(struct workload *w, const struct options *o)
{
	XSetWindowAttributes a = { .background_pixel = 0xe0c000, .override_redirect = True };

	w->dpy = XOpenDisplay(o->display);
	if (!w->dpy)
		return -1;
	w->root = DefaultRootWindow(w->dpy);
	w->width = DisplayWidth(w->dpy, DefaultScreen(w->dpy));
	w->height = DisplayHeight(w->dpy, DefaultScreen(w->dpy));
	w->gc = XCreateGC(w->dpy, w->root, 0, NULL);
	XSetWindowBackground(w->dpy, w->root, 0x404040);
	XClearWindow(w->dpy, w->root);
	if (!strcmp(o->workload, "typing")) {
		w->step = typing_step, w->period = 0.1;
	} else if (!strcmp(o->workload, "window")) {
		w->win = XCreateWindow(w->dpy, w->root, 0, 120, 320, 240, 0, CopyFromParent, InputOutput,
				       CopyFromParent, CWBackPixel | CWOverrideRedirect, &a);
		XMapRaised(w->dpy, w->win);
		w->step = window_step, w->period = 1.0 / 30;
	} else if (!strcmp(o->workload, "full")) {
		w->frames[0] = noise_picture(w, 1);
		w->frames[1] = noise_picture(w, 2);
		if (!w->frames[0] || !w->frames[1])
			return -1;
		w->step = full_step, w->period = 0.1;
	} else if (strcmp(o->workload, "idle")) {
		return -1;
	}
	XSync(w->dpy, False);
	return 0;
}

static void workload_close(struct workload *w)
{
	for (int i = 0; i < 2; i++)
		if (w->frames[i])
			XDestroyImage(w->frames[i]);	/* and the pixels it was made of */
	if (w->win)
		XDestroyWindow(w->dpy, w->win);
	XFreeGC(w->dpy, w->gc);
	XCloseDisplay(w->dpy);
}

/* Run time of a process (proc-cpu.h), s. */
static double cpu_seconds(pid_t pid)
{
	return proc_cpu_seconds(pid);
}

static double cpu_of(const pid_t *pids, unsigned n)
{
	double sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += cpu_seconds(pids[i]);
	return sum;
}

static unsigned long long received(rfbClient *c)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	return getsockopt(c->sock, IPPROTO_TCP, TCP_INFO, &ti, &len) ? 0 : ti.tcpi_bytes_received;
}

/* Probe colours: TrueColor 24, so the pixel is 0xRRGGBB; the client has red in its low byte. */
static unsigned long probe_colour(unsigned i)
{
	static const unsigned long c[] = { 0xff0000, 0x00ff00, 0x0000ff, 0xffff00, 0x00ffff, 0xff00ff };

	return c[i % 6];
}

static bool client_shows(rfbClient *c, int x, int y, unsigned long rgb)
{
	uint32_t px = ((const uint32_t *)c->frameBuffer)[(size_t)y * c->width + x];

	return (px & 0xff) == (rgb >> 16 & 0xff) && (px >> 8 & 0xff) == (rgb >> 8 & 0xff) &&
	       (px >> 16 & 0xff) == (rgb & 0xff);
}

/* Serve the client's messages (and the workload's ticks) until `until`, or until shown() holds. */
static void run_until(rfbClient *c, struct workload *w, double until, double *next_tick,
		      bool (*shown)(rfbClient *, void *), void *arg)
{
	while (now() < until) {
		double t = now(), wait = until - t;

		if (w->step && t >= *next_tick) {
			w->step(w);
			XSync(w->dpy, False);
			w->tick++;
			*next_tick += w->period;
		}
		if (w->step && *next_tick - now() < wait)
			wait = *next_tick - now();
		/* c->buffered: a message libvncclient read with the last one; the socket does not show it. */
		if (wait > 0 && (c->buffered || WaitForMessage(c, (unsigned)(wait * 1e6) + 1) > 0) &&
		    !HandleRFBServerMessage(c)) {
			fprintf(stderr, "vnc-bench: the server closed the connection\n");
			exit(1);
		}
		if (shown && shown(c, arg))
			return;
	}
}

struct probe {
	int x, y;
	unsigned long rgb;
};

static bool probe_shown(rfbClient *c, void *arg)
{
	const struct probe *p = arg;

	return client_shows(c, p->x, p->y, p->rgb);
}

static unsigned long long updates;	/* FramebufferUpdates received */

static void update_done(rfbClient *c)
{
	(void)c;
	updates++;
}

static void quiet(const char *format, ...)
{
	(void)format;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int parse_pids(const char *s, pid_t *out, unsigned *n)
{
	char *end;

	for (*n = 0; *s && *n < MAX_PIDS; s = *end ? end + 1 : end) {
		long v = strtol(s, &end, 10);

		if (end == s || v <= 0 || (*end && *end != ','))
			return -1;
		out[(*n)++] = (pid_t)v;
	}
	return *n ? 0 : -1;
}

static int parse(struct options *o, int argc, char *argv[])
{
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];

		if (!strcmp(k, "--port"))
			o->port = atoi(v);
		else if (!strcmp(k, "--display"))
			o->display = v;
		else if (!strcmp(k, "--workload"))
			o->workload = v;
		else if (!strcmp(k, "--seconds"))
			o->seconds = atoi(v);
		else if (!strcmp(k, "--probes"))
			o->probes = atoi(v);
		else if (!strcmp(k, "--pids") ? parse_pids(v, o->pids, &o->npids)
		       : !strcmp(k, "--helpers") ? parse_pids(v, o->helpers, &o->nhelpers) : 1)
			return -1;
	}
	return o->port > 0 && o->display && o->workload && o->npids && o->seconds > 0 && o->probes >= 0 &&
			       o->probes <= MAX_PROBES && argc % 2 == 1
		       ? 0
		       : -1;
}

int main(int argc, char *argv[])
{
	struct options o = { .seconds = 10, .probes = 20 };
	struct workload w = { 0 };
	double lat[MAX_PROBES], t0, cpu0, help0, next_tick;
	unsigned long long bytes0;
	unsigned got = 0;
	rfbClient *c;

	if (parse(&o, argc, argv) || workload_open(&w, &o)) {
		fprintf(stderr, "usage: vnc-bench --port N --display :D --pids PID,... [--helpers PID,...]\n"
				"                 --workload idle|typing|window|full [--seconds S] [--probes P]\n");
		return 2;
	}
	rfbClientLog = quiet;
	c = rfbGetClient(8, 3, 4);
	free(c->serverHost);	/* rfbGetClient()'s "": rfbClientCleanup() frees ours */
	c->serverHost = strdup("127.0.0.1");
	c->serverPort = o.port;
	c->appData.encodingsString = "tight zrle hextile raw";
	c->appData.enableJPEG = FALSE;
	c->appData.compressLevel = 1;
	c->FinishedFrameBufferUpdate = update_done;
	if (!rfbInitClient(c, NULL, NULL))
		return fprintf(stderr, "vnc-bench: cannot connect to port %d\n", o.port), 1;
	/* Settle: the first full frame, and a second of the workload before counting. */
	next_tick = now();
	run_until(c, &w, now() + 1.0, &next_tick, NULL, NULL);

	t0 = now();
	cpu0 = cpu_of(o.pids, o.npids);
	help0 = cpu_of(o.helpers, o.nhelpers);
	bytes0 = received(c);
	unsigned long long updates0 = updates;
	run_until(c, &w, t0 + o.seconds, &next_tick, NULL, NULL);
	double elapsed = now() - t0, cpu = (cpu_of(o.pids, o.npids) - cpu0) / elapsed,
	       help = (cpu_of(o.helpers, o.nhelpers) - help0) / elapsed;
	unsigned long long bytes = received(c) - bytes0, nupdates = updates - updates0;

	for (int i = 0; i < o.probes; i++) {
		struct probe p = { w.width - PROBE / 2, PROBE / 2, probe_colour((unsigned)i) };
		double start;

		fill(&w, w.root, p.rgb, w.width - PROBE, 0, PROBE, PROBE);
		XSync(w.dpy, False);
		start = now();
		run_until(c, &w, start + PROBE_WAIT_S, &next_tick, probe_shown, &p);
		got += probe_shown(c, &p);
		lat[i] = probe_shown(c, &p) ? (now() - start) * 1e3 : PROBE_WAIT_S * 1e3;
		run_until(c, &w, now() + 0.1, &next_tick, NULL, NULL);	/* apart, at random phases */
	}
	qsort(lat, (size_t)o.probes, sizeof(lat[0]), compare_double);
	printf("workload %s cpu %.5f helpers %.5f bytes %llu updates %llu latency_ms %.2f %.2f probes %u/%d\n",
	       o.workload, cpu, help, bytes, nupdates, o.probes ? lat[o.probes / 2] : -1.0,
	       o.probes ? lat[o.probes * 9 / 10] : -1.0, got, o.probes);
	free(c->frameBuffer);	/* libvncclient allocates it, rfbClientCleanup() leaves it */
	rfbClientCleanup(c);
	workload_close(&w);
	return 0;
}
