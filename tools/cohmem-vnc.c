/* SPDX-License-Identifier: MIT */
/*
 * cohmem-vnc: a VNC server for a framebuffer file on a cohmemd mount —
 * Xvfb's screen (`Xvfb -fbdir`, an XWD file) or a raw one — whose damage is
 * what cohmemd reports written, not what a poll of the pixels finds.
 *
 * The main thread sleeps in poll(2) on the buffer's descriptor (readable
 * once the daemon has pages for it) and, with --interval, on a timer too.
 * Woken, it asks cohmem_buffer_clean() which pages were written, turns them
 * into rectangles (cohmem_fb_rects()), keeps the pixels that differ from
 * what the clients have (cohmem_fb_damage()), copies those into that copy
 * and marks them modified. libvncserver's threads send from the copy, never
 * from the file: a send that caught a pixel newer than the copy, which then
 * went back to the copy's value, would leave the client wrong for good. An
 * XWD header written again is parsed again, and a new size served as one.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cohmem-buffer.h>
#include <cohmem-fb.h>

#include "fbcopy.h"
#include "fbfile.h"
#include "vnc-x11.h"
#include "vncauth.h"

#define MAX_PAGE_RECTS 256	/* rectangles of dirty pages, before comparing */
#define MAX_RECTS 64		/* rectangles of changed pixels sent per pass */

struct options {
	const char *xwd, *raw, *listen, *format;
	unsigned width, height, interval;
	size_t stride, offset;
	int port;
	bool jpeg;
	const char *display, *rfbauth;
	bool view_only, no_clipboard, no_primary;
};

/* The framebuffer file: mapped read-only, its layout, its dirty pages. */
struct source {
	int fd;
	const struct options *o;
	unsigned char *map;
	size_t map_len, npages;
	off_t size;
	struct fb_file f;
	bool ready;		/* f describes map (else: look again at the next pass) */
	unsigned long *bitmap;
};

/* What the clients have, and the server that sends it. */
struct server {
	rfbScreenInfoPtr screen;
	struct fb_copy copy;	/* what the clients are sent from: it never moves (fbcopy.h) */
	struct cohmem_rect page_rects[MAX_PAGE_RECTS], rects[MAX_RECTS];
	unsigned long long passes, passes_written, looked_at, rects_sent, pixels_sent, resizes, refreshes, replaced;
	unsigned long long input_passes;	/* looks made because a client typed or clicked */
};

