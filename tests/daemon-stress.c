/* SPDX-License-Identifier: MIT */
/*
 * cohmemd under clients that come and go, for a bounded time: writer
 * processes attach (or not), write, and exit, get SIGKILLed, unmap without
 * detaching, or leave the writing to a forked child; two consumers clean
 * all along and --interval collects. Asserted:
 *   - after every clean, each consumer's copy (read from the state file, so
 *     stored) holds every write that completed before the clean began;
 *   - the mount and its syncfs(2) keep answering (a watchdog with a deadline);
 *   - at the end the copies, the state file and the buffer agree.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cohmemd-fixture.h"
#include "test.h"

#define PAGES 256
#define SLOTS 8				/* writers at once; slot k owns pages [k * 32, k * 32 + 32) */
#define SLOT_PAGES (PAGES / SLOTS)
#define SECONDS 8		/* at least; and until MIN_WRITERS and MIN_CLEANS have run */
#define MIN_WRITERS 200
#define MIN_CLEANS 40
#define CONSUMERS 2

/* Shared by every process of the test. */
struct shared {
	atomic_ullong seq;		/* the last sequence number handed out */
	atomic_ullong done[PAGES];	/* per page, the last write that completed */
	atomic_int stop, consumers_failed;
	atomic_ulong spawned, cleans;
};

static struct shared *sh;

enum fate { EXIT, KILLED, UNMAPPED, FORKED, NEVER_ATTACHED, FATES };

/* One write: the sequence number at the page's start (and its low byte in the middle). */
static void write_page(char *m, size_t pg)
{
	uint64_t s = atomic_fetch_add(&sh->seq, 1) + 1;

	memcpy(m + pg * PS, &s, sizeof(s));
	m[pg * PS + PS / 2] = (char)s;
	atomic_store_explicit(&sh->done[pg], s, memory_order_release);
}

static void write_some(char *m, unsigned slot, unsigned *rnd, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		write_page(m, slot * SLOT_PAGES + rand_r(rnd) % SLOT_PAGES);
}

static void writer(unsigned slot, unsigned seed)
{
	unsigned rnd = seed, n = 1 + rand_r(&rnd) % 64;
	enum fate fate = (enum fate)(rand_r(&rnd) % FATES);
	int fd = buffer_open("fb", O_RDWR);
	char *m = mmap(NULL, PAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	pid_t child;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (fd < 0 || m == MAP_FAILED)
		_exit(3);
	if (fate != NEVER_ATTACHED && cohmem_buffer_attach(fd, m, PAGES * PS, 0))
		_exit(4);
	switch (fate) {
	case EXIT:
	case NEVER_ATTACHED:
		write_some(m, slot, &rnd, n);
		if (fate == EXIT && rand_r(&rnd) % 2)
			cohmem_buffer_detach(fd, m);
		_exit(0);
	case KILLED:
		write_some(m, slot, &rnd, n);
		raise(SIGKILL);
		break;
	case UNMAPPED:
		write_some(m, slot, &rnd, n);
		munmap(m, PAGES * PS);
		usleep(rand_r(&rnd) % 20000);	/* and lives on a while */
		_exit(0);
	case FORKED:
		child = fork();
		if (child == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			write_some(m, slot, &rnd, n);
			usleep(rand_r(&rnd) % 20000);
			_exit(0);
		}
		waitpid(child, NULL, 0);
		_exit(0);
	case FATES:
		break;
	}
	_exit(5);
}

/* Keeps SLOTS writers going until told to stop; then kills and reaps them all. */
static void spawner(void)
{
	pid_t slot_pid[SLOTS] = { 0 };
	unsigned seed = (unsigned)getpid();

	prctl(PR_SET_PDEATHSIG, SIGKILL);	/* a test that dies takes its writers along */

	while (!atomic_load(&sh->stop)) {
		for (unsigned k = 0; k < SLOTS; k++) {
			if (slot_pid[k] > 0 && waitpid(slot_pid[k], NULL, WNOHANG) == 0)
				continue;
			slot_pid[k] = fork();
			if (slot_pid[k] == 0)
				writer(k, seed * 7919 + k * 104729 + (unsigned)atomic_load(&sh->spawned));
			atomic_fetch_add(&sh->spawned, 1);
		}
		usleep(2000);
	}
	for (unsigned k = 0; k < SLOTS; k++)
		if (slot_pid[k] > 0) {
			kill(slot_pid[k], SIGKILL);
			waitpid(slot_pid[k], NULL, 0);
		}
	/* A forked writer's child may outlive its parent for a moment: none may write after this. */
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	_exit(0);
}

struct consumer {
	int fd, state;
	uint64_t copy[PAGES];
	const char *failure;
	size_t bad_page;
	uint64_t bad_have, bad_want;
};

static uint64_t stored(int state, size_t pg)
{
	uint64_t s = 0;

	if (pread(state, &s, sizeof(s), (off_t)(pg * PS)) != sizeof(s))
		return 0;
	return s;
}

/* One clean; then the copy must hold every write that completed before it. */
static bool consume(struct consumer *c, unsigned long *bm)
{
	uint64_t snap[PAGES];
	long n;

	for (size_t pg = 0; pg < PAGES; pg++)
		snap[pg] = atomic_load_explicit(&sh->done[pg], memory_order_acquire);
	memset(bm, 0, PAGES / 8);
	n = cohmem_buffer_clean(c->fd, 0, PAGES, 0, bm, NULL, NULL);
	if (n < 0) {
		c->failure = "a clean failed";
		c->bad_have = (uint64_t)-n;
		return false;
	}
	for (size_t pg = 0; pg < PAGES; pg++)
		if (bit_is_set(bm, pg))
			c->copy[pg] = stored(c->state, pg);
	for (size_t pg = 0; pg < PAGES; pg++) {
		if (c->copy[pg] < snap[pg]) {
			c->failure = "a write that completed before a clean is missing after it";
			c->bad_page = pg;
			c->bad_have = c->copy[pg];
			c->bad_want = snap[pg];
			return false;
		}
	}
	atomic_fetch_add(&sh->cleans, 1);
	return true;
}

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	unsigned long *bm = bitmap_new(PAGES);

	while (!atomic_load(&sh->stop))
		if (!consume(c, bm)) {
			atomic_fetch_add(&sh->consumers_failed, 1);
			break;
		}
	free(bm);
	return NULL;
}

