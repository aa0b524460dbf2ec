/* SPDX-License-Identifier: MIT */
/*
 * The cursor (xstate.h): one pointer on every client, where X has it.
 *
 * Xvfb draws its cursor in software, into the screen it keeps in the file:
 * served as it is, the file's pixels carry it, one damage pass late. A
 * client that draws a cursor itself (cursor-shape updates: noVNC, gtk-vnc,
 * TigerVNC, libvncclient) would show that one and a second, its own. So:
 *  - while every client draws its own, X's is hidden (XFixesHideCursor,
 *    in force while our connection lasts) and each gets X's shape
 *    (XFixesGetCursorImage, still the real one when hidden) and the
 *    position, at once, with no pixel sent;
 *  - while any client cannot, X's cursor stays in the pixels, and the
 *    others are sent an empty shape — each sees that one cursor.
 * libvncserver's own drawing of a cursor into the frame is never used: it
 * paints into the buffer clients are sent from and puts the old pixels
 * back after a send, which would undo a damage pass's copy made meanwhile
 * (cohmem-vnc.c's copy is written by the main thread only). screen->cursor
 * stays NULL; the shape goes out through getCursorPtr, read by a client's
 * output thread under its sendMutex — which is how a replaced shape knows
 * when nobody uses it any more (retire()).
 */
#include <X11/Xlib.h>
#include <X11/extensions/XInput2.h>
#include <X11/extensions/Xfixes.h>
#include <stdlib.h>
#include <string.h>

#include "xstate.h"

#define MAX_CURSOR_SIDE 256

/*
 * Whether libvncserver 0.9.14 can send a w x h shape: rfbSendCursorShape()
 * builds it whole in the client's update buffer (UPDATE_BUF_SIZE), at up to
 * 4 bytes a pixel in the client's format plus the mask; one larger is not
 * sent at all, after the update's header already went out with it counted
 * (the client's stream out of step for good). Larger shapes stay in the
 * pixels (cursor_from_image() refuses them).
 */
static bool cursor_fits(int w, int h)
{
	return (size_t)sz_rfbFramebufferUpdateRectHeader + sz_rfbXCursorColors + (size_t)(w + 7) / 8 * (size_t)h +
		       (size_t)w * (size_t)h * 4 <= UPDATE_BUF_SIZE;
}

/* One pixel of X's cursor (ARGB, alpha premultiplied) in the server's format. */
static uint32_t server_pixel(const rfbPixelFormat *f, unsigned long argb)
{
	unsigned r = argb >> 16 & 0xff, g = argb >> 8 & 0xff, b = argb & 0xff;

	return (uint32_t)(r * f->redMax / 255) << f->redShift | (uint32_t)(g * f->greenMax / 255) << f->greenShift |
	       (uint32_t)(b * f->blueMax / 255) << f->blueShift;
}

/*
 * X's cursor image as an rfbCursor with every form libvncserver may send
 * filled in — the rich one (server format + mask) and the two-colour one —
 * so that it never builds one itself, in a client's thread, on a cursor
 * others read.
 */
static rfbCursorPtr cursor_from_image(const rfbScreenInfoPtr screen, const XFixesCursorImage *img)
{
	int w = img->width, h = img->height, row = (w + 7) / 8, bpp = screen->serverFormat.bitsPerPixel / 8;
	rfbCursorPtr c = calloc(1, sizeof(*c));

	if (!c || w <= 0 || h <= 0 || w > MAX_CURSOR_SIDE || h > MAX_CURSOR_SIDE || !cursor_fits(w, h) || (bpp != 2 && bpp != 4)) {
		free(c);
		return NULL;
	}
	c->width = (unsigned short)w, c->height = (unsigned short)h;
	c->xhot = (unsigned short)(img->xhot < (unsigned)w ? img->xhot : 0);
	c->yhot = (unsigned short)(img->yhot < (unsigned)h ? img->yhot : 0);
	c->source = calloc((size_t)row, (size_t)h);
	c->mask = calloc((size_t)row, (size_t)h);
	c->richSource = calloc((size_t)w * bpp, (size_t)h);
	c->cleanup = c->cleanupSource = c->cleanupMask = c->cleanupRichSource = TRUE;
	c->backRed = c->backGreen = c->backBlue = 0xffff;	/* two-colour: white, source bits black */
	if (!c->source || !c->mask || !c->richSource) {
		rfbFreeCursor(c);
		return NULL;
	}
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			unsigned long p = img->pixels[y * w + x];
			unsigned a = p >> 24 & 0xff, lum = ((p >> 16 & 0xff) + (p >> 8 & 0xff) + (p & 0xff)) / 3;
			uint32_t v = server_pixel(&screen->serverFormat, p);
			unsigned char bit = (unsigned char)(0x80 >> (x % 8));

			if (a >= 128)
				c->mask[y * row + x / 8] |= bit;
			if (a >= 128 && lum * 255 < 128u * a)	/* dark (premultiplied) */
				c->source[y * row + x / 8] |= bit;
			memcpy(c->richSource + ((size_t)y * w + x) * bpp, bpp == 4 ? (void *)&v : (void *)&(uint16_t){ (uint16_t)v },
			       (size_t)bpp);
		}
	return c;
}

