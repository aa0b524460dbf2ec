/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

/*
 * Characters that change how the text around them is shown without showing
 * themselves: bidirectional controls (U+202E turns the rest of a line of
 * `cohmemctl ls` around), line and paragraph separators, zero-width ones
 * (two names that look the same).
 */
static bool invisible(uint32_t cp)
{
	return cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206f) || cp == 0xfeff ||
	       (cp >= 0xfff9 && cp <= 0xfffb);
}

/*
 * The length of the printable UTF-8 character at s, or 0 if the byte there
 * does not start one (a control character, an invisible one, a malformed or
 * overlong sequence, a surrogate, past U+10FFFF).
 */
static size_t printable_char(const unsigned char *s)
{
	uint32_t cp;
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;	/* the second byte's range */

	if (s[0] < 0x80)
		return s[0] >= 0x20 && s[0] != 0x7f;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
		lo = s[0] == 0xe0 ? 0xa0 : 0x80;	/* not overlong */
		hi = s[0] == 0xed ? 0x9f : 0xbf;	/* no surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
		lo = s[0] == 0xf0 ? 0x90 : 0x80;	/* not overlong */
		hi = s[0] == 0xf4 ? 0x8f : 0xbf;	/* not past U+10FFFF */
	} else {
		return 0;
	}
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;	/* the NUL that ends the string stops here too */
		cp = cp << 6 | (s[i] & 0x3f);
	}
	return (cp >= 0x80 && cp <= 0x9f) || invisible(cp) ? 0 : len;	/* C1 controls, invisible ones */
}

bool text_printable(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = printable_char(p);

		if (!n)
			return false;
		p += n;
	}
	return true;
}

size_t text_escape(char *out, size_t size, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t need = 0;

	while (*p) {
		size_t n = *p == '\\' ? 0 : printable_char(p);
		char esc[5];
		const char *piece = (const char *)p;
		size_t len = n;

		if (!n) {
			len = (size_t)snprintf(esc, sizeof(esc), *p == '\\' ? "\\\\" : "\\x%02x", *p);
			piece = esc;
			n = 1;
		}
		if (need + len < size)
			memcpy(out + need, piece, len);
		else if (need < size)
			size = need + 1;	/* never split a character: stop here */
		need += len;
		p += n;
	}
	if (size)
		out[need < size ? need : size - 1] = '\0';
	return need;
}
