/* SPDX-License-Identifier: MIT */
/*
 * The clipboard (xstate.h): X's CLIPBOARD and PRIMARY selections to the
 * clients, a client's cut text to both. The X thread does all of it; a
 * client's hook only leaves its text for it (pending_text) and wakes it.
 *
 * Text is kept in UTF-8. RFB's own cut text is Latin-1: clients that
 * negotiated the extended clipboard get UTF-8 (libvncserver 0.9.14 does the
 * negotiating), the others a Latin-1 copy where what Latin-1 cannot say is
 * '?'. Either way at most XSESSION_MAX_CLIP bytes: larger selections are
 * not sent, and libvncserver refuses larger cut text from clients.
 */
#include <X11/Xatom.h>
#include <X11/Xlib.h>
#include <X11/extensions/Xfixes.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <zlib.h>

#include "xstate.h"

/* Latin-1 (each byte a code point) as UTF-8: *out allocated, its length returned. */
static size_t utf8_from_latin1(const char *in, size_t len, char **out)
{
	char *o = malloc(2 * len + 1);
	size_t n = 0;

	*out = o;
	if (!o)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x80) {
			o[n++] = (char)c;
		} else {
			o[n++] = (char)(0xc0 | c >> 6);
			o[n++] = (char)(0x80 | (c & 0x3f));
		}
	}
	o[n] = 0;
	return n;
}

/* UTF-8 as Latin-1, '?' for what it cannot hold (or is not UTF-8). */
static size_t latin1_from_utf8(const char *in, size_t len, char **out)
{
	char *o = malloc(len + 1);
	size_t n = 0;

	*out = o;
	if (!o)
		return 0;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)in[i];
		size_t more = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 0;
		unsigned long cp = more == 0 ? c : c & (0x3f >> more);
		size_t j;

		for (j = 1; j <= more && i + j < len && ((unsigned char)in[i + j] & 0xc0) == 0x80; j++)
			cp = cp << 6 | ((unsigned char)in[i + j] & 0x3f);
		if (c >= 0x80 && (!more || j <= more)) {	/* not UTF-8: one byte, '?' */
			o[n++] = '?';
			i++;
			continue;
		}
		o[n++] = cp < 0x100 ? (char)cp : '?';
		i += 1 + more;
	}
	o[n] = 0;
	return n;
}

int xclip_setup(struct xsession *x)
{
	Window root = DefaultRootWindow(x->ev);

	x->a_clipboard = XInternAtom(x->ev, "CLIPBOARD", False);
	x->a_targets = XInternAtom(x->ev, "TARGETS", False);
	x->a_utf8 = XInternAtom(x->ev, "UTF8_STRING", False);
	x->a_text = XInternAtom(x->ev, "TEXT", False);
	x->a_incr = XInternAtom(x->ev, "INCR", False);
	x->a_timestamp = XInternAtom(x->ev, "TIMESTAMP", False);
	if (x->xfixes_event < 0)
		return -1;	/* owners' changes unseen: clients' text to X only */
	XFixesSelectSelectionInput(x->ev, root, x->a_clipboard, XFixesSetSelectionOwnerNotifyMask);
	if (!x->o.no_primary)
		XFixesSelectSelectionInput(x->ev, root, XA_PRIMARY, XFixesSetSelectionOwnerNotifyMask);
	return 0;
}

/*
 * The extended clipboard's messages (the RFB extension libvncserver 0.9.14
 * negotiates): a ServerCutText with a negative length, flags, then for
 * "provide" a zlib stream of the text's length and the text (with its NUL).
 */