static unsigned long long bytes_sent;	/* of clients that left: libvncserver's count */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: cohmem-vnc --xwd FILE [OPTIONS]\n"
		"       cohmem-vnc --raw FILE --geometry WxH --format FORMAT [--stride BYTES] [--offset BYTES] [OPTIONS]\n"
		"Serves a framebuffer file on a cohmemd mount over VNC; damage comes from the\n"
		"pages cohmemd reports written.\n"
		"  --xwd FILE          an XWD file, as `Xvfb -fbdir DIR` keeps DIR/Xvfb_screen0\n"
		"  --raw FILE          raw pixels, laid out by the options below\n"
		"  --geometry WxH      the raw frame's size in pixels\n"
		"  --format FORMAT     %s\n"
		"  --stride BYTES      bytes from one row to the next (default: width x bytes per pixel)\n"
		"  --offset BYTES      where pixel (0, 0) lies in the file (default 0)\n"
		"  --port N            TCP port (default 5900; 0: the first free one from 5900)\n"
		"  --listen ADDR       IPv4 address to listen on (default 127.0.0.1)\n"
		"  --interval MS       also look every MS milliseconds (default 0: only when\n"
		"                      cohmemd says it has pages, which its --interval paces)\n"
		"  --jpeg              let clients that ask for it have lossy Tight (JPEG)\n"
		"  --display :N        the X server to send clients' keys and pointer to, and to share\n"
		"                      clipboard and cursor with (default: the X server that maps\n"
		"                      the --xwd file, found through /proc; none for --raw)\n"
		"  --view-only         clients only look: no keys, pointer or cut text reach X\n"
		"  --rfbauth FILE      ask for the password in FILE (vncpasswd FILE, x11vnc -storepasswd)\n"
		"  --no-clipboard      share no clipboard; --no-primary: CLIPBOARD only, not PRIMARY\n"
		"  -h, --help          this text\n"
		"SIGUSR1 prints what it did so far; SIGINT or SIGTERM stops it.\n",
		fb_raw_format_names());
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > SIZE_MAX / 4)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int parse_options(struct options *o, int argc, char *argv[])
{
	static const struct option longs[] = {
		{ "xwd", required_argument, NULL, 'x' },      { "raw", required_argument, NULL, 'r' },
		{ "geometry", required_argument, NULL, 'g' }, { "format", required_argument, NULL, 'f' },
		{ "stride", required_argument, NULL, 's' },   { "offset", required_argument, NULL, 'o' },
		{ "port", required_argument, NULL, 'p' },     { "listen", required_argument, NULL, 'l' },
		{ "interval", required_argument, NULL, 'i' }, { "jpeg", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "display", required_argument, NULL, 'D' },  { "view-only", no_argument, NULL, 'V' },
		{ "rfbauth", required_argument, NULL, 'A' },  { "no-clipboard", no_argument, NULL, 'N' },
		{ "no-primary", no_argument, NULL, 'P' },
		{ 0 },
	};
	size_t v;
	int c;

	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'x': o->xwd = optarg; break;
		case 'r': o->raw = optarg; break;
		case 'f': o->format = optarg; break;
		case 'l': o->listen = optarg; break;
		case 'j': o->jpeg = true; break;
		case 'D': o->display = optarg; break;
		case 'V': o->view_only = true; break;
		case 'A': o->rfbauth = optarg; break;
		case 'N': o->no_clipboard = true; break;
		case 'P': o->no_primary = true; break;
		case 'g':
			if (sscanf(optarg, "%ux%u", &o->width, &o->height) != 2 || !o->width || !o->height ||
			    o->width > 65535 || o->height > 65535)
				return fprintf(stderr, "cohmem-vnc: --geometry %s: not WxH\n", optarg), 2;
			break;
		case 's':
		case 'o':
			if (parse_size(optarg, c == 's' ? &o->stride : &o->offset))
				return fprintf(stderr, "cohmem-vnc: --%s %s: not a size\n",
					       c == 's' ? "stride" : "offset", optarg), 2;
			break;
		case 'p':
		case 'i':
			if (parse_size(optarg, &v) || v > (c == 'p' ? 65535 : 3600000))
				return fprintf(stderr, "cohmem-vnc: bad %s: %s\n", c == 'p' ? "port" : "interval",
					       optarg), 2;
			*(c == 'p' ? (unsigned *)&o->port : &o->interval) = (unsigned)v;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !o->xwd == !o->raw) {
		fprintf(stderr, "cohmem-vnc: give one of --xwd FILE and --raw FILE\n");
		return 2;
	}
	if (o->raw && (!o->width || !o->format)) {
		fprintf(stderr, "cohmem-vnc: --raw needs --geometry and --format\n");
		return 2;
	}
	if (o->display && (o->display[0] != ':' || !o->display[1] || o->display[1 + strspn(o->display + 1, "0123456789.")])) {
		fprintf(stderr, "cohmem-vnc: --display %s: not :N (a local display)\n", o->display);
		return 2;
	}
	if (o->xwd && (o->width || o->format || o->stride || o->offset)) {
		fprintf(stderr, "cohmem-vnc: an XWD file describes itself: no --geometry, --format, --stride, --offset\n");
		return 2;
	}
	return -1;
}

/* The layout the options give a raw file. */
static int raw_layout(const struct options *o, struct fb_file *f)
{
	if (fb_raw_format(o->format, &f->format)) {
		fprintf(stderr, "cohmem-vnc: --format %s: not one of %s\n", o->format, fb_raw_format_names());
		return -1;
	}
	f->fb = (struct cohmem_fb){ .offset = o->offset, .width = o->width, .height = o->height,
				    .bpp = f->format.bits_per_pixel / 8 };
	f->fb.stride = o->stride ? o->stride : (size_t)o->width * f->fb.bpp;
	if (f->fb.stride < (size_t)o->width * f->fb.bpp) {
		fprintf(stderr, "cohmem-vnc: --stride %zu: shorter than a row (%zu bytes)\n", f->fb.stride,
			(size_t)o->width * f->fb.bpp);
		return -1;
	}
	return 0;
}

/*
 * (Re)map the file and find its layout: 0, 1 if it is not ready yet (an
 * XWD header still being written, a file shorter than its pixels), -1 on
 * an error.
 */
