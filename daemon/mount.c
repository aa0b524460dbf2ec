/* SPDX-License-Identifier: MIT */
/*
 * The mount: made at start (after clearing what a killed daemon left), and
 * undone at exit, which counts only if the kernel really let go of it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

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

/* Whether a mount with this device number is still anywhere in our namespace. */
static bool still_mounted(dev_t dev)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool found = false;

	while (f && !found && getline(&line, &cap, f) > 0) {
		unsigned maj, min;

		found = sscanf(line, "%*u %*u %u:%u", &maj, &min) == 2 && makedev(maj, min) == dev;
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

int mount_stop(struct daemon *d)
{
	fuse_session_unmount(d->se);
	if (still_mounted(d->dev)) {
		logmsg("could not unmount %s: it is still mounted (something is mounted over it?)",
		       d->mountpoint);
		return -1;
	}
	logmsg("unmounted %s", d->mountpoint);
	return 0;
}
