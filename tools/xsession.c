/* SPDX-License-Identifier: MIT */
/*
 * cohmem-vnc's X session (xstate.h): the X thread, and connecting to the
 * X server — again whenever it went away, as the file's producer may
 * restart at another display.
 */
#include <X11/Xlib.h>
#include <X11/extensions/XInput2.h>
#include <X11/extensions/XTest.h>
#include <X11/extensions/Xfixes.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "xstate.h"

/*
 * An X server that goes away must not end cohmem-vnc (Xlib's default ends
 * the process): the exit handler marks the connection dead and returns;
 * Xlib's calls on it then fail fast, and the X thread connects again.
 */
static int quiet_io_error(Display *dpy)
{
	(void)dpy;
	return 0;
}

static int quiet_error(Display *dpy, XErrorEvent *e)
{
	(void)dpy, (void)e;	/* a window gone before its selection request was answered, ... */
	return 0;
}

static volatile int dead_marks;	/* bumped by any connection's IO error */

static void mark_dead(Display *dpy, void *data)
{
	(void)dpy, (void)data;
	__atomic_add_fetch(&dead_marks, 1, __ATOMIC_SEQ_CST);
}

static Display *open_display(const char *name)
{
	Display *d = XOpenDisplay(name);

	if (d)
		XSetIOErrorExitHandler(d, mark_dead, NULL);
	return d;
}

/* The display to connect to: the option's, or the X server mapping the file. */
static int display_name(struct xsession *x)
{
	char name[sizeof(x->display_name)];
	int err = 0;

	if (x->o.display)
		snprintf(name, sizeof(name), "%s", x->o.display);
	else
		err = x_display_of_file(x->o.file, name, sizeof(name));
	if (err)
		return err;
	pthread_mutex_lock(&x->in_lock);	/* vnc_x11_describe() reads it */
	memcpy(x->display_name, name, sizeof(name));
	pthread_mutex_unlock(&x->in_lock);
	return 0;
}

static void disconnect(struct xsession *x)
{
	Display *in;

	xcursor_disconnected(x);
	xclip_free(x);
	pthread_mutex_lock(&x->in_lock);
	in = x->in;
	x->in = NULL;
	xinput_disconnected(x);
	pthread_mutex_unlock(&x->in_lock);
	if (in)
		XCloseDisplay(in);
	if (x->ev)
		XCloseDisplay(x->ev);
	x->ev = NULL;
}

static int connect_display(struct xsession *x, bool loud)
{
	int ev, err, major = XI_2_Major, minor = 0;
	Display *in = NULL;
	int dead = __atomic_load_n(&dead_marks, __ATOMIC_SEQ_CST);

	if (display_name(x))
		return -ENOENT;
	x->ev = open_display(x->display_name);
	if (!x->o.view_only && x->ev)
		in = open_display(x->display_name);
	if (!x->ev || (!x->o.view_only && !in)) {
		if (loud)
			fprintf(stderr, "cohmem-vnc: X display %s does not answer\n", x->display_name);
		if (in)
			XCloseDisplay(in);
		if (x->ev)
			XCloseDisplay(x->ev);
		x->ev = NULL;
		return -ENXIO;
	}
	if (in && !XTestQueryExtension(in, &ev, &err, &major, &minor)) {
		fprintf(stderr, "cohmem-vnc: X display %s has no XTEST: clients' input is ignored\n", x->display_name);
		XCloseDisplay(in);
		in = NULL;
	}
	x->win = XCreateWindow(x->ev, DefaultRootWindow(x->ev), -1, -1, 1, 1, 0, 0, InputOnly, CopyFromParent, 0, NULL);
	XSelectInput(x->ev, x->win, PropertyChangeMask);
	major = 2, minor = 2;	/* raw events from every device, grabbed or not */
	if (!XQueryExtension(x->ev, "XInputExtension", &x->xi_opcode, &ev, &err) ||
	    XIQueryVersion(x->ev, &major, &minor) != Success)
		x->xi_opcode = -1;
	if (!XFixesQueryExtension(x->ev, &x->xfixes_event, &err))
		x->xfixes_event = -1;
	if (!x->o.no_clipboard)
		xclip_setup(x);
	if (!x->o.no_cursor)
		xcursor_setup(x);
	pthread_mutex_lock(&x->in_lock);
	x->in = in;
	pthread_mutex_unlock(&x->in_lock);
	XFlush(x->ev);
	if (DisplayWidth(x->ev, DefaultScreen(x->ev)) != x->screen->width ||
	    DisplayHeight(x->ev, DefaultScreen(x->ev)) != x->screen->height)
		fprintf(stderr, "cohmem-vnc: X display %s is %dx%d, the file %dx%d: the display of another screen?\n",
			x->display_name, DisplayWidth(x->ev, DefaultScreen(x->ev)),
			DisplayHeight(x->ev, DefaultScreen(x->ev)), x->screen->width, x->screen->height);
	printf("cohmem-vnc: X display %s: %s, %s, %s\n", x->display_name,
	       in ? "keyboard and pointer" : "view-only", x->o.no_clipboard ? "no clipboard" : "clipboard",
	       x->o.no_cursor || x->xfixes_event < 0 ? "cursor in the pixels" : "cursor shape");
	fflush(stdout);
	x->connected_once = true;
	return dead == __atomic_load_n(&dead_marks, __ATOMIC_SEQ_CST) ? 0 : -EPIPE;
}

