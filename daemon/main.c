/* SPDX-License-Identifier: MIT */
/*
 * cohmemd --mount DIR --state-dir DIR [OPTIONS]
 *
 * Runs in the foreground, logs to stderr, and unmounts on SIGINT, SIGTERM
 * or SIGHUP after storing what was written. Exits 0 when it unmounted, 1
 * when it could not set up or could not unmount, 2 for bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "daemon.h"
#include "transport.h"

static uint64_t mib(uint64_t bytes)
{
	return (bytes + (1u << 20) - 1) >> 20;
}

/* The options, with the limits as this daemon would apply them, and what they let one user hold. */
static void usage(FILE *out, const struct daemon *d, uint64_t nofile)
{
	const struct limits *l = &d->limits;
	struct user_bound most = user_bound(l, d->page_size);
	uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * d->page_size;

	fprintf(out,
		"Usage: cohmemd --mount DIR --state-dir DIR [OPTIONS]\n"
		"A FUSE file system of shared buffers kept coherent with their state files.\n\n"
		"  --mount DIR            where to mount\n"
		"  --state-dir DIR        where the buffers' bytes live (created if missing)\n"
		"  --interval MS          write back every MS ms the buffers that someone polls,\n"
		"                         so pollers wake without anyone cleaning (default 0)\n"
		"  --allow-other          let other users in (permissions still apply)\n"
		"  --durable              sync the state file before a clean returns\n"
		"  --mode MODE            how a pass learns what changed: track (the kernel writes\n"
		"                         back what was written), compare (pages read against the\n"
		"                         state file), or adaptive: per buffer, from what each\n"
		"                         costs (default)\n"
		"  --max-bytes N          largest buffer, with K, M or G (default 16G)\n"
		"  --collectors N         threads that write back and answer cleans (default 8)\n"
		"  --user-collectors N    of them, busy for one owner's buffers at most (default 2)\n"
		"  --transport auto|uring|dev  how requests arrive: FUSE over io_uring when the\n"
		"                         kernel offers it, else /dev/fuse (auto, the default);\n"
		"                         uring: refuse to start without it; dev: /dev/fuse only\n"
		"  --coherence auto|writeback  accepted for cohmem 0.1's command lines; no effect\n"
		"  -h, --help             this text\n\n"
		"What one user may make the daemon hold (root is not limited); defaults in ():\n"
		"  --user-buffers N       buffers owned (1024)\n"
		"  --user-bytes N         their bytes in all (64G)\n"
		"  --user-opens N         open descriptions (4096, at most 1/16 of the descriptors)\n"
		"  --user-attached N      attached mappings (1024, at most 1/64 of the descriptors)\n"
		"  --user-pending N       memory for the pages pending for its descriptions (64M);\n"
		"                         past it they are dropped and its cleans report everything\n\n"
		"With these limits (buffers %llu, bytes %lluM, opens %llu, attached %llu, pending %lluM)\n"
		"one user can make the daemon hold at most %llu MiB of memory (%.1f%% of this\n"
		"machine's) and %llu descriptors (%.1f%% of the %llu it may open), and as many in\n"
		"its helper process.\n",
		(unsigned long long)l->user.buffers, (unsigned long long)mib(l->user.bytes),
		(unsigned long long)l->user.opens, (unsigned long long)l->user.attached,
		(unsigned long long)mib(l->user.pending), (unsigned long long)mib(most.memory),
		ram ? 100.0 * (double)most.memory / (double)ram : 0.0, (unsigned long long)most.descriptors,
		nofile ? 100.0 * (double)most.descriptors / (double)nofile : 0.0, (unsigned long long)nofile);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; end++; break;
	case '\0': break;
	default: return 0;
	}
	return *end ? 0 : v;
}

/*
 * A descriptor per active buffer and per attachment: take all the kernel
 * allows. Returns how many the daemon may hold now.
 */
static uint64_t raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r))
		return 1024;
	if (r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &r))
			getrlimit(RLIMIT_NOFILE, &r);
	}
	return r.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)r.rlim_cur;
}

static void on_terminate(int sig)
{
	uint64_t one = 1;

	(void)sig;
	atomic_store(&daemon_state.stopping, 1);	/* lock-free: safe in a signal handler */
	if (write(daemon_state.stop, &one, sizeof(one)) < 0)
		atomic_store(&daemon_state.stopping, 1);
}

static void on_wake(int sig)
{
	(void)sig;	/* only to interrupt the loop's sem_wait() */
}

