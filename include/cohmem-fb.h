/* SPDX-License-Identifier: MIT */
/*
 * cohmem — dirty rectangles of a framebuffer.
 *
 * Display servers and virtual GPUs want the rectangles of a framebuffer that
 * changed, not pages: these turn a clean's bitmap (cohmem_region_clean(),
 * cohmem_buffer_clean()) into rectangles that cover every pixel with a byte
 * in a dirty page. Conventions as in <cohmem.h>: 0 or a count, or a
 * negative errno; nothing printed; bad input changes nothing.
 */
#ifndef COHMEM_FB_H
#define COHMEM_FB_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Where a framebuffer lies in a region. */
struct cohmem_fb {
	size_t offset;		/* bytes from the region's start to pixel (0, 0) */
	size_t stride;		/* bytes from one row to the next, >= width * bpp */
	unsigned width, height;	/* pixels, > 0 */
	unsigned bpp;		/* bytes per pixel, > 0 */
};

/** Pixels [x, x + w) x [y, y + h) of a framebuffer. */
struct cohmem_rect {
	unsigned x, y, w, h;
};

/**
 * cohmem_fb_rects() - the rectangles of @fb touched by the dirty pages in
 * @bitmap.
 * @fb:           the layout; the region's pages hold it.
 * @bitmap_pgoff: the page bit 0 of @bitmap stands for; <= @fb's first page.
 * @bitmap:       a cohmem_region_clean() bitmap: bit (pg - @bitmap_pgoff) set
 *                for a dirty page pg of the region. It must cover every page
 *                from the first to the last byte of @fb.
 * @rects:        receives the rectangles.
 * @max_rects:    room in @rects, >= 1.
 *
 * Every pixel with a byte in a dirty page lies in some rectangle, and every
 * rectangle lies inside @fb. Rows of touched pixels that overlap or touch
 * from one row to the next are merged into their bounding box; when that
 * leaves more than @max_rects, the neighbours whose union adds the least area
 * are merged until it fits (with @max_rects == 1: the bounding box).
 * Rectangles may overlap.
 *
 * Return: the number of rectangles (0 when no page of @fb is dirty);
 * -EINVAL for NULL pointers, a layout with a zero size, a stride below
 * width * bpp, a layout that overflows, @bitmap_pgoff past @fb's first page,
 * or @max_rects == 0; -ENOMEM.
 * Thread-safety: any thread; reads only its arguments.
 */
long cohmem_fb_rects(const struct cohmem_fb *fb, size_t bitmap_pgoff, const unsigned long *bitmap,
		     struct cohmem_rect *rects, size_t max_rects);

/**
 * cohmem_fb_refine() - shrink each rectangle to the pixels that differ
 * between @pixels and @shadow (both pointing at pixel (0, 0) of a buffer
 * laid out as @fb), and drop rectangles where nothing differs. Only the
 * rectangles' pixels are compared, so the cost follows the dirty area: a
 * blinking cursor in a dirty page costs a cursor-sized rectangle.
 * @fb:     the layout (its offset is not used).
 * @pixels: the framebuffer now.
 * @shadow: what the consumer has (its copy after the last sync).
 * @rects:  rectangles inside @fb, replaced by the refined ones.
 * @n:      how many.
 *
 * No pixel that differs is ever left out, provided every pixel that differs
 * lay in one of the @rects.
 *
 * Return: the number of rectangles left (<= @n, in the first entries); -EINVAL
 * for NULL pointers, a bad layout or a rectangle outside @fb.
 * Thread-safety: any thread; writers to @pixels during the call make the
 * result as of some moment of the call, per row.
 */
long cohmem_fb_refine(const struct cohmem_fb *fb, const void *pixels, const void *shadow,
		      struct cohmem_rect *rects, size_t n);

/**
 * cohmem_fb_damage() - the pixels that differ between @pixels and @shadow
 * within @rects, as at most @max_out rectangles: per row, the span from the
 * first to the last differing pixel of each rectangle (split where 64 bytes
 * in a row are equal); spans that touch from row to row become their
 * bounding box, cut at every 32nd row so that overlapping sprites do not
 * become one big box; and to meet @max_out the neighbours
 * whose union adds the least area are merged. Unlike cohmem_fb_refine(),
 * which shrinks each rectangle to one box, it may split a rectangle: fed the
 * whole frame (a region that reports every page), it still returns boxes
 * around what changed — fewer bytes for a link, the cost of comparing the
 * rectangles.
 * @fb:      the layout (its offset is not used).
 * @pixels:  the framebuffer now.
 * @shadow:  what the consumer has (its copy after the last sync).
 * @rects:   rectangles inside @fb to look in; they may overlap.
 * @n:       how many.
 * @out:     room for @max_out rectangles (may not alias @rects).
 * @max_out: at least 1.
 *
 * No pixel that differs is ever left out, provided every pixel that differs
 * lay in one of the @rects.
 *
 * Return: the number of rectangles in @out; -EINVAL for NULL pointers, a bad
 * layout, a rectangle outside @fb or a @max_out of 0; -ENOMEM when it cannot
 * allocate its work space.
 * Thread-safety: any thread; writers to @pixels during the call make the
 * result as of some moment of the call, per row.
 */
long cohmem_fb_damage(const struct cohmem_fb *fb, const void *pixels, const void *shadow,
		      const struct cohmem_rect *rects, size_t n, struct cohmem_rect *out, size_t max_out);

/**
 * cohmem_fb_copy() - copy the pixels of @rects from @src to @dst, both
 * pointing at pixel (0, 0) of buffers laid out as @fb.
 * Return: the bytes copied (overlapping rectangles count twice); -EINVAL for
 * NULL pointers, a bad layout or a rectangle outside @fb.
 * Thread-safety: any thread.
 */
long cohmem_fb_copy(const struct cohmem_fb *fb, void *dst, const void *src,
		    const struct cohmem_rect *rects, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* COHMEM_FB_H */
