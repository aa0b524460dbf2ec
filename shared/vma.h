/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_VMA_H
#define COHMEM_VMA_H

#include <stdbool.h>
#include <stdint.h>

/* One line of /proc/self/maps, clipped to the range that was asked for. */
struct vma_info {
	uintptr_t start, end;
	bool shared;		/* 's' in the permissions */
	bool writable, executable;
	unsigned long inode;
	const char *path;	/* "" for anonymous memory */
};

static inline bool vma_is_anon_private(const struct vma_info *v)
{
	return !v->shared && v->inode == 0 && (!v->path[0] || v->path[0] == '[');
}

/*
 * Call fn for each mapping that overlaps [start, end), in address order,
 * clipped to the range. Stops early when fn returns non-zero and returns that;
 * returns 0 after a full walk, -errno if maps cannot be read. The snapshot is
 * only as current as the read of /proc/self/maps.
 */
int vma_walk(uintptr_t start, uintptr_t end, int (*fn)(const struct vma_info *v, void *arg),
	     void *arg);

#endif /* COHMEM_VMA_H */