static int send_provide(rfbClientPtr cl, const char *text, size_t len)
{
	uLongf size = compressBound((uLong)len + 4);
	unsigned char *in = malloc(len + 4), *out = malloc(12 + size);
	uint32_t v = Swap32IfLE((uint32_t)len);
	int err = -1;

	if (in && out) {
		memcpy(in, &v, 4);
		memcpy(in + 4, text, len);
		if (compress(out + 12, &size, in, (uLong)len + 4) == Z_OK) {
			memset(out, 0, 4);	/* the type, then 3 bytes of padding */
			out[0] = rfbServerCutText;
			v = Swap32IfLE((uint32_t)-(int32_t)(4 + size));
			memcpy(out + 4, &v, 4);
			v = Swap32IfLE(rfbExtendedClipboard_Provide | rfbExtendedClipboard_Text);
			memcpy(out + 8, &v, 4);
			err = rfbWriteExact(cl, (char *)out, (int)(12 + size)) < 0 ? -1 : 0;
		}
	}
	free(in);
	free(out);
	return err;
}

static int send_notify(rfbClientPtr cl)
{
	uint32_t m[3] = { 0, Swap32IfLE((uint32_t)-4), Swap32IfLE(rfbExtendedClipboard_Notify | rfbExtendedClipboard_Text) };

	((unsigned char *)m)[0] = rfbServerCutText;
	return rfbWriteExact(cl, (char *)m, sizeof(m)) < 0 ? -1 : 0;
}

/*
 * To a client that negotiated the extended clipboard: the text is kept
 * where libvncserver answers the client's request for it from
 * (extClipboardData, with its NUL), and sent at once if the client takes
 * unsolicited text of that size, else announced.
 */
static int send_extended(rfbClientPtr cl, const char *utf8, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy)
		return -1;
	memcpy(copy, utf8, len);
	copy[len] = 0;
	free(cl->extClipboardData);
	cl->extClipboardData = copy;
	cl->extClipboardDataSize = (int)len + 1;
	if ((cl->extClipboardUserCap & rfbExtendedClipboard_Provide) && len <= cl->extClipboardMaxUnsolicitedSize)
		return send_provide(cl, copy, len + 1);
	if (cl->extClipboardUserCap & rfbExtendedClipboard_Notify)
		return send_notify(cl);
	return 0;
}

static int send_latin1(rfbClientPtr cl, const char *latin1, size_t len)
{
	rfbServerCutTextMsg head = { .type = rfbServerCutText, .length = Swap32IfLE((uint32_t)len) };

	if (rfbWriteExact(cl, (char *)&head, sz_rfbServerCutTextMsg) < 0 || rfbWriteExact(cl, latin1, (int)len) < 0)
		return -1;
	return 0;
}

/*
 * X's text to every client: UTF-8 to those that negotiated the extended
 * clipboard, Latin-1 to the others. Not through libvncserver's
 * rfbSendServerCutTextUTF8(): 0.9.14's heads the Latin-1 copy with the
 * UTF-8 length (longer whenever the text is not ASCII: the client's stream
 * goes out of step), and given no copy it leaves the other clients'
 * sendMutex locked (both fixed upstream after 0.9.14, 5a464a2a).
 */
static void send_to_clients(struct xsession *x, char *utf8, size_t len)
{
	rfbClientIteratorPtr it;
	rfbClientPtr cl;
	char *latin1;
	size_t n = latin1_from_utf8(utf8, len, &latin1);

	if (!latin1)
		return;
	it = rfbGetClientIterator(x->screen);
	while ((cl = rfbClientIteratorNext(it))) {
		int err = 0;

		pthread_mutex_lock(&cl->sendMutex);
		if (cl->state == RFB_NORMAL)	/* not before its ServerInit */
			err = cl->enableExtendedClipboard ? send_extended(cl, utf8, len) : send_latin1(cl, latin1, n);
		/*
		 * Half sent: the client's stream is out of step. Its connection is
		 * shut, not closed here: its own threads see that and close it
		 * (rfbCloseClient() from this thread would free a TLS client's
		 * context under its input thread).
		 */
		if (err)
			shutdown(cl->sock, SHUT_RDWR);
		pthread_mutex_unlock(&cl->sendMutex);
	}
	rfbReleaseClientIterator(it);
	free(latin1);
}

