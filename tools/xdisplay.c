/* SPDX-License-Identifier: MIT */
/*
 * The X server behind a framebuffer file: the process that maps it (Xvfb
 * maps its -fbdir screen MAP_SHARED) and names a display (":N") on its
 * command line. /proc/PID/maps names the mapped file by device and inode;
 * only processes this one may read are seen (its own user's, or all for
 * root), which are the ones whose display it could open anyway.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "vnc-x11.h"

/* Whether process pid maps the file (dev, ino). */
static bool maps_file(const char *pid, dev_t dev, ino_t ino)
{
	char path[sizeof("/proc//cmdline") + NAME_MAX], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long inode;

		if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &inode) == 3)
			found = makedev(maj, min) == dev && inode == (unsigned long long)ino && inode;
		/* a line longer than the buffer: skip its rest */
		while (!strchr(line, '\n') && fgets(line, sizeof(line), f))
			;
	}
	fclose(f);
	return found;
}

/* The display number of a listening socket inode, from /proc/net/unix (path /tmp/.X11-unix/XN, or abstract). */
static int display_of_socket(unsigned long long inode)
{
	char line[512];
	int n = -1;
	FILE *f = fopen("/proc/net/unix", "re");

	if (!f)
		return -1;
	while (n < 0 && fgets(line, sizeof(line), f)) {
		unsigned long long ino;
		char path[256];
		const char *x;

		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %llu %255s", &ino, path) == 2 && ino == inode &&
		    (x = strstr(path, "/tmp/.X11-unix/X")) && isdigit((unsigned char)x[16]))
			n = atoi(x + 16);
	}
	fclose(f);
	return n;
}

/* The display an X server listens as, from its sockets (Xvfb -displayfd names none on its command line). */
static int display_of_sockets(const char *pid, char *display, size_t len)
{
	char path[sizeof("/proc//cmdline") + NAME_MAX], link[64];
	struct dirent *d;
	int n = -1;
	DIR *fds;

	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	fds = opendir(path);
	if (!fds)
		return -ENOENT;
	while (n < 0 && (d = readdir(fds))) {
		unsigned long long inode;
		char fd[sizeof(path) + 1 + NAME_MAX];
		ssize_t k;

		snprintf(fd, sizeof(fd), "%s/%s", path, d->d_name);
		k = readlink(fd, link, sizeof(link) - 1);
		if (k <= 0)
			continue;
		link[k] = 0;
		if (sscanf(link, "socket:[%llu]", &inode) == 1)
			n = display_of_socket(inode);
	}
	closedir(fds);
	if (n < 0 || snprintf(display, len, ":%d", n) >= (int)len)
		return -ENOENT;
	return 0;
}

/* /proc/PID/NAME's first len - 1 bytes, NUL-terminated: how many (0 if none could be read). */
static ssize_t read_proc(const char *pid, const char *name, char *buf, size_t len)
{
	char path[sizeof("/proc//cmdline") + NAME_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, len - 1);
	close(fd);
	n = n < 0 ? 0 : n;
	buf[n] = 0;
	return n;
}

/* An X server's display: the first argument ":N" on its command line, else its listening socket's. */
static int display_of(const char *pid, char *display, size_t len)
{
	char comm[64], args[4096];
	ssize_t n;

	if (!read_proc(pid, "comm", comm, sizeof(comm)) || comm[0] != 'X')	/* Xvfb, Xorg...: not us, not a viewer */
		return -ENOENT;
	n = read_proc(pid, "cmdline", args, sizeof(args));
	if (!n)
		return -ENOENT;
	for (char *a = args; a < args + n; a += strlen(a) + 1) {
		size_t digits = strspn(a + 1, "0123456789");

		if (a[0] == ':' && digits > 0 && !a[1 + digits] && digits + 2 <= len) {
			memcpy(display, a, digits + 2);
			return 0;
		}
	}
	return display_of_sockets(pid, display, len);
}

int x_display_of_file(const char *path, char *display, size_t len)
{
	struct stat st;
	struct dirent *d;
	int err = -ENOENT;
	DIR *proc;

	if (stat(path, &st))
		return -errno;
	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while (err && (d = readdir(proc))) {
		if (!isdigit((unsigned char)d->d_name[0]) || atoi(d->d_name) == getpid())
			continue;
		if (maps_file(d->d_name, st.st_dev, st.st_ino))
			err = display_of(d->d_name, display, len);
	}
	closedir(proc);
	return err;
}
