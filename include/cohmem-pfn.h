/* SPDX-License-Identifier: MIT */
/*
 * cohmem — memory of the cohmem_pfn kernel module (kernel/): buffers and
 * device BARs mapped VM_IO | VM_PFNMAP, which COHMEM_BACKEND_PFN tracks.
 * Conventions as in <cohmem.h>.
 */
#ifndef COHMEM_PFN_H
#define COHMEM_PFN_H

#include <stddef.h>
#include <linux/cohmem_pfn.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * cohmem_pfn_open() - a new buffer of the cohmem_pfn kernel module: memory
 * that mmap(MAP_SHARED) maps VM_IO | VM_PFNMAP, as drivers map device
 * memory, which COHMEM_BACKEND_PFN (and AUTO) can track. Several processes
 * and several mappings may map it; a clean walks all of them, as the
 * kernel's clean_record_shared_mapping_range() does. Private mappings are
 * refused (-EINVAL from mmap()). Pages are allocated at first touch.
 *
 * Device memory is tracked the same way: a PCI device given to the module
 * (echo VENDOR DEVICE > /sys/bus/pci/drivers/cohmem_pfn/new_id) has its
 * largest memory BAR served as /dev/cohmem-pfn-<PCI address>; open it, map it
 * MAP_SHARED, and add a region on the mapping (COHMEM_BACKEND_PFN or AUTO).
 * @len:   its size in bytes, page-aligned, > 0 (at most 16 GiB).
 * @flags: must be 0 (reserved).
 *
 * Like memfd_create(2), the buffer is a descriptor: O_RDWR, close-on-exec;
 * close it when done (mappings keep the buffer alive). The module's ioctls
 * on it (COHMEM_PFN_SET_METHOD, COHMEM_PFN_INFO) are in <linux/cohmem_pfn.h>,
 * which this header includes.
 *
 * Return: the descriptor (>= 0); -EINVAL for a bad @len or @flags; -EFBIG
 * past 16 GiB; -EOPNOTSUPP if the module is not loaded (see cohmemctl
 * probe); -ENOMEM; -EMFILE.
 * Thread-safety: any thread.
 */
int cohmem_pfn_open(size_t len, unsigned flags);

#ifdef __cplusplus
}
#endif

#endif /* COHMEM_PFN_H */
