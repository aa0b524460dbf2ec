/* SPDX-License-Identifier: MIT */
/*
 * The kernel ABI libcohmem uses, for building against older UAPI headers
 * (Debian 12 ships 6.1 headers: no PAGEMAP_SCAN, no UFFD_FEATURE_WP_ASYNC).
 * Values are the upstream ones; each is defined only where the headers lack it.
 */
#ifndef COHMEM_KABI_H
#define COHMEM_KABI_H

#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <sys/mman.h>

/* userfaultfd features (include/uapi/linux/userfaultfd.h) */
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)	/* 5.19 */
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)		/* 6.4 */
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)			/* 6.7 */
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1				/* 5.11 */
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC 0xAA
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)	/* 6.1 */
#endif

/* PAGEMAP_SCAN (include/uapi/linux/fs.h, 6.7) */
#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED	(1 << 0)
#define PAGE_IS_WRITTEN		(1 << 1)
#define PAGE_IS_FILE		(1 << 2)
#define PAGE_IS_PRESENT		(1 << 3)
#define PAGE_IS_SWAPPED		(1 << 4)
#define PAGE_IS_PFNZERO		(1 << 5)
#define PAGE_IS_HUGE		(1 << 6)

struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

#define PM_SCAN_WP_MATCHING	(1 << 0)
#define PM_SCAN_CHECK_WPASYNC	(1 << 1)

struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif /* PAGEMAP_SCAN */

/*
 * PAGEMAP_SCAN of shared VM_PFNMAP mappings: the kernel patch series in
 * kernel/patches/pagemap-scan-pfnmap/ (against Linux 6.12; not upstream).
 * Kernels without it refuse the flag with EINVAL. PAGE_IS_PFNMAP skips bit 8,
 * which is PAGE_IS_GUARD from Linux 6.16.
 */
#ifndef PM_SCAN_PFNMAP
#define PM_SCAN_PFNMAP		(1 << 2)
#endif
#ifndef PAGE_IS_PFNMAP
#define PAGE_IS_PFNMAP		(1 << 9)
#endif

/* madvise (include/uapi/asm-generic/mman-common.h) */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23				/* 5.14 */
#endif

/*
 * cachestat(2) (6.5; include/uapi/linux/mman.h): how much of a file's range
 * the page cache holds, and how much of it is dirty or under writeback. Our
 * own names for its structures (the layout is the kernel's), so that newer
 * headers that have them do not clash.
 */
#ifndef __NR_cachestat
#define __NR_cachestat 451				/* every architecture */
#endif
struct cohmem_cachestat_range {
	__u64 off;
	__u64 len;					/* 0: to the end of the file */
};
struct cohmem_cachestat {
	__u64 nr_cache;
	__u64 nr_dirty;
	__u64 nr_writeback;
	__u64 nr_evicted;
	__u64 nr_recently_evicted;
};

/*
 * FUSE over io_uring (include/uapi/linux/fuse.h, Linux 6.14, protocol 7.42):
 * what cohmemd's ring transport (daemon/transport-uring.c) speaks. The
 * kernel offers FUSE_OVER_IO_URING in the INIT request's flags2 (with
 * FUSE_INIT_EXT) while /sys/module/fuse/parameters/enable_uring is set, and
 * uses the ring once the daemon's INIT reply asks for it and every queue
 * has an entry registered.
 */
#ifndef FUSE_INIT_EXT
#define FUSE_INIT_EXT (1 << 30)				/* 5.17, protocol 7.36 */
#endif
#ifndef FUSE_MAX_PAGES
#define FUSE_MAX_PAGES (1 << 22)			/* 4.20, protocol 7.28 */
#endif
#ifndef FUSE_OVER_IO_URING
#define FUSE_OVER_IO_URING (1ULL << 41)			/* 6.14: bit 9 of flags2 */
#endif
#ifndef FUSE_URING_IN_OUT_HEADER_SZ
#define FUSE_URING_IN_OUT_HEADER_SZ 128
#define FUSE_URING_OP_IN_OUT_SZ 128

/* The daemon's side of one ring entry, after its headers (struct fuse_uring_req_header). */
struct fuse_uring_ent_in_out {
	__u64 flags;
	__u64 commit_id;	/* in: the request's unique, to be given back with its reply */
	__u32 payload_sz;	/* in: bytes of the payload buffer the request fills; out: the reply's */
	__u32 padding;
	__u64 reserved;
};

/* The header buffer of a ring entry (the payload buffer is apart). */
struct fuse_uring_req_header {
	char in_out[FUSE_URING_IN_OUT_HEADER_SZ];	/* fuse_in_header, then the reply's fuse_out_header */
	char op_in[FUSE_URING_OP_IN_OUT_SZ];		/* the request's first argument (fuse_write_in, ...) */
	struct fuse_uring_ent_in_out ring_ent_in_out;
};

/* IORING_OP_URING_CMD on /dev/fuse: sqe->cmd_op. */
enum fuse_uring_cmd {
	FUSE_IO_URING_CMD_INVALID = 0,
	FUSE_IO_URING_CMD_REGISTER = 1,		/* sqe->addr: struct iovec[2] (headers, payload), len 2 */
	FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2,	/* the reply to commit_id, and wait for the next request */
};

/* The command area of a 128-byte SQE (IORING_SETUP_SQE128). */
struct fuse_uring_cmd_req {
	__u64 flags;
	__u64 commit_id;
	__u16 qid;		/* the queue: one per possible CPU */
	__u8 padding[6];
};
#endif /* FUSE_URING_IN_OUT_HEADER_SZ */

#endif /* COHMEM_KABI_H */