/* A selection's value arrived (in the property, type STRING or UTF8_STRING). */
static void arrived(struct xsession *x, const char *data, size_t len, Atom type)
{
	char *utf8 = NULL;

	if (type == XA_STRING) {
		len = utf8_from_latin1(data, len, &utf8);
	} else if ((utf8 = malloc(len + 1))) {
		memcpy(utf8, data, len);
		utf8[len] = 0;
	}
	if (utf8)
		send_to_clients(x, utf8, len);
	free(utf8);
}

/* Reads our property: the value (or an INCR chunk), deleting it (which asks an INCR owner for more). */
static void read_property(struct xsession *x, Atom property, Atom selection)
{
	unsigned long n = 0, after = 0;
	unsigned char *data = NULL;
	Atom type = None;
	int format;

	if (XGetWindowProperty(x->ev, x->win, property, 0, XSESSION_MAX_CLIP / 4, True, AnyPropertyType, &type,
			       &format, &n, &after, &data) != Success)
		return;
	if (type == x->a_incr) {	/* the owner sends it in chunks: PropertyNotify each */
		free(x->incr.buf);
		x->incr = (struct incr_read){ .selection = selection, .active = true };
	} else if (x->incr.active && property == x->incr.selection) {
		size_t total = x->incr.len + n;
		char *buf = n && total <= XSESSION_MAX_CLIP && format == 8 ? realloc(x->incr.buf, total + 1) : NULL;

		if (!buf) {	/* the end (or too much: dropped) */
			if (n == 0 && x->incr.buf)
				arrived(x, x->incr.buf, x->incr.len, x->incr.type);
			free(x->incr.buf);
			x->incr = (struct incr_read){ 0 };
		} else {
			if (!x->incr.buf)	/* the first piece says what they all are */
				x->incr.type = type == XA_STRING ? XA_STRING : x->a_utf8;
			memcpy(buf + x->incr.len, data, n);
			x->incr.buf = buf;
			x->incr.len = total;
		}
	} else if (format == 8 && !after && (type == XA_STRING || type == x->a_utf8)) {
		arrived(x, (const char *)data, n, type);
	}
	if (data)
		XFree(data);
}

/* Answers another program's request for our selection's value. */
static void answer(struct xsession *x, const XSelectionRequestEvent *r)
{
	XEvent reply = { .xselection = { .type = SelectionNotify, .requestor = r->requestor, .selection = r->selection,
					 .target = r->target, .property = r->property ? r->property : r->target,
					 .time = r->time } };
	char *latin1 = NULL;

	if (!x->owned_text || (r->time != CurrentTime && r->time < x->owned_since)) {
		reply.xselection.property = None;
	} else if (r->target == x->a_targets) {
		Atom targets[] = { x->a_targets, x->a_utf8, XA_STRING, x->a_text, x->a_timestamp };

		XChangeProperty(x->ev, r->requestor, reply.xselection.property, XA_ATOM, 32, PropModeReplace,
				(unsigned char *)targets, 5);
	} else if (r->target == x->a_timestamp) {
		long t = (long)x->owned_since;

		XChangeProperty(x->ev, r->requestor, reply.xselection.property, XA_INTEGER, 32, PropModeReplace,
				(unsigned char *)&t, 1);
	} else if (r->target == x->a_utf8 || r->target == x->a_text) {
		XChangeProperty(x->ev, r->requestor, reply.xselection.property, x->a_utf8, 8, PropModeReplace,
				(unsigned char *)x->owned_text, (int)x->owned_len);
	} else if (r->target == XA_STRING) {
		size_t n = latin1_from_utf8(x->owned_text, x->owned_len, &latin1);

		if (latin1)
			XChangeProperty(x->ev, r->requestor, reply.xselection.property, XA_STRING, 8, PropModeReplace,
					(unsigned char *)latin1, (int)n);
		else
			reply.xselection.property = None;
	} else {
		reply.xselection.property = None;	/* a target we do not offer */
	}
	XSendEvent(x->ev, r->requestor, False, NoEventMask, &reply);
	free(latin1);
}

