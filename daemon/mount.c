/* SPDX-License-Identifier: MIT */
/*
 * The mount: made at start (after clearing what a killed daemon left), and
 * undone at exit, which counts only if the kernel really let go of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "daemon.h"

/* The device number of the newest mount at path (an absolute, resolved path), or 0. */
static dev_t mount_dev(const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	dev_t dev = 0;

	/* "id parent major:minor root mountpoint ..." — the last match is the newest mount */
	while (f && getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		char point[PATH_MAX];

		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, point) == 3 && !strcmp(point, path))
			dev = makedev(maj, min);
	}
	free(line);
	if (f)
		fclose(f);
	return dev;
}

/*
 * Whether a mount with this device number is still at path (on top, or
 * under another). At path only: once ours is gone, the kernel gives its
 * device number to the next FUSE mount, another daemon's elsewhere (two
 * test daemons stopping and starting at once: ours was "still mounted"
 * as 0:46 at the other's path).
 */
static bool still_mounted(dev_t dev, const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool found = false;

	while (f && !found && getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		char point[PATH_MAX];

		found = sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, point) == 3 && makedev(maj, min) == dev &&
			!strcmp(point, path);
	}
	free(line);
	if (f)
		fclose(f);
	return found;
}

/*
 * A daemon killed with SIGKILL leaves a dead mount behind: clear it, or the
 * new mount would sit on top of it and it would outlive us. statfs(), not
 * stat(): the kernel answers stat() from its attribute cache for a while
 * after the daemon died, while statfs() always asks the daemon. A daemon
 * that served by io_uring leaves its connection up a moment longer (the
 * kernel lets go of its rings after it died): a statfs() asked then is
 * aborted with the connection, ECONNABORTED.
 */
static void clear_stale_mount(const char *path)
{
	struct statfs sfs;

	if (statfs(path, &sfs) == 0 || (errno != ENOTCONN && errno != ECONNABORTED))
		return;
	logmsg("%s: a stale mount (its daemon died); unmounting it", path);
	if (umount2(path, MNT_DETACH) && system("fusermount3 -uz -- \"$COHMEMD_MOUNT\"") != 0)
		logmsg("%s: could not unmount the stale mount", path);
}

int mount_start(struct daemon *d, struct fuse_args *args, const char *argv0)
{
	char options[256];
	struct stat st;

	setenv("COHMEMD_MOUNT", d->mountpoint, 1);
	clear_stale_mount(d->mountpoint);
	snprintf(options, sizeof(options), "default_permissions,fsname=cohmemd,subtype=cohmemd%s",
		 d->allow_other ? ",allow_other" : "");
	if (fuse_opt_add_arg(args, argv0) || fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, options))
		return -1;
	d->se = fuse_session_new(args, &cohmemd_ops, sizeof(cohmemd_ops), d);
	if (!d->se || fuse_session_mount(d->se, d->mountpoint)) {
		logmsg("%s: cannot mount", d->mountpoint);
		return -1;
	}
	d->dev = mount_dev(d->mountpoint);
	/* Writing state files through our own mount would wait on ourselves. */
	if (!d->dev || fstat(d->state_dir, &st) || st.st_dev == d->dev) {
		logmsg("%s: cannot serve it (the state directory must not be on it)", d->mountpoint);
		fuse_session_unmount(d->se);
		return -1;
	}
	return 0;
}

/* Whether the kernel has ended our connection already (aborted, or its mount destroyed). */
static bool connection_ended(struct daemon *d)
{
	struct pollfd pfd = { .fd = fuse_session_fd(d->se) };

	return pfd.fd >= 0 && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR);
}

/*
 * So that fuse_session_unmount() closes our descriptor and frees what it
 * holds without unmounting anything: a /dev/fuse never mounted reports
 * POLLERR, which libfuse takes for "already unmounted". dup2() closes ours
 * (the connection ends: the mount under the foreign one is dead now).
 */
static void hand_over_an_ended_connection(struct daemon *d)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0 || dup3(fd, fuse_session_fd(d->se), O_CLOEXEC) < 0)
		logmsg("%s: cannot end our connection: %s", d->mountpoint, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*
 * libfuse unmounts by path, the newest mount there, whoever's it is; and
 * only while the connection is up (one that has ended, e.g. aborted through
 * fusectl, it takes for unmounted, and its dead mount stays). So: only if
 * ours is the newest mount at our path is it unmounted, by libfuse or, if
 * our connection has ended, by us. A mount over ours is someone else's: it
 * stays, and so does ours under it (dead once our descriptor closes in
 * fuse_session_destroy()), and the stop is an error.
 */
int mount_stop(struct daemon *d)
{
	bool ours_on_top = mount_dev(d->mountpoint) == d->dev, ended = connection_ended(d);

	if (ended)
		logmsg("%s: our connection had ended before the unmount", d->mountpoint);
	if (!ours_on_top)
		hand_over_an_ended_connection(d);
	fuse_session_unmount(d->se);	/* unmounts only if ours is on top and still up */
	if (ours_on_top && ended && still_mounted(d->dev, d->mountpoint) &&
	    umount2(d->mountpoint, MNT_DETACH | UMOUNT_NOFOLLOW))
		logmsg("%s: could not unmount it: %s", d->mountpoint, strerror(errno));
	if (still_mounted(d->dev, d->mountpoint)) {
		dev_t top = mount_dev(d->mountpoint);

		logmsg("could not unmount %s (%u:%u): it is still mounted; the newest mount there is %u:%u",
		       d->mountpoint, major(d->dev), minor(d->dev), major(top), minor(top));
		return -1;
	}
	logmsg("unmounted %s", d->mountpoint);
	return 0;
}
