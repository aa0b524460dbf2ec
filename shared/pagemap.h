/* SPDX-License-Identifier: MIT */
/* PAGEMAP_SCAN walks over written pages, for any process's pagemap: get-and-protect, and count. */
#ifndef COHMEM_PAGEMAP_H
#define COHMEM_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>

#include "kabi.h"

/*
 * Report the written pages of [start, end) in the process whose pagemap is
 * open as `pagemap`, write-protecting them in the same walk (atomic per
 * page): fn(arg, run_start, run_end) for each written run, in order. vec
 * (vec_len entries, zeroed before the first call and left zeroed) is the
 * scan's output buffer. Returns 0, the first non-zero fn result, or -errno
 * from the kernel; runs the kernel reported before failing are passed to fn
 * first (their pages are protected already).
 */
int pagemap_scan_written(int pagemap, uintptr_t start, uintptr_t end, struct page_region *vec,
			 size_t vec_len, int (*fn)(void *arg, uintptr_t start, uintptr_t end), void *arg);

/*
 * The same with more PM_SCAN_* flags: PM_SCAN_PFNMAP walks shared VM_PFNMAP
 * mappings (a patched kernel; EINVAL elsewhere) instead of refusing them.
 */
int pagemap_scan_written_flags(int pagemap, uint64_t flags, uintptr_t start, uintptr_t end,
			       struct page_region *vec, size_t vec_len,
			       int (*fn)(void *arg, uintptr_t start, uintptr_t end), void *arg);

/*
 * Count the written pages of [start, end), up to limit, without protecting
 * any (a look, not a clean). vec as above. Returns the count (at most limit)
 * or -errno.
 */
long pagemap_count_written(int pagemap, uintptr_t start, uintptr_t end, struct page_region *vec,
			   size_t vec_len, size_t limit);

#endif /* COHMEM_PAGEMAP_H */
