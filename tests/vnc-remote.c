/* SPDX-License-Identifier: MIT */
/*
 * vnc-remote: a VNC client (libvncclient) that does what a person at a
 * viewer does, from a script: types, presses keys, moves and clicks, hands
 * the server clipboard text and waits for the server's, waits for the
 * picture to change, and measures keystroke-to-screen latency.
 *
 *   vnc-remote [--password-file FILE] HOST PORT COMMAND...
 *   vnc-remote [--password-file FILE] HOST PORT -      (commands on stdin, one a line)
 *
 * The password: FILE's first line (plain text), else $VNC_PASSWORD, else
 * none. Commands (TEXT is UTF-8; on stdin, the rest of the line):
 *   type TEXT             each character as its keysym, down then up; Shift_L
 *                         held around those a US keyboard types with Shift,
 *                         as viewers do; \n and \t as Return and Tab
 *   key NAME              one key by its XStringToKeysym name (Return, Tab, ...)
 *   click X Y [BUTTON]    move there, press BUTTON (1-7, 4-7 the wheel; 1), release
 *   move X Y              move the pointer (past the screen's edge too: the
 *                         server must clip)
 *   cut-text TEXT         the client's clipboard to the server (ClientCutText:
 *                         Latin-1; libvncclient 0.9.14 has no extended
 *                         clipboard, so no UTF-8)
 *   wait-cut-text TEXT    until the server has sent that clipboard text (since
 *                         the last wait-cut-text)
 *   wait-change X Y W H   until the rectangle's pixels differ from what they
 *                         were when the command began
 *   latency N X Y W H     N times: types one character and measures, on
 *                         CLOCK_MONOTONIC, from the key event sent to the
 *                         update that changed the rectangle; each, then the median
 * Prints "connected WxH" once it has the first frame, a line for each
 * command done (and "ok N" after stdin's line N), and each clipboard text
 * the server sends. Every wait lasts
 * as long as the connection does, however slow the machine: the caller
 * bounds it (timeout(1)). Keys and buttons are released before the next
 * command.
 * Exit 0; 1 failure (the reason on stderr); 2 usage; 3 refused: the
 * server's VNC authentication failed, or it asked for a password and none
 * was given.
 */
#define _GNU_SOURCE
#include <X11/Xlib.h>
#include <X11/keysym.h>
#include <errno.h>
#include <poll.h>
#include <rfb/rfbclient.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "stats.h"

#define EXIT_REFUSED 3
#define MAX_WORDS 8
#define SETTLE_NS 200000000LL	/* latency: the rectangle unchanged this long before a sample */

struct cut {
	struct cut *next;
	char text[];		/* UTF-8 */
};

/* One connection's state; libvncclient's callbacks reach it through this static. */
static struct remote {
	const char *password;	/* NULL: none */
	bool asked_password;	/* the server chose VNC authentication */
	bool auth_failed;	/* libvncclient said it failed */
	char last_log[256];	/* what libvncclient said last: the reason a connection failed */
	unsigned long long updates;	/* updates finished */
	unsigned long long got_pixels;	/* in rectangles of the update under way */
	bool got_frame;
	struct cut *cuts, **cuts_end;	/* received since the last wait-cut-text */
} r;

struct rect {
	int x, y, w, h;
};

/* libvncclient's log: kept, not printed; its authentication verdicts noted. */
__attribute__((format(printf, 1, 2))) static void note_log(const char *format, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, format);
	vsnprintf(r.last_log, sizeof(r.last_log), format, ap);
	va_end(ap);
	n = strlen(r.last_log);
	if (n && r.last_log[n - 1] == '\n')
		r.last_log[n - 1] = 0;
	/* After the password, "VNC connection failed: REASON" is RFB 3.8's failed SecurityResult. */
	if (strstr(r.last_log, "authentication failed") ||
	    (r.asked_password && strstr(r.last_log, "VNC connection failed")))
		r.auth_failed = true;
}

static char *get_password(rfbClient *c)
{
	(void)c;
	r.asked_password = true;
	return r.password ? strdup(r.password) : NULL;
}

