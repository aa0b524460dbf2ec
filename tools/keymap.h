/* SPDX-License-Identifier: MIT */
/*
 * Which key, with which modifiers, types a keysym: a search of the X
 * server's core keyboard mapping (XGetKeyboardMapping's table), apart from
 * Xlib so that it can be tested without an X server. cohmem-vnc's input
 * (xtest-input.c) presses what it finds through XTEST.
 */
#ifndef COHMEM_KEYMAP_H
#define COHMEM_KEYMAP_H

#include <stdbool.h>
#include <stdint.h>

#define KEYMAP_NO_SYMBOL 0UL

/* The core mapping: syms[(keycode - min) * per + column], as XGetKeyboardMapping returns it. */
struct keymap {
	unsigned min, max, per;
	const unsigned long *syms;
};

/*
 * A key for a keysym. level: 0 plain, 1 Shift, 2 Level3 (AltGr), 3 Level3 +
 * Shift — the core columns 0, 1, 4 and 5 (XKB puts group 1's third and
 * fourth levels in columns 4 and 5; columns 2 and 3 are group 2, which no
 * modifier reaches). shift_matters / level3_matters: whether that modifier
 * changes what the key types, so that it must be set (or cleared) as the
 * level says; when it does not (Return, Shift's level empty), whatever the
 * user holds is left alone — Shift+Return stays Shift+Return.
 */
struct key_choice {
	unsigned keycode, level;
	bool shift_matters, level3_matters;
};

/* The key that types keysym at the lowest level: 0, or -ENOENT (none: bind a spare one). */
int keymap_find(const struct keymap *m, unsigned long keysym, struct key_choice *out);

/*
 * A keycode with no symbol at all, to bind a keysym absent from the map to
 * (as x11vnc does), skipping those set in avoid (a 256-bit map, e.g. keys
 * held down); 0, or -ENOSPC.
 */
int keymap_spare(const struct keymap *m, const uint64_t avoid[4], unsigned *keycode);

#endif
