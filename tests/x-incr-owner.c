/* SPDX-License-Identifier: MIT */
/*
 * x-incr-owner: an X program that owns a selection and hands its text over
 * only incrementally (ICCCM's INCR), in pieces of CHUNK bytes, whatever the
 * text's size: how owners send what does not fit in one request, which
 * xclip does only above the server's maximum request (16 MiB here). For
 * tests of selection readers (cohmem-vnc's clipboard).
 *
 *   x-incr-owner SELECTION CHUNK FILE [TARGET]
 *
 * Prints "owned" once it owns SELECTION (PRIMARY, CLIPBOARD, ...), then
 * serves FILE's bytes as TARGET (UTF8_STRING, or STRING: Latin-1), and
 * TARGETS, until another program takes the selection (exit 0). Exit 1 with
 * the reason.
 */
#include <X11/Xatom.h>
#include <X11/Xlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char text[1 << 20];
static size_t text_len;

/* The transfer under way: to requestor's property, from offset. */
static struct {
	Window requestor;
	Atom property;
	size_t offset;
	int active;
} t;

static void answer(Display *d, const XSelectionRequestEvent *r, Atom targets, Atom utf8, Atom incr)
{
	XEvent reply = { .xselection = { .type = SelectionNotify, .requestor = r->requestor, .selection = r->selection,
					 .target = r->target, .property = r->property, .time = r->time } };

	if (r->target == targets) {
		Atom offered[] = { targets, utf8 };

		XChangeProperty(d, r->requestor, r->property, XA_ATOM, 32, PropModeReplace, (unsigned char *)offered, 2);
	} else if (r->target == utf8 && !t.active) {
		long size = (long)text_len;

		/* INCR: the size, then a piece each time the requestor deletes the property */
		XSelectInput(d, r->requestor, PropertyChangeMask);
		XChangeProperty(d, r->requestor, r->property, incr, 32, PropModeReplace, (unsigned char *)&size, 1);
		t.requestor = r->requestor, t.property = r->property, t.offset = 0, t.active = 1;
	} else {
		reply.xselection.property = None;
	}
	XSendEvent(d, r->requestor, False, NoEventMask, &reply);
}

/* The requestor took a piece (deleted the property): the next, or the empty one that ends it. */
static void next_piece(Display *d, size_t chunk, Atom utf8)
{
	size_t n = text_len - t.offset < chunk ? text_len - t.offset : chunk;

	XChangeProperty(d, t.requestor, t.property, utf8, 8, PropModeReplace, (unsigned char *)text + t.offset, (int)n);
	t.offset += n;
	if (n == 0) {
		XSelectInput(d, t.requestor, NoEventMask);
		t.active = 0;
	}
}

int main(int argc, char *argv[])
{
	Display *d = XOpenDisplay(NULL);
	size_t chunk = argc == 4 || argc == 5 ? strtoul(argv[2], NULL, 10) : 0;
	FILE *f = chunk ? fopen(argv[3], "rb") : NULL;
	Atom selection, targets, utf8, incr;
	Window w;

	if (!d || !chunk || !f)
		return fprintf(stderr, "usage: x-incr-owner SELECTION CHUNK FILE [TARGET] (and a DISPLAY)\n"), 1;
	text_len = fread(text, 1, sizeof(text), f);
	fclose(f);
	selection = XInternAtom(d, argv[1], False);
	targets = XInternAtom(d, "TARGETS", False);
	utf8 = XInternAtom(d, argc == 5 ? argv[4] : "UTF8_STRING", False);	/* the one target served */
	incr = XInternAtom(d, "INCR", False);
	w = XCreateSimpleWindow(d, DefaultRootWindow(d), 0, 0, 1, 1, 0, 0, 0);
	XSetSelectionOwner(d, selection, w, CurrentTime);
	if (XGetSelectionOwner(d, selection) != w)
		return fprintf(stderr, "x-incr-owner: could not own %s\n", argv[1]), 1;
	printf("owned\n");
	fflush(stdout);
	for (;;) {
		XEvent e;

		XNextEvent(d, &e);
		if (e.type == SelectionClear)
			return 0;
		if (e.type == SelectionRequest)
			answer(d, &e.xselectionrequest, targets, utf8, incr);
		else if (e.type == PropertyNotify && t.active && e.xproperty.window == t.requestor &&
			 e.xproperty.atom == t.property && e.xproperty.state == PropertyDelete)
			next_piece(d, chunk, utf8);
		XFlush(d);
	}
}