static int source_map(struct source *s)
{
	long page = sysconf(_SC_PAGESIZE);
	struct fb_file f = { 0 };
	struct stat st;
	int err;

	s->ready = false;
	if (fstat(s->fd, &st))
		return perror("cohmem-vnc: fstat"), -1;
	if (s->map)
		munmap(s->map, s->map_len);
	s->map = NULL;
	s->size = st.st_size;
	if (st.st_size <= 0)
		return 1;
	s->map_len = (size_t)st.st_size;
	s->map = mmap(NULL, s->map_len, PROT_READ, MAP_SHARED, s->fd, 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		return perror("cohmem-vnc: mmap"), -1;
	}
	if (s->o->xwd) {
		err = fb_parse_xwd(s->map, s->map_len, &f);
		if (err == -EAGAIN)
			return 1;
		if (err) {
			fprintf(stderr, "cohmem-vnc: %s: %s\n", s->o->xwd,
				err == -ENOTSUP ? "a format not served (true colour, 16 or 32 bits per pixel)"
						: "not an XWD file");
			return -1;
		}
	} else if (raw_layout(s->o, &f)) {
		return -1;
	}
	if (!fb_copy_fits(&f.fb)) {
		fprintf(stderr, "cohmem-vnc: %s: %ux%u in rows of %zu bytes: more than served (%u rows of %zu bytes, %zu MiB)\n",
			s->o->xwd ? s->o->xwd : s->o->raw, f.fb.width, f.fb.height, f.fb.stride, FB_COPY_ROWS,
			FB_COPY_ROW, FB_COPY_FRAME >> 20);
		return -1;
	}
	if (fb_file_end(&f) > s->map_len)
		return 1;
	s->f = f;
	s->npages = (s->map_len + (size_t)page - 1) / (size_t)page;
	free(s->bitmap);
	s->bitmap = calloc((s->npages + 63) / 64, sizeof(uint64_t));
	if (!s->bitmap)
		return perror("cohmem-vnc"), -1;
	s->ready = true;
	return 0;
}

/* Open, map, and wait (up to 10 s) for a file still being set up. */
static int source_open(struct source *s, const struct options *o)
{
	const char *path = o->xwd ? o->xwd : o->raw;
	long n;
	int err = 1;

	s->o = o;
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return fprintf(stderr, "cohmem-vnc: %s: %s\n", path, strerror(errno)), -1;
	for (int i = 0; i < 1000 && (err = source_map(s)) == 1; i++)
		usleep(10000);
	if (err == 1)
		fprintf(stderr, "cohmem-vnc: %s: no complete frame in it after 10 s\n", path);
	if (err)
		return -1;
	/* What was written until now is in the first copy of the frame, taken after this. */
	n = cohmem_buffer_clean(s->fd, 0, s->npages, 0, s->bitmap, NULL, NULL);
	if (n < 0)
		fprintf(stderr, "cohmem-vnc: %s: %s\n", path,
			n == -ENOTTY  ? "not a buffer on a cohmemd mount"
			: n == -EPROTO ? "a cohmemd of another version"
				       : strerror((int)-n));
	return n < 0 ? -1 : 0;
}

static void set_format(rfbScreenInfoPtr screen, const struct fb_format *f)
{
	rfbPixelFormat *pf = &screen->serverFormat;

	pf->bitsPerPixel = (uint8_t)f->bits_per_pixel;
	pf->depth = (uint8_t)f->depth;
	pf->bigEndian = f->big_endian;
	pf->trueColour = TRUE;
	pf->redMax = (uint16_t)fb_mask_max(f->red_mask);
	pf->greenMax = (uint16_t)fb_mask_max(f->green_mask);
	pf->blueMax = (uint16_t)fb_mask_max(f->blue_mask);
	pf->redShift = (uint8_t)fb_mask_shift(f->red_mask);
	pf->greenShift = (uint8_t)fb_mask_shift(f->green_mask);
	pf->blueShift = (uint8_t)fb_mask_shift(f->blue_mask);
}

static void client_gone(rfbClientPtr cl)
{
	__atomic_add_fetch(&bytes_sent, (unsigned long long)rfbStatGetSentBytes(cl), __ATOMIC_RELAXED);
	vnc_x11_client_gone(cl);
}

/*
 * Lossless unless --jpeg: a client that asks for a JPEG quality (noVNC
 * always does) gets Tight without JPEG. Its SetEncodings precedes each of
 * its update requests, so the request is where to undo what it asked.
 */
static bool allow_jpeg, view_only;
static struct xsession *x11;	/* the X session, if any (xsession.c) */