static void got_rect(rfbClient *c, int x, int y, int w, int h)
{
	(void)c, (void)x, (void)y;
	r.got_pixels += (unsigned long long)w * (unsigned long long)h;
}

/* An update ends: the first frame is in once an update brought as many pixels as it has. */
static void update_done(rfbClient *c)
{
	if (r.got_pixels >= (unsigned long long)c->width * (unsigned long long)c->height)
		r.got_frame = true;
	r.got_pixels = 0;
	r.updates++;
}

/* Latin-1 to UTF-8 (each byte is its code point): a malloc'd string, or NULL. */
static char *latin1_to_utf8(const char *s, size_t len)
{
	char *out = malloc(2 * len + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x80) {
			*o++ = (char)ch;
		} else {
			*o++ = (char)(0xc0 | ch >> 6);
			*o++ = (char)(0x80 | (ch & 0x3f));
		}
	}
	*o = 0;
	return out;
}

/* Prints s with its control characters as \xNN (a clipboard text may hold newlines). */
static void print_visible(const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == '\\')
			printf("\\x%02x", (unsigned char)*s);
		else
			putchar(*s);
	}
}

/* The server's clipboard (ServerCutText, Latin-1): printed, and kept for wait-cut-text. */
static void got_cut_text(rfbClient *c, const char *text, int len)
{
	char *utf8 = latin1_to_utf8(text, (size_t)len);
	struct cut *cut = utf8 ? malloc(sizeof(*cut) + strlen(utf8) + 1) : NULL;

	(void)c;
	if (!cut) {
		free(utf8);
		return;
	}
	strcpy(cut->text, utf8);
	free(utf8);
	cut->next = NULL;
	*r.cuts_end = cut;
	r.cuts_end = &cut->next;
	printf("server cut text: ");
	print_visible(cut->text);
	putchar('\n');
}

static void forget_cuts(void)
{
	while (r.cuts) {
		struct cut *next = r.cuts->next;

		free(r.cuts);
		r.cuts = next;
	}
	r.cuts_end = &r.cuts;
}

