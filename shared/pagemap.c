/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "page.h"
#include "pagemap.h"

/*
 * Hand the first n entries to fn and zero them again. Entries past the ones
 * a scan returned stay zeroed, so after a failed scan the ones it wrote
 * before failing are those with a non-zero end.
 */
static int consume(struct page_region *vec, size_t n, int (*fn)(void *, uintptr_t, uintptr_t),
		   void *arg)
{
	int ret = 0;

	for (size_t i = 0; i < n; i++)
		if (!ret)
			ret = fn(arg, (uintptr_t)vec[i].start, (uintptr_t)vec[i].end);
	memset(vec, 0, n * sizeof(*vec));
	return ret;
}

/* A scan of [start, end) for written pages (in an async-WP range), reported into vec. */
static struct pm_scan_arg written_scan(uintptr_t start, uintptr_t end, struct page_region *vec, size_t vec_len,
				       uint64_t flags)
{
	return (struct pm_scan_arg){
		.size = sizeof(struct pm_scan_arg),
		.flags = flags | PM_SCAN_CHECK_WPASYNC,
		.start = start,
		.end = end,
		.vec = (uintptr_t)vec,
		.vec_len = vec_len,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
}

int pagemap_scan_written(int pagemap, uintptr_t start, uintptr_t end, struct page_region *vec,
			 size_t vec_len, int (*fn)(void *arg, uintptr_t start, uintptr_t end), void *arg)
{
	return pagemap_scan_written_flags(pagemap, 0, start, end, vec, vec_len, fn, arg);
}

int pagemap_scan_written_flags(int pagemap, uint64_t flags, uintptr_t start, uintptr_t end,
			       struct page_region *vec, size_t vec_len,
			       int (*fn)(void *arg, uintptr_t start, uintptr_t end), void *arg)
{
	struct pm_scan_arg scan = written_scan(start, end, vec, vec_len, flags | PM_SCAN_WP_MATCHING);

	/* A full vec ends a scan early, without an error: go on from walk_end. */
	while (scan.start < scan.end) {
		long n = ioctl(pagemap, PAGEMAP_SCAN, &scan);
		int ret;

		if (n < 0) {
			int err = -errno;
			size_t written = 0;

			while (written < vec_len && vec[written].end)
				written++;
			ret = consume(vec, written, fn, arg);
			return ret ? ret : err;
		}
		ret = consume(vec, (size_t)n, fn, arg);
		if (ret)
			return ret;
		scan.start = scan.walk_end;
	}
	return 0;
}

long pagemap_count_written(int pagemap, uintptr_t start, uintptr_t end, struct page_region *vec,
			   size_t vec_len, size_t limit)
{
	struct pm_scan_arg scan = written_scan(start, end, vec, vec_len, 0);
	size_t ps = page_size(), pages = 0;

	/* max_pages ends the walk once the limit is reached; a full vec ends it too. */
	while (scan.start < scan.end && pages < limit) {
		long n;

		scan.max_pages = limit - pages;
		n = ioctl(pagemap, PAGEMAP_SCAN, &scan);
		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++)
			pages += (size_t)(vec[i].end - vec[i].start) / ps;
		memset(vec, 0, (size_t)n * sizeof(*vec));
		scan.start = scan.walk_end;
	}
	return (long)(pages < limit ? pages : limit);
}
