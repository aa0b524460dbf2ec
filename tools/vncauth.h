/* SPDX-License-Identifier: MIT */
/*
 * cohmem-vnc's access: VNC authentication from a password file, as
 * vncpasswd(1) and `x11vnc -storepasswd` write it, with wrong passwords
 * slowed down by address (libvncserver 0.9.14 does not).
 */
#ifndef COHMEM_VNCAUTH_H
#define COHMEM_VNCAUTH_H

#include <rfb/rfb.h>
#include <stdbool.h>

#define VNCAUTH_FREE_TRIES 3	/* wrong passwords from an address before it must wait */
#define VNCAUTH_FIRST_WAIT 5	/* seconds, doubled at each further one ... */
#define VNCAUTH_LONGEST_WAIT 300	/* ... up to this */
#define VNCAUTH_ADDRESSES 64	/* addresses remembered (the oldest forgotten first) */

/*
 * The screen asks for the password in file (read again at every attempt,
 * so that a changed file counts at once). 0, or a negative errno with the
 * reason printed: -EINVAL if file holds no password.
 */
int vnc_auth_setup(rfbScreenInfoPtr screen, const char *file);

/* Whether an address must still wait before it may try again (newClientHook refuses it). */
bool vnc_auth_waiting(const char *host);

/*
 * The decision, apart from the protocol: whether host may try now (0) or
 * must wait (the seconds left), and what a try's outcome does to it. now is
 * CLOCK_MONOTONIC seconds; exposed for tests.
 */
long vnc_auth_may_try(const char *host, double now);
void vnc_auth_record(const char *host, bool right, double now);

#endif
