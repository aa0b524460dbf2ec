/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

#include "drm-dumb.h"

static int fail(struct drm_dumb *d, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->why, sizeof(d->why), fmt, ap);
	va_end(ap);
	drm_dumb_close(d);
	return err;
}

/* The first connected connector of the card with a mode that fits: its CRTC and mode. */
static int pick_output(struct drm_dumb *d, uint32_t max_w, uint32_t max_h, uint32_t *connector,
		       drmModeModeInfo *mode)
{
	drmModeRes *res = drmModeGetResources(d->fd);
	int err = -ENODEV;

	for (int i = 0; res && err && i < res->count_connectors; i++) {
		drmModeConnector *c = drmModeGetConnector(d->fd, res->connectors[i]);

		for (int m = 0; c && c->connection == DRM_MODE_CONNECTED && err && m < c->count_modes; m++) {
			if (c->modes[m].hdisplay > max_w || c->modes[m].vdisplay > max_h || !res->count_crtcs)
				continue;
			*connector = c->connector_id;
			*mode = c->modes[m];
			d->crtc = res->crtcs[0];
			err = 0;
		}
		drmModeFreeConnector(c);
	}
	drmModeFreeResources(res);
	return err;
}

static int open_card(struct drm_dumb *d)
{
	char path[32];

	for (int i = 0; i < 8; i++) {
		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		d->fd = open(path, O_RDWR | O_CLOEXEC);
		if (d->fd >= 0)
			return 0;
	}
	return -errno;
}

int drm_dumb_show(struct drm_dumb *d, uint32_t max_w, uint32_t max_h)
{
	struct drm_mode_create_dumb create = { .bpp = 32 };
	struct drm_mode_map_dumb map = { 0 };
	drmModeModeInfo mode;
	uint32_t connector;
	int err;

	*d = (struct drm_dumb){ .fd = -1 };
	if ((err = open_card(d)))
		return fail(d, err, "no DRM card (/dev/dri/card*): %s", strerror(-err));
	if (pick_output(d, max_w, max_h, &connector, &mode))
		return fail(d, -ENODEV, "no connected output with a mode up to %ux%u", max_w, max_h);
	create.width = mode.hdisplay;
	create.height = mode.vdisplay;
	if (drmIoctl(d->fd, DRM_IOCTL_MODE_CREATE_DUMB, &create))
		return fail(d, -errno, "DRM_IOCTL_MODE_CREATE_DUMB: %s", strerror(errno));
	d->handle = create.handle;
	d->width = create.width;
	d->height = create.height;
	d->pitch = create.pitch;
	d->size = (size_t)create.size;
	if (drmModeAddFB(d->fd, d->width, d->height, 24, 32, d->pitch, d->handle, &d->fb))
		return fail(d, -errno, "drmModeAddFB: %s", strerror(errno));
	if (drmModeSetCrtc(d->fd, d->crtc, d->fb, 0, 0, &connector, 1, &mode))
		return fail(d, -errno, "drmModeSetCrtc: %s", strerror(errno));
	map.handle = d->handle;
	if (drmIoctl(d->fd, DRM_IOCTL_MODE_MAP_DUMB, &map))
		return fail(d, -errno, "DRM_IOCTL_MODE_MAP_DUMB: %s", strerror(errno));
	d->mem = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, (off_t)map.offset);
	if (d->mem == MAP_FAILED) {
		d->mem = NULL;
		return fail(d, -errno, "mmap of the dumb buffer: %s", strerror(errno));
	}
	return 0;
}

void drm_dumb_close(struct drm_dumb *d)
{
	struct drm_mode_destroy_dumb destroy = { .handle = d->handle };

	if (d->mem)
		munmap(d->mem, d->size);
	if (d->fb)
		drmModeRmFB(d->fd, d->fb);
	if (d->handle)
		drmIoctl(d->fd, DRM_IOCTL_MODE_DESTROY_DUMB, &destroy);
	if (d->fd >= 0)
		close(d->fd);
	d->mem = NULL;
	d->fb = d->handle = 0;
	d->fd = -1;
}
