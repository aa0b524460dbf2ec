/* SPDX-License-Identifier: MIT */
/*
 * The adaptive scenario of cohmem-bench: one cycle = a writer dirties pages,
 * then the device side brings its copy up to date. The cost counted is both
 * sides: writer time (faults included) plus sync time. Strategies:
 *   exact      cohmem_region_clean() on a plain region, copy the reported pages
 *   adaptive   the same on a COHMEM_REGION_ADAPTIVE region
 *   adapt+shd  adaptive with the device copy as its shadow
 *   memcmp     compare every page with the device copy, copy what differs
 *   copy       copy every page
 * Workloads: uniform random pages at 0.1 % to 100 % per cycle (median cycle
 * after a warm-up in which the adaptive policy may settle), a sprite that
 * rewrites the same pages every frame, and 0.1 % and 100 % alternating every
 * 50 cycles (total time, switches included). Every strategy sees the same
 * pages written in the same order, cycle by cycle, side by side.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "adaptive-bench.h"
#include "cohmem.h"
#include "stats.h"
#include "target.h"

enum strategy { EXACT, ADAPTIVE, ADAPTIVE_SHADOW, MEMCMP, COPY, NSTRATEGIES };
static const char *const mode_name[] = { "track", "compare", "copy" };
static const char *const strategy_name[NSTRATEGIES] = { "exact", "adaptive", "adapt+shd", "memcmp",
							 "copy" };

struct sync_side {
	enum strategy s;
	char *mem, *device;
	size_t pages, ps;
	cohmem_tracker *t;
	cohmem_region *r;
	unsigned long *bm;
};

/* Which pages cycle c writes: n of them, or the sprite's, into list; returns the count. */
typedef size_t (*workload_fn)(unsigned c, size_t pages, size_t *list, double param);

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t uniform(unsigned c, size_t pages, size_t *list, double fraction)
{
	size_t n = (size_t)((double)pages * fraction);
	unsigned seed = c * 2654435761u;

	if (n >= pages) {
		for (size_t i = 0; i < pages; i++)
			list[i] = i;
		return pages;
	}
	for (size_t i = 0; i < (n ? n : 1); i++)
		list[i] = (size_t)rand_r(&seed) % pages;
	return n ? n : 1;
}

/* Eight 16-page blocks (a 64x64 sprite's rows at 4 KiB pages), written every frame. */
static size_t sprite(unsigned c, size_t pages, size_t *list, double unused)
{
	size_t n = 0;

	(void)c;
	(void)unused;
	for (size_t b = 0; b < 8; b++)
		for (size_t i = 0; i < 16 && n < pages; i++)
			list[n++] = (pages / 8 * b + i) % pages;
	return n;
}

static size_t alternating(unsigned c, size_t pages, size_t *list, double period)
{
	return uniform(c, pages, list, (c / (unsigned)period) % 2 ? 1.0 : 0.001);
}

static enum cohmem_backend backend_used = COHMEM_BACKEND_AUTO;