/* Whether either connection died since the mark was read. */
static bool died(int mark)
{
	return mark != __atomic_load_n(&dead_marks, __ATOMIC_SEQ_CST);
}

static void dispatch(struct xsession *x, XEvent *e)
{
	if (xclip_event(x, e))
		return;
	xcursor_event(x, e);
}

/* Waits for X events or a hook's wake, at most ms (-1: no bound). */
static void wait_for_work(struct xsession *x, int ms)
{
	struct pollfd p[2] = { { .fd = x->ev ? ConnectionNumber(x->ev) : -1, .events = POLLIN },
			       { .fd = x->wake_fd, .events = POLLIN } };
	uint64_t n;

	if (poll(p, 2, ms) > 0 && p[1].revents && read(x->wake_fd, &n, sizeof(n)) < 0) {
		/* nothing to read: another wait drained it */
	}
}

static void *x_thread(void *data)
{
	struct xsession *x = data;
	unsigned tries = 0;

	/*
	 * The connections' deaths counted when they were made: one counted since
	 * (in any call, this thread's or a hook's) ends them. Read per pass, a
	 * death in the pass's last call went unseen and the thread spun on a
	 * dead connection (Xlib: "request 38 length 8 would exceed buffer size",
	 * at 47 % of a CPU, after a test's X server was stopped).
	 */
	while (!x->stop) {
		if (!x->ev) {
			int mark = __atomic_load_n(&dead_marks, __ATOMIC_SEQ_CST);

			if (connect_display(x, false)) {
				if (x->ev)
					disconnect(x);
				/* looked for every second for a minute, then every 5 s */
				wait_for_work(x, ++tries < 60 ? 1000 : 5000);
				continue;
			}
			x->alive_mark = mark;
			tries = 0;
		}
		while (!died(x->alive_mark) && XPending(x->ev)) {
			XEvent e;

			XNextEvent(x->ev, &e);
			dispatch(x, &e);
		}
		if (!died(x->alive_mark)) {
			xclip_take_pending(x);
			xcursor_decide(x);
			XFlush(x->ev);
		}
		if (died(x->alive_mark)) {
			fprintf(stderr, "cohmem-vnc: X display %s went away; looking for it again\n", x->display_name);
			disconnect(x);
			continue;
		}
		/* Replies read meanwhile (XSync, XQueryPointer) may have queued events: no sleep then. */
		if (!XEventsQueued(x->ev, QueuedAlready))
			wait_for_work(x, xcursor_poll_ms(x));
		xcursor_tick(x);
	}
	return NULL;
}

