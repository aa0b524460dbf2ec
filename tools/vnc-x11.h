/* SPDX-License-Identifier: MIT */
/*
 * cohmem-vnc's X session, as cohmem-vnc.c sees it: started with the
 * server, it sets the screen's input, cut-text and cursor hooks; the
 * client hooks below are called from cohmem-vnc.c's own.
 */
#ifndef COHMEM_VNC_X11_H
#define COHMEM_VNC_X11_H

#include <rfb/rfb.h>
#include <stdbool.h>

struct vnc_x11_options {
	const char *display;	/* ":N", or NULL: the X server that maps file */
	const char *file;	/* the framebuffer file it serves */
	bool view_only;		/* no input, no cut text from clients */
	bool no_clipboard, no_primary, no_cursor;
};

struct xsession;

/*
 * Connects (or, when the display is found later, will connect) and sets the
 * screen's hooks. 0, or a negative errno with the reason printed:
 * -ENOTSUP when built without X, -ENXIO when an explicit display does not
 * answer.
 */
int vnc_x11_start(rfbScreenInfoPtr screen, const struct vnc_x11_options *o, struct xsession **ret);

/* From cohmem-vnc.c's hooks: a client came, sent an update request, left. */
void vnc_x11_client_new(rfbClientPtr cl);
void vnc_x11_client_request(rfbClientPtr cl);
void vnc_x11_client_gone(rfbClientPtr cl);

/* The display the X thread talks to ("" if none yet), and its counts, for the stats line. */
void vnc_x11_describe(struct xsession *x, char *buf, size_t len);

/*
 * The X server that maps the file (Xvfb -fbdir's screen file): its display
 * ":N", found through /proc. 0, -ENOENT (none found), or a negative errno.
 */
int x_display_of_file(const char *path, char *display, size_t len);

#endif
