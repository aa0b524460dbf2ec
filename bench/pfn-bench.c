/* SPDX-License-Identifier: MIT */
/*
 * pfn-bench: what a clean of device memory costs, by method, in one run.
 *
 *   pfn-bench [--rounds N]
 *
 * For each pfnmap mapping it finds — a cohmem_pfn buffer (RAM behind the
 * module), the ivshmem BAR of the kernel matrix's guest through the module's
 * node and through sysfs resource2, a DRM dumb buffer in VRAM (bochs) — and
 * for 0.1, 1, 10 and 100 % of its pages written between cleans (scattered),
 * it times the writes and the clean of each method that can track it:
 *
 *   pfn-scan   PAGEMAP_SCAN with PM_SCAN_PFNMAP (cohmem's kernel patch)
 *   pagetable  the cohmem_pfn module, page-table method (dirty bits, no faults)
 *   mkwrite    the cohmem_pfn module, mkwrite method (a fault per first write)
 *   memcmp     a shadow copy: compare the whole mapping, copy what changed
 *
 * and prints, per row, the median µs of the writes and of the clean, and the
 * cost (writes + clean) as a ratio to memcmp's. It measures; it asserts
 * nothing but that each method reports every page written (a method that
 * misses one makes the program fail). Under TCG the MMU is emulated: faults,
 * TLB flushes and page-table walks cost what QEMU's softmmu makes them cost,
 * not what a CPU does; only ratios within this run mean anything.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/cohmem_pfn.h>

#include "cohmem.h"
#include "cohmem-pfn.h"
#include "drm-dumb.h"
#include "stats.h"

enum method { PFN_SCAN, PAGETABLE, MKWRITE, MEMCMP, NMETHODS };

static const char *const method_names[NMETHODS] = { "pfn-scan", "pagetable", "mkwrite", "memcmp" };

struct mapping {
	const char *name;
	char *mem;		/* for pfn-scan and memcmp */
	char *module_mem;	/* the same memory through the module's mapping, or NULL */
	int module_fd;		/* the buffer or node behind module_mem */
	size_t pages;
};

static size_t ps;
static int rounds = 15;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One byte in each of k pages spread over the mapping, changed (memcmp must see it); another each round. */
static void write_pages(char *mem, size_t pages, size_t k, int round)
{
	size_t stride = pages / k;

	for (size_t i = 0; i < k; i++) {
		volatile char *at = mem + (i * stride) * ps + (size_t)round % ps;

		*at = (char)~*at;
	}
}

/* The method's state for one mapping: a region, or a shadow. */
struct tracker_state {
	enum method m;
	cohmem_tracker *t;
	cohmem_region *r;
	char *shadow;
	unsigned long *bitmap;
};

static int set_module_method(int fd, enum method m)
{
	struct cohmem_pfn_method how = {
		.policy = m == PAGETABLE ? COHMEM_PFN_POLICY_PAGETABLE : COHMEM_PFN_POLICY_MKWRITE,
	};

	return ioctl(fd, COHMEM_PFN_SET_METHOD, &how) ? -errno : 0;
}

static char *method_mem(const struct mapping *mp, enum method m)
{
	return m == PAGETABLE || m == MKWRITE ? mp->module_mem : mp->mem;
}

static int state_new(struct tracker_state *s, const struct mapping *mp, enum method m)
{
	enum cohmem_backend b = m == PFN_SCAN ? COHMEM_BACKEND_PFN_SCAN : COHMEM_BACKEND_PFN;
	char *mem = method_mem(mp, m);
	int err;

	*s = (struct tracker_state){ .m = m };
	s->bitmap = calloc((mp->pages + 63) / 64, sizeof(unsigned long));
	if (!s->bitmap)
		return -ENOMEM;
	if (m == MEMCMP) {
		s->shadow = malloc(mp->pages * ps);
		if (!s->shadow)
			return -ENOMEM;
		memcpy(s->shadow, mem, mp->pages * ps);
		return 0;
	}
	if ((m == PAGETABLE || m == MKWRITE) && (err = set_module_method(mp->module_fd, m)))
		return err;
	err = cohmem_tracker_new(b, 0, &s->t);
	return err ? err : cohmem_region_add(s->t, mem, mp->pages * ps, 0, &s->r);
}

