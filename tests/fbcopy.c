/* SPDX-License-Identifier: MIT */
/*
 * tools/fbcopy.c: the clients' copy of a frame, one reservation that never
 * moves. What a send with an old geometry can reach must stay readable
 * (zeros past the frame), what the frame holds writable, and nothing else.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "fbcopy.h"

/* The farthest byte a send can reach: the last row's last byte, in the widest rows. */
static size_t farthest(void)
{
	return (size_t)FB_COPY_ROWS * FB_COPY_ROW + FB_COPY_ROW - 1;
}

Test(fbcopy, any_geometry_served_fits_and_no_other)
{
	struct cohmem_fb widest = { .stride = FB_COPY_ROW, .width = 65535, .height = FB_COPY_FRAME / FB_COPY_ROW, .bpp = 4 };
	struct cohmem_fb tallest = { .stride = FB_COPY_FRAME / FB_COPY_ROWS, .width = 16, .height = FB_COPY_ROWS, .bpp = 4 };
	struct cohmem_fb wider = widest, taller = tallest, larger = widest, none = { 0 };

	cr_assert(fb_copy_fits(&widest));
	cr_assert(fb_copy_fits(&tallest));
	wider.stride++;
	taller.height++;
	larger.height++;
	cr_assert_not(fb_copy_fits(&wider));
	cr_assert_not(fb_copy_fits(&taller));
	cr_assert_not(fb_copy_fits(&larger));
	cr_assert_not(fb_copy_fits(&none));
}

Test(fbcopy, the_whole_reservation_reads_as_zeros)
{
	struct fb_copy c;

	cr_assert_eq(fb_copy_init(&c), 0);
	cr_assert_eq(c.writable, 0);
	cr_assert_eq(((volatile unsigned char *)c.base)[0], 0);
	cr_assert_eq(((volatile unsigned char *)c.base)[farthest()], 0);
	fb_copy_fini(&c);
	cr_assert_null(c.base);
	fb_copy_fini(&c);	/* twice: fine */
}

Test(fbcopy, a_frame_is_writable_and_a_smaller_one_leaves_zeros)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct fb_copy c;

	cr_assert_eq(fb_copy_init(&c), 0);
	cr_assert_eq(fb_copy_resize(&c, 10 * page + 1), 0);
	cr_assert_eq(c.writable, 11 * page);
	memset(c.base, 0xa5, 11 * page);
	cr_assert_eq(fb_copy_resize(&c, 2 * page), 0);
	cr_assert_eq(c.base[2 * page - 1], 0xa5, "what the smaller frame keeps is kept");
	cr_assert_eq(c.base[2 * page], 0, "what it leaves reads as zeros");
	cr_assert_eq(c.base[11 * page - 1], 0);
	cr_assert_eq(fb_copy_resize(&c, 11 * page), 0);
	cr_assert_eq(c.base[5 * page], 0, "grown again: zeros, not the old pixels");
	fb_copy_fini(&c);
}

Test(fbcopy, more_than_a_frame_is_refused_and_changes_nothing)
{
	struct fb_copy c;

	cr_assert_eq(fb_copy_init(&c), 0);
	cr_assert_eq(fb_copy_resize(&c, 4096), 0);
	cr_assert_eq(fb_copy_resize(&c, FB_COPY_FRAME + 1), -EINVAL);
	cr_assert_eq(c.writable, 4096);
	c.base[4095] = 1;
	fb_copy_fini(&c);
}

/* Whether the kernel can store a byte at @p for us: read(2) from a pipe says, without a fault of ours. */
static bool writable(unsigned char *p)
{
	int fds[2];
	ssize_t n;

	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(write(fds[1], "x", 1), 1);
	n = read(fds[0], p, 1);
	cr_assert(n == 1 || (n < 0 && errno == EFAULT));
	close(fds[0]);
	close(fds[1]);
	return n == 1;
}

Test(fbcopy, only_the_frame_is_writable)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct fb_copy c;

	cr_assert_eq(fb_copy_init(&c), 0);
	cr_assert_not(writable(c.base));
	cr_assert_eq(fb_copy_resize(&c, 3 * page), 0);
	cr_assert(writable(c.base));
	cr_assert(writable(c.base + 3 * page - 1));
	cr_assert_not(writable(c.base + 3 * page));
	cr_assert_eq(fb_copy_resize(&c, page), 0);
	cr_assert_not(writable(c.base + page), "a smaller frame leaves the rest read-only");
	fb_copy_fini(&c);
}