int vnc_x11_start(rfbScreenInfoPtr screen, const struct vnc_x11_options *o, struct xsession **ret)
{
	struct xsession *x = calloc(1, sizeof(*x));
	sigset_t all, old;
	int err;

	if (!x)
		return -ENOMEM;
	XInitThreads();
	XSetIOErrorHandler(quiet_io_error);
	XSetErrorHandler(quiet_error);
	x->screen = screen;
	x->o = *o;
	pthread_mutex_init(&x->in_lock, NULL);
	pthread_mutex_init(&x->lock, NULL);
	pthread_mutex_init(&x->cursor_lock, NULL);
	x->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (x->wake_fd < 0) {
		free(x);
		return -errno;
	}
	/* An explicit display must answer now; a found one may come later. */
	x->alive_mark = __atomic_load_n(&dead_marks, __ATOMIC_SEQ_CST);
	if (o->display && connect_display(x, true)) {
		if (x->ev)
			disconnect(x);
		close(x->wake_fd);
		free(x);
		return -ENXIO;
	}
	screen->screenData = x;
	if (!o->view_only) {
		screen->kbdAddEvent = xinput_key;
		screen->ptrAddEvent = xinput_pointer;
	}
	if (!o->no_clipboard) {
		screen->setXCutText = xclip_from_client_latin1;
		screen->setXCutTextUTF8 = xclip_from_client_utf8;
	}
	if (!o->no_cursor)
		screen->getCursorPtr = xcursor_get;
	/* Signals are the main thread's (its signalfd): the X thread takes none, SIGTERM included. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&x->thread, NULL, x_thread, x);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		fprintf(stderr, "cohmem-vnc: no thread for the X session\n");
		return -EAGAIN;	/* x stays: the screen's hooks point at it */
	}
	*ret = x;
	return 0;
}

void vnc_x11_describe(struct xsession *x, char *buf, size_t len)
{
	pthread_mutex_lock(&x->in_lock);
	snprintf(buf, len, "X display %s, %llu key and pointer events", x->connected_once ? x->display_name : "(none yet)",
		 x->key_events);
	pthread_mutex_unlock(&x->in_lock);
}

void vnc_x11_client_new(rfbClientPtr cl)
{
	struct xsession *x = cl->screen->screenData;
	struct xclient *c = calloc(1, sizeof(*c));

	if (c)
		c->shape = -1;
	cl->clientData = c;
	if (x) {
		pthread_mutex_lock(&x->cursor_lock);
		x->clients++;
		pthread_mutex_unlock(&x->cursor_lock);
		xsession_wake(x);	/* the pointer is followed while a client is there */
	}
}

/* Whether the client draws the cursor itself: known from its SetEncodings, before its first update. */
void vnc_x11_client_request(rfbClientPtr cl)
{
	struct xsession *x = cl->screen->screenData;
	struct xclient *c = cl->clientData;
	int shape = cl->enableCursorShapeUpdates ? 1 : 0;

	if (!x || !c || c->shape == shape)
		return;
	pthread_mutex_lock(&x->cursor_lock);
	x->clients_without_shape += (shape == 0) - (c->shape == 0);
	c->shape = shape;
	x->cursor_mode_dirty = true;
	pthread_mutex_unlock(&x->cursor_lock);
	xsession_wake(x);
}

void vnc_x11_client_gone(rfbClientPtr cl)
{
	struct xsession *x = cl->screen->screenData;
	struct xclient *c = cl->clientData;

	if (x) {
		pthread_mutex_lock(&x->in_lock);
		xinput_release_client(x, cl);
		pthread_mutex_unlock(&x->in_lock);
		pthread_mutex_lock(&x->cursor_lock);
		x->clients--;
		if (c && c->shape == 0) {
			x->clients_without_shape--;
			x->cursor_mode_dirty = true;
		}
		pthread_mutex_unlock(&x->cursor_lock);
		xsession_wake(x);
	}
	free(c);
	cl->clientData = NULL;
}
