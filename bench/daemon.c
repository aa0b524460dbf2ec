/* SPDX-License-Identifier: MIT */
/*
 * The cohmemd scenario of cohmem-bench, for every transport and mode the
 * daemon offers (cohmemd --help names --transport and --mode when it has
 * them), each combination a daemon of its own:
 *
 *   scattered  a 1 GiB buffer, mapped and attached by 1, 2 or 4 writer
 *              processes that write 0.1 % or 1 % of its pages between them
 *              per cycle, scattered (no two adjacent); a consumer process
 *              learns what changed with cohmem_buffer_clean() and, for
 *              comparison, by reading the whole buffer again (what a
 *              consumer does without help). Target: re-read / clean >= 4x
 *              at 1 %, >= 20x at 0.1 %. The combinations' daemons run side
 *              by side (as many as memory allows) and take turns cycle by
 *              cycle, so that drift in a shared machine's load hits them
 *              alike.
 *   rewrite    one producer redraws a 320x240 window (32 bpp) on an 8 MiB
 *              buffer (a 1920x1080 screen) every 30 ms, moving it 8 pixels
 *              each time, so that it writes nearly the same pages every
 *              interval; the consumer cleans after each. Reported: the
 *              producer's page faults per interval (getrusage), which a
 *              daemon that compares instead of tracking spares it. Target,
 *              for --mode adaptive: at most 1 fault per 100 pages redrawn
 *              once it has settled (the last 10 of 40 intervals).
 *
 * Per cycle: the consumer's clean (median, ms, and per page written), the
 * writers' page faults (sum) and time (the slowest), the CPU time of
 * cohmemd and its helper process from before the writes to after the clean
 * (its threads' schedstat), and the re-read. With both transports, the
 * ratios io_uring / /dev/fuse of the clean and of the daemon's CPU per page
 * (per WRITE when it tracks: a scattered page is one WRITE).
 *
 * --transport uring needs /sys/module/fuse/parameters/enable_uring set:
 * root sets it for each such daemon's lifetime and puts the old value back
 * after it, and on SIGINT or SIGTERM.
 *
 * Every clean must report at least the pages written before it (each write
 * changes its bytes): one that reports fewer is printed as LOST.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cohmem.h"
#include "cohmem-buffer.h"
#include "daemon-bench.h"
#include "target.h"
#include "proc-cpu.h"

#define SIZE (1UL << 30)
#define DAEMON_CYCLES 5
#define MAX_CYCLES 64
#define MAX_WRITERS 8
#define MAX_FRACTIONS 8
#define MAX_COMBOS 16

/* The rewrite workload: a window on a 1920x1080x32 screen. */
#define FB_SIZE (8UL << 20)
#define FB_WIDTH 1920
#define FB_STRIDE (FB_WIDTH * 4)
#define WIN_W 320
#define WIN_H 240
#define INTERVALS 40
#define SETTLED 10		/* the last intervals, judged */
#define INTERVAL_MS 30

#define URING_PARAM "/sys/module/fuse/parameters/enable_uring"