/*
 * A key or a click is followed by a change on the screen, mostly within a
 * few milliseconds (the X server hands the event to a program, which
 * draws): the main thread looks at INPUT_LOOK_MS after it, and again 2, 4
 * and 8 times that later, rather than waiting for cohmemd's next writeback
 * (up to its --interval). A look has the kernel write the file's dirty
 * pages back first (cohmem_buffer_clean()), so it finds what was drawn by
 * then. The input hooks run in the clients' threads: they tell the main
 * thread through input_fd (an eventfd).
 */
#define INPUT_LOOK_MS 5
#define INPUT_LOOKS 4
static int input_fd = -1;
static rfbKbdAddEventProcPtr x11_key;
static rfbPtrAddEventProcPtr x11_pointer;
static int last_buttons;	/* the last pointer event's (any client's) */

static void input_seen(void)
{
	uint64_t one = 1;

	if (write(input_fd, &one, sizeof(one)) < 0) {
		/* full: the main thread has plenty to read */
	}
}

static void key_then_look(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
	x11_key(down, keysym, cl);
	input_seen();
}

/* Clicks, drags and wheel turns: pointer motion alone changes little on the screen. */
static void pointer_then_look(int mask, int x, int y, rfbClientPtr cl)
{
	int before = __atomic_exchange_n(&last_buttons, mask, __ATOMIC_RELAXED);

	x11_pointer(mask, x, y, cl);
	if (mask || before)
		input_seen();
}

static void update_request(rfbClientPtr cl, rfbFramebufferUpdateRequestMsg *req)
{
	(void)req;
	if (!allow_jpeg) {
		cl->tightQualityLevel = -1;
		cl->turboQualityLevel = -1;
	}
	vnc_x11_client_request(cl);	/* whether it draws the cursor (xcursor.c) */
}


/*
 * A client's translation (the table that turns our pixels into its format)
 * is rebuilt by its input thread when it sends SetPixelFormat, by
 * rfbNewFramebuffer() and by resize() below, and libvncserver 0.9.14 shares
 * no lock between them: two rebuilds at once freed one table twice or lost
 * one (LeakSanitizer, 1 vnc-resize run in 20-30). Every rebuild goes through
 * set_translate(), under one of these locks, by client; striped, so that
 * nothing is allocated per client (nor outlives one).
 */
static pthread_mutex_t translate_locks[16] = {
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
};

static rfbBool set_translate(rfbClientPtr cl)
{
	pthread_mutex_t *lock = &translate_locks[((uintptr_t)cl / sizeof(*cl)) % 16];
	rfbBool ok;

	pthread_mutex_lock(lock);
	ok = rfbSetTranslateFunction(cl);
	pthread_mutex_unlock(lock);
	return ok;
}

/*
 * A new connection: refused if its address must wait after wrong passwords
 * (vncauth.c).
 *
 * No TLS here, though Debian's libvncserver 0.9.14 has GnuTLS WebSockets
 * (sslcertfile): a TLS client that leaves while an update is being sent to
 * it is torn down by both its threads, and its GnuTLS session freed twice
 * (gnutls_deinit() from rfbCloseClient() in the output thread after the
 * input thread's; AddressSanitizer caught it in 1 novnc-input run in 3).
 * TLS goes in front instead (websockify --cert, stunnel: the man page).
 */
static enum rfbNewClientAction new_client(rfbClientPtr cl)
{
	if (cl->screen->authPasswdData && vnc_auth_waiting(cl->host)) {
		fprintf(stderr, "cohmem-vnc: %s: refused: too many wrong passwords, not yet\n", cl->host);
		return RFB_CLIENT_REFUSE;
	}
	cl->clientGoneHook = client_gone;
	cl->clientFramebufferUpdateRequestHook = update_request;
	cl->viewOnly = view_only;
	vnc_x11_client_new(cl);
	return RFB_CLIENT_ACCEPT;
}

/* The whole frame into the copy, as the clients will have it: 0, or -1 (and why) to stop. */
static int copy_all(struct server *sv, const struct source *s)
{
	const struct cohmem_fb *fb = &s->f.fb;
	struct cohmem_rect all = { 0, 0, fb->width, fb->height };
	int err = fb_copy_resize(&sv->copy, fb->stride * fb->height);

	if (err) {
		fprintf(stderr, "cohmem-vnc: the clients' copy of a %ux%u frame: %s\n", fb->width, fb->height,
			strerror(-err));
		return -1;
	}
	cohmem_fb_copy(fb, sv->copy.base, s->map + fb->offset, &all, 1);
	return 0;
}

