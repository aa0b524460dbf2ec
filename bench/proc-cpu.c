/* SPDX-License-Identifier: MIT */
/* What a process has run, from /proc: shared by cohmem-bench and vnc-bench. */
#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

#include "proc-cpu.h"

/* Its live threads' run time, from their schedstat (ns). */
static double live_threads_seconds(pid_t pid)
{
	char path[80];
	double s = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d));) {
		unsigned long long ns;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", (int)pid, e->d_name);
		f = fopen(path, "r");
		if (f && fscanf(f, "%llu", &ns) == 1)
			s += (double)ns / 1e9;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return s;
}

double proc_cpu_seconds(pid_t pid)
{
	double live = live_threads_seconds(pid), all = 0;
	unsigned long long ut, st;
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f && fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
		all = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	if (f)
		fclose(f);
	return live > all ? live : all;
}