/* A client's output thread is woken to send what changed (the cursor's shape or place). */
static void nudge(rfbClientPtr cl)
{
	pthread_mutex_lock(&cl->updateMutex);
	pthread_cond_signal(&cl->updateCond);
	pthread_mutex_unlock(&cl->updateMutex);
}

/* Every client sends the shape again (getCursorPtr's). */
static void shape_changed(struct xsession *x)
{
	rfbClientIteratorPtr it = rfbGetClientIterator(x->screen);
	rfbClientPtr cl;

	while ((cl = rfbClientIteratorNext(it))) {
		cl->cursorWasChanged = TRUE;
		nudge(cl);
	}
	rfbReleaseClientIterator(it);
}

/*
 * Frees a shape getCursorPtr no longer returns, once no client can still be
 * sending it: a send holds the client's sendMutex from getCursorPtr to the
 * end, so taking each one once is enough.
 */
static void retire(struct xsession *x, rfbCursorPtr old)
{
	rfbClientIteratorPtr it;
	rfbClientPtr cl;

	if (!old)
		return;
	it = rfbGetClientIterator(x->screen);
	while ((cl = rfbClientIteratorNext(it))) {
		pthread_mutex_lock(&cl->sendMutex);
		pthread_mutex_unlock(&cl->sendMutex);
	}
	rfbReleaseClientIterator(it);
	rfbFreeCursor(old);
}

/* What getCursorPtr returns: the shape, or NULL (an empty one: the pixels carry the cursor). */
static void show(struct xsession *x, rfbCursorPtr c)
{
	pthread_mutex_lock(&x->cursor_lock);
	if (x->shown == c) {
		pthread_mutex_unlock(&x->cursor_lock);
		return;
	}
	x->shown = c;
	pthread_mutex_unlock(&x->cursor_lock);
	shape_changed(x);
}

static void load_shape(struct xsession *x)
{
	XFixesCursorImage *img = XFixesGetCursorImage(x->ev);
	rfbCursorPtr c = NULL, old = x->shape;

	/*
	 * X may refuse the image (Xvfb's SECURITY extension answers BadAccess
	 * for a cursor whose client is gone: xsetroot -cursor_name's, once it
	 * exited): then not the old shape, which is not X's cursor any more —
	 * none, and X's cursor in the pixels, until the next one.
	 */
	if (img && img->cursor_serial == x->shape_serial && x->shape) {
		XFree(img);
		return;
	}
	if (!img && !x->shape)
		return;
	if (img) {
		c = cursor_from_image(x->screen, img);
		x->shape_serial = img->cursor_serial;
		XFree(img);
	} else {
		x->shape_serial = 0;
	}
	x->shape = c;
	pthread_mutex_lock(&x->cursor_lock);
	x->cursor_mode_dirty = true;
	if (x->shown == old && old) {	/* in use: the new one replaces it at once */
		x->shown = c;
		pthread_mutex_unlock(&x->cursor_lock);
		shape_changed(x);
	} else {
		pthread_mutex_unlock(&x->cursor_lock);
	}
	retire(x, old);
}

int xcursor_setup(struct xsession *x)
{
	Window root = DefaultRootWindow(x->ev);
	unsigned char bits[XIMaskLen(XI_RawMotion)] = { 0 };
	XIEventMask mask = { .deviceid = XIAllDevices, .mask_len = sizeof(bits), .mask = bits };

	if (x->xfixes_event < 0)
		return -1;	/* no shapes: X's cursor stays in the pixels */
	XFixesSelectCursorInput(x->ev, root, XFixesDisplayCursorNotifyMask);
	/* Raw motion, from any device (XTEST's too): the pointer moved, so look where it is. */
	if (x->xi_opcode >= 0) {
		XISetMask(bits, XI_RawMotion);
		XISelectEvents(x->ev, root, &mask, 1);
	}
	x->sprite_hidden = false;
	load_shape(x);
	pthread_mutex_lock(&x->cursor_lock);
	x->cursor_mode_dirty = true;
	pthread_mutex_unlock(&x->cursor_lock);
	return 0;
}