static size_t ps;
static int lost;	/* cleans that reported fewer pages than were written */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, size_t n)
{
	double t[INTERVALS > MAX_CYCLES ? INTERVALS : MAX_CYCLES];

	memcpy(t, v, n * sizeof(*v));
	qsort(t, n, sizeof(*t), cmp);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void print_load(const char *when)
{
	char line[128] = "?";
	FILE *f = fopen("/proc/loadavg", "r");

	if (f && !fgets(line, sizeof(line), f))
		strcpy(line, "?");
	if (f)
		fclose(f);
	line[strcspn(line, "\n")] = '\0';
	printf("   load average %s: %s\n", when, line);
}

/* ---- enable_uring, for the daemons that want it ------------------------- */

static char uring_old;	/* the value we replaced ('N'), or 0: untouched */

static bool uring_write(const char *v)
{
	int fd = open(URING_PARAM, O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, v, 1) == 1;

	if (fd >= 0)
		close(fd);
	return ok;
}

static char uring_value(void)
{
	char v = 0;
	int fd = open(URING_PARAM, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && read(fd, &v, 1) != 1)
		v = 0;
	if (fd >= 0)
		close(fd);
	return v;
}

/* The kernel's FUSE over io_uring: on now, or root may turn it on. Else why not, in why. */
static bool uring_usable(const char **why)
{
	char v = uring_value();

	*why = !v ? "this kernel has no " URING_PARAM
	       : v != 'Y' && geteuid() ? URING_PARAM " is off, and only root may turn it on" : NULL;
	return !*why;
}

static void uring_restore(void)
{
	if (uring_old && uring_write(uring_old == 'Y' ? "1" : "0"))
		uring_old = 0;
}

static void uring_on_signal(int sig)
{
	uring_restore();	/* open, write, close: async-signal-safe */
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool uring_enable(void)
{
	char v = uring_value();

	if (v == 'Y')
		return true;
	if (!uring_write("1"))
		return false;
	uring_old = v;
	signal(SIGINT, uring_on_signal);
	signal(SIGTERM, uring_on_signal);
	return true;
}

/* ---- combinations -------------------------------------------------------- */

struct combo {
	const char *transport, *mode;	/* NULL: the daemon has no such option */
	bool durable, failed;
	char said[160];	/* the daemon's first line naming its transport or mode */
};

static const char *combo_name(const struct combo *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s%s", c->transport ? c->transport : "-", c->mode ? c->mode : "-",
		 c->durable ? "+durable" : "");
	return buf;
}

static void failed(struct combo *c, const char *what, int err)
{
	char name[64];

	printf("%-26s %s: FAILED (%s)\n", combo_name(c, name, sizeof(name)), what, strerror(-err));
	c->failed = true;
}

/* Which of "--transport" and "--mode" cohmemd --help names. */
static int daemon_offers(const char *cohmemd, bool *transport, bool *mode)
{
	char cmd[PATH_MAX + 32], line[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "'%s' --help 2>&1", cohmemd);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	*transport = *mode = false;
	while (fgets(line, sizeof(line), f)) {
		*transport |= strstr(line, "--transport") != NULL;
		*mode |= strstr(line, "--mode") != NULL;
	}
	pclose(f);
	return 0;
}

/* ---- a daemon and its mount ---------------------------------------------- */

struct mount {
	char dir[64], mnt[96], state[96], log[96];
	pid_t daemon;
};

/* What the daemon logged about its transport or mode, into c->said (once). */
static void mount_said(const struct mount *m, struct combo *c)
{
	char line[512];
	FILE *f = c->said[0] ? NULL : fopen(m->log, "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (strstr(line, "transport") || strstr(line, "uring") || strstr(line, " mode")) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(c->said, sizeof(c->said), "%.*s", (int)sizeof(c->said) - 1, line);
			break;
		}
	}
	if (f)
		fclose(f);
}

static void mount_tail(const struct mount *m)
{
	char line[512];
	FILE *f = fopen(m->log, "r");

	while (f && fgets(line, sizeof(line), f))
		fprintf(stderr, "    cohmemd: %s", line);
	if (f)
		fclose(f);
}

/*
 * In a child just forked: close every descriptor from 3 up but keep_a and
 * keep_b (-1: none). Another run's pipe kept open in a child would keep
 * that run's writers from seeing their end, and a daemon holding another
 * mount's files could hold that mount.
 */
static void close_others(int keep_a, int keep_b)
{
	int lo = keep_a < keep_b ? keep_a : keep_b, hi = keep_a < keep_b ? keep_b : keep_a;
	unsigned from = 3;

	for (int i = 0; i < 2; i++) {
		int keep = i ? hi : lo;

		if (keep < 3)
			continue;
		if (from < (unsigned)keep)
			close_range(from, (unsigned)keep - 1, 0);
		from = (unsigned)keep + 1;
	}
	close_range(from, ~0U, 0);
}