static int fail(const char *format, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *format, ...)
{
	va_list ap;

	fputs("vnc-remote: ", stderr);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * Serves the connection for up to usecs: handles one server message if one
 * comes. A message libvncclient has already read into its buffer is ready,
 * and WaitForMessage() (a select() on the socket) does not see those (see
 * vnc-capture.c). False once the connection ended.
 */
static bool pump(rfbClient *c, unsigned usecs)
{
	int ready = c->buffered ? 1 : WaitForMessage(c, usecs);

	return ready >= 0 && (ready == 0 || HandleRFBServerMessage(c));
}

/* Serves the connection until an update has brought a whole frame's pixels: false if it ends first. */
static bool wait_frame(rfbClient *c)
{
	while (!r.got_frame)
		if (!pump(c, 1000000))
			return false;
	return true;
}

/* Decodes one UTF-8 character at *s, advancing it: its code point, or -1 if malformed. */
static long next_utf8(const char **s)
{
	const unsigned char *p = (const unsigned char *)*s;
	int more = p[0] < 0x80 ? 0 : (p[0] & 0xe0) == 0xc0 ? 1 : (p[0] & 0xf0) == 0xe0 ? 2 :
		   (p[0] & 0xf8) == 0xf0 ? 3 : -1;
	long cp = more == 0 ? p[0] : more == 1 ? p[0] & 0x1f : more == 2 ? p[0] & 0x0f : p[0] & 0x07;

	if (more < 0)
		return -1;
	for (int i = 1; i <= more; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	*s += more + 1;
	return cp;
}

/* The keysym of a character: Latin-1's are their code points, others Unicode keysyms. */
static uint32_t char_keysym(long cp)
{
	if (cp == '\n')
		return XK_Return;
	if (cp == '\t')
		return XK_Tab;
	if ((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff))
		return (uint32_t)cp;
	return 0x01000000u | (uint32_t)cp;
}

/* Whether a US keyboard types the character with Shift (a viewer holds Shift_L for it). */
static bool shifted(long cp)
{
	return (cp >= 'A' && cp <= 'Z') || (cp > 0 && cp < 0x80 && strchr("~!@#$%^&*()_+{}|:\"<>?", (int)cp));
}

static bool press_key(rfbClient *c, uint32_t keysym)
{
	return SendKeyEvent(c, keysym, TRUE) && SendKeyEvent(c, keysym, FALSE);
}

static bool type_char(rfbClient *c, long cp)
{
	bool shift = shifted(cp);

	return (!shift || SendKeyEvent(c, XK_Shift_L, TRUE)) && press_key(c, char_keysym(cp)) &&
	       (!shift || SendKeyEvent(c, XK_Shift_L, FALSE));
}

static int cmd_type(rfbClient *c, char **w, int nw)
{
	const char *text = w[0];
	unsigned n = 0;

	for (const char *s = text; *s; n++) {
		long cp = next_utf8(&s);

		if (cp < 0)
			return fail("type: not UTF-8: %s", text);
		if (!type_char(c, cp))
			return fail("type: the connection ended");
	}
	printf("typed %u characters\n", n);
	return 0;
}

static int cmd_key(rfbClient *c, char **w, int nw)
{
	const char *name = w[0];
	KeySym keysym = XStringToKeysym(name);

	if (keysym == NoSymbol)
		return fail("key: no keysym is named %s", name);
	if (!press_key(c, (uint32_t)keysym))
		return fail("key: the connection ended");
	printf("pressed %s\n", name);
	return 0;
}

/* A decimal number in [min, max] from s, or false. */
static bool number(const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = (int)v;
	return true;
}

/* RFB positions are 16-bit: a move past the screen's edge is for the server to clip. */
static bool position(char **w, int *x, int *y)
{
	return number(w[0], 0, 65535, x) && number(w[1], 0, 65535, y);
}

static int cmd_move(rfbClient *c, char **w, int nw)
{
	int x, y;

	if (!position(w, &x, &y))
		return fail("move: not a position: %s %s", w[0], w[1]);
	if (!SendPointerEvent(c, x, y, 0))
		return fail("move: the connection ended");
	printf("moved to %d %d\n", x, y);
	return 0;
}

static int cmd_click(rfbClient *c, char **w, int nw)
{
	int x, y, button = 1;

	if (!position(w, &x, &y) || (nw > 2 && !number(w[2], 1, 7, &button)))
		return fail("click: want X Y [BUTTON 1-7]");
	if (!SendPointerEvent(c, x, y, 0) || !SendPointerEvent(c, x, y, 1 << (button - 1)) ||
	    !SendPointerEvent(c, x, y, 0))
		return fail("click: the connection ended");
	printf("clicked button %d at %d %d\n", button, x, y);
	return 0;
}

/* UTF-8 to Latin-1, which ClientCutText carries: a malloc'd string, or NULL if one is outside it. */
static char *utf8_to_latin1(const char *text, size_t *len)
{
	char *out = malloc(strlen(text) + 1);
	const char *s = text;

	*len = 0;
	while (out && *s) {
		long cp = next_utf8(&s);

		if (cp < 0 || cp > 0xff) {
			free(out);
			return NULL;
		}
		out[(*len)++] = (char)cp;
	}
	return out;
}

static int cmd_cut_text(rfbClient *c, char **w, int nw)
{
	const char *text = w[0];
	size_t len;
	char *latin1 = utf8_to_latin1(text, &len);
	bool sent;

	/* libvncclient 0.9.14 has no SendClientCutTextUTF8 (the extended clipboard came in 0.9.15). */
	if (!latin1)
		return fail("cut-text: not UTF-8 of Latin-1 characters, all this libvncclient sends: %s", text);
	sent = SendClientCutText(c, latin1, (int)len);
	free(latin1);
	if (!sent)
		return fail("cut-text: the connection ended");
	printf("sent cut text of %zu characters\n", len);
	return 0;
}

static bool cut_arrived(const char *text)
{
	for (const struct cut *cut = r.cuts; cut; cut = cut->next)
		if (!strcmp(cut->text, text))
			return true;
	return false;
}

static int cmd_wait_cut_text(rfbClient *c, char **w, int nw)
{
	const char *text = w[0];

	while (!cut_arrived(text))
		if (!pump(c, 1000000))
			return fail("wait-cut-text: the connection ended before the text came");
	forget_cuts();
	printf("got cut text: ");
	print_visible(text);
	putchar('\n');
	return 0;
}

static bool parse_rect(char **w, struct rect *rc)
{
	return number(w[0], 0, 65535, &rc->x) && number(w[1], 0, 65535, &rc->y) &&
	       number(w[2], 1, 65535, &rc->w) && number(w[3], 1, 65535, &rc->h);
}

/* The rectangle's pixels (32-bit: rfbGetClient(8, 3, 4)) into buf, clipped to the frame: false if nothing is left. */
static bool snapshot(const rfbClient *c, struct rect rc, uint32_t *buf)
{
	int w = rc.x + rc.w > c->width ? c->width - rc.x : rc.w;
	int h = rc.y + rc.h > c->height ? c->height - rc.y : rc.h;

	if (w <= 0 || h <= 0)
		return false;
	for (int y = 0; y < h; y++)
		memcpy(buf + (size_t)y * w, (const uint32_t *)c->frameBuffer + (size_t)(rc.y + y) * c->width + rc.x,
		       (size_t)w * 4);
	return true;
}

/* Whether the rectangle's pixels differ from before (a resize that leaves nothing of it is a change). */
static bool changed(const rfbClient *c, struct rect rc, const uint32_t *before, uint32_t *scratch)
{
	int w = rc.x + rc.w > c->width ? c->width - rc.x : rc.w;
	int h = rc.y + rc.h > c->height ? c->height - rc.y : rc.h;

	return !snapshot(c, rc, scratch) || memcmp(before, scratch, (size_t)w * (size_t)h * 4);
}

/* Serves the connection until an update changes the rectangle from before: false if it ends. */
static bool until_changed(rfbClient *c, struct rect rc, const uint32_t *before, uint32_t *scratch)
{
	for (;;) {
		unsigned long long seen = r.updates;

		if (!pump(c, 1000000))
			return false;
		if (r.updates != seen && changed(c, rc, before, scratch))
			return true;
	}
}

/* Serves the connection until the rectangle has stayed as it is for SETTLE_NS: false if it ends. */
static bool until_settled(rfbClient *c, struct rect rc, uint32_t *now, uint32_t *scratch)
{
	long long since = now_ns();

	snapshot(c, rc, now);
	while (now_ns() - since < SETTLE_NS) {
		unsigned long long seen = r.updates;

		if (!pump(c, 20000))
			return false;
		if (r.updates != seen && changed(c, rc, now, scratch)) {
			snapshot(c, rc, now);
			since = now_ns();
		}
	}
	return true;
}

static int cmd_wait_change(rfbClient *c, char **w, int nw)
{
	struct rect rc;
	uint32_t *before, *scratch;
	bool ok;

	if (!parse_rect(w, &rc))
		return fail("wait-change: want X Y W H");
	before = malloc((size_t)rc.w * (size_t)rc.h * 4);
	scratch = malloc((size_t)rc.w * (size_t)rc.h * 4);
	ok = before && scratch && snapshot(c, rc, before);
	ok = ok && until_changed(c, rc, before, scratch);
	free(before);
	free(scratch);
	if (!ok)
		return fail("wait-change: no such rectangle, or the connection ended before it changed");
	printf("changed: %d %d %d %d\n", rc.x, rc.y, rc.w, rc.h);
	return 0;
}

/* One latency sample: the rectangle settled, a character typed, the update that shows it (ms), or < 0. */
static double latency_sample(rfbClient *c, struct rect rc, unsigned i, uint32_t *before, uint32_t *scratch)
{
	long long t0;

	if (!until_settled(c, rc, before, scratch))
		return -1;
	t0 = now_ns();
	if (!press_key(c, 'a' + i % 26) || !until_changed(c, rc, before, scratch))
		return -1;
	return (double)(now_ns() - t0) / 1e6;
}

static int latency_run(rfbClient *c, struct rect rc, int n, double *ms)
{
	size_t size = (size_t)rc.w * (size_t)rc.h * 4;
	uint32_t *before = malloc(size), *scratch = malloc(size);
	int status = 0;

	if (!before || !scratch || !snapshot(c, rc, before))
		status = fail("latency: no such rectangle");
	for (int i = 0; !status && i < n; i++) {
		ms[i] = latency_sample(c, rc, (unsigned)i, before, scratch);
		if (ms[i] < 0)
			status = fail("latency: the connection ended before the keystroke showed");
		else
			printf("latency %d: %.3f ms\n", i + 1, ms[i]);
	}
	free(before);
	free(scratch);
	return status;
}

static int cmd_latency(rfbClient *c, char **w, int nw)
{
	struct rect rc;
	int n, status;
	double *ms;

	if (!number(w[0], 1, 100000, &n) || !parse_rect(w + 1, &rc))
		return fail("latency: want N X Y W H");
	ms = malloc(sizeof(*ms) * (size_t)n);
	if (!ms)
		return fail("latency: out of memory");
	status = latency_run(c, rc, n, ms);
	if (!status)
		printf("latency median %.3f ms of %d keystrokes\n", bench_median(ms, (unsigned)n), n);
	free(ms);
	return status;
}

/* The commands, with how many words follow each (TEXT: one, the rest of a line on stdin). */
static const struct command {
	const char *name;
	int min, max;
	bool text;
	int (*run)(rfbClient *c, char **w, int nw);
} commands[] = {
	{ "type", 1, 1, true, cmd_type },
	{ "key", 1, 1, false, cmd_key },
	{ "click", 2, 3, false, cmd_click },
	{ "move", 2, 2, false, cmd_move },
	{ "cut-text", 1, 1, true, cmd_cut_text },
	{ "wait-cut-text", 1, 1, true, cmd_wait_cut_text },
	{ "wait-change", 4, 4, false, cmd_wait_change },
	{ "latency", 5, 5, false, cmd_latency },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/*
 * How many of args[0..n) the command at args[0] takes with its words: 0 if
 * it is none or lacks words. click's BUTTON is there if the next word is a number.
 */
static int command_words(char **args, int n)
{
	const struct command *cmd = find_command(args[0]);
	int nw;
	int button;

	if (!cmd || n - 1 < cmd->min)
		return 0;
	nw = cmd->min;
	if (cmd->max > nw && n - 1 > nw && number(args[1 + nw], 1, 7, &button))
		nw++;
	return 1 + nw;
}

/* Checks a command line's script before connecting: a mistake is not found half-way through. */
static int check_args(char **args, int n)
{
	for (int i = 0; i < n;) {
		int taken = command_words(args + i, n - i);

		if (!taken)
			return fail("not a command, or too few words for it: %s", args[i]), 2;
		i += taken;
	}
	return 0;
}

static int run_args(rfbClient *c, char **args, int n)
{
	int status = 0;

	for (int i = 0; !status && i < n;) {
		int taken = command_words(args + i, n - i);

		status = find_command(args[i])->run(c, args + i + 1, taken - 1);
		fflush(stdout);
		i += taken;
	}
	return status;
}

/* One line of stdin as a command: its words split at blanks, but TEXT is the rest of the line. */
static int run_line(rfbClient *c, char *line)
{
	char *w[MAX_WORDS], *save = NULL, *name;
	const struct command *cmd;
	int nw = 0;

	line[strcspn(line, "\n")] = 0;
	name = strtok_r(line, " ", &save);
	if (!name)
		return 0;
	cmd = find_command(name);
	if (!cmd)
		return fail("not a command: %s", name);
	if (cmd->text) {
		w[nw++] = save ? save : (char *)"";
	} else {
		while (nw < MAX_WORDS && (w[nw] = strtok_r(NULL, " ", &save)))
			nw++;
		if (nw < cmd->min || nw > cmd->max)
			return fail("%s: wants %d to %d words", name, cmd->min, cmd->max);
	}
	return cmd->run(c, w, nw);
}

/*
 * Commands from stdin, one a line, the connection served while none comes:
 * 0 at EOF. "ok N" says line N is done (its command's effects sent or seen).
 */
static int run_stdin(rfbClient *c)
{
	char line[4096];
	int status = 0;
	unsigned lines = 0;

	setvbuf(stdin, NULL, _IONBF, 0);	/* poll() sees every line: none waits in stdio's buffer */
	while (!status) {
		struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = c->sock, .events = POLLIN } };

		fflush(stdout);
		if (c->buffered || (poll(p, 2, -1) > 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))) {
			if (!pump(c, 0))
				return fail("the connection ended");
			continue;
		}
		if (!(p[0].revents & (POLLIN | POLLHUP)))
			continue;
		if (!fgets(line, sizeof(line), stdin))
			break;
		status = run_line(c, line);
		if (!status)
			printf("ok %u\n", ++lines);
	}
	return status;
}