/* The mount answers, and so does its syncfs(2): in a child with a deadline. */
static bool mount_answers(void)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		struct stat st;
		int fd;

		alarm(test_deadline_s(30));	/* a hang detector, stretched on a loaded machine */
		if (stat(cohmemd_mnt, &st))
			_exit(1);
		fd = buffer_open("fb", O_RDONLY);
		if (fd < 0 || pread(fd, &st, 1, 0) != 1)
			_exit(2);
		/*
		 * The mount's writeback, as sync(2) runs it, but of this file system
		 * alone: sync(2) also waits for every other disk's writeback, which
		 * whatever runs beside this test (a CI's apt installs and kernel
		 * builds) can stretch past any deadline with cohmemd idle.
		 */
		if (syncfs(fd))
			_exit(3);
		_exit(0);
	}
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TestSuite(cohmemd, .init = cohmemd_setup, .fini = cohmemd_teardown, .timeout = 300);

Test(cohmemd, clients_that_come_and_go_lose_nothing_and_hang_nothing)
{
	char path[64 + 16], args[256];
	struct consumer *c = calloc(CONSUMERS, sizeof(*c));
	pthread_t th[CONSUMERS];
	pid_t spawn;
	int fd, status, watchdog_failures = 0;
	time_t until;

	/* COHMEMD_TEST_MODE: the daemon's --mode (ctest's cohmemd:stress-compare). */
	snprintf(args, sizeof(args), "--interval 5 --max-bytes 1G%s%s", getenv("COHMEMD_TEST_MODE") ? " --mode " : "",
		 getenv("COHMEMD_TEST_MODE") ? getenv("COHMEMD_TEST_MODE") : "");
	cohmemd_restart(args);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert(sh != MAP_FAILED);
	fd = buffer_create("fb", PAGES);
	snprintf(path, sizeof(path), "%s/fb", cohmemd_state);
	spawn = fork();	/* before any thread: the writers are forked from a single-threaded process */
	cr_assert_geq(spawn, 0);
	if (spawn == 0)
		spawner();
	for (int i = 0; i < CONSUMERS; i++) {
		c[i].fd = buffer_open("fb", O_RDONLY);
		c[i].state = open(path, O_RDONLY);
		cr_assert(c[i].fd >= 0 && c[i].state >= 0);
		cr_assert_eq(pthread_create(&th[i], NULL, consumer_main, &c[i]), 0);
	}
	/*
	 * SECONDS at least, and on until enough writers and cleans have run: a
	 * busy machine (a CI running this beside QEMU) makes the run longer, never
	 * a failure. The suite's timeout still catches a run that stops moving.
	 */
	for (until = time(NULL) + SECONDS; time(NULL) < until || atomic_load(&sh->spawned) < MIN_WRITERS ||
					   atomic_load(&sh->cleans) < MIN_CLEANS;) {
		watchdog_failures += !mount_answers();
		if (atomic_load(&sh->consumers_failed))
			break;	/* asserted below */
		usleep(200000);
	}
	atomic_store(&sh->stop, 1);
	for (int i = 0; i < CONSUMERS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(waitpid(spawn, &status, 0), spawn);
	cr_assert_eq(watchdog_failures, 0, "the mount or its syncfs(2) stopped answering %d times", watchdog_failures);
	for (int i = 0; i < CONSUMERS; i++)
		cr_assert_null(c[i].failure, "consumer %d: %s: page %zu holds %llu, wanted %llu", i, c[i].failure,
			       c[i].bad_page, (unsigned long long)c[i].bad_have, (unsigned long long)c[i].bad_want);
	cr_assert_geq(atomic_load(&sh->spawned), MIN_WRITERS, "only %lu writers ran", atomic_load(&sh->spawned));
	cr_assert_geq(atomic_load(&sh->cleans), MIN_CLEANS, "only %lu cleans", atomic_load(&sh->cleans));

	/* Every writer is gone: the last clean brings each copy to what the buffer holds. */
	for (int i = 0; i < CONSUMERS; i++) {
		unsigned long *bm = bitmap_new(PAGES);

		cr_assert(consume(&c[i], bm), "final clean: %s", c[i].failure);
		for (size_t pg = 0; pg < PAGES; pg++) {
			uint64_t in_buffer = 0;

			cr_assert_eq(pread(fd, &in_buffer, sizeof(in_buffer), (off_t)(pg * PS)), 8);
			cr_assert_eq(c[i].copy[pg], in_buffer, "page %zu: the copy has %llu, the buffer %llu", pg,
				     (unsigned long long)c[i].copy[pg], (unsigned long long)in_buffer);
			cr_assert_eq(stored(c[i].state, pg), in_buffer, "page %zu: the state file lags", pg);
		}
		free(bm);
		close(c[i].fd);
		close(c[i].state);
	}
	cr_log_info("%lu writers, %lu cleans, %llu writes", atomic_load(&sh->spawned), atomic_load(&sh->cleans),
		    (unsigned long long)atomic_load(&sh->seq));
	close(fd);
	free(c);
}
