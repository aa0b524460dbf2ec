/* SPDX-License-Identifier: MIT */
/*
 * A DRM dumb buffer on the screen, for the tests and benchmarks of device
 * memory (tests/pfn-scan.c, bench/pfn-bench.c): created, added as a
 * framebuffer and set on the first connected connector's CRTC — which pins
 * it (bochs: in VRAM) — then mapped MAP_SHARED through the card, as a
 * display server maps its scanout buffer. Built only where libdrm is.
 */
#ifndef COHMEM_DRM_DUMB_H
#define COHMEM_DRM_DUMB_H

#include <stddef.h>
#include <stdint.h>

struct drm_dumb {
	int fd;			/* the card */
	uint32_t handle, fb, crtc;
	uint32_t width, height, pitch;
	size_t size;
	char *mem;		/* size bytes, MAP_SHARED */
	char why[160];		/* what failed, for a skip message */
};

/*
 * Open the first card (/dev/dri/card0..7) that has a connected connector,
 * create a 32 bpp XRGB8888 buffer of its preferred mode (at most max_w x
 * max_h, else the first mode that fits), show it and map it. 0, or -errno
 * with the reason in d->why; nothing is left open on failure.
 */
int drm_dumb_show(struct drm_dumb *d, uint32_t max_w, uint32_t max_h);

/* Unmap, remove the framebuffer, destroy the buffer, close the card. */
void drm_dumb_close(struct drm_dumb *d);

#endif /* COHMEM_DRM_DUMB_H */