static void state_free(struct tracker_state *s)
{
	cohmem_tracker_free(s->t);
	free(s->shadow);
	free(s->bitmap);
}

/* A clean of the whole mapping: the pages it reports. */
static long state_clean(struct tracker_state *s, const struct mapping *mp)
{
	char *mem = method_mem(mp, s->m);
	long found = 0;

	if (s->m != MEMCMP)
		return cohmem_region_clean(s->r, 0, mp->pages, 0, s->bitmap, NULL, NULL);
	for (size_t p = 0; p < mp->pages; p++) {
		if (!memcmp(mem + p * ps, s->shadow + p * ps, ps))
			continue;
		memcpy(s->shadow + p * ps, mem + p * ps, ps);
		found++;
	}
	return found;
}

struct row {
	double write_us, clean_us;
	bool exact;
};

static int measure(const struct mapping *mp, enum method m, size_t k, struct row *out)
{
	struct tracker_state s = { .m = m };
	double *w = calloc((size_t)rounds, sizeof(double)), *c = calloc((size_t)rounds, sizeof(double));
	int err = w && c ? state_new(&s, mp, m) : -ENOMEM;

	out->exact = true;
	for (int i = 0; !err && i < rounds; i++) {
		double t0 = now_us(), t1;
		long found;

		write_pages(method_mem(mp, m), mp->pages, k, i);
		t1 = now_us();
		found = state_clean(&s, mp);
		c[i] = now_us() - t1;
		w[i] = t1 - t0;
		if (found < 0)
			err = (int)found;
		else if ((size_t)found < k)	/* memcmp misses a byte that did not change: never here */
			out->exact = false;
	}
	if (!err) {
		out->write_us = bench_median(w, (unsigned)rounds);
		out->clean_us = bench_median(c, (unsigned)rounds);
	}
	state_free(&s);	/* also after a failure: a tracker left behind would keep the memory claimed */
	free(w);
	free(c);
	return err;
}

static int bench_mapping(const struct mapping *mp)
{
	static const double fractions[] = { 0.001, 0.01, 0.1, 1.0 };
	int failed = 0;

	printf("\n%s: %zu pages (%zu KiB)\n", mp->name, mp->pages, mp->pages * ps / 1024);
	printf("  %-6s %-10s %10s %10s %10s %12s\n", "dirty", "method", "writes µs", "clean µs", "total µs",
	       "total/memcmp");
	for (size_t f = 0; f < sizeof(fractions) / sizeof(fractions[0]); f++) {
		size_t k = (size_t)(fractions[f] * (double)mp->pages);
		struct row rows[NMETHODS] = { 0 };
		bool have[NMETHODS] = { false };

		k = k ? k : 1;
		for (int m = 0; m < NMETHODS; m++) {
			int err;

			if ((m == PAGETABLE || m == MKWRITE) && !mp->module_mem)
				continue;
			err = measure(mp, (enum method)m, k, &rows[m]);
			if (err) {
				printf("  %-6.1f %-10s unavailable: %s\n", fractions[f] * 100, method_names[m],
				       strerror(-err));
				continue;
			}
			have[m] = true;
			failed += !rows[m].exact;
		}
		for (int m = 0; m < NMETHODS; m++) {
			double total = rows[m].write_us + rows[m].clean_us;
			double base = rows[MEMCMP].write_us + rows[MEMCMP].clean_us;

			if (!have[m])
				continue;
			printf("  %5.1f%% %-10s %10.1f %10.1f %10.1f %11.2fx%s\n", fractions[f] * 100, method_names[m],
			       rows[m].write_us, rows[m].clean_us, total, have[MEMCMP] && base > 0 ? total / base : 0,
			       rows[m].exact ? "" : "  MISSED WRITES");
		}
	}
	return failed;
}

