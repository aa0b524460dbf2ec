/* SPDX-License-Identifier: MIT */
/*
 * The daemon's state, and its log: one line per event on stderr (systemd's
 * journal takes it as it is), written with a single write(2) so that
 * threads' lines never mix, and escaped whole (shared/text.h): buffer names
 * come from users, and a name must not start a line of its own or send a
 * terminal escape to whoever reads the log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "text.h"

struct daemon daemon_state;
int log_fd = STDERR_FILENO;

#define PREFIX "cohmemd: "

void logmsg(const char *fmt, ...)
{
	char text[1024], *big = NULL, *line;
	const char *msg = text;
	size_t need;
	va_list ap;
	int n;

	if (log_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(text) && (big = malloc((size_t)n + 1))) {
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		msg = big;
	}
	need = text_escape(NULL, 0, msg);
	line = malloc(sizeof(PREFIX) + need + 1);
	if (line) {
		memcpy(line, PREFIX, sizeof(PREFIX) - 1);
		text_escape(line + sizeof(PREFIX) - 1, need + 1, msg);
		line[sizeof(PREFIX) - 1 + need] = '\n';
		if (write(log_fd, line, sizeof(PREFIX) + need) < 0) {
			/* nowhere left to say it */
		}
	}
	free(line);
	free(big);
}