/* The pointer's place, as X has it, for the clients that draw the cursor. */
static void follow_pointer(struct xsession *x)
{
	rfbScreenInfoPtr s = x->screen;
	Window root, child;
	int rx, ry, wx, wy;
	unsigned state;
	rfbClientIteratorPtr it;
	rfbClientPtr cl;

	if (!XQueryPointer(x->ev, DefaultRootWindow(x->ev), &root, &child, &rx, &ry, &wx, &wy, &state))
		return;
	rx = rx < 0 ? 0 : rx >= s->width ? s->width - 1 : rx;
	ry = ry < 0 ? 0 : ry >= s->height ? s->height - 1 : ry;
	pthread_mutex_lock(&s->cursorMutex);
	if (rx == s->cursorX && ry == s->cursorY) {	/* a client's own move (rfbDefaultPtrAddEvent) */
		pthread_mutex_unlock(&s->cursorMutex);
		return;
	}
	s->cursorX = rx, s->cursorY = ry;
	pthread_mutex_unlock(&s->cursorMutex);
	it = rfbGetClientIterator(s);
	while ((cl = rfbClientIteratorNext(it)))
		if (cl->enableCursorPosUpdates) {
			cl->cursorWasMoved = TRUE;
			nudge(cl);
		}
	rfbReleaseClientIterator(it);
}

bool xcursor_event(struct xsession *x, XEvent *e)
{
	if (x->o.no_cursor || x->xfixes_event < 0)
		return false;
	if (e->type == x->xfixes_event + XFixesCursorNotify) {
		load_shape(x);
		return true;
	}
	/* (Xvfb sends none for XTEST's absolute motion, xdotool's: xcursor_tick() looks too.) */
	if (e->type == GenericEvent && e->xcookie.extension == x->xi_opcode) {
		XEvent next;

		/* A burst of motion: one look at the pointer is enough. */
		while (XCheckTypedEvent(x->ev, GenericEvent, &next))
			;
		follow_pointer(x);
		return true;
	}
	return false;
}

/*
 * How long the X thread may sleep: while clients draw the cursor, it looks
 * where the pointer is every FOLLOW_MS — X tells of no move but a device's
 * (XInput 2 raw motion): not XTEST's (xdotool), not a program's warp.
 * Moves a VNC client makes reach the others at once (rfbDefaultPtrAddEvent).
 */
#define FOLLOW_MS 100

int xcursor_poll_ms(struct xsession *x)
{
	int clients;

	pthread_mutex_lock(&x->cursor_lock);
	clients = x->clients;
	pthread_mutex_unlock(&x->cursor_lock);
	return clients > 0 && x->sprite_hidden ? FOLLOW_MS : -1;
}

void xcursor_tick(struct xsession *x)
{
	if (x->ev && x->sprite_hidden && xcursor_poll_ms(x) > 0)
		follow_pointer(x);
}

/*
 * Who draws the cursor (the top of this file): the X thread decides after a
 * client came, left or told what it can, and after a new shape. Hidden
 * before the shape goes out, shown after the shape is withdrawn: a client
 * may see no cursor for a moment, never two.
 */
void xcursor_decide(struct xsession *x)
{
	bool clients_draw, dirty;
	Window root;

	if (x->o.no_cursor || x->xfixes_event < 0 || !x->ev)
		return;
	pthread_mutex_lock(&x->cursor_lock);
	dirty = x->cursor_mode_dirty;
	x->cursor_mode_dirty = false;
	clients_draw = x->clients_without_shape == 0 && x->shape;
	pthread_mutex_unlock(&x->cursor_lock);
	if (!dirty)
		return;
	root = DefaultRootWindow(x->ev);
	if (clients_draw) {
		if (!x->sprite_hidden)
			XFixesHideCursor(x->ev, root);
		XSync(x->ev, False);	/* gone from the pixels before the shape goes out */
		x->sprite_hidden = true;
		show(x, x->shape);
		follow_pointer(x);
	} else {
		show(x, NULL);
		if (x->sprite_hidden)
			XFixesShowCursor(x->ev, root);
		x->sprite_hidden = false;
	}
}

/* The connection went (its hide with it): nothing shown, the shape freed. */
void xcursor_disconnected(struct xsession *x)
{
	rfbCursorPtr old = x->shape;

	show(x, NULL);
	x->shape = NULL;
	x->shape_serial = 0;
	x->sprite_hidden = false;
	retire(x, old);
}

rfbCursorPtr xcursor_get(rfbClientPtr cl)
{
	struct xsession *x = cl->screen->screenData;
	rfbCursorPtr c;

	pthread_mutex_lock(&x->cursor_lock);
	c = x->shown;
	pthread_mutex_unlock(&x->cursor_lock);
	return c;
}