static int set_signals(void)
{
	struct sigaction term = { .sa_handler = on_terminate }, wake = { .sa_handler = on_wake },
			 ign = { .sa_handler = SIG_IGN };

	sigemptyset(&term.sa_mask);
	sigemptyset(&wake.sa_mask);
	sigemptyset(&ign.sa_mask);
	return sigaction(SIGTERM, &term, NULL) || sigaction(SIGINT, &term, NULL) ||
	       sigaction(SIGHUP, &term, NULL) || sigaction(SIGUSR1, &wake, NULL) ||
	       sigaction(SIGPIPE, &ign, NULL);
}

struct options {
	const char *mount, *state;
	enum transport_want transport;
	bool help;
};

/* Options into d and o, over the limits' defaults for a daemon that may open nofile descriptors. */
static int parse_options(struct daemon *d, int argc, char *argv[], struct options *o, uint64_t nofile)
{
	static const struct option opts[] = {
		{ "mount", required_argument, NULL, 'm' }, { "state-dir", required_argument, NULL, 's' },
		{ "interval", required_argument, NULL, 'i' }, { "allow-other", no_argument, NULL, 'a' },
		{ "durable", no_argument, NULL, 'D' }, { "max-bytes", required_argument, NULL, 'b' },
		{ "user-buffers", required_argument, NULL, 'B' }, { "user-bytes", required_argument, NULL, 'Y' },
		{ "user-opens", required_argument, NULL, 'O' }, { "user-attached", required_argument, NULL, 'A' },
		{ "user-pending", required_argument, NULL, 'P' }, { "collectors", required_argument, NULL, 'C' },
		{ "user-collectors", required_argument, NULL, 'U' },
		{ "coherence", required_argument, NULL, 'c' }, { "mode", required_argument, NULL, 'M' },
		{ "transport", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	struct limits *l = &d->limits;
	int opt, index;

	*l = (struct limits){ .max_bytes = 16ULL << 30, .user = user_default_limits(nofile), .collectors = 8,
			      .user_collectors = 2 };
	while ((opt = getopt_long(argc, argv, "h", opts, &index)) != -1) {
		uint64_t v = optarg ? parse_size(optarg) : 0;

		switch (opt) {
		case 'm': o->mount = optarg; break;
		case 's': o->state = optarg; break;
		case 'i': d->interval_ms = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'a': d->allow_other = true; break;
		case 'D': d->durable = true; break;
		case 'b': l->max_bytes = v; break;
		case 'B': l->user.buffers = v; break;
		case 'Y': l->user.bytes = v; break;
		case 'O': l->user.opens = v; break;
		case 'A': l->user.attached = v; break;
		case 'P': l->user.pending = v; break;
		case 'C': l->collectors = (unsigned)v; break;
		case 'U': l->user_collectors = (unsigned)v; break;
		case 'c':	/* cohmem 0.1 had scan and writeback; writeback is all there is */
			if (strcmp(optarg, "auto") && strcmp(optarg, "writeback")) {
				logmsg("--coherence %s: gone in 0.2; cohmemd always has the kernel write back "
				       "(see cohmemd(8))", optarg);
				return -1;
			}
			break;
		case 'M':
			if (!strcmp(optarg, "adaptive"))
				d->mode = MODE_ADAPTIVE;
			else if (!strcmp(optarg, "track"))
				d->mode = MODE_TRACK;
			else if (!strcmp(optarg, "compare"))
				d->mode = MODE_COMPARE;
			else {
				logmsg("--mode %s: adaptive, track or compare", optarg);
				return -1;
			}
			break;
		case 'T':
			if (transport_parse(optarg, &o->transport)) {
				logmsg("--transport %s: auto, uring or dev", optarg);
				return -1;
			}
			break;
		case 'h': o->help = true; break;
		default: return -1;
		}
		if (strchr("bBYOAPCU", opt) && !v) {
			logmsg("--%s %s: a positive number, with K, M or G", opts[index].name, optarg);
			return -1;
		}
	}
	if (o->help)
		return 0;
	if (!o->mount || !o->state || optind != argc || l->collectors > 256 ||
	    l->user_collectors > l->collectors)
		return -1;
	return 0;
}

/* The state directory: created if missing, ours alone, and not on our own mount. */
static int open_state(struct daemon *d, const char *state)
{
	if (mkdir(state, 0700) && errno != EEXIST) {
		logmsg("%s: %s", state, strerror(errno));
		return -1;
	}
	d->state_dir = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->state_dir < 0 || store_load(d)) {
		logmsg("%s: %s", state, strerror(errno));
		return -1;
	}
	return 0;
}

static int start_threads(struct daemon *d)
{
	d->main_thread = pthread_self();
	d->epoll = epoll_create1(EPOLL_CLOEXEC);
	d->stop = eventfd(0, EFD_CLOEXEC);
	d->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->epoll < 0 || d->stop < 0 || d->timer < 0 || set_signals())
		return -errno;
	return collect_start(d) ? -1 : watch_start(d);
}