bool xclip_event(struct xsession *x, XEvent *e)
{
	if (x->o.no_clipboard)
		return false;
	if (x->xfixes_event >= 0 && e->type == x->xfixes_event + XFixesSelectionNotify) {
		XFixesSelectionNotifyEvent *s = (XFixesSelectionNotifyEvent *)e;

		/* Another program owns it now: ask for its text, into a property named after the selection. */
		if (s->owner != None && s->owner != x->win)
			XConvertSelection(x->ev, s->selection, x->a_utf8, s->selection, x->win, s->selection_timestamp);
		return true;
	}
	switch (e->type) {
	case SelectionNotify:
		if (e->xselection.property != None)
			read_property(x, e->xselection.property, e->xselection.selection);
		else if (e->xselection.target == x->a_utf8)	/* an owner without UTF-8: Latin-1 */
			XConvertSelection(x->ev, e->xselection.selection, XA_STRING, e->xselection.selection, x->win,
					  e->xselection.time);
		return true;
	case PropertyNotify:
		if (e->xproperty.window == x->win && e->xproperty.state == PropertyNewValue && x->incr.active &&
		    e->xproperty.atom == x->incr.selection)
			read_property(x, e->xproperty.atom, x->incr.selection);
		return true;
	case SelectionRequest:
		answer(x, &e->xselectionrequest);
		return true;
	case SelectionClear:
		return true;	/* another program's text now: its notify follows */
	}
	return false;
}

/* A client's cut text, left by its hook: ours to own, in both selections. */
void xclip_take_pending(struct xsession *x)
{
	char *text;
	size_t len;

	pthread_mutex_lock(&x->lock);
	text = x->pending_text;
	len = x->pending_len;
	x->pending_text = NULL;
	pthread_mutex_unlock(&x->lock);
	if (!text)
		return;
	free(x->owned_text);
	x->owned_text = text;
	x->owned_len = len;
	x->owned_since = CurrentTime;
	XSetSelectionOwner(x->ev, x->a_clipboard, x->win, CurrentTime);
	if (!x->o.no_primary)
		XSetSelectionOwner(x->ev, XA_PRIMARY, x->win, CurrentTime);
}

void xclip_free(struct xsession *x)
{
	free(x->owned_text);
	x->owned_text = NULL;
	free(x->incr.buf);
	x->incr = (struct incr_read){ 0 };
}

/* From a client's thread: its text, replacing any the X thread has not taken yet. */
static void leave_for_x(struct xsession *x, char *utf8, size_t len)
{
	pthread_mutex_lock(&x->lock);
	free(x->pending_text);
	x->pending_text = utf8;
	x->pending_len = len;
	pthread_mutex_unlock(&x->lock);
	xsession_wake(x);
}

void xclip_from_client_latin1(char *text, int len, rfbClientPtr cl)
{
	char *utf8;
	size_t n;

	if (len < 0 || len > XSESSION_MAX_CLIP)
		return;
	n = utf8_from_latin1(text, (size_t)len, &utf8);
	if (utf8)
		leave_for_x(cl->screen->screenData, utf8, n);
}

/* The extended clipboard's text: NUL-terminated, lines ending in CRLF (X's end in LF). */
void xclip_from_client_utf8(char *text, int len, rfbClientPtr cl)
{
	char *utf8;
	size_t n = 0;

	if (len < 0 || len > XSESSION_MAX_CLIP || !(utf8 = malloc((size_t)len + 1)))
		return;
	for (int i = 0; i < len && text[i]; i++)
		if (!(text[i] == '\r' && i + 1 < len && text[i + 1] == '\n'))
			utf8[n++] = text[i];
	utf8[n] = 0;
	leave_for_x(cl->screen->screenData, utf8, n);
}
