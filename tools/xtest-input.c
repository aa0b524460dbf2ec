/* SPDX-License-Identifier: MIT */
/*
 * Clients' keys and pointer into the X server through XTEST (xstate.h).
 * Runs in the client's own thread, under in_lock: an event goes out as it
 * arrives. A keysym becomes the key that types it (keymap.c), pressed with
 * the Shift and Level3 (AltGr) state its level needs and that state put
 * back after; a keysym no key types is bound to a spare keycode first.
 * The mapping is read again for every key pressed — a program (setxkbmap,
 * xmodmap) may change it at any time, and a round trip per keystroke costs
 * nothing a person notices.
 */
#include <X11/XKBlib.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XTest.h>
#include <X11/keysym.h>
#include <string.h>

#include "keymap.h"
#include "xstate.h"

/* The keyboard as the X server has it now. */
struct keyboard {
	struct keymap map;
	KeySym *syms;
	XModifierKeymap *mods;
	unsigned state;		/* modifiers in effect */
	char down[32];		/* XQueryKeymap: keys held */
};

static void keyboard_read(Display *d, struct keyboard *k)
{
	int min, max, per = 0;
	Window root, child;
	int rx, ry, wx, wy;

	XDisplayKeycodes(d, &min, &max);
	k->syms = XGetKeyboardMapping(d, (KeyCode)min, max - min + 1, &per);
	k->map = (struct keymap){ .min = (unsigned)min, .max = (unsigned)max, .per = (unsigned)per,
				  .syms = k->syms };
	if (!k->syms)
		k->map.max = 0, k->map.min = 1;
	k->mods = XGetModifierMapping(d);
	if (!XQueryPointer(d, DefaultRootWindow(d), &root, &child, &rx, &ry, &wx, &wy, &k->state))
		k->state = 0;
	XQueryKeymap(d, k->down);
}

static void keyboard_free(struct keyboard *k)
{
	if (k->syms)
		XFree(k->syms);
	if (k->mods)
		XFreeModifiermap(k->mods);
}

/* The modifier bit a keycode sets (0: none). */
static unsigned modifier_of(const struct keyboard *k, unsigned keycode)
{
	if (!k->mods || !keycode)
		return 0;
	for (int i = 0; i < 8 * k->mods->max_keypermod; i++)
		if (k->mods->modifiermap[i] == keycode)
			return 1u << (i / k->mods->max_keypermod);
	return 0;
}

/* Up to 8 changes made around a key press, undone in reverse after it. */
struct adjust {
	unsigned keycode[8];
	bool pressed[8];
	int n;
};

static void fake(Display *d, struct adjust *a, unsigned keycode, bool press)
{
	XTestFakeKeyEvent(d, keycode, press, CurrentTime);
	if (a && a->n < 8) {
		a->keycode[a->n] = keycode;
		a->pressed[a->n++] = press;
	}
}

static void undo(Display *d, const struct adjust *a)
{
	for (int i = a->n - 1; i >= 0; i--)
		XTestFakeKeyEvent(d, a->keycode[i], !a->pressed[i], CurrentTime);
}

/* Sets modifier `mask` on (pressing the key of `keysym`) or off (releasing every key that holds it). */
static void set_modifier(Display *d, const struct keyboard *k, unsigned mask, KeySym keysym, bool on, struct adjust *a)
{
	unsigned kc;

	if (!mask || !(k->state & mask) == !on)
		return;
	if (on) {
		kc = XKeysymToKeycode(d, keysym);
		if (kc)
			fake(d, a, kc, true);
		return;
	}
	for (kc = 8; kc < 256; kc++)
		if (k->down[kc / 8] >> (kc % 8) & 1 && modifier_of(k, kc) == mask)
			fake(d, a, kc, false);
}

static bool has_case(KeySym keysym)
{
	KeySym lower, upper;

	XConvertCase(keysym, &lower, &upper);
	return lower != upper;
}

/* Binds keysym to a spare keycode (or the one it has): the keycode, or 0. */
static unsigned bind_spare(struct xsession *x, const struct keyboard *k, KeySym keysym)
{
	uint64_t avoid[4] = { 0 };
	struct bound_key *slot = NULL;
	KeySym both[2] = { keysym, keysym };
	static unsigned long long clock;
	unsigned kc;

	for (int i = 0; i < XSESSION_MAX_DOWN; i++)
		if (x->held[i].keycode)
			avoid[x->held[i].keycode / 64] |= 1ULL << (x->held[i].keycode % 64);
	for (int i = 0; i < XSESSION_MAX_BOUND; i++) {
		struct bound_key *b = &x->bound[i];

		if (!b->keycode || (!(avoid[b->keycode / 64] >> (b->keycode % 64) & 1) &&
				    (!slot || (slot->keycode && b->used < slot->used))))
			slot = b;
	}
	if (!slot)
		return 0;
	if (slot->keycode)
		kc = slot->keycode;	/* the oldest binding, not held: taken over */
	else if (keymap_spare(&k->map, avoid, &kc))
		return 0;
	XChangeKeyboardMapping(x->in, (int)kc, 2, both, 1);
	*slot = (struct bound_key){ .keysym = keysym, .keycode = kc, .used = ++clock };
	return kc;
}

