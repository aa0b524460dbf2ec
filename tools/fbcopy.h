/* SPDX-License-Identifier: MIT */
/*
 * The clients' copy of a frame, for a VNC server whose frame changes size.
 *
 * libvncserver's client threads read the frame through screen->frameBuffer
 * with the geometry they started a send with: a send that outlives a resize
 * reads the rows it was sending with the new stride, or from the buffer the
 * resize replaced. rfbNewFramebuffer() means to wait for those sends (it
 * takes each client's sendMutex), yet cohmem-vnc's client threads read a
 * copy freed two resizes before, blocked mid-update on a client that had
 * stopped reading (tests/vnc-resize-test.sh, under AddressSanitizer). One
 * way, read in libvncserver 0.9.14: it locks the clients listed when it
 * starts and unlocks those listed when it ends, so a client that comes in
 * between is unlocked without having been locked.
 *
 * So the copy is one reservation, never moved or unmapped while the server
 * runs, as large as any mix of two geometries can reach: FB_COPY_ROWS rows
 * of FB_COPY_ROW bytes. Only what the current frame needs is writable (and
 * counted against the system's commit limit); the rest reads as zeros, so a
 * late send reads stale pixels or zeros, never freed or unmapped memory,
 * and the NewFBSize that follows has its client ask for the frame again.
 */
#ifndef COHMEM_FBCOPY_H
#define COHMEM_FBCOPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cohmem-fb.h>

#if SIZE_MAX > 0xffffffffu
#define FB_COPY_ROWS 65535u			/* RFB's largest height */
#define FB_COPY_ROW ((size_t)65536 * 4)		/* RFB's largest width, 32 bits a pixel */
#define FB_COPY_FRAME ((size_t)1 << 30)		/* the largest frame served: 1 GiB */
#else
#define FB_COPY_ROWS 8192u
#define FB_COPY_ROW ((size_t)8192 * 4)
#define FB_COPY_FRAME ((size_t)1 << 28)
#endif

struct fb_copy {
	unsigned char *base;	/* FB_COPY_ROWS + 1 rows of FB_COPY_ROW: 16 GiB of addresses (256 MiB on 32 bits) */
	size_t writable;	/* bytes from base, whole pages */
};

/*
 * fb_copy_fits() - whether a frame of @fb's geometry (its rows with their
 * padding) can be served: at most FB_COPY_ROWS rows of at most FB_COPY_ROW
 * bytes, FB_COPY_FRAME bytes in all.
 */
bool fb_copy_fits(const struct cohmem_fb *fb);

/*
 * fb_copy_init() - reserve the copy's addresses, all reading as zeros,
 * none writable yet. Return: 0, or -ENOMEM.
 */
int fb_copy_init(struct fb_copy *c);

/*
 * fb_copy_resize() - make the first @bytes of the copy writable and the
 * rest read-only zeros again (what a smaller frame leaves is given back).
 * Return: 0; -EINVAL for more than FB_COPY_FRAME bytes; -ENOMEM if the
 * system will not commit them (the copy is as it was).
 */
int fb_copy_resize(struct fb_copy *c, size_t bytes);

/* fb_copy_fini() - unmap the copy; only once no thread can read it. NULL base is fine. */
void fb_copy_fini(struct fb_copy *c);

#endif
