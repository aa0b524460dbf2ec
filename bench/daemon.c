/* SPDX-License-Identifier: MIT */
/*
 * The cohmemd scenario of cohmem-bench: a 1 GiB buffer on a cohmemd mount,
 * mapped and attached by 1, 2 or 4 writer processes that dirty 0.1 %, 1 % or
 * 10 % of its pages per cycle between them; a consumer process learns what
 * changed by
 *   clean      cohmem_buffer_clean(): the daemon has the kernel write the
 *              dirty pages back, stores them, and reports them
 *   durable    the same with cohmemd --durable (the state file is synced
 *              before the clean returns)
 *   re-read    reading the whole buffer (what a consumer does without help)
 * Reported: the consumer's time per cycle (median), the writers' (median of
 * the slowest writer), and ratios, with the target of at most half the
 * cost of re-reading at 1 %.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cohmem.h"
#include "cohmem-buffer.h"
#include "daemon-bench.h"
#include "target.h"

#define SIZE (1UL << 30)
#define CYCLES 5
#define MAX_WRITERS 4

static size_t ps;

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

struct mount {
	char dir[64], mnt[96], state[96];
	pid_t daemon;
};

static int mount_start(struct mount *m, const char *cohmemd, const char *extra)
{
	const char *more = getenv("COHMEM_BENCH_DAEMON_ARG");	/* one more, say --transport=uring */
	struct stat top, st;

	snprintf(m->dir, sizeof(m->dir), "/var/tmp/cohmem-bench-XXXXXX");	/* a disk, not tmpfs */
	if (!mkdtemp(m->dir))
		return -errno;
	snprintf(m->mnt, sizeof(m->mnt), "%s/mnt", m->dir);
	snprintf(m->state, sizeof(m->state), "%s/state", m->dir);
	mkdir(m->mnt, 0755);
	m->daemon = fork();
	if (m->daemon == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);
		execl(cohmemd, cohmemd, "--mount", m->mnt, "--state-dir", m->state, extra ? extra : more,
		      extra ? more : NULL, (char *)NULL);
		_exit(127);
	}
	stat(m->dir, &top);
	for (int i = 0; i < 500; i++) {
		if (!stat(m->mnt, &st) && st.st_dev != top.st_dev)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static void mount_stop(struct mount *m)
{
	char cmd[128];

	kill(m->daemon, SIGTERM);
	waitpid(m->daemon, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", m->dir);
	if (system(cmd))
		fprintf(stderr, "cohmem-bench: could not remove %s\n", m->dir);
}

/* Pages written in cycle c at this fraction: the same for every mode. */
static size_t cycle_page(unsigned c, size_t i, size_t pages)
{
	return (size_t)((i * 2654435761ULL + c * 40503ULL) % pages);
}

struct writer {
	pid_t pid;
	int cmd, done;	/* pipes: parent -> writer, writer -> parent */
};

/* A writer process: map and attach the buffer, then dirty its share on every command. */
static void writer_loop(const char *path, unsigned index, unsigned nwriters, int cmd, int done)
{
	int fd = open(path, O_RDWR);
	char *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	size_t pages = SIZE / ps;
	struct {
		unsigned cycle;
		size_t dirty;
	} order;

	if (m == MAP_FAILED || cohmem_buffer_attach(fd, m, SIZE, 0))
		_exit(1);
	while (read(cmd, &order, sizeof(order)) == sizeof(order)) {
		double t0 = now_ms(), took;

		for (size_t i = index; i < order.dirty; i += nwriters)
			m[cycle_page(order.cycle, i, pages) * ps + index] = (char)order.cycle;
		took = now_ms() - t0;
		if (write(done, &took, sizeof(took)) != sizeof(took))
			_exit(1);
	}
	_exit(0);
}

static int writer_start(struct writer *w, const char *path, unsigned index, unsigned n)
{
	int cmd[2], done[2];

	if (pipe(cmd))
		return -1;
	if (pipe(done)) {
		close(cmd[0]);
		close(cmd[1]);
		return -1;
	}
	w->pid = fork();
	if (w->pid == 0) {
		close(cmd[1]);
		close(done[0]);
		writer_loop(path, index, n, cmd[0], done[1]);
	}
	close(cmd[0]);
	close(done[1]);
	w->cmd = cmd[1];
	w->done = done[0];
	if (w->pid < 0) {
		close(w->cmd);
		close(w->done);
		return -1;
	}
	return 0;
}

struct cycle_cost {
	double clean, writers;	/* medians, ms: the consumer's clean; the slowest writer's writes */
};

static double median(double *t, size_t n)
{
	qsort(t, n, sizeof(*t), cmp);
	return t[n / 2];
}

/* Medians over CYCLES cycles at `dirty` pages per cycle; clean < 0 on failure. */
static struct cycle_cost measure_clean(int fd, struct writer *w, unsigned n, size_t dirty, unsigned *cycle)
{
	size_t pages = SIZE / ps;
	unsigned long *bm = calloc(pages / (8 * sizeof(long)) + 1, sizeof(long));
	double t[CYCLES], tw[CYCLES];
	struct cycle_cost cost = { -1, -1 };

	for (unsigned c = 0; bm && c < CYCLES; c++, (*cycle)++) {
		struct {
			unsigned cycle;
			size_t dirty;
		} order = { *cycle, dirty };
		double t0, took;

		tw[c] = 0;
		for (unsigned i = 0; i < n; i++)
			if (write(w[i].cmd, &order, sizeof(order)) != sizeof(order))
				goto out;
		for (unsigned i = 0; i < n; i++) {
			if (read(w[i].done, &took, sizeof(took)) != sizeof(took))
				goto out;
			tw[c] = took > tw[c] ? took : tw[c];
		}
		t0 = now_ms();
		if (cohmem_buffer_clean(fd, 0, pages, 0, bm, NULL, NULL) < 0)
			goto out;
		t[c] = now_ms() - t0;
	}
	if (bm) {
		cost.clean = median(t, CYCLES);
		cost.writers = median(tw, CYCLES);
	}
out:
	free(bm);
	return cost;
}

static double measure_reread(int fd)
{
	char *buf = malloc(1 << 20);
	double t[CYCLES];

	for (unsigned c = 0; buf && c < CYCLES; c++) {
		double t0 = now_ms();

		for (off_t off = 0; off < (off_t)SIZE; off += 1 << 20)
			if (pread(fd, buf, 1 << 20, off) != 1 << 20) {
				free(buf);
				return -1;
			}
		t[c] = now_ms() - t0;
	}
	if (!buf)
		return -1;
	free(buf);
	qsort(t, CYCLES, sizeof(t[0]), cmp);
	return t[CYCLES / 2];
}

/* One daemon configuration, one writer count: costs per fraction into cost[]. */
static int run(const char *cohmemd, const char *extra, unsigned n, const double *fractions, size_t nf,
	       struct cycle_cost *cost, double *reread)
{
	struct writer w[MAX_WRITERS];
	struct mount m;
	char path[128];
	unsigned cycle = 0, started = 0;
	double rr;
	int fd, err = mount_start(&m, cohmemd, extra);

	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/buffer", m.mnt);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	err = fd < 0 || ftruncate(fd, SIZE) ? -errno : 0;
	rr = err ? -1 : measure_reread(fd);	/* also brings the buffer into the page cache */
	if (reread)
		*reread = rr;
	while (!err && rr >= 0 && started < n)
		err = writer_start(&w[started], path, started, n) ? -errno : (started++, 0);
	for (size_t f = 0; !err && f < nf; f++) {
		cost[f] = measure_clean(fd, w, n, (size_t)(SIZE / ps * fractions[f]), &cycle);
		err = cost[f].clean < 0 ? -EIO : 0;
	}
	if (!err && rr < 0)
		err = -EIO;
	while (started--) {
		close(w[started].cmd);
		close(w[started].done);
		waitpid(w[started].pid, NULL, 0);
	}
	if (fd >= 0)
		close(fd);
	mount_stop(&m);
	return err;
}

int bench_daemon(const char *cohmemd)
{
	static const double fractions[] = { 0.001, 0.01, 0.10 };
	static const unsigned writers[] = { 1, 2, 4 };
	const size_t nf = sizeof(fractions) / sizeof(fractions[0]);

	ps = (size_t)sysconf(_SC_PAGESIZE);
	signal(SIGPIPE, SIG_IGN);	/* a writer that died is an error, not the end */
	printf("\n== cohmemd: a 1 GiB buffer, writers in their own processes, one consumer;\n"
	       "   median ms per cycle (%d cycles): the consumer's clean, the slowest writer's writes\n",
	       CYCLES);
	printf("%-8s %-6s %10s %10s %10s %10s %10s %13s %12s\n", "writers", "dirty", "clean", "writers",
	       "durable", "writers", "re-read", "re-read/clean", "durable/clean");
	for (size_t k = 0; k < sizeof(writers) / sizeof(writers[0]); k++) {
		struct cycle_cost c[3], dur[3];
		double rr = -1;
		int err = run(cohmemd, NULL, writers[k], fractions, nf, c, &rr);

		if (!err)
			err = run(cohmemd, "--durable", writers[k], fractions, nf, dur, NULL);
		if (err) {
			fprintf(stderr, "cohmem-bench: cohmemd with %u writers: %s\n", writers[k], strerror(-err));
			return 1;
		}
		for (size_t f = 0; f < nf; f++) {
			char pct[16];

			snprintf(pct, sizeof(pct), "%.1f%%", fractions[f] * 100);
			printf("%-8u %-6s %10.3f %10.3f %10.3f %10.3f %10.3f %12.1fx %11.1fx\n", writers[k], pct,
			       c[f].clean, c[f].writers, dur[f].clean, dur[f].writers, rr, rr / c[f].clean,
			       dur[f].clean / c[f].clean);
		}
		for (size_t f = 0; f < nf; f++) {
			char what[80];

			if (fractions[f] != 0.01)
				continue;
			snprintf(what, sizeof(what), "re-read / clean at 1 %% dirty, %u writer%s", writers[k],
				 writers[k] > 1 ? "s" : "");
			bench_target(what, rr / c[f].clean, 2, false);
		}
	}
	return 0;
}