int main(int argc, char *argv[])
{
	struct daemon *d = &daemon_state;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *loop;
	struct options o = { 0 };
	struct user_bound most;
	size_t loaded;
	uint64_t nofile;
	bool asked;
	int ret;

	/*
	 * One malloc arena for all threads: with glibc's default (8 per CPU),
	 * what one user made a worker allocate and free stayed in that worker's
	 * arena, and the daemon held 2.3 times the bound it states (155 MiB
	 * for 68). Allocations here are few and small; one arena costs no speed.
	 */
	mallopt(M_ARENA_MAX, 1);
	d->page_size = (size_t)sysconf(_SC_PAGESIZE);
	d->next_ino = FUSE_ROOT_ID + 1;
	lock_init(&d->lock, LOCK_TABLE, "daemon.lock");
	lock_init(&d->users_lock, LOCK_USERS, "daemon.users_lock");
	nofile = raise_nofile();
	if (parse_options(d, argc, argv, &o, nofile) || o.help) {
		usage(o.help ? stdout : stderr, d, nofile);
		return o.help ? 0 : 2;
	}
	if (mkdir(o.mount, 0755) && errno != EEXIST)
		logmsg("%s: %s", o.mount, strerror(errno));
	if (!realpath(o.mount, d->mountpoint)) {
		logmsg("%s: %s", o.mount, strerror(errno));
		return 1;
	}
	if (open_state(d, o.state))
		return 1;
	if (d->mode == MODE_ADAPTIVE)	/* a writer's fault, for adapt.c */
		logmsg("a page fault costs %.1f us here: buffers are compared where that makes tracking dearer",
		       adapt_calibrate(d->page_size));
	/* Before the mount and any thread: the helper must not hold /dev/fuse (helper.c). */
	ret = helper_start(d, d->limits.collectors + 1);
	if (ret) {
		logmsg("cannot start the helper process: %s", strerror(-ret));
		return 1;
	}
	helper_use_channel(d->limits.collectors);	/* shared with the watcher: they never call at once */
	if (mount_start(d, &args, argv[0])) {
		fuse_opt_free_args(&args);
		return 1;
	}
	loaded = d->nbuffers;	/* read before anything serves: requests change it under d->lock */
	/* After the threads, as the loop would start: the ring serves requests as soon as it is up. */
	if (start_threads(d) || transport_start(d, o.transport)) {
		logmsg("%s: cannot set up", d->mountpoint);
		fuse_session_unmount(d->se);
		fuse_opt_free_args(&args);
		return 1;
	}
	logmsg("serving %zu buffers at %s from %s; interval %u ms%s", loaded, d->mountpoint, o.state,
	       d->interval_ms, d->durable ? "; durable" : "");
	most = user_bound(&d->limits, d->page_size);
	logmsg("one user can make it hold at most %llu MiB and %llu of its %llu descriptors (see --help)",
	       (unsigned long long)mib(most.memory), (unsigned long long)most.descriptors,
	       (unsigned long long)nofile);

	loop = fuse_loop_cfg_create();
	/*
	 * Workers never wait long, so few suffice; more only add context
	 * switches (each request wakes one): a clean of 2621 pages written back
	 * took 26-35 ms with 16, 45-52 ms with 64, 46 ms with 2, on this VM.
	 */
	fuse_loop_cfg_set_max_threads(loop, 16);
	ret = fuse_session_loop_mt(d->se, loop);
	fuse_loop_cfg_destroy(loop);
	asked = atomic_load(&d->stopping) == 1;
	if (!asked)	/* the mount went away under us */
		logmsg("the FUSE loop ended with %d (%s)", ret, ret < 0 ? strerror(-ret) : "no error");
	ret = asked ? 0 : 1;

	watch_stop(d);
	if (!asked)
		collect_stop(d);
	helper_stop(d);
	if (mount_stop(d))
		ret = 1;
	transport_stop(d);	/* after the unmount, which its threads serve */
	fuse_session_destroy(d->se);
	fuse_opt_free_args(&args);
	return ret;
}