/*
 * The X session (xsession.c): with --display, or for an XWD file the X
 * server that maps it, now or once one does. A raw file has no display
 * unless given one: its clients only look, and are told so here.
 */
static int start_x11(rfbScreenInfoPtr screen, const struct options *o)
{
	struct vnc_x11_options x = { .display = o->display, .file = o->xwd ? o->xwd : o->raw,
				     .view_only = o->view_only, .no_clipboard = o->no_clipboard,
				     .no_primary = o->no_primary };
	char found[64];

	view_only = o->view_only;
	if (!o->display && !o->xwd) {
		printf("cohmem-vnc: view-only: a --raw file has no X display (give --display :N for input)\n");
		return 0;
	}
	if (!o->display && x_display_of_file(o->xwd, found, sizeof(found)))
		printf("cohmem-vnc: no X server maps %s (yet): view-only until one does\n", o->xwd);
	if (vnc_x11_start(screen, &x, &x11))
		return -1;
	if (!o->view_only) {	/* the looks after input (input_seen()) */
		input_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (input_fd < 0)
			return perror("cohmem-vnc: eventfd"), -1;
		x11_key = screen->kbdAddEvent;
		x11_pointer = screen->ptrAddEvent;
		screen->kbdAddEvent = key_then_look;
		screen->ptrAddEvent = pointer_then_look;
	}
	return 0;
}

static int serve(struct server *sv, const struct source *s, const struct options *o, char *argv0)
{
	const struct cohmem_fb *fb = &s->f.fb;
	int argc = 1;
	char *argv[] = { argv0, NULL };
	rfbScreenInfoPtr screen;

	if (fb_copy_init(&sv->copy))
		return perror("cohmem-vnc: reserving the clients' copy"), -1;
	if (copy_all(sv, s))
		return -1;
	screen = rfbGetScreen(&argc, argv, (int)fb->width, (int)fb->height, 8, 3, (int)fb->bpp);
	if (!screen)
		return -1;
	set_format(screen, &s->f.format);
	screen->setTranslateFunction = set_translate;
	screen->frameBuffer = (char *)sv->copy.base;
	screen->paddedWidthInBytes = (int)fb->stride;
	screen->desktopName = "cohmem";
	/* Never libvncserver's own cursor: it paints it into the copy (xcursor.c says why not). */
	screen->cursor = NULL;
	screen->alwaysShared = TRUE;
	allow_jpeg = o->jpeg;
	screen->newClientHook = new_client;
	screen->port = o->port ? o->port : 5900;
	screen->autoPort = o->port == 0;
	screen->ipv6port = 0;
	if (!rfbStringToAddr((char *)(o->listen ? o->listen : "127.0.0.1"), &screen->listenInterface)) {
		fprintf(stderr, "cohmem-vnc: --listen %s: not an IPv4 address\n", o->listen);
		return -1;
	}
	if (o->rfbauth && vnc_auth_setup(screen, o->rfbauth))
		return -1;
	if (start_x11(screen, o))
		return -1;
	rfbLogEnable(0);
	rfbInitServer(screen);
	if (screen->listenSock == RFB_INVALID_SOCKET) {
		fprintf(stderr, "cohmem-vnc: cannot listen on %s:%d\n", o->listen ? o->listen : "127.0.0.1",
			screen->port);
		return -1;
	}
	sv->screen = screen;
	return 0;
}

/* The file's layout changed (a new XWD header, a new size): serve the new frame whole. */
static int resize(struct server *sv, struct source *s)
{
	const struct cohmem_fb *fb = &s->f.fb;
	rfbClientIteratorPtr clients;
	rfbClientPtr cl;

	if (copy_all(sv, s))
		return -1;
	/*
	 * rfbNewFramebuffer() sets its own default format (red in the low byte,
	 * 8 bits a channel) and builds every client's translation from it: set
	 * ours and the stride, and build them again, before the whole frame goes
	 * — each under the client's sendMutex, as rfbNewFramebuffer() does, so
	 * that no update in flight is being translated with the table replaced.
	 */
	rfbNewFramebuffer(sv->screen, (char *)sv->copy.base, (int)fb->width, (int)fb->height, 8, 3, (int)fb->bpp);
	set_format(sv->screen, &s->f.format);
	sv->screen->paddedWidthInBytes = (int)fb->stride;
	clients = rfbGetClientIterator(sv->screen);
	while ((cl = rfbClientIteratorNext(clients))) {
		pthread_mutex_lock(&cl->sendMutex);
		sv->screen->setTranslateFunction(cl);
		pthread_mutex_unlock(&cl->sendMutex);
	}
	rfbReleaseClientIterator(clients);
	rfbMarkRectAsModified(sv->screen, 0, 0, (int)fb->width, (int)fb->height);
	sv->resizes++;
	return 0;
}

