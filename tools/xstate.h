/* SPDX-License-Identifier: MIT */
/*
 * cohmem-vnc's X session, the state its files share (xsession.c runs it):
 * what it does with the X server whose screen it
 * serves — clients' keys and pointer into it (XTEST, xtest-input.c), its
 * selections to and from the clients' clipboards (xclipboard.c), its
 * cursor's shape and position (xcursor.c).
 *
 * Threads and locks. libvncserver calls the input and cut-text hooks from
 * each client's own thread. Two connections to the X server:
 *  - in: the clients' keys and pointer, under in_lock, used only by hooks
 *    (an event goes out at once, from the thread that read it);
 *  - ev: the X thread's (selections, cursor events), which alone reads
 *    events and answers selection requests.
 * The X thread (xsession.c) connects both, and again after the X server
 * went away (a producer restarted); hooks find in NULL meanwhile and drop
 * their event. Hooks hand the X thread work (a client's cut text, a
 * change of cursor mode) under lock and wake it through wake_fd.
 */
#ifndef COHMEM_XSTATE_H
#define COHMEM_XSTATE_H

#include <X11/Xlib.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "vnc-x11.h"

#define XSESSION_MAX_DOWN 64	/* keys held at once, by all clients */
#define XSESSION_MAX_BOUND 16	/* keysyms absent from the map, bound to spare keycodes */
#define XSESSION_MAX_CLIP (1 << 20)	/* bytes of clipboard text, either way */

/* A key pressed through XTEST: released by the same keycode, and when its client leaves. */
struct held_key {
	rfbKeySym keysym;
	unsigned keycode;
	rfbClientPtr cl;
};

/* A spare keycode we bound a keysym to, reused oldest first. */
struct bound_key {
	unsigned long keysym;
	unsigned keycode;
	unsigned long long used;
};

/* Per client (cl->clientData). */
struct xclient {
	int buttons;		/* the button mask it last sent */
	int shape;		/* -1 not known yet, 0 no cursor-shape updates, 1 it draws the cursor */
};

struct xsession {
	rfbScreenInfoPtr screen;
	struct vnc_x11_options o;
	pthread_t thread;
	int wake_fd;			/* eventfd: hooks → X thread */
	volatile int stop;

	/* The clients' input (xtest-input.c), under in_lock. */
	pthread_mutex_t in_lock;
	Display *in;
	struct held_key held[XSESSION_MAX_DOWN];
	struct bound_key bound[XSESSION_MAX_BOUND];
	unsigned long long key_events;

	/* The X thread's connection and what it owns. */
	Display *ev;
	Window win;			/* ours: selections are owned by it, converted into it */
	int xfixes_event, xi_opcode;
	bool connected_once;
	int alive_mark;			/* X connections' deaths counted when ours were made (xsession.c) */
	char display_name[64];

	/* Clipboard (xclipboard.c). lock guards pending_*; the rest is the X thread's. */
	pthread_mutex_t lock;
	char *pending_text;		/* a client's cut text (UTF-8), for the X thread to own */
	size_t pending_len;
	char *owned_text;		/* what our selections hold (UTF-8) */
	size_t owned_len;
	Atom a_clipboard, a_targets, a_utf8, a_text, a_incr, a_property, a_timestamp;
	Time owned_since;
	struct incr_read {		/* a selection arriving in INCR chunks */
		Atom selection, type;	/* type: its pieces' (STRING or UTF8_STRING) */
		char *buf;
		size_t len;
		bool active;
	} incr;

	/* Cursor (xcursor.c). cursor_lock guards shown and retired. */
	pthread_mutex_t cursor_lock;
	rfbCursorPtr shown;		/* what getCursorPtr hands libvncserver, or NULL */
	rfbCursorPtr shape;		/* the X cursor's shape: the X thread's */
	unsigned long shape_serial;
	int clients;			/* connected */
	int clients_without_shape;	/* connected clients that draw no cursor of their own */
	bool sprite_hidden;		/* XFixesHideCursor in force: the framebuffer has no cursor */
	bool cursor_mode_dirty;		/* re-decide who draws the cursor */
};

/* xtest-input.c: the screen's kbdAddEvent and ptrAddEvent, and what a leaving client held. */
void xinput_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl);
void xinput_pointer(int mask, int x, int y, rfbClientPtr cl);
void xinput_release_client(struct xsession *x, rfbClientPtr cl);
void xinput_disconnected(struct xsession *x);

/* xclipboard.c: the screen's setXCutText(UTF8) hooks, and the X thread's part. */
void xclip_from_client_latin1(char *text, int len, rfbClientPtr cl);
void xclip_from_client_utf8(char *text, int len, rfbClientPtr cl);
int xclip_setup(struct xsession *x);
bool xclip_event(struct xsession *x, XEvent *e);
void xclip_take_pending(struct xsession *x);
void xclip_free(struct xsession *x);

/* xcursor.c: the screen's getCursorPtr, and the X thread's part. */
rfbCursorPtr xcursor_get(rfbClientPtr cl);
int xcursor_setup(struct xsession *x);
bool xcursor_event(struct xsession *x, XEvent *e);
void xcursor_decide(struct xsession *x);
void xcursor_disconnected(struct xsession *x);
int xcursor_poll_ms(struct xsession *x);
void xcursor_tick(struct xsession *x);

/* Wakes the X thread: a hook left it work. */
static inline void xsession_wake(struct xsession *x)
{
	uint64_t one = 1;

	if (write(x->wake_fd, &one, sizeof(one)) < 0) {
		/* full (2^64 - 2 wakes pending): the X thread is awake anyway */
	}
}

#endif
