/* SPDX-License-Identifier: MIT */
/*
 * cohmem-bench: what one "sync" cycle costs — a writer dirties a fraction of a
 * region's pages, then the device side brings its copy up to date — for each
 * libcohmem backend, for a raw PAGEMAP_SCAN loop without the library, for a
 * memcmp against the device copy, and for a full copy. All strategies see the
 * same pages written in the same order, in one run; the report is medians per
 * cycle and ratios. A benchmark, not a test: it measures and prints, and says
 * whether the project's targets were met.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cohmem.h"
#include "adaptive-bench.h"
#include "daemon-bench.h"
#include "fb.h"
#include "stats.h"
#include "target.h"
#include "kabi.h"

#define MAX_CYCLES 64
#define WARMUP 2	/* cycles per strategy run first and not counted */

static size_t ps;

struct times {
	double writer, clean, copy;	/* ms */
};

static double total(const struct times *t)
{
	return t->writer + t->clean + t->copy;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what, long err)
{
	fprintf(stderr, "cohmem-bench: %s: %s\n", what, strerror((int)(err < 0 ? -err : err)));
	exit(1);
}

/* ---- the workload ------------------------------------------------------ */

struct workload {
	size_t pages;		/* region size */
	size_t dirty;		/* pages written per cycle */
	unsigned cycles;
	size_t *order;		/* cycles * dirty page indexes */
};

/* The same pseudo-random pages for every strategy: a fresh partial shuffle per cycle. */
static void workload_init(struct workload *w, size_t pages, double fraction, unsigned cycles)
{
	size_t *perm = malloc(pages * sizeof(*perm));
	unsigned seed = 12345;

	w->pages = pages;
	w->dirty = (size_t)(pages * fraction) ? (size_t)(pages * fraction) : 1;
	w->cycles = cycles;
	cycles += WARMUP;
	w->order = malloc((size_t)cycles * w->dirty * sizeof(*w->order));
	if (!perm || !w->order)
		die("malloc", ENOMEM);
	for (size_t i = 0; i < pages; i++)
		perm[i] = i;
	for (unsigned c = 0; c < cycles; c++) {
		for (size_t i = 0; i < w->dirty; i++) {
			size_t j = i + ((size_t)rand_r(&seed) << 16 ^ (size_t)rand_r(&seed)) % (pages - i);
			size_t tmp = perm[i];

			perm[i] = perm[j];
			perm[j] = tmp;
			w->order[(size_t)c * w->dirty + i] = perm[i];
		}
	}
	free(perm);
}

/* The writer: 8 bytes into each page of this cycle, timed. */
static double write_cycle(const struct workload *w, unsigned cycle, char *mem)
{
	const size_t *pg = w->order + (size_t)cycle * w->dirty;
	double t0 = now_ms();

	for (size_t i = 0; i < w->dirty; i++)
		*(volatile uint64_t *)(mem + pg[i] * ps + (i % 64) * 8) = cycle * 131 + i;
	return now_ms() - t0;
}

