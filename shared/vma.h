/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_VMA_H
#define COHMEM_VMA_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One line of /proc/<pid>/maps, clipped to the range that was asked for. */
struct vma_info {
	uintptr_t start, end;
	uint64_t offset;	/* in the file, of start (after clipping) */
	dev_t dev;		/* of the file; 0 for anonymous memory */
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
 * Call fn for each mapping of process pid (0: this process) that overlaps
 * [start, end), in address order, clipped to the range. Stops early when fn
 * returns non-zero and returns that; returns 0 after a full walk, -errno if
 * the maps cannot be read. The snapshot is only as current as the read of
 * /proc/<pid>/maps: whoever needs it to describe a particular process pins
 * that process (a pidfd) before the walk.
 */
int vma_walk(pid_t pid, uintptr_t start, uintptr_t end,
	     int (*fn)(const struct vma_info *v, void *arg), void *arg);

#endif /* COHMEM_VMA_H */
