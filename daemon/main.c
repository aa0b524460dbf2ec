/* SPDX-License-Identifier: MIT */
/*
 * cohmemd --mount DIR --state-dir DIR [--interval MS] [--allow-other]
 *         [--max-bytes N] [--coherence auto|scan|writeback]
 *
 * Runs in the foreground, logs to stderr, and unmounts on SIGINT or SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cohmem.h"
#include "daemon.h"

struct daemon daemon_state;

void logmsg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("cohmemd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: cohmemd --mount DIR --state-dir DIR [OPTIONS]\n"
		"A FUSE file system of shared buffers kept coherent with their state files.\n\n"
		"  --mount DIR          where to mount\n"
		"  --state-dir DIR      where the buffers' bytes live (created if missing)\n"
		"  --interval MS        collect written pages every MS ms, so pollers wake\n"
		"                       without anyone cleaning (default 0: only on clean)\n"
		"  --allow-other        let other users in (permissions still apply)\n"
		"  --max-bytes N        largest buffer, with K, M or G (default 16G)\n"
		"  --coherence MODE     auto (default), scan (PAGEMAP_SCAN, Linux 6.7) or\n"
		"                       writeback (the kernel writes dirty pages back)\n"
		"  -h, --help           this text\n");
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; end++; break;
	case '\0': break;
	default: return 0;
	}
	return *end ? 0 : v;
}

/* The device number of the mount at path, as /proc/<pid>/maps will show it. */
static int mount_dev(const char *path, dev_t *dev)
{
	char real[PATH_MAX], *line = NULL;
	size_t cap = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int err = -ENOENT;

	if (!f || !realpath(path, real)) {
		if (f)
			fclose(f);
		return -errno;
	}
	/* "id parent major:minor root mountpoint ..." — the last match is the newest mount */
	while (getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		char point[PATH_MAX];

		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, point) == 3 && !strcmp(point, real)) {
			*dev = makedev(maj, min);
			err = 0;
		}
	}
	free(line);
	fclose(f);
	return err;
}

/*
 * A daemon killed with SIGKILL leaves a dead mount behind: clear it, or the
 * new mount would sit on top of it and it would outlive us. statfs(), not
 * stat(): the kernel answers stat() from its attribute cache for a while
 * after the daemon died, while statfs() always asks the daemon.
 */
static void clear_stale_mount(const char *path)
{
	struct statfs sfs;

	if (statfs(path, &sfs) == 0 || errno != ENOTCONN)
		return;
	logmsg("%s: a stale mount (its daemon died); unmounting it", path);
	if (umount2(path, MNT_DETACH) && system("fusermount3 -uz -- \"$COHMEMD_MOUNT\"") != 0)
		logmsg("%s: could not unmount the stale mount", path);
}

static int setup_watcher(struct daemon *d)
{
	d->epoll = epoll_create1(EPOLL_CLOEXEC);
	d->stop = eventfd(0, EFD_CLOEXEC);
	d->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->epoll < 0 || d->stop < 0 || d->timer < 0)
		return -errno;
	return watcher_start(d);
}

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "mount", required_argument, NULL, 'm' }, { "state-dir", required_argument, NULL, 's' },
		{ "interval", required_argument, NULL, 'i' }, { "allow-other", no_argument, NULL, 'a' },
		{ "max-bytes", required_argument, NULL, 'b' }, { "coherence", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	struct daemon *d = &daemon_state;
	const char *state = NULL, *coherence = "auto";
	char options[256];
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *loop;
	bool scan_works;
	int opt, ret;

	d->max_bytes = 16ULL << 30;
	d->page_size = (size_t)sysconf(_SC_PAGESIZE);
	d->next_ino = FUSE_ROOT_ID + 1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->ring_lock, NULL);
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm': d->mountpoint = optarg; break;
		case 's': state = optarg; break;
		case 'i': d->interval_ms = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'a': d->allow_other = true; break;
		case 'b': d->max_bytes = parse_size(optarg); break;
		case 'c': coherence = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!d->mountpoint || !state || optind != argc || !d->max_bytes) {
		usage(stderr);
		return 2;
	}
	scan_works = cohmem_backend_supported(COHMEM_BACKEND_UFFD_ASYNC) == 0;
	if (!strcmp(coherence, "auto"))
		d->coherence = scan_works ? COHMEM_COHERENCE_SCAN : COHMEM_COHERENCE_WRITEBACK;
	else if (!strcmp(coherence, "scan") && scan_works)
		d->coherence = COHMEM_COHERENCE_SCAN;
	else if (!strcmp(coherence, "writeback"))
		d->coherence = COHMEM_COHERENCE_WRITEBACK;
	else {
		logmsg("coherence '%s': use auto, writeback, or scan (which needs Linux 6.7)", coherence);
		return 2;
	}
	if (mkdir(state, 0700) && errno != EEXIST) {
		logmsg("%s: %s", state, strerror(errno));
		return 1;
	}
	d->state_dir = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->state_dir < 0 || store_load(d)) {
		logmsg("%s: %s", state, strerror(errno));
		return 1;
	}
	setenv("COHMEMD_MOUNT", d->mountpoint, 1);
	clear_stale_mount(d->mountpoint);

	snprintf(options, sizeof(options), "default_permissions,fsname=cohmemd,subtype=cohmemd%s",
		 d->allow_other ? ",allow_other" : "");
	if (fuse_opt_add_arg(&args, argv[0]) || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, options))
		return 1;
	d->se = fuse_session_new(&args, &cohmemd_ops, sizeof(cohmemd_ops), d);
	if (!d->se || fuse_set_signal_handlers(d->se) || fuse_session_mount(d->se, d->mountpoint)) {
		logmsg("%s: cannot mount", d->mountpoint);
		return 1;
	}
	if (mount_dev(d->mountpoint, &d->dev) || setup_watcher(d)) {
		logmsg("%s: cannot set up", d->mountpoint);
		fuse_session_unmount(d->se);
		return 1;
	}
	logmsg("serving %zu buffers at %s from %s; coherence %s; interval %u ms", d->nbuffers,
	       d->mountpoint, state, d->coherence == COHMEM_COHERENCE_SCAN ? "scan" : "writeback",
	       d->interval_ms);

	loop = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(loop, 16);
	ret = fuse_session_loop_mt(d->se, loop);
	fuse_loop_cfg_destroy(loop);
	if (ret == SIGTERM || ret == SIGINT || ret == SIGHUP)	/* how libfuse says "asked to stop" */
		ret = 0;
	else if (ret)
		logmsg("the FUSE loop ended with %d (%s)", ret, ret < 0 ? strerror(-ret) : "a signal");

	watcher_stop(d);
	fuse_session_unmount(d->se);
	fuse_remove_signal_handlers(d->se);
	fuse_session_destroy(d->se);
	fuse_opt_free_args(&args);
	logmsg("unmounted %s", d->mountpoint);
	return ret ? 1 : 0;
}
