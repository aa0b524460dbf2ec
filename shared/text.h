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
 * character: none of U+0000-U+001F, U+007F and U+0080-U+009F.
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
