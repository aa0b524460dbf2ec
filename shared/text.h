/* SPDX-License-Identifier: MIT */
/*
 * Names that reach a terminal or a log: buffer names come from users, who
 * must not be able to forge a line of the daemon's log or of root's
 * `cohmemctl ls` with a newline or a terminal escape. One rule for what may
 * be a name, one escape for printing whatever is not (names that predate
 * the rule, file names found on disk).
 */
#ifndef COHMEM_TEXT_H
#define COHMEM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Whether s (NUL-terminated) is well-formed UTF-8 holding no control
 * character (U+0000-U+001F, U+007F, U+0080-U+009F) and none that changes how
 * the text around it shows while showing nothing itself: bidirectional
 * controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), line and
 * paragraph separators (U+2028, U+2029), zero-width and other invisible
 * formatting characters (U+200B-U+200D, U+2060-U+2064, U+206A-U+206F,
 * U+FEFF, U+FFF9-U+FFFB).
 */
bool text_printable(const char *s);

/*
 * s as printable text: every byte that does not start a printable UTF-8
 * character (text_printable()'s rule) is written as \xHH, and a backslash
 * as \\, so that different names never print the same. Writes at most
 * size bytes, NUL-terminated, never a character in part (nothing when size
 * is 0: out may be NULL then); returns the length the whole escape needs,
 * as snprintf() does.
 */
size_t text_escape(char *out, size_t size, const char *s);

#endif /* COHMEM_TEXT_H */