static int mount_start(struct mount *m, const char *cohmemd, const struct combo *c)
{
	const char *argv[12];
	struct stat top, st;
	int n = 0;

	snprintf(m->dir, sizeof(m->dir), "/var/tmp/cohmem-bench-XXXXXX");	/* a disk, not tmpfs */
	if (!mkdtemp(m->dir))
		return -errno;
	snprintf(m->mnt, sizeof(m->mnt), "%s/mnt", m->dir);
	snprintf(m->state, sizeof(m->state), "%s/state", m->dir);
	snprintf(m->log, sizeof(m->log), "%s/cohmemd.log", m->dir);
	mkdir(m->mnt, 0755);
	argv[n++] = cohmemd;
	argv[n++] = "--mount";
	argv[n++] = m->mnt;
	argv[n++] = "--state-dir";
	argv[n++] = m->state;
	if (c->transport) {
		argv[n++] = "--transport";
		argv[n++] = c->transport;
	}
	if (c->mode) {
		argv[n++] = "--mode";
		argv[n++] = c->mode;
	}
	if (c->durable)
		argv[n++] = "--durable";
	argv[n] = NULL;
	m->daemon = fork();
	if (m->daemon < 0)
		return -errno;
	if (m->daemon == 0) {
		int log = open(m->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(log, 1);
		dup2(log, 2);
		close_others(-1, -1);
		execv(cohmemd, (char *const *)argv);
		_exit(127);
	}
	stat(m->dir, &top);
	for (int i = 0; i < 6000; i++) {	/* a minute: a loaded machine */
		if (!stat(m->mnt, &st) && st.st_dev != top.st_dev)
			return 0;
		if (waitpid(m->daemon, NULL, WNOHANG) == m->daemon) {
			m->daemon = 0;
			return -ECHILD;
		}
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static void mount_stop(struct mount *m)
{
	char cmd[128];

	if (m->daemon > 0) {
		kill(m->daemon, SIGTERM);
		waitpid(m->daemon, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", m->dir);
	if (system(cmd))
		fprintf(stderr, "cohmem-bench: could not remove %s\n", m->dir);
}

/* Run time of pid's threads, in ms (proc-cpu.h). */
static double process_cpu_ms(pid_t pid)
{
	return proc_cpu_seconds(pid) * 1e3;
}

/* cohmemd's CPU time and its children's (the helper process), ms. */
static double daemon_cpu_ms(pid_t daemon)
{
	char path[80];
	double ms = process_cpu_ms(daemon);
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)daemon);
	d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d));) {
		int child;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", (int)daemon, e->d_name);
		f = fopen(path, "r");
		while (f && fscanf(f, "%d", &child) == 1)
			ms += process_cpu_ms(child);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return ms;
}

/* ---- writers ------------------------------------------------------------- */

enum kind { SCATTERED, WINDOW };

struct order {
	unsigned cycle, kind;
	size_t dirty;	/* SCATTERED: pages, between all writers */
};

struct report {
	double took;	/* ms */
	long faults;	/* minor and major, during the writes */
};

/* Page i of cycle c's scattered writes: a bijection of [0, pages) (an odd multiplier, pages a power of 2). */
static size_t cycle_page(unsigned c, size_t i, size_t pages)
{
	return (size_t)((i * 2654435761ULL + c * 40503ULL) % pages);
}

/* Every write of cycle c changes its bytes (to c % 255 + 1: never 0, never the last 254 cycles'). */
static char cycle_byte(unsigned c)
{
	return (char)(c % 255 + 1);
}

/* Where the window is in interval c: sliding back and forth, and up and down a little. */
static void window_at(unsigned c, size_t *x, size_t *y)
{
	size_t span = FB_WIDTH - WIN_W, t = (size_t)c * 8 % (2 * span);

	*x = t < span ? t : 2 * span - t;
	*y = 120 + c % 40;
}

/* Pages the window covers in interval c. */
static size_t window_pages(unsigned c)
{
	size_t x, y, n = 0, last = SIZE_MAX;

	window_at(c, &x, &y);
	for (size_t row = y; row < y + WIN_H; row++) {
		size_t from = (row * FB_STRIDE + x * 4) / ps, to = (row * FB_STRIDE + (x + WIN_W) * 4 - 1) / ps;

		for (size_t pg = from; pg <= to; pg++)
			n += pg != last, last = pg;
	}
	return n;
}

static void writes(char *m, size_t size, const struct order *o, unsigned index, unsigned n)
{
	char v = cycle_byte(o->cycle);

	if (o->kind == SCATTERED) {
		for (size_t i = index; i < o->dirty; i += n)
			m[cycle_page(o->cycle, i, size / ps) * ps + index] = v;
	} else {
		size_t x, y;

		window_at(o->cycle, &x, &y);
		for (size_t row = y; row < y + WIN_H; row++)
			memset(m + row * FB_STRIDE + x * 4, v, WIN_W * 4);
	}
}

struct writer {
	pid_t pid;
	int cmd, done;	/* pipes: parent -> writer, writer -> parent */
};

/* A writer process: map and attach the buffer, then write its share on every order. */
static void writer_loop(const char *path, size_t size, unsigned index, unsigned n, int cmd, int done)
{
	int fd = open(path, O_RDWR);
	char *m = fd < 0 ? MAP_FAILED : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct order o;

	if (m == MAP_FAILED || cohmem_buffer_attach(fd, m, size, 0))
		_exit(1);
	while (read(cmd, &o, sizeof(o)) == sizeof(o)) {
		struct rusage r0, r1;
		struct report rep;
		double t0;

		getrusage(RUSAGE_SELF, &r0);
		t0 = now_ms();
		writes(m, size, &o, index, n);
		rep.took = now_ms() - t0;
		getrusage(RUSAGE_SELF, &r1);
		rep.faults = (r1.ru_minflt - r0.ru_minflt) + (r1.ru_majflt - r0.ru_majflt);
		if (write(done, &rep, sizeof(rep)) != sizeof(rep))
			_exit(1);
	}
	_exit(0);
}

static int writer_start(struct writer *w, const char *path, size_t size, unsigned index, unsigned n)
{
	int cmd[2], done[2];

	if (pipe(cmd))
		return -errno;
	if (pipe(done)) {
		int err = -errno;

		close(cmd[0]);
		close(cmd[1]);
		return err;
	}
	w->pid = fork();
	if (w->pid == 0) {
		close_others(cmd[0], done[1]);
		writer_loop(path, size, index, n, cmd[0], done[1]);
	}
	close(cmd[0]);
	close(done[1]);
	w->cmd = cmd[1];
	w->done = done[0];
	if (w->pid < 0) {
		close(w->cmd);
		close(w->done);
		return -EAGAIN;
	}
	return 0;
}

/* ---- one daemon, one buffer, its writers --------------------------------- */

struct run {
	struct mount m;
	int fd;
	size_t size;
	unsigned long *bm;
	struct writer w[MAX_WRITERS];
	unsigned nw, cycle;
};

struct sample {
	double clean, writes, daemon, reread;	/* ms */
	double faults;
};

static void run_stop(struct run *r)
{
	while (r->nw--) {
		close(r->w[r->nw].cmd);
		close(r->w[r->nw].done);
		waitpid(r->w[r->nw].pid, NULL, 0);
	}
	if (r->fd >= 0)
		close(r->fd);
	free(r->bm);
	mount_stop(&r->m);
}

static int reread(int fd, size_t size, double *ms)
{
	static char buf[1 << 20];
	double t0 = now_ms();

	for (off_t off = 0; off < (off_t)size; off += sizeof(buf))
		if (pread(fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf))
			return -EIO;
	*ms = now_ms() - t0;
	return 0;
}

static int run_start(struct run *r, const char *cohmemd, struct combo *c, size_t size, unsigned writers)
{
	char path[128];
	double ignored;
	int err;

	*r = (struct run){ .fd = -1, .size = size };
	if (c->transport && !strcmp(c->transport, "uring") && !uring_enable())
		return -EPERM;
	err = mount_start(&r->m, cohmemd, c);
	if (err) {
		mount_tail(&r->m);
		mount_stop(&r->m);
		return err;
	}
	mount_said(&r->m, c);
	snprintf(path, sizeof(path), "%s/buffer", r->m.mnt);
	r->fd = open(path, O_RDWR | O_CREAT, 0644);
	r->bm = calloc(size / ps / (8 * sizeof(long)) + 1, sizeof(long));
	err = r->fd < 0 || ftruncate(r->fd, (off_t)size) ? -errno : !r->bm ? -ENOMEM : 0;
	if (!err)
		err = reread(r->fd, size, &ignored);	/* into the page cache */
	while (!err && r->nw < writers) {
		err = writer_start(&r->w[r->nw], path, size, r->nw, writers);
		r->nw += !err;
	}
	if (err)
		run_stop(r);
	return err;
}

/* One cycle: the writers write, the consumer cleans; expected: pages that must be reported. */
static int run_cycle(struct run *r, unsigned kind, size_t dirty, size_t expected, struct sample *s)
{
	struct order o = { r->cycle++, kind, dirty };
	double d0 = daemon_cpu_ms(r->m.daemon), t0;
	long n;

	s->writes = s->faults = 0;
	for (unsigned i = 0; i < r->nw; i++)
		if (write(r->w[i].cmd, &o, sizeof(o)) != sizeof(o))
			return -EPIPE;
	for (unsigned i = 0; i < r->nw; i++) {
		struct report rep;

		if (read(r->w[i].done, &rep, sizeof(rep)) != sizeof(rep))
			return -EPIPE;
		s->writes = rep.took > s->writes ? rep.took : s->writes;
		s->faults += (double)rep.faults;
	}
	t0 = now_ms();
	n = cohmem_buffer_clean(r->fd, 0, r->size / ps, 0, r->bm, NULL, NULL);
	s->clean = now_ms() - t0;
	s->daemon = daemon_cpu_ms(r->m.daemon) - d0;
	if (n < 0)
		return (int)n;
	if ((size_t)n < expected) {
		printf("    LOST: a clean reported %ld pages, %zu were written before it\n", n, expected);
		lost++;
	}
	return 0;
}

/* ---- the scattered workload ----------------------------------------------- */

struct result {
	bool ok;
	size_t pages;
	double clean, writes, daemon, reread, faults;	/* medians; daemon: mean */
};

/* Targets: re-read / clean at 1 % and 0.1 % (0: none at this fraction). */
static double target_at(double fraction)
{
	return fraction > 0.0099 && fraction < 0.0101 ? 4 : fraction > 0.00099 && fraction < 0.00101 ? 20 : 0;
}

static void row(const struct combo *c, unsigned writers, double fraction, const struct result *x)
{
	char pct[16], mode[32], target[32] = "";
	double limit = target_at(fraction), ratio = x->reread / x->clean;

	snprintf(pct, sizeof(pct), "%.1f%%", fraction * 100);
	snprintf(mode, sizeof(mode), "%s%s", c->mode ? c->mode : "-", c->durable ? "+durable" : "");
	if (limit)
		snprintf(target, sizeof(target), ">=%gx %s", limit,
			 bench_target_judge(ratio, limit, false) ? "held" : "MISSED");
	printf("%-9s %-16s %2u %5s %6zu %9.2f %7.1f %7.0f %8.2f %8.2f %8.1f %7.1fx  %s\n",
	       c->transport ? c->transport : "-", mode, writers, pct,
	       x->pages, x->clean, x->clean * 1e3 / (double)x->pages, x->faults, x->writes, x->daemon, x->reread,
	       ratio, target);
}

/*
 * Combinations [c0, c1) at once, each with its buffer and writers, taking
 * turns cycle by cycle (who goes first rotates), so that the load of a
 * shared machine, which drifts, hits every combination alike: their ratios
 * are what counts. A combination that fails is marked so and stopped.
 */
static void scattered(const struct daemon_bench *o, struct combo *combos, size_t c0, size_t c1, unsigned writers,
		      const double *fractions, size_t nf, unsigned cycles, struct result (*out)[MAX_FRACTIONS])
{
	static double clean[MAX_COMBOS][MAX_CYCLES], wr[MAX_COMBOS][MAX_CYCLES], rr[MAX_COMBOS][MAX_CYCLES],
		faults[MAX_COMBOS][MAX_CYCLES], daemon[MAX_COMBOS];
	size_t pages = SIZE / ps, n = c1 - c0;
	struct run r[MAX_COMBOS];
	bool up[MAX_COMBOS] = { false };
	int err;

	for (size_t c = c0; c < c1; c++) {
		if (combos[c].failed)
			continue;
		err = run_start(&r[c], o->cohmemd, &combos[c], SIZE, writers);
		if (err)
			failed(&combos[c], "scattered", err);
		up[c] = !err;
	}
	for (size_t f = 0; f < nf; f++) {
		size_t dirty = (size_t)((double)pages * fractions[f]);

		dirty = dirty ? dirty : 1;
		memset(daemon, 0, sizeof(daemon));
		for (unsigned k = 0; k < cycles; k++) {
			for (size_t i = 0; i < n; i++) {
				size_t c = c0 + (k + f + i) % n;
				struct sample s;

				if (!up[c])
					continue;
				err = run_cycle(&r[c], SCATTERED, dirty, dirty, &s);
				if (!err)
					err = reread(r[c].fd, SIZE, &rr[c][k]);
				if (err) {
					failed(&combos[c], "scattered", err);
					run_stop(&r[c]);
					up[c] = false;
					continue;
				}
				clean[c][k] = s.clean, wr[c][k] = s.writes, faults[c][k] = s.faults;
				daemon[c] += s.daemon;
			}
		}
		for (size_t c = c0; c < c1; c++)
			if (up[c])
				out[c][f] = (struct result){ true, dirty, median(clean[c], cycles), median(wr[c], cycles),
							    daemon[c] / cycles, median(rr[c], cycles),
							    median(faults[c], cycles) };
	}
	for (size_t c = c0; c < c1; c++)
		if (up[c])
			run_stop(&r[c]);
	uring_restore();
}

/* How many 1 GiB buffers may be up at once: each wants its page cache, and its state file's. */
static size_t batch_size(void)
{
	unsigned long long kib = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	kib /= 2;	/* the others on this machine need theirs */
	return kib / (2 * (SIZE >> 10)) ? (size_t)(kib / (2 * (SIZE >> 10))) : 1;
}

/* ---- the rewrite workload ------------------------------------------------- */

struct rewrite {
	bool ok;
	double pages, first_faults, faults, clean, writes, daemon;	/* medians of the settled intervals */
};

static int rewrite(const struct daemon_bench *o, struct combo *c, struct rewrite *out)
{
	double clean[SETTLED], wr[SETTLED], faults[SETTLED], daemon[SETTLED], pages[SETTLED], start;
	struct run r;
	int err = run_start(&r, o->cohmemd, c, FB_SIZE, 1);

	if (err)
		return err;
	start = now_ms();
	for (unsigned k = 0; !err && k < INTERVALS; k++) {
		double next = start + (double)k * INTERVAL_MS, wait = next - now_ms();
		size_t expected = window_pages(r.cycle);
		struct sample s;

		if (wait > 0)
			usleep((useconds_t)(wait * 1e3));
		err = run_cycle(&r, WINDOW, 0, expected, &s);
		if (k == 0)
			out->first_faults = s.faults;
		if (k >= INTERVALS - SETTLED) {
			unsigned i = k - (INTERVALS - SETTLED);

			clean[i] = s.clean, wr[i] = s.writes, faults[i] = s.faults, daemon[i] = s.daemon;
			pages[i] = (double)expected;
		}
	}
	run_stop(&r);
	if (err)
		return err;
	out->ok = true;
	out->pages = median(pages, SETTLED);
	out->faults = median(faults, SETTLED);
	out->clean = median(clean, SETTLED);
	out->writes = median(wr, SETTLED);
	out->daemon = median(daemon, SETTLED);
	return 0;
}

/* ---- the report ----------------------------------------------------------- */

/* The combination like c with the other transport, if measured; else -1. */
static int partner(const struct combo *combos, size_t n, size_t c, const char *transport)
{
	for (size_t k = 0; k < n; k++)
		if (combos[k].transport && !strcmp(combos[k].transport, transport) &&
		    (combos[k].mode == combos[c].mode ||
		     (combos[k].mode && combos[c].mode && !strcmp(combos[k].mode, combos[c].mode))) &&
		    combos[k].durable == combos[c].durable)
			return (int)k;
	return -1;
}

static void uring_ratios(const struct combo *combos, size_t nc, const unsigned *writers, size_t nw,
			 const double *fractions, size_t nf, struct result (*res)[MAX_COMBOS][MAX_FRACTIONS])
{
	bool header = false;

	for (size_t c = 0; c < nc; c++) {
		int d = combos[c].transport && !strcmp(combos[c].transport, "uring")
			? partner(combos, nc, c, "dev") : -1;
		char name[64];

		for (size_t k = 0; d >= 0 && k < nw; k++) {
			for (size_t f = 0; f < nf; f++) {
				const struct result *u = &res[k][c][f], *v = &res[k][d][f];

				if (!u->ok || !v->ok)
					continue;
				if (!header)
					printf("\nio_uring / /dev/fuse, same run (below 1: io_uring cheaper); per WRITE: the\n"
					       "daemon's CPU per page written (when it tracks, each scattered page is a WRITE)\n"
					       "%-16s %7s %6s %14s %16s\n", "mode", "writers", "dirty", "clean (wall)",
					       "per WRITE (CPU)");
				header = true;
				combo_name(&combos[c], name, sizeof(name));
				printf("%-16s %7u %5.1f%% %13.2fx %15.2fx\n", strchr(name, '/') + 1, writers[k],
				       fractions[f] * 100, u->clean / v->clean,
				       v->daemon > 0 ? u->daemon / v->daemon : 0.0);
			}
		}
	}
}

/* Per target: in how many rows it held, the best and the worst ratio. */
static void target_summary(const struct combo *combos, size_t nc, const unsigned *writers, size_t nw,
			   const double *fractions, size_t nf, struct result (*res)[MAX_COMBOS][MAX_FRACTIONS])
{
	for (size_t f = 0; f < nf; f++) {
		double limit = target_at(fractions[f]), best = 0, worst = 1e300;
		unsigned held = 0, rows = 0;
		char name[64] = "", wname[64] = "";

		for (size_t k = 0; limit && k < nw; k++) {
			for (size_t c = 0; c < nc; c++) {
				const struct result *x = &res[k][c][f];
				double ratio = x->ok ? x->reread / x->clean : 0;

				if (!x->ok)
					continue;
				rows++;
				held += ratio >= limit;
				if (ratio > best) {
					best = ratio;
					combo_name(&combos[c], name, sizeof(name));
					snprintf(name + strlen(name), sizeof(name) - strlen(name), ", %u wr.", writers[k]);
				}
				if (ratio < worst) {
					worst = ratio;
					combo_name(&combos[c], wname, sizeof(wname));
					snprintf(wname + strlen(wname), sizeof(wname) - strlen(wname), ", %u wr.", writers[k]);
				}
			}
		}
		if (rows)
			printf("target re-read / clean >= %gx at %.1f%%: held in %u of %u rows; best %.2fx (%s), "
			       "worst %.2fx (%s)\n", limit, fractions[f] * 100, held, rows, best, name, worst, wname);
	}
}

/* ---- the scenario -------------------------------------------------------- */

static bool offered(const char *v, const char *const *names)
{
	for (; *names; names++)
		if (!strcmp(v, *names))
			return true;
	return false;
}

/* Transports and modes to run, into combos; the count, or -1 after saying why. */
static int combinations(const struct daemon_bench *o, struct combo *combos)
{
	static const char *const transports[] = { "dev", "uring", "auto", NULL };
	static const char *const modes[] = { "track", "compare", "adaptive", NULL };
	const char *ts[3] = { NULL }, *ms[3] = { NULL }, *why;
	size_t nt = 1, nm = 1, n = 0;
	bool has_t = false, has_m = false;

	if (daemon_offers(o->cohmemd, &has_t, &has_m)) {
		fprintf(stderr, "cohmem-bench: cannot run %s --help\n", o->cohmemd);
		return -1;
	}
	if ((o->transport && (!has_t || !offered(o->transport, transports))) ||
	    (o->mode && (!has_m || !offered(o->mode, modes)))) {
		fprintf(stderr, "cohmem-bench: this cohmemd has no %s %s\n", o->transport ? "--transport" : "--mode",
			o->transport ? o->transport : o->mode);
		return -1;
	}
	if (o->transport) {
		ts[0] = o->transport;
	} else if (has_t) {
		ts[0] = "dev";
		if (uring_usable(&why))
			ts[nt++] = "uring";
		else
			printf("   no --transport uring: %s\n", why);
	}
	if (o->mode) {
		ms[0] = o->mode;
	} else if (has_m) {
		for (nm = 0; modes[nm]; nm++)
			ms[nm] = modes[nm];
	}
	if (!has_t)
		printf("   this cohmemd has no --transport: /dev/fuse only (\"-\")\n");
	if (!has_m)
		printf("   this cohmemd has no --mode: it tracks every buffer (\"-\")\n");
	/* The transports of a mode side by side: a batch (bench_daemon()) keeps them together. */
	for (int durable = 0; durable <= o->durable; durable++)
		for (size_t m = 0; m < nm; m++)
			for (size_t t = 0; t < nt && n < MAX_COMBOS; t++)
				combos[n++] = (struct combo){ .transport = ts[t], .mode = ms[m], .durable = durable };
	return (int)n;
}

int bench_daemon(const struct daemon_bench *o)
{
	static const double default_fractions[] = { 0.001, 0.01 };
	static const unsigned default_writers[] = { 1, 2, 4 };
	static struct result res[3][MAX_COMBOS][MAX_FRACTIONS];
	const double *fractions = o->fractions ? o->fractions : default_fractions;
	size_t nf = o->fractions ? o->nfractions : 2, nw = o->writers ? 1 : 3, measured = 0;
	const unsigned *writers = o->writers ? &o->writers : default_writers;
	unsigned cycles = o->cycles ? o->cycles : DAEMON_CYCLES;
	struct combo combos[MAX_COMBOS];
	struct rewrite rw[MAX_COMBOS] = { 0 };
	size_t batch;
	int nc;

	ps = (size_t)sysconf(_SC_PAGESIZE);
	signal(SIGPIPE, SIG_IGN);	/* a writer that died is an error, not the end */
	if (nf > MAX_FRACTIONS || cycles > MAX_CYCLES || (o->writers && o->writers > MAX_WRITERS)) {
		fprintf(stderr, "cohmem-bench: at most %d fractions, %d cycles, %d writers\n", MAX_FRACTIONS,
			MAX_CYCLES, MAX_WRITERS);
		return 1;
	}
	printf("\n== cohmemd, scattered: a 1 GiB buffer, writer processes, one consumer; per cycle (%u a row):\n"
	       "   clean: the consumer's clean (median ms), us/pg: per page written; faults: the writers'\n"
	       "   (sum, median); writes: the slowest writer's ms (median); daemon: CPU ms of cohmemd and its\n"
	       "   helper per cycle (mean); re-read: reading the whole buffer (median ms)\n", cycles);
	print_load("at the start");
	nc = combinations(o, combos);
	if (nc < 0)
		return 1;
	batch = batch_size();
	if (batch < (size_t)nc) {
		size_t batches = ((size_t)nc + batch - 1) / batch, even = ((size_t)nc + batches - 1) / batches;

		/* As even as they go, and a mode's two transports in the same batch. */
		even += even % 2 && even < batch;
		printf("   memory for %zu 1 GiB buffers at once: the combinations take turns by %zu\n", batch, even);
		batch = even;
	}
	printf("%-9s %-16s %2s %5s %6s %9s %7s %7s %8s %8s %8s %8s  %s\n", "transport", "mode", "wr", "dirty",
	       "pages", "clean ms", "us/pg", "faults", "writes", "daemon", "re-read", "rr/clean", "target");
	for (size_t k = 0; k < nw; k++) {
		for (size_t c0 = 0; c0 < (size_t)nc; c0 += batch) {
			size_t c1 = c0 + batch < (size_t)nc ? c0 + batch : (size_t)nc;

			scattered(o, combos, c0, c1, writers[k], fractions, nf, cycles, res[k]);
		}
		for (int c = 0; c < nc; c++)
			for (size_t f = 0; f < nf; f++)
				if (res[k][c][f].ok)
					row(&combos[c], writers[k], fractions[f], &res[k][c][f]), measured++;
	}
	for (int c = 0; c < nc; c++) {
		char name[64];

		if (combos[c].said[0])
			printf("   %s: cohmemd said: %s\n", combo_name(&combos[c], name, sizeof(name)), combos[c].said);
	}
	target_summary(combos, (size_t)nc, writers, nw, fractions, nf, res);
	uring_ratios(combos, (size_t)nc, writers, nw, fractions, nf, res);

	printf("\n== cohmemd, rewrite: one producer redraws a %ux%u window (32 bpp) on an 8 MiB buffer\n"
	       "   (a 1920x1080 screen) every %u ms, 8 pixels further each time; the consumer cleans after\n"
	       "   each. Medians of the last %u of %u intervals: pages redrawn, the producer's faults\n"
	       "   (first: in the first interval), clean ms, the producer's ms, the daemon's CPU ms\n",
	       WIN_W, WIN_H, INTERVAL_MS, SETTLED, INTERVALS);
	printf("%-26s %6s %6s %7s %9s %8s %8s\n", "transport/mode", "pages", "first", "faults", "clean ms",
	       "writes", "daemon");
	for (int c = 0; c < nc; c++) {
		char name[64], what[160];
		int err;

		if (combos[c].failed)
			continue;
		err = rewrite(o, &combos[c], &rw[c]);
		uring_restore();
		if (err) {
			failed(&combos[c], "rewrite", err);
			continue;
		}
		measured++;
		combo_name(&combos[c], name, sizeof(name));
		printf("%-26s %6.0f %6.0f %7.0f %9.2f %8.2f %8.2f\n", name, rw[c].pages, rw[c].first_faults,
		       rw[c].faults, rw[c].clean, rw[c].writes, rw[c].daemon);
		if (combos[c].mode && !strcmp(combos[c].mode, "adaptive")) {
			snprintf(what, sizeof(what), "rewrite, %s: producer faults per page redrawn", name);
			bench_target(what, rw[c].faults / rw[c].pages, 0.01, true);
		}
	}
	for (int c = 0; c < nc; c++) {
		int d = combos[c].transport && !strcmp(combos[c].transport, "uring") ? partner(combos, (size_t)nc,
											      (size_t)c, "dev")
										     : -1;
		char name[64];

		if (d < 0 || !rw[c].ok || !rw[d].ok)
			continue;
		combo_name(&combos[c], name, sizeof(name));
		printf("   rewrite, io_uring / /dev/fuse, %s: clean %.2fx, daemon CPU %.2fx\n", strchr(name, '/') + 1,
		       rw[c].clean / rw[d].clean, rw[d].daemon > 0 ? rw[c].daemon / rw[d].daemon : 0.0);
	}
	if (lost)
		printf("\nLOST: %d cleans reported fewer pages than were written before them\n", lost);
	print_load("at the end");
	return measured ? 0 : 1;
}