static int side_open(struct sync_side *x, enum strategy s, size_t pages)
{
	unsigned flags = s == ADAPTIVE || s == ADAPTIVE_SHADOW ? COHMEM_REGION_ADAPTIVE : 0;

	*x = (struct sync_side){ .s = s, .pages = pages, .ps = (size_t)sysconf(_SC_PAGESIZE) };
	x->mem = mmap(NULL, pages * x->ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	x->device = malloc(pages * x->ps);
	x->bm = calloc(pages / (8 * sizeof(long)) + 1, sizeof(long));
	if (x->mem == MAP_FAILED || !x->device || !x->bm)
		return -1;
	memset(x->mem, 1, pages * x->ps);
	memset(x->device, 1, pages * x->ps);
	if (s != EXACT && s != ADAPTIVE && s != ADAPTIVE_SHADOW)
		return 0;
	if (cohmem_tracker_new(backend_used, 0, &x->t) ||
	    cohmem_region_add(x->t, x->mem, pages * x->ps, flags, &x->r))
		return -1;
	return s == ADAPTIVE_SHADOW ? cohmem_region_set_shadow(x->r, x->device) : 0;
}

static void side_close(struct sync_side *x)
{
	cohmem_tracker_free(x->t);
	if (x->mem != MAP_FAILED)
		munmap(x->mem, x->pages * x->ps);
	free(x->device);
	free(x->bm);
}

#define LBITS (8 * sizeof(long))

static bool bit(const unsigned long *bm, size_t pg)
{
	return bm[pg / LBITS] >> (pg % LBITS) & 1;
}

/* Bring the device copy up to date. */
static void side_sync(struct sync_side *x)
{
	size_t ps = x->ps;

	switch (x->s) {
	case MEMCMP:
		for (size_t pg = 0; pg < x->pages; pg++)
			if (memcmp(x->mem + pg * ps, x->device + pg * ps, ps))
				memcpy(x->device + pg * ps, x->mem + pg * ps, ps);
		break;
	case COPY:
		memcpy(x->device, x->mem, x->pages * ps);
		break;
	default:	/* copy the reported runs, as a device would, each in one go */
		if (cohmem_region_clean(x->r, 0, x->pages, 0, x->bm, NULL, NULL) <= 0)
			break;
		for (size_t pg = 0; pg < x->pages;) {
			size_t end = pg;

			while (end < x->pages && bit(x->bm, end))
				end++;
			if (end > pg)
				memcpy(x->device + pg * ps, x->mem + pg * ps, (end - pg) * ps);
			pg = end + 1;
			while (pg < x->pages && !bit(x->bm, pg))
				pg += x->bm[pg / LBITS] ? 1 : LBITS - pg % LBITS;
			pg = pg < x->pages ? pg : x->pages;
		}
		memset(x->bm, 0, (x->pages / LBITS + 1) * sizeof(long));
	}
}

/*
 * ms[s] for cycles [warm, cycles) of the workload under every strategy s,
 * run side by side: each cycle, every strategy writes its own copy and syncs,
 * in an order that rotates from cycle to cycle, so that the machine's drift
 * and its 25-90 ms hiccups fall on all of them alike. The median cycle, or
 * the total (total: bursts, where the expensive cycles are the point).
 */
static void run(size_t pages, workload_fn fn, double param, unsigned warm, unsigned cycles, bool total,
		double *ms, struct cohmem_region_stats *st)
{
	struct sync_side x[NSTRATEGIES];
	size_t *list = malloc(pages * sizeof(*list));
	double *t[NSTRATEGIES];

	for (int s = 0; s < NSTRATEGIES; s++) {
		t[s] = calloc(cycles, sizeof(double));
		if (!list || !t[s] || side_open(&x[s], (enum strategy)s, pages)) {
			fprintf(stderr, "cohmem-bench: %s: setup failed\n", strategy_name[s]);
			exit(1);
		}
	}
	for (unsigned c = 0; c < cycles; c++) {
		size_t n = fn(c, pages, list, param);

		for (int k = 0; k < NSTRATEGIES; k++) {
			struct sync_side *side = &x[(c + (unsigned)k) % NSTRATEGIES];
			double t0 = now_ms();

			for (size_t i = 0; i < n; i++)
				((volatile char *)side->mem)[list[i] * side->ps + c % side->ps] = (char)(c + 2);
			side_sync(side);
			t[side->s][c] = now_ms() - t0;
		}
	}
	for (int s = 0; s < NSTRATEGIES; s++) {
		double sum = 0;

		if (memcmp(x[s].mem, x[s].device, pages * x[s].ps)) {
			fprintf(stderr, "cohmem-bench: %s: the device copy differs: a lost write\n",
				strategy_name[s]);
			exit(1);
		}
		st[s] = (struct cohmem_region_stats){ 0 };
		if (x[s].r)
			cohmem_region_stats(x[s].r, &st[s], sizeof(st[s]));
		for (unsigned c = warm; c < cycles; c++)
			sum += t[s][c];
		ms[s] = total ? sum : bench_median(t[s] + warm, cycles - warm);
		side_close(&x[s]);
		free(t[s]);
	}
	free(list);
}

/*
 * The fastest fixed strategy the adaptive side could have been: without a
 * shadow it can track or report everything (exact, copy); with one it can
 * also compare (memcmp).
 */
static double best_fixed(const double *ms, bool shadow)
{
	double b = ms[EXACT] < ms[COPY] ? ms[EXACT] : ms[COPY];

	return shadow && ms[MEMCMP] < b ? ms[MEMCMP] : b;
}

static void print_row(const char *label, const double *ms)
{
	printf("%-14s", label);
	for (int s = 0; s < NSTRATEGIES; s++)
		printf(" %10.3f", ms[s]);
}

/* A target line, or (quick runs) the ratio alone. */
static void judge(bool quick, const char *what, double ratio, double limit, bool at_most)
{
	if (quick)
		printf("    %-60s %7.2fx  (not judged: --quick)\n", what, ratio);
	else
		bench_target(what, ratio, limit, at_most);
}

/* Append the adaptive sides' final modes after a workload to the decisions. */
static void decided(char *decisions, size_t len, const char *workload, const struct cohmem_region_stats *st)
{
	size_t used = strlen(decisions);

	snprintf(decisions + used, len - used, "%s%s: %s/%s", used ? ", " : "", workload,
		 mode_name[st[ADAPTIVE].mode], mode_name[st[ADAPTIVE_SHADOW].mode]);
}

int bench_adaptive(size_t pages, bool quick, enum cohmem_backend backend, char *decisions, size_t len)
{
	static const double fractions[] = { 0.001, 0.01, 0.10, 0.50, 1.0 };
	unsigned warm = quick ? 2 : 10, cycles = quick ? 6 : 30, period = quick ? 5 : 50;
	double ms[NSTRATEGIES];
	struct cohmem_region_stats st[NSTRATEGIES];
	char what[80];

	backend_used = backend;
	printf("\n== adaptive: %zu MiB on %s, writer + sync per cycle (ms), same writes for every strategy\n",
	       pages * (size_t)sysconf(_SC_PAGESIZE) >> 20,
	       backend == COHMEM_BACKEND_AUTO ? "AUTO's backend" : cohmem_backend_name(backend));
	printf("%-14s", "workload");
	for (int s = 0; s < NSTRATEGIES; s++)
		printf(" %10s", strategy_name[s]);
	printf("  %s\n", "switches, final mode: adaptive / adapt+shd");
	for (size_t f = 0; f < sizeof(fractions) / sizeof(fractions[0]); f++) {
		char label[32];

		run(pages, uniform, fractions[f], warm, cycles, false, ms, st);
		snprintf(label, sizeof(label), "uniform %.1f%%", fractions[f] * 100);
		decided(decisions, len, label, st);
		print_row(label, ms);
		printf("  %llu %s / %llu %s\n", st[ADAPTIVE].mode_switches, mode_name[st[ADAPTIVE].mode],
		       st[ADAPTIVE_SHADOW].mode_switches, mode_name[st[ADAPTIVE_SHADOW].mode]);
		snprintf(what, sizeof(what), "adaptive / min(exact, copy), %s", label);
		judge(quick, what, ms[ADAPTIVE] / best_fixed(ms, false), 1.1, true);
		snprintf(what, sizeof(what), "adapt+shd / min(exact, memcmp, copy), %s", label);
		judge(quick, what, ms[ADAPTIVE_SHADOW] / best_fixed(ms, true), 1.1, true);
	}

	run(pages, sprite, 0, warm, cycles, false, ms, st);
	decided(decisions, len, "sprite", st);
	print_row("sprite", ms);
	printf("\n");
	judge(quick, "adaptive / min(exact, copy), sprite", ms[ADAPTIVE] / best_fixed(ms, false), 1.1, true);
	judge(quick, "adapt+shd / min(exact, memcmp, copy), sprite", ms[ADAPTIVE_SHADOW] / best_fixed(ms, true), 1.1, true);
	judge(quick, "exact / adaptive, sprite", ms[EXACT] / ms[ADAPTIVE], 3, false);
	judge(quick, "exact / adapt+shd, sprite", ms[EXACT] / ms[ADAPTIVE_SHADOW], 3, false);

	run(pages, alternating, period, 0, 4 * period, true, ms, st);
	decided(decisions, len, "alternating", st);
	print_row("alternating", ms);
	printf("  %llu / %llu (total ms)\n", st[ADAPTIVE].mode_switches, st[ADAPTIVE_SHADOW].mode_switches);
	judge(quick, "adaptive / min(exact, copy), alternating", ms[ADAPTIVE] / best_fixed(ms, false), 1.1,
	      true);
	judge(quick, "adapt+shd / min(exact, memcmp, copy), alternating",
	      ms[ADAPTIVE_SHADOW] / best_fixed(ms, true), 1.1, true);
	return 0;
}