/* Whether a dirty page holds the XWD header (or the colour map before the pixels). */
static bool header_written(const struct source *s)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), last = (s->f.fb.offset + ps - 1) / ps;

	for (size_t pg = 0; pg < last && pg < s->npages; pg++)
		if (s->bitmap[pg / 64] >> (pg % 64) & 1)
			return true;
	return false;
}

/* Field by field: the structures' padding is whatever their last assignment left. */
static bool same_layout(const struct fb_file *a, const struct fb_file *b)
{
	const struct cohmem_fb *p = &a->fb, *q = &b->fb;
	const struct fb_format *f = &a->format, *g = &b->format;

	return p->offset == q->offset && p->stride == q->stride && p->width == q->width && p->height == q->height &&
	       p->bpp == q->bpp && f->bits_per_pixel == g->bits_per_pixel && f->depth == g->depth &&
	       f->big_endian == g->big_endian && f->red_mask == g->red_mask && f->green_mask == g->green_mask &&
	       f->blue_mask == g->blue_mask;
}

/* Map the file again and serve it whole, at a new size if it has one. 0, or -1 to stop. */
static int refresh(struct server *sv, struct source *s)
{
	struct fb_file before = s->f;
	const struct cohmem_fb *fb = &s->f.fb;
	int err = source_map(s);

	if (err)
		return err < 0 ? -1 : 0;	/* not ready: the next pass looks again */
	if (!same_layout(&before, &s->f))
		return resize(sv, s);
	sv->refreshes++;
	if (copy_all(sv, s))
		return -1;
	rfbMarkRectAsModified(sv->screen, 0, 0, (int)fb->width, (int)fb->height);
	return 0;
}

/*
 * A file cut short under our mapping (its producer truncated it) raises
 * SIGBUS on the next read of its lost pages: the pass in progress is
 * abandoned and the file mapped again. Only the main thread reads the file.
 */
static sigjmp_buf cut_short;
static volatile sig_atomic_t cut_short_set;	/* cut_short holds the pass under way */