static struct held_key *held_by(struct xsession *x, rfbKeySym keysym, rfbClientPtr cl)
{
	for (int i = 0; i < XSESSION_MAX_DOWN; i++)
		if (x->held[i].keycode && x->held[i].keysym == keysym && x->held[i].cl == cl)
			return &x->held[i];
	return NULL;
}

static void hold(struct xsession *x, rfbKeySym keysym, unsigned keycode, rfbClientPtr cl)
{
	for (int i = 0; i < XSESSION_MAX_DOWN; i++)
		if (!x->held[i].keycode) {
			x->held[i] = (struct held_key){ keysym, keycode, cl };
			return;
		}
	/* 64 keys held: this one's release finds its keycode again (release()) */
}

static void press(struct xsession *x, rfbKeySym keysym, rfbClientPtr cl)
{
	struct held_key *h = held_by(x, keysym, cl);
	struct key_choice c = { 0 };
	struct keyboard k = { 0 };
	struct adjust a = { .n = 0 };
	bool want_shift;

	if (h) {	/* the client's auto-repeat: the key again, as held */
		XTestFakeKeyEvent(x->in, h->keycode, True, CurrentTime);
		return;
	}
	keyboard_read(x->in, &k);
	if (keymap_find(&k.map, keysym, &c)) {
		c = (struct key_choice){ .keycode = bind_spare(x, &k, keysym) };
		if (!c.keycode)
			goto out;
	}
	if (!IsModifierKey(keysym)) {
		/* Caps Lock turns the levels of a letter over. */
		want_shift = (c.level & 1) != ((k.state & LockMask) && has_case(keysym));
		if (c.shift_matters)
			set_modifier(x->in, &k, ShiftMask, XK_Shift_L, want_shift, &a);
		if (c.level3_matters)
			set_modifier(x->in, &k, modifier_of(&k, XKeysymToKeycode(x->in, XK_ISO_Level3_Shift)),
				     XK_ISO_Level3_Shift, c.level & 2, &a);
	}
	XTestFakeKeyEvent(x->in, c.keycode, True, CurrentTime);
	undo(x->in, &a);
	hold(x, keysym, c.keycode, cl);
out:
	keyboard_free(&k);
}

static void release(struct xsession *x, rfbKeySym keysym, rfbClientPtr cl)
{
	struct held_key *h = held_by(x, keysym, cl);
	unsigned kc;

	if (h) {
		kc = h->keycode;
		*h = (struct held_key){ 0 };
	} else {
		kc = XKeysymToKeycode(x->in, keysym);	/* pressed before we knew (or past 64 held) */
	}
	if (kc)
		XTestFakeKeyEvent(x->in, kc, False, CurrentTime);
}

void xinput_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
	struct xsession *x = cl->screen->screenData;

	pthread_mutex_lock(&x->in_lock);
	if (x->in) {
		x->key_events++;
		if (down)
			press(x, keysym, cl);
		else
			release(x, keysym, cl);
		XFlush(x->in);
	}
	pthread_mutex_unlock(&x->in_lock);
}

static int clip(int v, int size)
{
	return v < 0 ? 0 : v >= size ? size - 1 : v;
}

/* Buttons 1-8 are bits 0-7 of the mask (4 and 5 the wheel, 6 and 7 its sideways). */
void xinput_pointer(int mask, int px, int py, rfbClientPtr cl)
{
	struct xsession *x = cl->screen->screenData;
	struct xclient *c = cl->clientData;

	pthread_mutex_lock(&x->in_lock);
	if (x->in) {
		int screen = DefaultScreen(x->in), before = c ? c->buttons : 0;

		px = clip(px, DisplayWidth(x->in, screen));
		py = clip(py, DisplayHeight(x->in, screen));
		x->key_events++;
		XTestFakeMotionEvent(x->in, screen, px, py, CurrentTime);
		for (unsigned b = 0; b < 8; b++)
			if ((mask ^ before) >> b & 1)
				XTestFakeButtonEvent(x->in, b + 1, mask >> b & 1, CurrentTime);
		if (c)
			c->buttons = mask;
		XFlush(x->in);
	}
	pthread_mutex_unlock(&x->in_lock);
	/* Where the pointer is, for the other clients' cursor-position updates. */
	rfbDefaultPtrAddEvent(mask, clip(px, cl->screen->width), clip(py, cl->screen->height), cl);
}

/* A client left (in_lock held): what it holds down is let go. */
void xinput_release_client(struct xsession *x, rfbClientPtr cl)
{
	struct xclient *c = cl->clientData;

	if (!x->in)
		return;
	for (int i = 0; i < XSESSION_MAX_DOWN; i++)
		if (x->held[i].keycode && x->held[i].cl == cl) {
			XTestFakeKeyEvent(x->in, x->held[i].keycode, False, CurrentTime);
			x->held[i] = (struct held_key){ 0 };
		}
	for (unsigned b = 0; c && b < 8; b++)
		if (c->buttons >> b & 1)
			XTestFakeButtonEvent(x->in, b + 1, False, CurrentTime);
	if (c)
		c->buttons = 0;
	XFlush(x->in);
}

/* The connection is gone (in_lock held): nothing is held or bound on the next one. */
void xinput_disconnected(struct xsession *x)
{
	memset(x->held, 0, sizeof(x->held));
	memset(x->bound, 0, sizeof(x->bound));
}
