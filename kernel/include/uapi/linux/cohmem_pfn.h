/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR MIT */
/*
 * cohmem_pfn: buffers mapped VM_IO | VM_PFNMAP with apply_as_clean dirty
 * tracking, for user space. The ABI of /dev/cohmem-pfn and of its buffers.
 */
#ifndef _UAPI_LINUX_COHMEM_PFN_H
#define _UAPI_LINUX_COHMEM_PFN_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define COHMEM_PFN_DEVICE "/dev/cohmem-pfn"
/* Device memory: the BAR of a PCI device bound to the cohmem_pfn driver, at this prefix + its PCI address. */
#define COHMEM_PFN_DEVICE_PREFIX "/dev/cohmem-pfn-"
#define COHMEM_PFN_IOC 0xC5

/* /dev/cohmem-pfn: a new buffer of size bytes (page-aligned); fd receives an O_RDWR descriptor. */
struct cohmem_pfn_create {
	__u64 size;
	__u32 flags;	/* 0 */
	__s32 fd;	/* out */
};

/*
 * /dev/cohmem-pfn: the buffer mapped at [addr, addr + len) of the calling
 * process (one mapping); fd receives a new descriptor of it and pgoff the
 * buffer page mapped at addr.
 */
struct cohmem_pfn_lookup {
	__u64 addr;
	__u64 len;
	__u64 pgoff;	/* out */
	__s32 fd;	/* out */
	__u32 pad;
};

/*
 * A buffer: clean_record_shared_mapping_range() over every mapping of pages
 * [first, first + nr): for each page written since it was last cleaned, set
 * bit (page - bitmap_pgoff) of the user bitmap, widen [start, end) as the
 * kernel helper does (start >= end on input: none set yet), and count it.
 */
struct cohmem_pfn_clean {
	__u64 first;
	__u64 nr;
	__u64 bitmap_pgoff;
	__u64 bitmap;	/* user pointer to __u64[]: bit n is bit n % 64 of word n / 64 */
	__u64 start;	/* in/out */
	__u64 end;	/* in/out */
	__u64 count;	/* out */
};

/* A buffer: forget the dirty state of [first, first + nr); count: pages that were dirty. */
struct cohmem_pfn_wrprotect {
	__u64 first;
	__u64 nr;
	__u64 count;	/* out */
};

/* How a buffer tracks writes: vmwgfx's two methods, and its policy between them. */
#define COHMEM_PFN_POLICY_AUTO 0	/* switch by the dirty rate (the default) */
#define COHMEM_PFN_POLICY_PAGETABLE 1	/* always scan hardware dirty bits */
#define COHMEM_PFN_POLICY_MKWRITE 2	/* always write-protect and record in pfn_mkwrite */
#define COHMEM_PFN_METHOD_PAGETABLE 1
#define COHMEM_PFN_METHOD_MKWRITE 2

struct cohmem_pfn_method {
	__u32 policy;	/* in, with COHMEM_PFN_SET_METHOD */
	__u32 method;	/* out: the method in use now */
	__u64 switches;	/* out: changes of method so far */
};

/* Any buffer: its size, and whether it is device memory (a PCI BAR given to the driver). */
#define COHMEM_PFN_INFO_DEVICE (1u << 0)
struct cohmem_pfn_info {
	__u64 size;	/* bytes */
	__u32 flags;	/* COHMEM_PFN_INFO_* */
	__u32 pad;
};

#define COHMEM_PFN_CREATE _IOWR(COHMEM_PFN_IOC, 1, struct cohmem_pfn_create)
#define COHMEM_PFN_LOOKUP _IOWR(COHMEM_PFN_IOC, 2, struct cohmem_pfn_lookup)
#define COHMEM_PFN_CLEAN _IOWR(COHMEM_PFN_IOC, 3, struct cohmem_pfn_clean)
#define COHMEM_PFN_WRPROTECT _IOWR(COHMEM_PFN_IOC, 4, struct cohmem_pfn_wrprotect)
#define COHMEM_PFN_SET_METHOD _IOWR(COHMEM_PFN_IOC, 5, struct cohmem_pfn_method)
#define COHMEM_PFN_GET_METHOD _IOR(COHMEM_PFN_IOC, 6, struct cohmem_pfn_method)
#define COHMEM_PFN_INFO _IOR(COHMEM_PFN_IOC, 7, struct cohmem_pfn_info)

#endif
