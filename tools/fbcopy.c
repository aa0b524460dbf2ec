/* SPDX-License-Identifier: MIT */
/* The clients' copy of a frame: one reservation that never moves (fbcopy.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fbcopy.h"

#define RESERVED ((size_t)(FB_COPY_ROWS + 1) * FB_COPY_ROW)

bool fb_copy_fits(const struct cohmem_fb *fb)
{
	return fb->stride && fb->stride <= FB_COPY_ROW && fb->height <= FB_COPY_ROWS &&
	       fb->height <= FB_COPY_FRAME / fb->stride;
}

/*
 * Read-only private anonymous memory is not committed (nor is it with
 * MAP_NORESERVE where overcommit is heuristic): the reservation costs
 * addresses only. Pages become writable, and counted, in fb_copy_resize().
 */
int fb_copy_init(struct fb_copy *c)
{
	void *p = mmap(NULL, RESERVED, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	*c = (struct fb_copy){ .base = p };
	return 0;
}

int fb_copy_resize(struct fb_copy *c, size_t bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), want;

	if (bytes > FB_COPY_FRAME)
		return -EINVAL;
	want = (bytes + page - 1) / page * page;
	if (want > c->writable &&
	    mprotect(c->base + c->writable, want - c->writable, PROT_READ | PROT_WRITE))
		return -ENOMEM;
	if (want < c->writable) {
		/* Zeros for a late reader, and the pages back to the system. */
		madvise(c->base + want, c->writable - want, MADV_DONTNEED);
		mprotect(c->base + want, c->writable - want, PROT_READ);
	}
	c->writable = want;
	return 0;
}

void fb_copy_fini(struct fb_copy *c)
{
	if (c->base)
		munmap(c->base, RESERVED);
	c->base = NULL;
	c->writable = 0;
}
