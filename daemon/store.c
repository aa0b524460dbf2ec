/* SPDX-License-Identifier: MIT */
/*
 * Buffers and their state files: STATE_DIR/<name> holds a buffer's bytes,
 * mode and ownership, so a restarted daemon serves the same buffers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitmap.h"
#include "daemon.h"

bool store_name_valid(const char *name)
{
	size_t len = strlen(name);

	return len && len < sizeof(((struct buffer *)0)->name) && !strchr(name, '/') &&
	       strcmp(name, ".") && strcmp(name, "..");
}

static int table_add(struct daemon *d, struct buffer *b)
{
	struct buffer **t = realloc(d->buffers, (d->nbuffers + 1) * sizeof(*t));

	if (!t)
		return -ENOMEM;
	d->buffers = t;
	d->buffers[d->nbuffers++] = b;
	return 0;
}

static struct buffer *buffer_new(struct daemon *d, const char *name, int fd, uint64_t size)
{
	struct buffer *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->ino = d->next_ino++;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->fd = fd;
	b->size = size;
	b->bitmap_pages = (size + d->page_size - 1) / d->page_size;
	pthread_mutex_init(&b->lock, NULL);
	if (table_add(d, b)) {
		free(b);
		return NULL;
	}
	return b;
}

int store_load(struct daemon *d)
{
	DIR *dir = fdopendir(dup(d->state_dir));
	struct dirent *e;

	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		struct stat st;
		int fd;

		if (!store_name_valid(e->d_name))
			continue;
		fd = openat(d->state_dir, e->d_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || !buffer_new(d, e->d_name, fd, (uint64_t)st.st_size)) {
			if (fd >= 0)
				close(fd);
			logmsg("ignoring %s in the state directory", e->d_name);
		}
	}
	closedir(dir);
	return 0;
}

struct buffer *store_find(struct daemon *d, fuse_ino_t ino)
{
	for (size_t i = 0; i < d->nbuffers; i++)
		if (d->buffers[i]->ino == ino)
			return d->buffers[i];
	return NULL;
}

struct buffer *store_lookup(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->nbuffers; i++)
		if (!d->buffers[i]->unlinked && !strcmp(d->buffers[i]->name, name))
			return d->buffers[i];
	return NULL;
}

int store_create(struct daemon *d, const char *name, mode_t mode, uid_t uid, gid_t gid,
		 struct buffer **ret)
{
	int fd;

	if (!store_name_valid(name))
		return strlen(name) >= sizeof((*ret)->name) ? -ENAMETOOLONG : -EINVAL;
	if (store_lookup(d, name))
		return -EEXIST;
	fd = openat(d->state_dir, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
	if (fd < 0)
		return -errno;
	/* Ownership lives on the state file; only a root daemon can give it away. */
	if (fchown(fd, uid, gid) && errno != EPERM)
		logmsg("%s: cannot set its owner: %s", name, strerror(errno));
	fchmod(fd, mode & 07777);	/* as asked, whatever the daemon's umask */
	*ret = buffer_new(d, name, fd, 0);
	if (!*ret) {
		unlinkat(d->state_dir, name, 0);
		close(fd);
		return -ENOMEM;
	}
	return 0;
}

static void buffer_free(struct daemon *d, struct buffer *b)
{
	for (size_t i = 0; i < d->nbuffers; i++) {
		if (d->buffers[i] == b) {
			d->buffers[i] = d->buffers[--d->nbuffers];
			break;
		}
	}
	for (size_t i = 0; i < b->nmappings; i++)
		mapping_close(d, &b->mappings[i]);
	free(b->mappings);
	free(b->consumers);
	close(b->fd);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

int store_unlink(struct daemon *d, const char *name)
{
	struct buffer *b = store_lookup(d, name);

	if (!b)
		return -ENOENT;
	if (unlinkat(d->state_dir, name, 0))
		return -errno;
	b->unlinked = true;	/* open descriptions keep the bytes, like any file */
	if (!b->lookups && !b->nconsumers)
		buffer_free(d, b);
	return 0;
}

void store_put(struct daemon *d, struct buffer *b, uint64_t forgets)
{
	b->lookups = forgets > b->lookups ? 0 : b->lookups - forgets;
	if (b->unlinked && !b->lookups && !b->nconsumers)
		buffer_free(d, b);
}

int store_resize(struct buffer *b, uint64_t size)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), pages = (size + ps - 1) / ps;

	if (ftruncate(b->fd, (off_t)size))
		return -errno;
	b->size = size;
	if (pages <= b->bitmap_pages)
		return 0;
	for (size_t i = 0; i < b->nconsumers; i++) {
		struct consumer *c = b->consumers[i];
		unsigned long *p = realloc(c->pending, bitmap_words(pages) * sizeof(unsigned long));

		if (!p)
			return -ENOMEM;
		memset(p + bitmap_words(b->bitmap_pages), 0,
		       (bitmap_words(pages) - bitmap_words(b->bitmap_pages)) * sizeof(unsigned long));
		c->pending = p;
	}
	b->bitmap_pages = pages;
	return 0;
}

int store_stat(struct daemon *d, struct buffer *b, struct stat *st)
{
	if (fstat(b->fd, st))
		return -errno;
	st->st_ino = b->ino;
	st->st_nlink = b->unlinked ? 0 : 1;
	st->st_size = (off_t)b->size;
	st->st_blksize = (blksize_t)d->page_size;
	return 0;
}