static char *map_region(size_t pages)
{
	char *p = mmap(NULL, pages * ps, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap", errno);
	madvise(p, pages * ps, MADV_NOHUGEPAGE);
	memset(p, 0, pages * ps);	/* populated: cycles measure tracking, not allocation */
	return p;
}

static void check_copy(const char *what, const char *mem, const char *dev, size_t len)
{
	if (memcmp(mem, dev, len)) {
		fprintf(stderr, "cohmem-bench: %s: the device copy differs from memory\n", what);
		exit(1);
	}
}

/* ---- strategies ---------------------------------------------------------- */

/*
 * A strategy keeps its own memory and device copy. run_workload() takes turns
 * between strategies every BLOCK cycles, rotating who goes first, so that
 * drift in a noisy machine hits every strategy alike, while each strategy
 * still runs a few cycles back to back, warm, as an application would.
 */
#define BLOCK 5
struct runner {
	const struct strategy *s;
	const struct workload *w;
	char *mem, *dev;
	bool available;
	struct times t[MAX_CYCLES];
	/* strategy state */
	cohmem_tracker *tracker;
	cohmem_region *region;
	unsigned long *bitmap;
	int uffd, pagemap;
	struct page_region *vec;	/* raw-scan: room for every run the region can have */
	size_t vec_len;
};

struct strategy {
	const char *name;
	enum cohmem_backend backend;	/* library strategies only */
	bool (*setup)(struct runner *r);	/* false: unavailable here */
	void (*sync)(struct runner *r, struct times *t);	/* fills clean and copy */
	void (*teardown)(struct runner *r);
};

static void copy_bitmap_pages(unsigned long *bm, size_t pages, char *dev, const char *mem)
{
	for (size_t word = 0; word < COHMEM_BITMAP_LONGS(pages); word++) {
		while (bm[word]) {
			size_t pg = word * COHMEM_BITS_PER_LONG + (size_t)__builtin_ctzl(bm[word]);

			memcpy(dev + pg * ps, mem + pg * ps, ps);
			bm[word] &= bm[word] - 1;
		}
	}
}

static bool library_setup(struct runner *r)
{
	long err;

	if (cohmem_backend_supported(r->s->backend))
		return false;
	r->bitmap = calloc(COHMEM_BITMAP_LONGS(r->w->pages), sizeof(*r->bitmap));
	if (!r->bitmap)
		die("calloc", ENOMEM);
	if ((err = cohmem_tracker_new(r->s->backend, 0, &r->tracker)))
		die("cohmem_tracker_new", err);
	if ((err = cohmem_region_add(r->tracker, r->mem, r->w->pages * ps, 0, &r->region)))
		die("cohmem_region_add", err);
	return true;
}

static void library_sync(struct runner *r, struct times *t)
{
	double t0 = now_ms(), t1;
	long n = cohmem_region_clean(r->region, 0, r->w->pages, 0, r->bitmap, NULL, NULL);

	t1 = now_ms();
	/* Never fewer than were written; mprotect reports all when it degrades. */
	if (n < (long)r->w->dirty)
		die("cohmem_region_clean lost writes", n < 0 ? n : EIO);
	copy_bitmap_pages(r->bitmap, r->w->pages, r->dev, r->mem);
	t->clean = t1 - t0;
	t->copy = now_ms() - t1;
}

static void library_teardown(struct runner *r)
{
	cohmem_tracker_free(r->tracker);
	free(r->bitmap);
}

/*
 * The kernel interface by hand: what the library's clean is measured against,
 * as well as it can be written. Its vector holds every run the region can
 * have (every other page written), so each clean is one PAGEMAP_SCAN call:
 * a full vector ends a call, and each further call walks and flushes again.
 */
static bool raw_setup(struct runner *r)
{
	size_t len = r->w->pages * ps;
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	struct uffdio_register reg = { .range = { (uintptr_t)r->mem, len }, .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .range = { (uintptr_t)r->mem, len }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };

	if (cohmem_backend_supported(COHMEM_BACKEND_UFFD_ASYNC))
		return false;
	r->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (r->uffd < 0)
		r->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	r->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (r->uffd < 0 || r->pagemap < 0 || ioctl(r->uffd, UFFDIO_API, &api) ||
	    ioctl(r->uffd, UFFDIO_REGISTER, &reg) || ioctl(r->uffd, UFFDIO_WRITEPROTECT, &wp))
		die("raw userfaultfd setup", errno);
	r->vec_len = r->w->pages / 2 + 1;
	r->vec = calloc(r->vec_len, sizeof(*r->vec));
	if (!r->vec)
		die("raw-scan vector", ENOMEM);
	return true;
}

static void raw_sync(struct runner *r, struct times *t)
{
	struct page_region *vec = r->vec;
	struct pm_scan_arg arg = {
		.size = sizeof(arg), .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = (uintptr_t)r->mem, .end = (uintptr_t)r->mem + r->w->pages * ps,
		.vec = (uintptr_t)vec, .vec_len = r->vec_len,
		.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
	};

	t->clean = t->copy = 0;
	while (arg.start < arg.end) {
		double t0 = now_ms();
		long n = ioctl(r->pagemap, PAGEMAP_SCAN, &arg);

		t->clean += now_ms() - t0;
		if (n < 0)
			die("PAGEMAP_SCAN", errno);
		t0 = now_ms();
		for (long i = 0; i < n; i++)
			memcpy(r->dev + (vec[i].start - (uintptr_t)r->mem), (void *)(uintptr_t)vec[i].start,
			       vec[i].end - vec[i].start);
		t->copy += now_ms() - t0;
		arg.start = arg.walk_end;
	}
}

static void raw_teardown(struct runner *r)
{
	close(r->uffd);
	close(r->pagemap);
	free(r->vec);
}

static bool plain_setup(struct runner *r)
{
	return true;
}

static void plain_teardown(struct runner *r)
{
}

/* Compare and copy are one pass: all of it counts as copy. */
static void memcmp_sync(struct runner *r, struct times *t)
{
	double t0 = now_ms();

	for (size_t pg = 0; pg < r->w->pages; pg++)
		if (memcmp(r->dev + pg * ps, r->mem + pg * ps, ps))
			memcpy(r->dev + pg * ps, r->mem + pg * ps, ps);
	t->clean = 0;
	t->copy = now_ms() - t0;
}

static void full_copy_sync(struct runner *r, struct times *t)
{
	double t0 = now_ms();

	memcpy(r->dev, r->mem, r->w->pages * ps);
	t->clean = 0;
	t->copy = now_ms() - t0;
}

static const struct strategy strategies[] = {
	{ "uffd-async", COHMEM_BACKEND_UFFD_ASYNC, library_setup, library_sync, library_teardown },
	{ "uffd-sync", COHMEM_BACKEND_UFFD_SYNC, library_setup, library_sync, library_teardown },
	{ "soft-dirty", COHMEM_BACKEND_SOFT_DIRTY, library_setup, library_sync, library_teardown },
	{ "mprotect", COHMEM_BACKEND_MPROTECT, library_setup, library_sync, library_teardown },
	{ "raw-scan", 0, raw_setup, raw_sync, raw_teardown },
	{ "memcmp-shadow", 0, plain_setup, memcmp_sync, plain_teardown },
	{ "full-copy", 0, plain_setup, full_copy_sync, plain_teardown },
};
#define NSTRATEGIES (sizeof(strategies) / sizeof(strategies[0]))
enum { ASYNC, SYNC, SOFT_DIRTY, MPROTECT, RAW, MEMCMP, FULL };

/* Run every available strategy through every cycle of w, taking turns. */
static void run_workload(struct runner *runners, const struct workload *w)
{
	for (size_t s = 0; s < NSTRATEGIES; s++) {
		struct runner *r = &runners[s];

		*r = (struct runner){ .s = &strategies[s], .w = w };
		r->mem = map_region(w->pages);
		r->available = r->s->setup(r);
		if (!r->available)
			continue;
		r->dev = map_region(w->pages);
	}
	for (size_t s = 0; s < NSTRATEGIES; s++) {
		struct times ignored;

		for (unsigned c = 0; runners[s].available && c < WARMUP; c++) {
			write_cycle(w, w->cycles + c, runners[s].mem);
			runners[s].s->sync(&runners[s], &ignored);
		}
	}
	for (unsigned block = 0; block * BLOCK < w->cycles; block++) {
		for (size_t k = 0; k < NSTRATEGIES; k++) {
			struct runner *r = &runners[(block + k) % NSTRATEGIES];

			for (unsigned c = block * BLOCK; r->available && c < w->cycles &&
							 c < (block + 1) * BLOCK; c++) {
				r->t[c].writer = write_cycle(w, c, r->mem);
				r->s->sync(r, &r->t[c]);
			}
		}
	}
	for (size_t s = 0; s < NSTRATEGIES; s++) {
		struct runner *r = &runners[s];

		if (r->available) {
			check_copy(r->s->name, r->mem, r->dev, w->pages * ps);
			r->s->teardown(r);
			munmap(r->dev, w->pages * ps);
		}
		munmap(r->mem, w->pages * ps);
	}
}

/* ---- report -------------------------------------------------------------- */

/* Medians of each column over the cycles. */
static struct times summarize(const struct times *t, unsigned n)
{
	double col[3][MAX_CYCLES];
	struct times m;

	for (unsigned c = 0; c < n; c++) {
		col[0][c] = t[c].writer;
		col[1][c] = t[c].clean;
		col[2][c] = t[c].copy;
	}
	m.writer = bench_median(col[0], n);
	m.clean = bench_median(col[1], n);
	m.copy = bench_median(col[2], n);
	return m;
}

static bool verbose;

/*
 * The library's clean against the raw ioctl, with everything else equal: one
 * tracked region and one raw one get the same writes, each right before its
 * own clean (writing both and then cleaning both made the first clean pay
 * 1.2-7 ms more than the second, by position: more than a clean costs), in
 * alternating order. Single cleans here take 25-90 ms now and then instead
 * of 3 (either side, at random): the answer is the ratio of the two sides'
 * medians over 21 cycles (9 past 4096 dirty pages, where a cycle costs
 * seconds), which such outliers do not move.
 */
#define PAIRED_CYCLES 21
static double paired_clean_ratio(const struct workload *w)
{
	struct runner lib = { .s = &strategies[ASYNC], .w = w }, raw = { .s = &strategies[RAW], .w = w };
	unsigned sets = w->cycles + WARMUP, cycles = w->dirty <= 4096 ? PAIRED_CYCLES : 9;
	double clean[2][PAIRED_CYCLES];

	lib.mem = map_region(w->pages);
	raw.mem = map_region(w->pages);
	lib.dev = map_region(w->pages);
	raw.dev = map_region(w->pages);
	library_setup(&lib);
	raw_setup(&raw);
	for (unsigned c = 0; c < cycles + WARMUP; c++) {
		const size_t *pg = w->order + (size_t)(c % sets) * w->dirty;
		struct runner *side[2] = { c % 2 ? &raw : &lib, c % 2 ? &lib : &raw };

		for (int s = 0; s < 2; s++) {
			struct times t;

			for (size_t i = 0; i < w->dirty; i++)
				side[s]->mem[pg[i] * ps] = (char)c;
			side[s]->s->sync(side[s], &t);
			if (c >= WARMUP)
				clean[side[s] == &raw][c - WARMUP] = t.clean;
		}
	}
	library_teardown(&lib);
	raw_teardown(&raw);
	munmap(lib.mem, w->pages * ps);
	munmap(raw.mem, w->pages * ps);
	munmap(lib.dev, w->pages * ps);
	munmap(raw.dev, w->pages * ps);
	return bench_median(clean[0], cycles) / bench_median(clean[1], cycles);
}

/* Cheap workloads get more cycles: this machine's noise needs them. */
static unsigned default_cycles(size_t pages, double fraction)
{
	return pages * fraction <= 4096 ? 15 : 5;
}

static void bench_size(size_t pages, unsigned cycles_wanted, const double *fractions,
		       size_t nfractions)
{
	printf("\n== %zu MiB region (%zu pages): median ms per cycle over the cycles shown\n",
	       pages * ps >> 20, pages);
	printf("%-11s %-14s %10s %10s %10s %10s %8s\n", "dirty/cyc.", "strategy", "writer", "clean",
	       "copy", "total", "vs best");
	for (size_t f = 0; f < nfractions; f++) {
		unsigned cycles = cycles_wanted ? cycles_wanted : default_cycles(pages, fractions[f]);
		struct runner runners[NSTRATEGIES];
		struct times m[NSTRATEGIES];
		struct workload w;
		double best = 1e300;
		char pct[24];

		workload_init(&w, pages, fractions[f], cycles);
		run_workload(runners, &w);
		for (size_t s = 0; verbose && s < NSTRATEGIES; s++)
			for (unsigned c = 0; runners[s].available && c < cycles; c++)
				printf("  cycle %2u %-14s %10.3f %10.3f %10.3f\n", c, strategies[s].name,
				       runners[s].t[c].writer, runners[s].t[c].clean, runners[s].t[c].copy);
		for (size_t s = 0; s < NSTRATEGIES; s++) {
			if (!runners[s].available)
				continue;
			m[s] = summarize(runners[s].t, cycles);
			if (total(&m[s]) < best)
				best = total(&m[s]);
		}
		snprintf(pct, sizeof(pct), "%.1f%%/%u", fractions[f] * 100, cycles);
		for (size_t s = 0; s < NSTRATEGIES; s++) {
			printf("%-11s %-14s ", s ? "" : pct, strategies[s].name);
			if (!runners[s].available) {
				printf("%10s\n", "unavailable");
				continue;
			}
			printf("%10.3f %10.3f %10.3f %10.3f %7.2fx\n", m[s].writer, m[s].clean, m[s].copy,
			       total(&m[s]), total(&m[s]) / best);
		}
		if (runners[ASYNC].available && runners[RAW].available)
			bench_target("library clean / raw PAGEMAP_SCAN clean, paired", paired_clean_ratio(&w),
				     1.05, true);
		if (runners[ASYNC].available && fractions[f] <= 0.001) {
			bench_target("memcmp-shadow cycle / tracked cycle",
				     total(&m[MEMCMP]) / total(&m[ASYNC]), 5, false);
			bench_target("full-copy cycle / tracked cycle", total(&m[FULL]) / total(&m[ASYNC]),
				     5, false);
		}
		free(w.order);
	}
}

/*
 * The adaptive scenario `runs` times: the policy decides on costs it measures
 * on a noisy machine, and every run must end each workload in the modes the
 * first one did.
 */
static int adaptive_runs(size_t pages, bool quick, enum cohmem_backend backend, unsigned runs)
{
	char first[512] = "", now[512];
	unsigned same = 0;

	for (unsigned i = 0; i < runs; i++) {
		char *d = i ? now : first;

		d[0] = '\0';
		if (runs > 1)
			printf("\n-- adaptive run %u of %u\n", i + 1, runs);
		if (bench_adaptive(pages, quick, backend, d, sizeof(first)))
			return 1;
		same += !i || !strcmp(now, first);
		if (i && strcmp(now, first))
			printf("run %u decided otherwise: %s\n", i + 1, now);
	}
	printf("\nadaptive decisions (final modes: adaptive/adapt+shd): %s\n", first);
	if (runs > 1 && !quick) {
		char what[80];

		snprintf(what, sizeof(what), "adaptive runs deciding as the first, of %u", runs);
		bench_target(what, (double)same / runs, 1.0, false);
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: cohmem-bench [--quick] [--size MIB]... [--dirty PCT]... [--cycles N] [--verbose] [--fb]\n"
		"Measures one writer + sync cycle per strategy, with a fraction of the pages\n"
		"dirty per cycle, and prints medians and ratios.\n"
		"  --size MIB   region size (repeatable; default 64 and 1024)\n"
		"  --dirty PCT  percent of pages written per cycle (repeatable; default 0.1 1 10 100)\n"
		"  --cycles N   cycles per measurement (default 15, or 5 past 4096 dirty pages)\n"
		"  --verbose    print every cycle too\n"
		"  --quick      64 MiB, 5 cycles: a smoke run\n"
		"  --fb         only the framebuffer scenario (1920x1080 and 3840x2160, 32 bpp,\n"
		"               sprites over 0.5%% to 50%% of the screen; run after the others by default)\n"
		"  --daemon     only the cohmemd scenario (a 1 GiB buffer, 1 to 4 writer processes,\n"
		"               0.1 %% and 1 %% or --dirty; a window redrawn on an 8 MiB one), for each\n"
		"               transport and mode cohmemd offers\n"
		"  --transport T  the cohmemd scenario with --transport T only (dev, uring, auto)\n"
		"  --mode M     the cohmemd scenario with --mode M only (track, compare, adaptive)\n"
		"  --writers N  the cohmemd scenario with N writer processes only\n"
		"  --durable    the cohmemd scenario with --durable too\n"
		"  --adaptive   only the adaptive scenario (32 MiB, or --size; with --quick: 4 MiB)\n"
		"  --backend B  the adaptive scenario's backend (default auto; uffd-sync and mprotect\n"
		"               see each fault, and break a fault storm while it happens)\n"
		"  --runs N     run the adaptive scenario N times and check that every run made the\n"
		"               first one's decisions (default: 10 in a full run, 1 with --adaptive)\n");
}

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "size", required_argument, NULL, 's' },
		{ "cycles", required_argument, NULL, 'c' },
		{ "dirty", required_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "fb", no_argument, NULL, 'f' },
		{ "daemon", no_argument, NULL, 'D' },
		{ "adaptive", no_argument, NULL, 'A' },
		{ "backend", required_argument, NULL, 'b' },
		{ "runs", required_argument, NULL, 'r' },
		{ "transport", required_argument, NULL, 'T' },
		{ "mode", required_argument, NULL, 'M' },
		{ "writers", required_argument, NULL, 'W' },
		{ "durable", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	double fractions[8] = { 0.001, 0.01, 0.10, 1.0 };
	size_t sizes[8] = { 64, 1024 }, nsizes = 0, nfractions = 0;
	unsigned cycles = 0;
	bool fb_only = false, daemon_only = false, adaptive_only = false, quick = false, nsizes_given;
	enum cohmem_backend adaptive_backend = COHMEM_BACKEND_AUTO;
	unsigned runs = 0;
	struct daemon_bench daemon = { 0 };
	char cohmemd[PATH_MAX];
	ssize_t exe;
	int opt;

	ps = (size_t)sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "qs:c:d:vfDAb:r:T:M:W:Uh", opts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			quick = true;
			sizes[0] = 64;
			nsizes = 1;
			cycles = 5;
			break;
		case 's':
			if (nsizes < 8)
				sizes[nsizes++] = strtoul(optarg, NULL, 0);
			break;
		case 'c':
			cycles = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			if (nfractions < 8)
				fractions[nfractions++] = strtod(optarg, NULL) / 100;
			break;
		case 'v':
			verbose = true;
			break;
		case 'f':
			fb_only = true;
			break;
		case 'D':
			daemon_only = true;
			break;
		case 'A':
			adaptive_only = true;
			break;
		case 'r':
			runs = (unsigned)strtoul(optarg, NULL, 0);
			if (!runs || runs > 100) {
				fprintf(stderr, "cohmem-bench: --runs takes 1 to 100\n");
				return 2;
			}
			break;
		case 'b':
			if (cohmem_backend_from_name(optarg, &adaptive_backend)) {
				fprintf(stderr, "cohmem-bench: --backend: no backend is called '%s'\n", optarg);
				return 2;
			}
			break;
		case 'T':
			daemon.transport = optarg;
			break;
		case 'M':
			daemon.mode = optarg;
			break;
		case 'W':
			daemon.writers = (unsigned)strtoul(optarg, NULL, 0);
			if (!daemon.writers) {
				fprintf(stderr, "cohmem-bench: --writers takes a positive number\n");
				return 2;
			}
			break;
		case 'U':
			daemon.durable = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	nsizes_given = nsizes != 0;
	if (!nsizes)
		nsizes = 2;
	if (nfractions) {	/* the cohmemd scenario has its own default */
		daemon.fractions = fractions;
		daemon.nfractions = nfractions;
	} else {
		nfractions = 4;
	}
	for (size_t i = 0; i < nfractions; i++) {
		if (!(fractions[i] > 0 && fractions[i] <= 1)) {
			fprintf(stderr, "cohmem-bench: --dirty takes a percentage in (0, 100]\n");
			return 2;
		}
	}
	if (cycles > MAX_CYCLES) {
		fprintf(stderr, "cohmem-bench: at most %d cycles\n", MAX_CYCLES);
		return 2;
	}
	/* cohmemd is built next to this program */
	exe = readlink("/proc/self/exe", cohmemd, sizeof(cohmemd) - 32);
	if (exe <= 0)
		return 1;
	cohmemd[exe] = '\0';
	strcpy(strrchr(cohmemd, '/') + 1, "../daemon/cohmemd");
	daemon.cohmemd = cohmemd;
	daemon.cycles = cycles;
	if (fb_only || daemon_only || adaptive_only) {
		int err = fb_only ? bench_framebuffer()
			  : daemon_only
			  ? bench_daemon(&daemon)
			  : adaptive_runs(((quick ? 4 : nsizes_given ? sizes[0] : 32) << 20) / ps, quick,
					  adaptive_backend, runs ? runs : 1);

		if (!err)
			printf("\n%s\n", bench_targets_missed() ? "some targets were missed" : "all targets held");
		return err ? 1 : 0;
	}
	printf("cohmem-bench: writer = time to dirty the pages (fault cost included); clean = find\n"
	       "what changed; copy = bring the device copy up to date. uffd-* go through libcohmem.\n");
	for (size_t i = 0; i < nsizes; i++) {
		if (!sizes[i]) {
			usage(stderr);
			return 2;
		}
		bench_size((sizes[i] << 20) / ps, cycles, fractions, nfractions);
	}
	if (!nsizes_given && (adaptive_runs((32 << 20) / ps, false, adaptive_backend, runs ? runs : 10) ||
			      bench_framebuffer() ||
			      bench_daemon(&daemon)))
		return 1;
	printf("\n%s\n", bench_targets_missed() ? "some targets were missed" : "all targets held");
	return 0;
}
