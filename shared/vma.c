/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vma.h"

/* "start-end perms offset major:minor inode   path" */
static bool vma_parse(char *line, struct vma_info *v)
{
	char perms[5];
	int path_at = 0;
	uintmax_t start, end;

	if (sscanf(line, "%jx-%jx %4s %*x %*x:%*x %lu %n", &start, &end, perms, &v->inode,
		   &path_at) < 4)
		return false;
	line[strcspn(line, "\n")] = '\0';
	v->start = (uintptr_t)start;
	v->end = (uintptr_t)end;
	v->writable = perms[1] == 'w';
	v->executable = perms[2] == 'x';
	v->shared = perms[3] == 's';
	v->path = path_at ? line + path_at : "";
	return true;
}

int vma_walk(uintptr_t start, uintptr_t end, int (*fn)(const struct vma_info *v, void *arg),
	     void *arg)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;

	if (!f)
		return -errno;
	while (!ret && getline(&line, &cap, f) > 0) {
		struct vma_info v;

		if (!vma_parse(line, &v) || v.end <= start)
			continue;
		if (v.start >= end)
			break;
		if (v.start < start)
			v.start = start;
		if (v.end > end)
			v.end = end;
		ret = fn(&v, arg);
	}
	free(line);
	fclose(f);
	return ret;
}
