/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "vma.h"

/* "start-end perms offset major:minor inode   path" */
static bool vma_parse(char *line, struct vma_info *v)
{
	char perms[5];
	int path_at = 0;
	uintmax_t start, end, offset;
	unsigned major, minor;

	if (sscanf(line, "%jx-%jx %4s %jx %x:%x %lu %n", &start, &end, perms, &offset, &major,
		   &minor, &v->inode, &path_at) < 7)
		return false;
	line[strcspn(line, "\n")] = '\0';
	v->start = (uintptr_t)start;
	v->end = (uintptr_t)end;
	v->offset = (uint64_t)offset;
	v->dev = makedev(major, minor);
	v->writable = perms[1] == 'w';
	v->executable = perms[2] == 'x';
	v->shared = perms[3] == 's';
	v->path = path_at ? line + path_at : "";
	return true;
}

int vma_walk(pid_t pid, uintptr_t start, uintptr_t end,
	     int (*fn)(const struct vma_info *v, void *arg), void *arg)
{
	char path[32] = "/proc/self/maps", *line = NULL;
	size_t cap = 0;
	int ret = 0;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!ret && getline(&line, &cap, f) > 0) {
		struct vma_info v;

		if (!vma_parse(line, &v) || v.end <= start)
			continue;
		if (v.start >= end)
			break;
		if (v.start < start) {
			v.offset += start - v.start;
			v.start = start;
		}
		if (v.end > end)
			v.end = end;
		ret = fn(&v, arg);
	}
	free(line);
	fclose(f);
	return ret;
}
