/* SPDX-License-Identifier: MIT */
/* userfaultfd plumbing shared by the uffd-async and uffd-sync backends. */
#ifndef COHMEM_UFFD_H
#define COHMEM_UFFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum uffd_open_method {
	UFFD_OPEN_NONE,
	UFFD_OPEN_SYSCALL,	/* userfaultfd(2): privileged or vm.unprivileged_userfaultfd=1 */
	UFFD_OPEN_DEVICE,	/* /dev/userfaultfd, USERFAULTFD_IOC_NEW (6.1) */
	UFFD_OPEN_USER_MODE_ONLY, /* userfaultfd(UFFD_USER_MODE_ONLY): kernel-mode faults get EFAULT */
};

/* What this process can do with userfaultfd, probed once. */
struct uffd_caps {
	int error;			/* 0, or -errno: why no userfaultfd could be opened */
	enum uffd_open_method method;	/* the first method that worked, used from then on */
	uint64_t features;		/* supported UFFD_FEATURE_* bits */
	bool wp;			/* UFFDIO_REGISTER_MODE_WP works on anonymous memory */
	bool pagemap_scan;		/* the PAGEMAP_SCAN ioctl exists */
};

const struct uffd_caps *uffd_caps(void);

/* Whether a userfaultfd can be opened this way: 0 or -errno (for cohmemctl probe). */
int uffd_try_open(enum uffd_open_method method);

/* A non-blocking, close-on-exec userfaultfd with exactly these features: fd or -errno. */
int uffd_new(uint64_t features);

/* -EOPNOTSUPP when the kernel refuses this memory type in WP mode. */
int uffd_register_wp(int fd, uintptr_t start, size_t len);
int uffd_unregister(int fd, uintptr_t start, size_t len);

/*
 * UFFDIO_WRITEPROTECT over [start, start + len). Removing protection also
 * wakes threads waiting on the range. Kernels before 6.5 refuse a range that
 * crosses mappings: then it is done mapping by mapping.
 */
int uffd_writeprotect(int fd, uintptr_t start, size_t len, bool protect);
/*
 * The same as one UFFDIO_WRITEPROTECT call, without the per-mapping retry:
 * it allocates nothing, so a fault thread may use it on any range (a range
 * over several mappings fails with -EINVAL or -ENOENT before 6.5).
 */
int uffd_writeprotect_one(int fd, uintptr_t start, size_t len, bool protect);
int uffd_wake(int fd, uintptr_t start, size_t len);

/*
 * Start tracking [start, start + len): register it for write-protect faults
 * and protect it, so it starts clean. On failure nothing stays registered.
 */
int uffd_track(int fd, uintptr_t start, size_t len);

/*
 * Give [start, start + len) back to plain memory: unprotect (waking anyone
 * waiting on it), then unregister. Memory that was unmapped meanwhile is not
 * an error.
 */
int uffd_release(int fd, uintptr_t start, size_t len);

/*
 * libcohmem.so exports the two probes above for cohmemctl, in its
 * COHMEM_PRIVATE version node (lib/private.c): the answers of the library
 * that is installed, not of a copy.
 */
const struct uffd_caps *cohmem_private_uffd_caps(void);
int cohmem_private_uffd_try_open(enum uffd_open_method method);

#endif /* COHMEM_UFFD_H */