/* The password from FILE's first line, else $VNC_PASSWORD: malloc'd, or NULL for none. */
static char *read_password(const char *file)
{
	char buf[256];
	FILE *f;

	if (!file)
		return getenv("VNC_PASSWORD") ? strdup(getenv("VNC_PASSWORD")) : NULL;
	f = fopen(file, "r");
	if (!f)
		return NULL;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return strdup(buf);
}

/* Connects and takes the first frame: the client, or NULL with *status (1, or 3: refused). */
static rfbClient *connect_to(const char *host, const char *port, int *status)
{
	rfbClient *c = rfbGetClient(8, 3, 4);

	free(c->serverHost);	/* rfbGetClient()'s "": rfbClientCleanup() frees ours */
	c->serverHost = strdup(host);
	c->serverPort = atoi(port);
	c->appData.encodingsString = "tight zrle hextile raw";
	c->appData.enableJPEG = FALSE;	/* lossless: pixels compared are the server's */
	c->GetPassword = get_password;
	c->GotFrameBufferUpdate = got_rect;
	c->FinishedFrameBufferUpdate = update_done;
	c->GotXCutText = got_cut_text;
	*status = 1;
	if (!rfbInitClient(c, NULL, NULL)) {	/* it frees c */
		if (r.asked_password && !r.password)
			fail("refused: the server asks for a password, and none was given");
		else if (r.asked_password && r.auth_failed)
			fail("refused: authentication failed (%s)", r.last_log);
		else
			return fail("cannot connect to %s:%s (%s)", host, port, r.last_log), NULL;
		*status = EXIT_REFUSED;
		return NULL;
	}
	if (!wait_frame(c)) {
		fail("the connection ended before a whole frame (%s)", r.last_log);
		rfbClientCleanup(c);
		return NULL;
	}
	printf("connected %dx%d\n", c->width, c->height);
	return c;
}