static void on_sigbus(int sig)
{
	if (!cut_short_set) {	/* not in a pass: nothing to go back to */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	siglongjmp(cut_short, 1);
}

/* One look: what was written, into the copy, marked for the clients. 0, or -1 to stop. */
static int damage_pass(struct server *sv, struct source *s)
{
	const struct cohmem_fb *fb = &s->f.fb;
	struct fb_file now;
	long dirty, n;

	/* Set first, so that a refresh's own reads are guarded too (a cut there: map again). */
	if (sigsetjmp(cut_short, 1) || (cut_short_set = 1, !s->ready))
		return refresh(sv, s);
	/* The clean only sets bits (apply_as_clean's contract): clear what the last one set. */
	memset(s->bitmap, 0, (s->npages + 63) / 64 * sizeof(uint64_t));
	dirty = cohmem_buffer_clean(s->fd, 0, s->npages, 0, s->bitmap, NULL, NULL);
	if (dirty == -EINVAL)
		return refresh(sv, s);	/* cut short (grown: replaced() sees it) */
	if (dirty < 0) {
		fprintf(stderr, "cohmem-vnc: cohmem_buffer_clean: %s\n", strerror((int)-dirty));
		return dirty == -ENOTCONN || dirty == -EBADF ? -1 : 0;
	}
	sv->passes++;
	if (!dirty)
		return 0;
	sv->passes_written++;
	if (s->o->xwd && header_written(s) &&
	    (fb_parse_xwd(s->map, s->map_len, &now) || !same_layout(&now, &s->f)))
		return refresh(sv, s);
	n = cohmem_fb_rects(fb, 0, s->bitmap, sv->page_rects, MAX_PAGE_RECTS);
	for (long i = 0; i < n; i++)
		sv->looked_at += (unsigned long long)sv->page_rects[i].w * sv->page_rects[i].h;
	if (n > 0)
		n = cohmem_fb_damage(fb, s->map + fb->offset, sv->copy.base, sv->page_rects, (size_t)n, sv->rects,
				     MAX_RECTS);
	if (n < 0) {
		fprintf(stderr, "cohmem-vnc: damage: %s\n", strerror((int)-n));
		return -1;
	}
	cohmem_fb_copy(fb, sv->copy.base, s->map + fb->offset, sv->rects, (size_t)n);
	for (long i = 0; i < n; i++) {
		const struct cohmem_rect *r = &sv->rects[i];

		rfbMarkRectAsModified(sv->screen, (int)r->x, (int)r->y, (int)(r->x + r->w), (int)(r->y + r->h));
		sv->pixels_sent += (unsigned long long)r->w * r->h;
	}
	sv->rects_sent += (unsigned long long)n;
	return 0;
}

/* The bytes sent to clients still connected, added to those of clients that left. */
static void count_connected(rfbScreenInfoPtr screen)
{
	rfbClientIteratorPtr clients = rfbGetClientIterator(screen);
	rfbClientPtr cl;

	while ((cl = rfbClientIteratorNext(clients)))
		__atomic_add_fetch(&bytes_sent, (unsigned long long)rfbStatGetSentBytes(cl), __ATOMIC_RELAXED);
	rfbReleaseClientIterator(clients);
}

static void print_stats(const struct server *sv)
{
	char x[128] = "no X display";

	if (x11)
		vnc_x11_describe(x11, x, sizeof(x));
	printf("cohmem-vnc: %llu damage passes (%llu with pages written), %llu after input, looked at %llu pixels, "
	       "%llu rectangles (%llu pixels), %llu resizes, %llu whole-frame refreshes, %llu files replaced; "
	       "sent %llu bytes; %s\n",
	       sv->passes, sv->passes_written, sv->input_passes, sv->looked_at, sv->rects_sent, sv->pixels_sent, sv->resizes,
	       sv->refreshes, sv->replaced, __atomic_load_n(&bytes_sent, __ATOMIC_RELAXED), x);
	fflush(stdout);
}

/*
 * A producer that starts again may unlink the file and create another by
 * the same name (Xvfb removes its screen file at exit): while ours has no
 * name left, look for the new one every REPLACED_CHECK_MS, and serve it as
 * a new framebuffer once it is complete. A file whose size changed under its
 * name is mapped again. 1 if the file was replaced, resized (or is still
 * gone), 0 if it is as it was, -1 to stop.
 */
#define REPLACED_CHECK_MS 500

/* refresh() from outside a pass: with the SIGBUS guard a pass has. 1, or -1 to stop. */
static int damage_refresh(struct server *sv, struct source *s)
{
	s->ready = false;	/* damage_pass() refreshes first */
	return damage_pass(sv, s) < 0 ? -1 : 1;
}

/* Whether REPLACED_CHECK_MS passed since *last (then it is now). */
static bool check_due(struct timespec *last)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	if ((t.tv_sec - last->tv_sec) * 1000 + (t.tv_nsec - last->tv_nsec) / 1000000 < REPLACED_CHECK_MS)
		return false;
	*last = t;
	return true;
}

static int replaced(struct server *sv, struct source *s)
{
	const char *path = s->o->xwd ? s->o->xwd : s->o->raw;
	struct stat st;
	int fd;

	if (fstat(s->fd, &st))
		return 0;
	if (st.st_nlink > 0 && s->ready && st.st_size != s->size)
		return damage_refresh(sv, s);	/* grown (or cut) under its name */
	if (st.st_nlink > 0)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;	/* not there yet */
	close(s->fd);
	s->fd = fd;
	s->ready = false;	/* the next pass maps it, and serves it whole */
	memset(&s->f, 0, sizeof(s->f));
	sv->replaced++;
	return damage_pass(sv, s) < 0 ? -1 : 1;
}

/* SIGINT and SIGTERM (and SIGUSR1: print the counts) as a descriptor; blocked first, so libvncserver's threads inherit the mask. */
static int signal_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	signal(SIGPIPE, SIG_IGN);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC);
}

