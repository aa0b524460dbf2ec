/* SPDX-License-Identifier: MIT */
/* Which key types a keysym: see keymap.h. */
#include <errno.h>

#include "keymap.h"

static unsigned long sym_at(const struct keymap *m, unsigned keycode, unsigned column)
{
	if (column >= m->per)
		return KEYMAP_NO_SYMBOL;
	return m->syms[(keycode - m->min) * m->per + column];
}

/* Core columns of levels 0-3 (keymap.h). */
static const unsigned level_column[4] = { 0, 1, 4, 5 };

/*
 * What the key types at a level. An empty second level types the first
 * (the core protocol's rule for a key with one symbol), an empty fourth the
 * third: so does XKB's core conversion.
 */
static unsigned long sym_at_level(const struct keymap *m, unsigned keycode, unsigned level)
{
	unsigned long s = sym_at(m, keycode, level_column[level]);

	if (s == KEYMAP_NO_SYMBOL && (level == 1 || level == 3))
		s = sym_at(m, keycode, level_column[level - 1]);
	return s;
}

int keymap_find(const struct keymap *m, unsigned long keysym, struct key_choice *out)
{
	if (keysym == KEYMAP_NO_SYMBOL || !m->syms || m->max < m->min)
		return -ENOENT;
	for (unsigned level = 0; level < 4; level++)
		for (unsigned kc = m->min; kc <= m->max; kc++) {
			if (sym_at(m, kc, level_column[level]) != keysym)
				continue;
			out->keycode = kc;
			out->level = level;
			/* Shift matters if it changes the symbol at this level's Level3 state. */
			out->shift_matters = sym_at_level(m, kc, level & 2) != sym_at_level(m, kc, (level & 2) | 1);
			/* Level3 matters if the key has a third level that differs. */
			out->level3_matters = sym_at(m, kc, level_column[2]) != KEYMAP_NO_SYMBOL &&
					      sym_at_level(m, kc, level & 1) != sym_at_level(m, kc, 2 | (level & 1));
			return 0;
		}
	return -ENOENT;
}

int keymap_spare(const struct keymap *m, const uint64_t avoid[4], unsigned *keycode)
{
	/* From the top: low keycodes are the ones a keyboard has. */
	for (unsigned kc = m->max; kc >= m->min && kc >= 8; kc--) {
		bool empty = true;

		if (kc < 256 && avoid && avoid[kc / 64] >> (kc % 64) & 1)
			continue;
		for (unsigned c = 0; c < m->per && empty; c++)
			empty = sym_at(m, kc, c) == KEYMAP_NO_SYMBOL;
		if (empty) {
			*keycode = kc;
			return 0;
		}
	}
	return -ENOSPC;
}