static void *map_shared(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* The sysfs resource2 of QEMU's ivshmem-plain (1af4:1110), or "" . */
static void ivshmem_resource(char *out, size_t len)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	out[0] = '\0';
	while (d && (e = readdir(d))) {
		char path[512], id[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(id, sizeof(id), f))
			id[0] = '\0';
		fclose(f);
		if (strncmp(id, "0x1af4", 6))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
		f = fopen(path, "r");
		if (f && fgets(id, sizeof(id), f) && !strncmp(id, "0x1110", 6))
			snprintf(out, len, "/sys/bus/pci/devices/%s/resource2", e->d_name);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
}

static int bench_module_buffer(size_t pages)
{
	struct mapping mp = { .name = "cohmem_pfn buffer (RAM)", .pages = pages };
	int fd = cohmem_pfn_open(pages * ps, 0), failed;

	if (fd < 0) {
		printf("\ncohmem_pfn buffer: unavailable: %s\n", strerror(-fd));
		return 0;
	}
	mp.module_fd = fd;
	mp.mem = map_shared(fd, pages * ps);
	mp.module_mem = map_shared(fd, pages * ps);
	memset(mp.mem, 1, pages * ps);	/* every page faulted in: the methods compare cleans, not first faults */
	failed = bench_mapping(&mp);
	munmap(mp.mem, pages * ps);
	munmap(mp.module_mem, pages * ps);
	close(fd);
	return failed;
}

static int bench_ivshmem(void)
{
	const char *node = getenv("COHMEM_TEST_PFN_BAR");
	struct mapping mp = { .name = "ivshmem BAR (sysfs resource2; the module's node)", .module_fd = -1 };
	char res[512];
	int fd, failed;

	ivshmem_resource(res, sizeof(res));
	fd = res[0] ? open(res, O_RDWR | O_CLOEXEC) : -1;
	if (fd < 0) {
		printf("\nivshmem BAR: unavailable: no ivshmem-plain device\n");
		return 0;
	}
	mp.pages = (size_t)lseek(fd, 0, SEEK_END) / ps;
	mp.mem = map_shared(fd, mp.pages * ps);
	if (node && (mp.module_fd = open(node, O_RDWR | O_CLOEXEC)) >= 0)
		mp.module_mem = map_shared(mp.module_fd, mp.pages * ps);
	if (!mp.mem) {
		printf("\nivshmem BAR: unavailable: mmap %s: %s\n", res, strerror(errno));
		close(fd);
		return 0;
	}
	/* Keep clear of the pages other tests sign at the BAR's end. */
	mp.pages -= 16;
	failed = bench_mapping(&mp);
	if (mp.module_mem)
		munmap(mp.module_mem, (mp.pages + 16) * ps);
	if (mp.module_fd >= 0)
		close(mp.module_fd);
	munmap(mp.mem, (mp.pages + 16) * ps);
	close(fd);
	return failed;
}

static int bench_drm(void)
{
	struct drm_dumb dumb;
	struct mapping mp = { .name = "DRM dumb buffer (bochs, VRAM, shown)", .module_fd = -1 };
	int err = drm_dumb_show(&dumb, 1024, 768), failed;

	if (err) {
		printf("\nDRM dumb buffer: unavailable: %s\n", dumb.why);
		return 0;
	}
	mp.mem = dumb.mem;
	mp.pages = dumb.size / ps;
	failed = bench_mapping(&mp);
	drm_dumb_close(&dumb);
	return failed;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "rounds", required_argument, NULL, 'r' }, { 0 } };
	int c, failed = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'r' || (rounds = atoi(optarg)) < 1) {
			fprintf(stderr, "usage: pfn-bench [--rounds N]\n");
			return 2;
		}
	}
	ps = (size_t)sysconf(_SC_PAGESIZE);
	{
		struct timespec res;

		/* A guest whose clocksource fell back to jiffies times nothing below its tick. */
		if (!clock_getres(CLOCK_MONOTONIC, &res) && (res.tv_sec || res.tv_nsec > 1000))
			printf("pfn-bench: CLOCK_MONOTONIC ticks every %ld µs: times below that are noise\n",
			       res.tv_sec * 1000000L + res.tv_nsec / 1000);
	}
	if (cohmem_backend_supported(COHMEM_BACKEND_PFN_SCAN))
		printf("pfn-scan: unavailable on this kernel (see cohmemctl probe)\n");
	failed += bench_module_buffer(4096);
	failed += bench_ivshmem();
	failed += bench_drm();
	printf("\npfn-bench: %s\n", failed ? "a method missed written pages" : "every method reported every write");
	return failed ? 1 : 0;
}
