/* SPDX-License-Identifier: MIT */
/*
 * tools/keymap.c: which key, at which level, types a keysym — on core maps
 * shaped as X servers give them (us: two levels; de: AltGr's in columns 4
 * and 5), and a spare keycode for a keysym no key has.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "keymap.h"

enum { MIN = 8, MAX = 15, PER = 6 };
enum { XK_1 = 0x31, XK_exclam = 0x21, XK_q = 0x71, XK_Q = 0x51, XK_at = 0x40, XK_Greek_OMEGA = 0x7d9,
       XK_Return = 0xff0d, XK_Shift_L = 0xffe1, XK_Level3 = 0xfe03, XK_EuroSign = 0x20ac, XK_e = 0x65,
       XK_E = 0x45, XK_Cyrillic_zhe = 0x6d6 };

static unsigned long syms[(MAX - MIN + 1) * PER];

static void put(unsigned keycode, const unsigned long *s, int n)
{
	memcpy(&syms[(keycode - MIN) * PER], s, (size_t)n * sizeof(*s));
}

/* keycode 8 empty; 9 "1 !"; 10 "q Q q Q @ Ω" (de); 11 Return; 12 Shift_L; 13 Level3; 14 "e E e E € €"; 15 empty */
static const struct keymap *map(void)
{
	static struct keymap m = { MIN, MAX, PER, syms };

	memset(syms, 0, sizeof(syms));
	put(9, (unsigned long[]){ XK_1, XK_exclam }, 2);
	put(10, (unsigned long[]){ XK_q, XK_Q, XK_q, XK_Q, XK_at, XK_Greek_OMEGA }, 6);
	put(11, (unsigned long[]){ XK_Return }, 1);
	put(12, (unsigned long[]){ XK_Shift_L }, 1);
	put(13, (unsigned long[]){ XK_Level3 }, 1);
	put(14, (unsigned long[]){ XK_e, XK_E, XK_e, XK_E, XK_EuroSign }, 5);
	return &m;
}

/* The key found for keysym: its keycode, its level, and whether Shift and AltGr matter. */
static void expect_key(unsigned long keysym, unsigned keycode, unsigned level, bool shift, bool level3)
{
	struct key_choice c = { 0 };

	cr_assert_eq(keymap_find(map(), keysym, &c), 0, "keysym %#lx not found", keysym);
	cr_expect_eq(c.keycode, keycode, "keysym %#lx: keycode %u, not %u", keysym, c.keycode, keycode);
	cr_expect_eq(c.level, level, "keysym %#lx: level %u, not %u", keysym, c.level, level);
	cr_expect_eq(c.shift_matters, shift, "keysym %#lx: Shift %s", keysym, shift ? "must matter" : "must not matter");
	cr_expect_eq(c.level3_matters, level3, "keysym %#lx: AltGr %s", keysym, level3 ? "must matter" : "must not matter");
}

Test(keymap, a_plain_symbol_is_level_one_and_shift_matters)
{
	expect_key(XK_q, 10, 0, true, true);	/* AltGr+q types @: AltGr must be off */
}

Test(keymap, a_shifted_symbol_is_level_two)
{
	expect_key(XK_exclam, 9, 1, true, false);	/* no third level: AltGr changes nothing */
}

Test(keymap, an_altgr_symbol_is_level_three_and_its_shifted_one_four)
{
	expect_key(XK_at, 10, 2, true, true);	/* Shift+AltGr+q types Ω */
	expect_key(XK_Greek_OMEGA, 10, 3, true, true);
}

Test(keymap, an_empty_fourth_level_types_the_third_so_shift_does_not_matter)
{
	expect_key(XK_EuroSign, 14, 2, false, true);
}

Test(keymap, a_key_with_one_symbol_leaves_shift_alone)
{
	expect_key(XK_Return, 11, 0, false, false);	/* Shift+Return must reach X as Shift+Return */
}

Test(keymap, group_two_columns_are_not_levels)
{
	static unsigned long only_group2[2 * PER];
	struct keymap m = { MIN, MIN + 1, PER, only_group2 };
	struct key_choice c;

	only_group2[2] = XK_Cyrillic_zhe;	/* column 2: group 2, level 1 */
	cr_expect_eq(keymap_find(&m, XK_Cyrillic_zhe, &c), -ENOENT);
}

Test(keymap, a_keysym_no_key_has_is_not_found_and_gets_a_spare_keycode)
{
	uint64_t avoid[4] = { 0 };
	struct key_choice c;
	unsigned kc = 0;

	cr_expect_eq(keymap_find(map(), XK_Cyrillic_zhe, &c), -ENOENT);
	cr_expect_eq(keymap_find(map(), 0, &c), -ENOENT, "NoSymbol is never a key");
	cr_assert_eq(keymap_spare(map(), avoid, &kc), 0);
	cr_expect_eq(kc, 15, "the highest empty keycode");
	avoid[0] = 1ULL << 15;	/* held down */
	cr_assert_eq(keymap_spare(map(), avoid, &kc), 0);
	cr_expect_eq(kc, 8);
	avoid[0] |= 1ULL << 8;
	cr_expect_eq(keymap_spare(map(), avoid, &kc), -ENOSPC);
}
