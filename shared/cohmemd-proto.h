/* SPDX-License-Identifier: MIT */
/*
 * The ioctls between libcohmem's buffer API and cohmemd, on files (and the
 * root directory) of a cohmemd mount. Private to this project: both sides
 * are built from the same tree.
 *
 * FUSE passes only "restricted" ioctls for regular files: the size encoded
 * in the command (< 16 KiB) is copied in (_IOC_WRITE) and out (_IOC_READ),
 * and the daemon never sees the caller's pointer. So every request is one
 * fixed-size struct, and a clean covers at most COHMEM_IOC_WINDOW pages per
 * call (its bitmap must fit).
 *
 * Versions. The command number encodes its struct's size, so a struct that
 * changes is a new command, which a daemon of another version answers with
 * ENOTTY; COHMEM_IOC_INFO never changes, and says the daemon's version. A
 * client checks the version before it relies on anything else, and answers
 * -EPROTO for another one (cohmem_buffer_clean(3)): the library and the
 * daemon are built from the same tree, and a mismatch is an upgrade half
 * done (a daemon not restarted, or a program holding the old library), which
 * must fail clearly rather than half work.
 *  2: INFO, ATTACH, DETACH, CLEAN, WRPROTECT and LS as the tree had them
 *     first (version 1 is older than the tree's history).
 *  3: CLEAN and WRPROTECT carry the end of the caller's whole range, checked
 *     against the buffer's size with the first window, so that a clean needs
 *     no INFO before it: one request when the range fits in one window, where
 *     version 2 needed two. A client of version 3 asks INFO only when its
 *     first request fails with ENOTTY or EINVAL, to tell another version or
 *     another file (ENOTTY, EPROTO) from a bad range.
 */
#ifndef COHMEM_COHMEMD_PROTO_H
#define COHMEM_COHMEMD_PROTO_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define COHMEM_PROTO_VERSION 3
#define COHMEM_IOC_WINDOW 65536	/* pages per clean request: an 8 KiB bitmap */

#define COHMEM_INFO_DURABLE (1u << 0)	/* cohmemd --durable: cleans sync the state file */

struct cohmem_ioc_info {
	__u32 version;		/* out: COHMEM_PROTO_VERSION */
	__u32 flags;		/* out: COHMEM_INFO_* */
	__u64 page_size;	/* out */
	__u64 size;		/* out: the buffer's size in bytes */
};

/* Needs a description open for writing, and a writable shared mapping of this buffer there. */
struct cohmem_ioc_attach {
	__u64 addr, len;	/* in: the caller's mapping of this buffer */
	__u64 offset;		/* in: the file offset mapped at addr */
};

struct cohmem_ioc_detach {
	__u64 addr;		/* in: as given to attach */
};

/*
 * COHMEM_CLEAN_SYNC: have the kernel write the buffer's dirty pages back
 * first, so the answer covers every write through any mapping that completed
 * before the request. Without it the answer covers what reached the daemon
 * (write(2), and writeback so far): what a clean of the next window of the
 * same call needs.
 */
#define COHMEM_CLEAN_SYNC (1u << 0)

/*
 * Needs a description open for reading. end: the end of the range the
 * caller's call covers (first + nr <= end); a range past the buffer's end is
 * refused (EINVAL) with nothing taken. A call of several windows sends its
 * whole range with the first (the one with COHMEM_CLEAN_SYNC), and each
 * later window's own end with that window, as the buffer may have shrunk.
 */
struct cohmem_ioc_clean {
	__u64 first, nr;	/* in: pages [first, first + nr), nr <= COHMEM_IOC_WINDOW */
	__u64 end;		/* in: the end of the caller's range (version 3) */
	__u32 flags;		/* in: COHMEM_CLEAN_* */
	__u32 pad;
	__u64 count;		/* out: pages reported */
	__u64 bitmap[COHMEM_IOC_WINDOW / 64];	/* out: bit i = page first + i */
};

struct cohmem_ioc_wrprotect {
	__u64 first, nr;	/* in */
	__u64 end;		/* in: as for a clean */
	__u32 flags;		/* in: COHMEM_CLEAN_* */
	__u32 pad;
	__u64 count;		/* out: pages this consumer had pending */
};

#define COHMEM_LS_MAPPINGS 32

/*
 * On the mount's root directory: one buffer per call, by index, until
 * ENOENT. Mappings are shown to root, to the daemon's user and to the user
 * whose process attached them; the others are only counted, in hidden.
 */
struct cohmem_ioc_ls {
	__u32 index;		/* in */
	__u32 consumers;	/* out: open file descriptions */
	__u64 size;		/* out: bytes */
	__u64 pending;		/* out: pages pending for the consumer with the most */
	__u32 mode, uid, gid;	/* out */
	__u32 nmappings;	/* out: attached mappings shown (the first COHMEM_LS_MAPPINGS below) */
	__u32 hidden;		/* out: attached mappings of other users, not shown */
	__u32 writebacks;	/* out: times the daemon had the kernel write it back (wraps) */
	char name[256];		/* out */
	struct {
		__s32 pid;
		__u32 pad;
		__u64 addr, len, offset;
	} mappings[COHMEM_LS_MAPPINGS];
};

/* On the mount's root directory: how the daemon is served (cohmemctl status, ls). */
struct cohmem_ioc_daemon {
	char transport[16];	/* out: "dev" (/dev/fuse) or "uring" (FUSE over io_uring) */
	__u32 queues;		/* out: uring: the kernel's queues (one per possible CPU) */
	__u32 entries;		/* out: uring: ring entries registered, in all queues */
	__u32 flags;		/* out: COHMEM_INFO_* */
	__u32 pad;
	char why[160];		/* out: why not io_uring, when it is not used; else empty */
};

#define COHMEM_IOC_INFO _IOR('C', 1, struct cohmem_ioc_info)
#define COHMEM_IOC_ATTACH _IOW('C', 2, struct cohmem_ioc_attach)
#define COHMEM_IOC_DETACH _IOW('C', 3, struct cohmem_ioc_detach)
#define COHMEM_IOC_CLEAN _IOWR('C', 4, struct cohmem_ioc_clean)
#define COHMEM_IOC_WRPROTECT _IOWR('C', 5, struct cohmem_ioc_wrprotect)
#define COHMEM_IOC_LS _IOWR('C', 6, struct cohmem_ioc_ls)
#define COHMEM_IOC_DAEMON _IOR('C', 7, struct cohmem_ioc_daemon)

#endif /* COHMEM_COHMEMD_PROTO_H */