static int timer_fd(unsigned ms)
{
	struct itimerspec its = { { ms / 1000, (long)(ms % 1000) * 1000000 }, { ms / 1000, (long)(ms % 1000) * 1000000 } };
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);

	if (fd >= 0 && timerfd_settime(fd, 0, &its, NULL)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Arms a one-shot timer. */
static void look_after(int fd, unsigned ms)
{
	struct itimerspec its = { .it_value = { ms / 1000, (long)(ms % 1000) * 1000000 } };

	timerfd_settime(fd, 0, &its, NULL);
}

static int run(struct server *sv, struct source *s, const struct options *o)
{
	struct pollfd p[5] = {
		{ .fd = s->fd, .events = POLLIN },
		{ .fd = signal_fd(), .events = POLLIN },
		{ .fd = o->interval ? timer_fd(o->interval) : -1, .events = POLLIN },
		{ .fd = input_fd, .events = POLLIN },
		{ .fd = input_fd >= 0 ? timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC) : -1, .events = POLLIN },
	};
	struct timespec checked = { 0 };
	unsigned looks_left = 0;	/* after the last input */
	int status = 0;

	if (p[1].fd < 0 || (o->interval && p[2].fd < 0) || (input_fd >= 0 && p[4].fd < 0))
		return perror("cohmem-vnc"), 1;
	sigaction(SIGBUS, &(struct sigaction){ .sa_handler = on_sigbus }, NULL);
	rfbRunEventLoop(sv->screen, -1, TRUE);	/* its own threads: a listener and one per client */
	printf("cohmem-vnc: listening on %s:%d, %ux%u, %u bits per pixel\n", o->listen ? o->listen : "127.0.0.1",
	       sv->screen->port, s->f.fb.width, s->f.fb.height, s->f.format.bits_per_pixel);
	fflush(stdout);
	for (;;) {
		int ready;

		p[0].fd = s->fd;	/* replaced when the file was (below) */
		ready = poll(p, 5, REPLACED_CHECK_MS);
		if (ready == 0 || (ready > 0 && (p[0].revents & (POLLERR | POLLHUP))) || check_due(&checked)) {
			int r = replaced(sv, s);

			if (r < 0) {
				status = 1;
				break;
			}
			if (r > 0 || (ready == 0 && s->ready))
				continue;	/* else: a file not complete yet, looked at again */
		}
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			perror("cohmem-vnc: poll");
			status = 1;
			break;
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;

			if (read(p[1].fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR1) {
				print_stats(sv);
				continue;
			}
			break;
		}
		if (p[2].revents) {
			uint64_t ticks;

			if (read(p[2].fd, &ticks, sizeof(ticks)) < 0)
				continue;
		}
		if (p[3].revents) {	/* a client typed or clicked: the first look soon */
			uint64_t n;

			if (read(p[3].fd, &n, sizeof(n)) == sizeof(n)) {
				looks_left = INPUT_LOOKS;
				look_after(p[4].fd, INPUT_LOOK_MS);
			}
			if (!p[0].revents && !p[2].revents && !p[4].revents)
				continue;
		}
		if (p[4].revents) {
			uint64_t ticks;

			if (read(p[4].fd, &ticks, sizeof(ticks)) == sizeof(ticks) && looks_left) {
				looks_left--;
				if (looks_left)	/* 5, 10, 20, 40 ms apart */
					look_after(p[4].fd, INPUT_LOOK_MS << (INPUT_LOOKS - looks_left));
				sv->input_passes++;
			}
		}
		if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			fprintf(stderr, "cohmem-vnc: the buffer's daemon went away\n");
			status = 1;
			break;
		}
		if (damage_pass(sv, s)) {
			status = 1;
			break;
		}
	}
	close(p[1].fd);
	if (p[2].fd >= 0)
		close(p[2].fd);
	if (p[4].fd >= 0)
		close(p[4].fd);
	return status;
}

int main(int argc, char *argv[])
{
	struct options o = { .port = 5900 };
	static struct source s = { .fd = -1 };	/* static: still reachable while the process ends (below) */
	static struct server sv;
	int status = parse_options(&o, argc, argv);

	if (status >= 0)
		return status;
	if (source_open(&s, &o) || serve(&sv, &s, &o, argv[0]))
		return 1;
	status = run(&sv, &s, &o);
	count_connected(sv.screen);
	print_stats(&sv);
	/*
	 * No rfbShutdownServer(): with its threads running, libvncserver 0.9.14
	 * tears a client down there while that client's own thread, seeing it
	 * disconnect at the same moment, does too (a SEGV in rfbCloseClient() or
	 * rfbShutdownServer(), 1 stop in 6 with a client leaving as the server
	 * stopped). The process ends here; its sockets close with it, and what
	 * libvncserver and the server hold stays reachable (static) until then.
	 */
	close(s.fd);
	return status;
}