int main(int argc, char *argv[])
{
	const char *file = NULL;
	char **arg = argv + 1;
	int n = argc - 1, status;
	bool from_stdin;
	rfbClient *c;

	if (n >= 2 && !strcmp(arg[0], "--password-file"))
		file = arg[1], arg += 2, n -= 2;
	if (n < 3) {
		fprintf(stderr, "usage: vnc-remote [--password-file FILE] HOST PORT COMMAND... | -\n");
		return 2;
	}
	from_stdin = n == 3 && !strcmp(arg[2], "-");
	if (!from_stdin && check_args(arg + 2, n - 2))
		return 2;
	r.password = read_password(file);
	if (file && !r.password)
		return fail("cannot read %s", file);
	r.cuts_end = &r.cuts;
	setvbuf(stdout, NULL, _IOLBF, 0);	/* a test reads the lines as they come */
	rfbClientLog = rfbClientErr = note_log;
	c = connect_to(arg[0], arg[1], &status);
	if (!c)
		return status;
	status = from_stdin ? run_stdin(c) : run_args(c, arg + 2, n - 2);
	forget_cuts();
	free(c->frameBuffer);	/* libvncclient allocates it, rfbClientCleanup() leaves it */
	rfbClientCleanup(c);
	free((char *)r.password);
	return status;
}
