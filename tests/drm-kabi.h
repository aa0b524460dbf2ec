/* SPDX-License-Identifier: MIT */
/*
 * The few DRM KMS ioctls tests/pfn-scan.c uses, as the kernel's uapi
 * (include/uapi/drm/drm.h and drm_mode.h) defines them: a stable ABI.
 * Debian's linux-libc-dev leaves those headers to libdrm-dev, and the test
 * needs no libdrm. Not to be included together with <drm/drm.h>.
 */
#ifndef COHMEM_DRM_KABI_H
#define COHMEM_DRM_KABI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define DRM_IOCTL_BASE 'd'
#define DRM_IO(nr) _IO(DRM_IOCTL_BASE, nr)
#define DRM_IOWR(nr, type) _IOWR(DRM_IOCTL_BASE, nr, type)

#define DRM_DISPLAY_MODE_LEN 32
#define DRM_MODE_TYPE_PREFERRED (1 << 3)
#define DRM_MODE_CONNECTED 1	/* enum drm_connector_status: connector_status_connected */

struct drm_mode_modeinfo {
	__u32 clock;
	__u16 hdisplay, hsync_start, hsync_end, htotal, hskew;
	__u16 vdisplay, vsync_start, vsync_end, vtotal, vscan;
	__u32 vrefresh;
	__u32 flags;
	__u32 type;
	char name[DRM_DISPLAY_MODE_LEN];
};

struct drm_mode_card_res {
	__u64 fb_id_ptr, crtc_id_ptr, connector_id_ptr, encoder_id_ptr;
	__u32 count_fbs, count_crtcs, count_connectors, count_encoders;
	__u32 min_width, max_width, min_height, max_height;
};

struct drm_mode_crtc {
	__u64 set_connectors_ptr;
	__u32 count_connectors;
	__u32 crtc_id, fb_id;
	__u32 x, y;
	__u32 gamma_size;
	__u32 mode_valid;
	struct drm_mode_modeinfo mode;
};

struct drm_mode_get_encoder {
	__u32 encoder_id, encoder_type;
	__u32 crtc_id;
	__u32 possible_crtcs, possible_clones;
};

struct drm_mode_get_connector {
	__u64 encoders_ptr, modes_ptr, props_ptr, prop_values_ptr;
	__u32 count_modes, count_props, count_encoders;
	__u32 encoder_id, connector_id, connector_type, connector_type_id;
	__u32 connection;
	__u32 mm_width, mm_height;
	__u32 subpixel;
	__u32 pad;
};

struct drm_mode_fb_cmd {
	__u32 fb_id, width, height, pitch, bpp, depth;
	__u32 handle;
};

struct drm_mode_create_dumb {
	__u32 height, width, bpp, flags;
	__u32 handle, pitch;
	__u64 size;
};

struct drm_mode_map_dumb {
	__u32 handle, pad;
	__u64 offset;
};

#define DRM_IOCTL_SET_MASTER DRM_IO(0x1e)
#define DRM_IOCTL_MODE_GETRESOURCES DRM_IOWR(0xA0, struct drm_mode_card_res)
#define DRM_IOCTL_MODE_SETCRTC DRM_IOWR(0xA2, struct drm_mode_crtc)
#define DRM_IOCTL_MODE_GETENCODER DRM_IOWR(0xA6, struct drm_mode_get_encoder)
#define DRM_IOCTL_MODE_GETCONNECTOR DRM_IOWR(0xA7, struct drm_mode_get_connector)
#define DRM_IOCTL_MODE_ADDFB DRM_IOWR(0xAE, struct drm_mode_fb_cmd)
#define DRM_IOCTL_MODE_CREATE_DUMB DRM_IOWR(0xB2, struct drm_mode_create_dumb)
#define DRM_IOCTL_MODE_MAP_DUMB DRM_IOWR(0xB3, struct drm_mode_map_dumb)

#endif /* COHMEM_DRM_KABI_H */
