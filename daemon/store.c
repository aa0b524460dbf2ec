/* SPDX-License-Identifier: MIT */
/*
 * Buffers and their state files: STATE_DIR/<name> holds a buffer's bytes,
 * mode and ownership, so a restarted daemon serves the same buffers.
 *
 * A buffer's attributes are kept in memory; its state file is open only
 * while some description of the buffer is (store_open/store_close), so an
 * idle buffer costs no descriptor and a state directory with more files
 * than the descriptor limit is served whole.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "text.h"

/*
 * A name is printable UTF-8 (shared/text.h): no newline to forge a line of
 * the log or of `cohmemctl ls` with, no terminal escape. A name that starts
 * with a control character can therefore never be a buffer's: the helper's
 * private names (fs.c) are such names.
 */
bool store_name_valid(const char *name)
{
	size_t len = strlen(name);

	return len && len < sizeof(((struct buffer *)0)->name) && !strchr(name, '/') &&
	       strcmp(name, ".") && strcmp(name, "..") && text_printable(name);
}

static uint64_t pages_of(const struct daemon *d, uint64_t bytes)
{
	return (bytes + d->page_size - 1) / d->page_size;
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

static struct buffer *buffer_new(struct daemon *d, const char *name, const struct stat *st)
{
	struct buffer *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->ino = d->next_ino++;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->fd = -1;
	b->peek_fd = -1;
	b->size = (uint64_t)st->st_size;
	b->mode = st->st_mode & 07777;
	b->uid = st->st_uid;
	b->gid = st->st_gid;
	lock_init(&b->lock, LOCK_BUFFER, "buffer.lock");
	pthread_cond_init(&b->retrieved, NULL);
	if (table_add(d, b)) {
		pthread_cond_destroy(&b->retrieved);
		lock_destroy(&b->lock);
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

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		/* Names no buffer may have (an older daemon's): not served, and logged escaped. */
		if (!store_name_valid(e->d_name) || fstatat(d->state_dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode) || !buffer_new(d, e->d_name, &st)) {
			logmsg("ignoring %s in the state directory", e->d_name);
			continue;
		}
		/* What is there was allowed once: charged, never refused. */
		user_charge(d, st.st_uid, (struct usage){ .buffers = 1, .bytes = (uint64_t)st.st_size }, true);
	}
	closedir(dir);
	return 0;
}

struct buffer *store_find(struct daemon *d, fuse_ino_t ino)
{
	lock_assert_held(&d->lock);
	for (size_t i = 0; i < d->nbuffers; i++)
		if (d->buffers[i]->ino == ino)
			return d->buffers[i];
	return NULL;
}

struct buffer *store_lookup(struct daemon *d, const char *name)
{
	lock_assert_held(&d->lock);
	for (size_t i = 0; i < d->nbuffers; i++)
		if (!d->buffers[i]->unlinked && !strcmp(d->buffers[i]->name, name))
			return d->buffers[i];
	return NULL;
}

int store_create(struct daemon *d, const char *name, mode_t mode, uid_t uid, gid_t gid,
		 struct buffer **ret)
{
	struct stat st;
	int fd, err;

	lock_assert_held(&d->lock);
	if (!store_name_valid(name))
		return strlen(name) >= sizeof((*ret)->name) ? -ENAMETOOLONG : -EINVAL;
	if (store_lookup(d, name))
		return -EEXIST;
	err = user_charge(d, uid, (struct usage){ .buffers = 1 }, false);
	if (err)
		return err;
	fd = openat(d->state_dir, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
	if (fd < 0) {
		err = -errno;
		user_uncharge(d, uid, (struct usage){ .buffers = 1 });
		return err;
	}
	/* Ownership lives on the state file; only a root daemon can give it away. */
	if (fchown(fd, uid, gid) && errno != EPERM)
		logmsg("%s: cannot set its owner: %s", name, strerror(errno));
	if (fchmod(fd, mode & 07777) || fstat(fd, &st))	/* as asked, whatever the daemon's umask */
		err = -errno;
	close(fd);
	if (err || !(*ret = buffer_new(d, name, &st))) {
		unlinkat(d->state_dir, name, 0);
		user_uncharge(d, uid, (struct usage){ .buffers = 1 });
		return err ? err : -ENOMEM;
	}
	/* A daemon that cannot give it away owns it, but charges who asked. */
	if (st.st_uid != uid) {
		user_uncharge(d, uid, (struct usage){ .buffers = 1 });
		user_charge(d, st.st_uid, (struct usage){ .buffers = 1 }, true);
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
	for (size_t i = 0; i < b->nattached; i++)
		attach_close(d, &b->attached[i]);
	user_uncharge(d, b->uid, (struct usage){ .buffers = 1, .bytes = b->size });
	free(b->attached);
	free(b->consumers);
	if (b->fd >= 0)
		close(b->fd);
	pageset_clear(&b->unstored);
	pageset_clear(&b->meanwhile);
	pageset_clear(&b->stale);
	held_clear(d, b);
	pthread_cond_destroy(&b->retrieved);
	lock_destroy(&b->lock);
	free(b);
}

/* Free b once nothing refers to it: no name, no kernel reference, no description, no job. */
static void maybe_free(struct daemon *d, struct buffer *b)
{
	lock_assert_held(&d->lock);
	if (b->unlinked && !b->lookups && !b->opens && !b->refs)
		buffer_free(d, b);
}

/* name and unlinked change under both d->lock and b->lock: either lock reads them. */
static void mark_unlinked(struct buffer *b)
{
	lock_take(&b->lock);
	b->unlinked = true;
	lock_drop(&b->lock);
}

int store_unlink(struct daemon *d, const char *name)
{
	struct buffer *b = store_lookup(d, name);

	if (!b)
		return -ENOENT;
	if (unlinkat(d->state_dir, name, 0))
		return -errno;
	mark_unlinked(b);	/* open descriptions keep the bytes, like any file */
	maybe_free(d, b);
	return 0;
}

int store_rename(struct daemon *d, const char *name, const char *newname, unsigned flags)
{
	struct buffer *b = store_lookup(d, name), *old = store_lookup(d, newname);

	if (!store_name_valid(newname))
		return strlen(newname) >= sizeof(b->name) ? -ENAMETOOLONG : -EINVAL;
	if (!b)
		return -ENOENT;
	if (old && (flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (renameat(d->state_dir, name, d->state_dir, newname))
		return -errno;
	if (old && old != b) {
		mark_unlinked(old);
		maybe_free(d, old);
	}
	lock_take(&b->lock);
	snprintf(b->name, sizeof(b->name), "%s", newname);
	lock_drop(&b->lock);
	return 0;
}

void store_put(struct daemon *d, struct buffer *b, uint64_t forgets)
{
	lock_assert_held(&d->lock);
	b->lookups = forgets > b->lookups ? 0 : b->lookups - forgets;
	maybe_free(d, b);
}

void store_unref(struct daemon *d, struct buffer *b)
{
	lock_assert_held(&d->lock);
	b->refs--;
	maybe_free(d, b);
}

int store_open(struct daemon *d, struct buffer *b)
{
	lock_assert_held(&b->lock);
	if (b->fd < 0) {
		if (b->unlinked)
			return -ENOENT;
		b->fd = openat(d->state_dir, b->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (b->fd < 0)
			return -errno;
	}
	b->opens++;
	return 0;
}

void store_close(struct buffer *b)
{
	lock_assert_held(&b->lock);
	if (--b->opens == 0 && b->fd >= 0) {
		close(b->fd);
		b->fd = -1;
	}
}

/* The state file, opened for this call if no description holds it open; *opened says so. */
static int state_fd(struct daemon *d, struct buffer *b, bool *opened)
{
	lock_assert_held(&b->lock);
	*opened = false;
	if (b->fd >= 0)
		return b->fd;
	if (b->unlinked)
		return -ENOENT;
	*opened = true;
	return openat(d->state_dir, b->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
}

/*
 * A new size. Charged to the owner; what truncation cuts away changed, so
 * those pages are marked (a buffer grown again shows zeros there), and so is
 * a last page cut in the middle. Growing writes nothing: it marks nothing.
 */
int store_resize(struct daemon *d, struct buffer *b, uint64_t size)
{
	uint64_t old_pages = pages_of(d, b->size);
	bool opened;
	int fd, err = 0;

	lock_assert_held(&b->lock);
	if (size > b->size) {
		err = user_charge(d, b->uid, (struct usage){ .bytes = size - b->size }, false);
		if (err)
			return err;
	}
	fd = state_fd(d, b, &opened);
	if (fd < 0 || ftruncate(fd, (off_t)size))
		err = -errno;
	if (opened && fd >= 0)
		close(fd);
	if (err) {
		if (size > b->size)
			user_uncharge(d, b->uid, (struct usage){ .bytes = size - b->size });
		return err;
	}
	if (size < b->size) {
		user_uncharge(d, b->uid, (struct usage){ .bytes = b->size - size });
		pages_mark(b, size / d->page_size, old_pages - size / d->page_size);
		/* What was cut needs no storing: it is gone (a page cut in the middle is stored by whoever writes it). */
		pageset_take(&b->unstored, pages_of(d, size), UINT64_MAX - pages_of(d, size), NULL);
		held_cut(d, b, size);
		if (!b->unstored.count)
			b->store_error = 0;
	}
	b->size = size;
	return 0;
}

static int set_times(int fd, struct daemon *d, struct buffer *b, const struct stat *attr, int to_set)
{
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

	if (to_set & FUSE_SET_ATTR_ATIME)
		times[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME)
		times[1] = attr->st_mtim;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		times[0].tv_nsec = UTIME_NOW;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		times[1].tv_nsec = UTIME_NOW;
	if (!(to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
			FUSE_SET_ATTR_MTIME_NOW)))
		return 0;
	return futimens(fd, times) ? -errno : 0;
}

/* The kernel checked the caller's right to each change (default_permissions). */
int store_setattr(struct daemon *d, struct buffer *b, const struct stat *attr, int to_set)
{
	bool opened;
	int fd, err = 0;

	lock_assert_held(&d->lock);
	lock_assert_held(&b->lock);
	if ((to_set & FUSE_SET_ATTR_SIZE) && (uint64_t)attr->st_size > d->limits.max_bytes)
		return -EFBIG;
	if (to_set & FUSE_SET_ATTR_SIZE)
		err = store_resize(d, b, (uint64_t)attr->st_size);
	if (err || !(to_set & ~FUSE_SET_ATTR_SIZE))
		return err;
	fd = state_fd(d, b, &opened);
	if (fd < 0)
		return -errno;
	if ((to_set & FUSE_SET_ATTR_MODE) && fchmod(fd, attr->st_mode & 07777))
		err = -errno;
	if (!err && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = to_set & FUSE_SET_ATTR_UID ? attr->st_uid : b->uid;
		gid_t gid = to_set & FUSE_SET_ATTR_GID ? attr->st_gid : b->gid;

		if (fchown(fd, uid, gid)) {
			err = -errno;
		} else if (uid != b->uid) {	/* only root gives buffers away: the new owner pays */
			struct usage owned = { .buffers = 1, .bytes = b->size, .pending = held_cost(d, b) };

			user_uncharge(d, b->uid, owned);
			user_charge(d, uid, owned, true);
		}
	}
	if (!err)
		err = set_times(fd, d, b, attr, to_set);
	if (!err) {
		struct stat st;

		if (!fstat(fd, &st)) {
			b->mode = st.st_mode & 07777;
			b->uid = st.st_uid;
			b->gid = st.st_gid;
		}
	}
	if (opened)
		close(fd);
	return err;
}

int store_stat(struct daemon *d, struct buffer *b, struct stat *st)
{
	int err;

	lock_assert_held(&b->lock);
	err = b->fd >= 0 ? fstat(b->fd, st) :
		  b->unlinked ? (errno = ENOENT, -1) : fstatat(d->state_dir, b->name, st, AT_SYMLINK_NOFOLLOW);

	if (err)
		return -errno;
	st->st_ino = b->ino;
	st->st_nlink = b->unlinked ? 0 : 1;
	st->st_size = (off_t)b->size;
	st->st_mode = S_IFREG | b->mode;
	st->st_uid = b->uid;
	st->st_gid = b->gid;
	st->st_blksize = (blksize_t)d->page_size;
	return 0;
}

/*
 * A writeback WRITE the state file could not take: its pages are unstored
 * (cleans of them fail until they are stored), and the bytes of each page it
 * holds whole (or up to the buffer's end) are held (held.h) where the
 * owner's limit allows; the others only the page cache has now.
 */
static void remember_unstored(struct daemon *d, struct buffer *b, const char *data, size_t len, uint64_t off,
			      int err)
{
	uint64_t ps = d->page_size;
	bool all = true;

	for (uint64_t at = off; at < off + len;) {
		uint64_t pg = at / ps, n = ps - at % ps < off + len - at ? ps - at % ps : off + len - at;
		bool whole = at % ps == 0 && (n == ps || at + n >= b->size);

		if (pageset_add(&b->unstored, pg, 1)) {
			logmsg("%s: cannot remember unstored page %llu: its write is lost", b->name,
			       (unsigned long long)pg);
			all = false;
		} else if (!whole || held_put(d, b, pg, at % ps, data + (at - off), n))
			b->unstored_gen++;	/* retrieved later (collect.c): copies asked for before are old */
		at += n;
	}
	b->store_error = err;
	b->writeback_error = all ? err : 0;	/* the pages answer for it, or the next sync's error must: run_pass() */
}

/*
 * Bytes [off, end) of data are stored: unstored pages they cover whole (or
 * to the buffer's end) are stored now; of the others, a held copy takes the
 * bytes too (it is what will be stored), and page-cache copies retrieved
 * before are older than the state file now.
 */
static void stored_over_unstored(struct daemon *d, struct buffer *b, const char *data, uint64_t off, uint64_t end,
				 enum store_from from)
{
	uint64_t ps = d->page_size;

	if (!pageset_count(&b->unstored, off / ps, (end - 1) / ps - off / ps + 1))
		return;
	for (uint64_t pg = off / ps; pg <= (end - 1) / ps; pg++) {
		uint64_t from_byte = pg * ps > off ? pg * ps : off, to = (pg + 1) * ps < end ? (pg + 1) * ps : end;
		uint64_t page_end = (pg + 1) * ps < b->size ? (pg + 1) * ps : b->size;
		char *copy;

		if (!pageset_count(&b->unstored, pg, 1))
			continue;
		if (from_byte == pg * ps && to >= page_end) {
			pageset_take(&b->unstored, pg, 1, NULL);
			held_drop(d, b, pg);
		} else if (from != STORE_HELD && (copy = held_find(b, pg))) {
			memcpy(copy + (from_byte - pg * ps), data + (from_byte - off), to - from_byte);
		} else if (from != STORE_RETRIEVED) {
			b->unstored_gen++;
		}
	}
	if (!b->unstored.count)
		b->store_error = 0;
}

/*
 * What is stored is marked, and what is marked is stored: a file system
 * that fills up in the middle of a write(2) keeps the bytes that fitted,
 * so they are marked and their count is the answer (write(2) returns it,
 * and the writer's next call gets the error). Writeback has no one to take
 * a count: its WRITE fails whole, and its pages are remembered and stored
 * by a later pass (collect.c).
 */
/*
 * The page cache may keep the bytes of a write(2) the state file did not
 * take: Linux 7.x marks a page up to date before it sends the WRITE and
 * leaves it so when the answer is short or an error (6.x dropped it). The
 * next pass has the helper drop those pages from the page cache
 * (collect.c), so that reads come to us again; a page someone maps stays
 * until the kernel lets it go. Caller holds b->lock.
 */
static void note_stale(struct buffer *b, uint64_t from, uint64_t to, uint64_t ps)
{
	lock_assert_held(&b->lock);
	if (to > from && pageset_add(&b->stale, from / ps, (to - 1) / ps - from / ps + 1))
		logmsg("%s: cannot note pages to drop from the page cache", b->name);
}

/* The state file holds these bytes already (a read error says no). */
static bool same_as_stored(const struct buffer *b, const char *data, size_t len, uint64_t off)
{
	char stored[4096];

	for (size_t at = 0; at < len;) {
		size_t n = len - at < sizeof(stored) ? len - at : sizeof(stored);

		if (pread(b->fd, stored, n, (off_t)(off + at)) != (ssize_t)n || memcmp(stored, data + at, n))
			return false;
		at += n;
	}
	return true;
}

ssize_t store_write(struct daemon *d, struct buffer *b, const char *data, size_t len, uint64_t off,
		    enum store_from from)
{
	uint64_t ps = d->page_size, end, grow = off + len > b->size ? off + len - b->size : 0;
	ssize_t done;
	int err;

	lock_assert_held(&b->lock);
	if (!len)
		return 0;
	if (b->fd < 0)
		return -EBADF;
	if (b->comparing && from != STORE_COMPARED &&
	    pageset_add(&b->meanwhile, off / ps, (off + len - 1) / ps - off / ps + 1))
		b->meanwhile_lost = true;	/* compare.c */
	/*
	 * The first writeback after comparing brings back every page the
	 * compares left dirty: those they stored already are not marked again.
	 */
	if (from == STORE_WRITEBACK && b->verify_writeback && !grow && same_as_stored(b, data, len, off))
		return (ssize_t)len;
	if (from == STORE_WRITEBACK)
		b->written_back += (off + len - 1) / ps - off / ps + 1;
	if (grow && (err = user_charge(d, b->uid, (struct usage){ .bytes = grow }, false)))
		return err;
	done = pwrite(b->fd, data, len, (off_t)off);
	err = done < 0 ? -errno : -ENOSPC;	/* a short write: the file system is full */
	if (from == STORE_WRITE && (done < 0 || (size_t)done < len))
		note_stale(b, done > 0 ? off + (uint64_t)done : off, off + len, ps);
	if (done <= 0 || ((from == STORE_WRITEBACK || from == STORE_COMPARED) && (size_t)done != len)) {
		int wb_err = b->writeback_error;

		if (grow) {
			user_uncharge(d, b->uid, (struct usage){ .bytes = grow });
			if (ftruncate(b->fd, (off_t)b->size))
				logmsg("%s: cannot undo a failed write: %s", b->name, strerror(errno));
		}
		/*
		 * A compared page is as much at risk as a written-back one: a
		 * failed write(2) over it makes the kernel drop its dirty bytes.
		 */
		if (from == STORE_WRITEBACK || from == STORE_COMPARED)
			remember_unstored(d, b, data, len, off, err);
		if (from == STORE_COMPARED)
			b->writeback_error = wb_err;	/* no sync of the kernel's will report it */
		return err;
	}
	end = off + (uint64_t)done;
	if (end > b->size) {
		user_uncharge(d, b->uid, (struct usage){ .bytes = grow - (end - b->size) });	/* what did not fit */
		b->size = end;
	} else if (grow) {
		user_uncharge(d, b->uid, (struct usage){ .bytes = grow });
	}
	b->unsynced = true;
	stored_over_unstored(d, b, data, off, end, from);
	pages_mark(b, off / ps, (end - 1) / ps - off / ps + 1);
	return done;
}
