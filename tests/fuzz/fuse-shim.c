/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fuse-shim.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t answered = PTHREAD_COND_INITIALIZER;
/* Like libfuse's: freed by its reply, so that a handler touching it after is caught. */
struct fuse_req {
	struct fuse_ctx ctx;
	void *userdata;
	struct shim_record *rec;
};

static struct shim_record *reqs;
static struct shim_retrieve retrieves[64];
static size_t nretrieves;

struct shim_record *shim_req(void *userdata, uid_t uid, gid_t gid, const void *harness, size_t size)
{
	struct shim_record *r = calloc(1, sizeof(*r));
	struct fuse_req *q = calloc(1, sizeof(*q));

	if (!r || !q || size > sizeof(r->harness_data))
		abort();
	q->ctx = (struct fuse_ctx){ .uid = uid, .gid = gid, .pid = gettid(), .umask = 022 };
	q->userdata = userdata;
	q->rec = r;
	r->req = q;
	if (harness) {
		memcpy(r->harness_data, harness, size);
		r->harness = r->harness_data;
	}
	pthread_mutex_lock(&lock);
	r->next = reqs;
	reqs = r;
	pthread_mutex_unlock(&lock);
	return r;
}

static int reply(fuse_req_t req, enum reply_kind kind, int err, const void *out, size_t outsz)
{
	struct shim_record *r = req->rec;

	pthread_mutex_lock(&lock);
	if (r->replies++) {	/* (a freed req: ASan says so first) */
		fprintf(stderr, "fuse-shim: a request answered twice (kind %d, then %d)\n", r->kind, kind);
		abort();
	}
	r->kind = kind;
	r->err = err;
	if (outsz) {
		r->out = malloc(outsz);
		if (!r->out)
			abort();
		memcpy(r->out, out, outsz);
		r->outsz = outsz;
	}
	r->req = NULL;
	free(req);
	on_reply(r);
	pthread_cond_broadcast(&answered);
	pthread_mutex_unlock(&lock);
	return 0;
}

bool shim_drain(unsigned ms)
{
	struct timespec until;
	bool all = false;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	for (;;) {
		struct timespec now, step;
		int err;

		on_drain();
		pthread_mutex_lock(&lock);
		all = true;
		for (struct shim_record *r = reqs; r && all; r = r->next)
			all = r->replies > 0;
		clock_gettime(CLOCK_REALTIME, &now);
		step = now;
		step.tv_nsec += 10000000;	/* a look at the retrieves every 10 ms */
		if (step.tv_nsec >= 1000000000) {
			step.tv_sec++;
			step.tv_nsec -= 1000000000;
		}
		err = all || now.tv_sec > until.tv_sec ||
		      (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec) ? -1 :
		      pthread_cond_timedwait(&answered, &lock, &step);
		pthread_mutex_unlock(&lock);
		if (err == -1)
			break;
	}
	return all;
}

void shim_reap(void)
{
	pthread_mutex_lock(&lock);
	for (struct shim_record **p = &reqs; *p;) {
		struct shim_record *r = *p;

		if (r->replies) {
			*p = r->next;
			free(r->out);
			free(r);
		} else {
			p = &r->next;
		}
	}
	pthread_mutex_unlock(&lock);
}

/* ---- what the handlers call ---------------------------------------------------- */

void *fuse_req_userdata(fuse_req_t req)
{
	return req->userdata;
}

const struct fuse_ctx *fuse_req_ctx(fuse_req_t req)
{
	return &req->ctx;
}

int fuse_reply_err(fuse_req_t req, int err)
{
	if (err < 0 || err > 4095) {
		fprintf(stderr, "fuse-shim: fuse_reply_err(%d): not a positive errno\n", err);
		abort();
	}
	return reply(req, REPLY_ERR, err, NULL, 0);
}

void fuse_reply_none(fuse_req_t req)
{
	reply(req, REPLY_NOTHING, 0, NULL, 0);
}

int fuse_reply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
	req->rec->entry = *e;
	return reply(req, REPLY_ENTRY, 0, NULL, 0);
}

int fuse_reply_create(fuse_req_t req, const struct fuse_entry_param *e, const struct fuse_file_info *fi)
{
	(void)fi;
	req->rec->entry = *e;
	return reply(req, REPLY_CREATE, 0, NULL, 0);
}

int fuse_reply_attr(fuse_req_t req, const struct stat *attr, double attr_timeout)
{
	(void)attr_timeout;
	return reply(req, REPLY_ATTR, 0, attr, sizeof(*attr));
}

int fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	(void)fi;
	return reply(req, REPLY_OPEN, 0, NULL, 0);
}

int fuse_reply_write(fuse_req_t req, size_t count)
{
	return reply(req, REPLY_WRITE, 0, &count, sizeof(count));
}

int fuse_reply_buf(fuse_req_t req, const char *buf, size_t size)
{
	return reply(req, REPLY_BUF, 0, buf, size);
}

int fuse_reply_data(fuse_req_t req, struct fuse_bufvec *bufv, enum fuse_buf_copy_flags flags)
{
	size_t size = fuse_buf_size(bufv);
	char *buf = malloc(size ? size : 1);
	ssize_t got = 0;

	(void)flags;
	if (!buf)
		abort();
	if (bufv->count == 1 && (bufv->buf[0].flags & FUSE_BUF_IS_FD))
		got = pread(bufv->buf[0].fd, buf, size, bufv->buf[0].pos);
	else if (bufv->count == 1)
		memcpy(buf, bufv->buf[0].mem, (size_t)(got = (ssize_t)size));
	if (got < 0) {
		free(buf);
		return reply(req, REPLY_ERR, errno, NULL, 0);
	}
	reply(req, REPLY_BUF, 0, buf, (size_t)got);
	free(buf);
	return 0;
}

int fuse_reply_ioctl(fuse_req_t req, int result, const void *buf, size_t size)
{
	(void)result;
	return reply(req, REPLY_IOCTL, 0, buf, size);
}

int fuse_reply_poll(fuse_req_t req, unsigned revents)
{
	return reply(req, REPLY_POLL, 0, &revents, sizeof(revents));
}

int fuse_reply_statfs(fuse_req_t req, const struct statvfs *stbuf)
{
	return reply(req, REPLY_STATFS, 0, stbuf, sizeof(*stbuf));
}

size_t fuse_add_direntry(fuse_req_t req, char *buf, size_t bufsize, const char *name, const struct stat *stbuf,
			 off_t off)
{
	size_t namelen = strlen(name), entsize = (24 + namelen + 7) & ~(size_t)7;

	(void)req, (void)stbuf, (void)off;
	if (entsize <= bufsize && buf) {
		memset(buf, 0, entsize);
		memcpy(buf + 24, name, namelen);
	}
	return entsize;
}

struct fuse_pollhandle {
	int magic;
};

void fuse_pollhandle_destroy(struct fuse_pollhandle *ph)
{
	if (ph && ph->magic != 0x706f6c6c)
		abort();
	free(ph);
}

int fuse_lowlevel_notify_poll(struct fuse_pollhandle *ph)
{
	return ph && ph->magic == 0x706f6c6c ? 0 : (abort(), 0);
}

struct fuse_pollhandle *shim_pollhandle(void);
struct fuse_pollhandle *shim_pollhandle(void)
{
	struct fuse_pollhandle *ph = malloc(sizeof(*ph));

	if (!ph)
		abort();
	ph->magic = 0x706f6c6c;
	return ph;
}

int fuse_lowlevel_notify_retrieve(struct fuse_session *se, fuse_ino_t ino, size_t size, off_t offset, void *cookie)
{
	int err = 0;

	(void)se;
	pthread_mutex_lock(&lock);
	if (nretrieves == sizeof(retrieves) / sizeof(retrieves[0]))
		err = -ENOMEM;
	else
		retrieves[nretrieves++] = (struct shim_retrieve){ ino, size, offset, cookie };
	pthread_mutex_unlock(&lock);
	return err;
}

bool shim_take_retrieve(struct shim_retrieve *out)
{
	bool got = false;

	pthread_mutex_lock(&lock);
	if (nretrieves) {
		*out = retrieves[0];
		memmove(retrieves, retrieves + 1, --nretrieves * sizeof(*retrieves));
		got = true;
	}
	pthread_mutex_unlock(&lock);
	return got;
}

void fuse_session_exit(struct fuse_session *se)
{
	(void)se;
}

size_t fuse_buf_size(const struct fuse_bufvec *bufv)
{
	size_t size = 0;

	for (size_t i = bufv->idx; i < bufv->count; i++)
		size += bufv->buf[i].size - (i == bufv->idx ? bufv->off : 0);
	return size;
}

ssize_t fuse_buf_copy(struct fuse_bufvec *dst, struct fuse_bufvec *src, enum fuse_buf_copy_flags flags)
{
	size_t n = fuse_buf_size(src) < fuse_buf_size(dst) ? fuse_buf_size(src) : fuse_buf_size(dst);

	(void)flags;
	if (dst->count != 1 || src->count != 1 || (dst->buf[0].flags | src->buf[0].flags) & FUSE_BUF_IS_FD)
		return -EINVAL;	/* memory to memory is all cohmemd asks of it */
	memcpy(dst->buf[0].mem, src->buf[0].mem, n);
	return (ssize_t)n;
}

/*
 * The session and the mount (daemon/mount.c) are the daemon's main()'s, never
 * the request handlers': the fuzzer makes neither, and reaching one is a bug.
 */
static _Noreturn void not_in_the_fuzzer(const char *what)
{
	fprintf(stderr, "fuse-shim: %s called: the fuzzer has no session or mount\n", what);
	abort();
}

int fuse_opt_add_arg(struct fuse_args *args, const char *arg)
{
	(void)args, (void)arg;
	not_in_the_fuzzer(__func__);
}

#ifdef fuse_session_new
/* libfuse 3.17 (Debian 13): fuse_session_new() is a macro over an inline that calls this. */
struct fuse_session *fuse_session_new_versioned(struct fuse_args *args, const struct fuse_lowlevel_ops *op,
						size_t op_size, struct libfuse_version *version, void *userdata)
{
	(void)args, (void)op, (void)op_size, (void)version, (void)userdata;
	not_in_the_fuzzer(__func__);
}
#else
struct fuse_session *fuse_session_new(struct fuse_args *args, const struct fuse_lowlevel_ops *op, size_t op_size,
				      void *userdata)
{
	(void)args, (void)op, (void)op_size, (void)userdata;
	not_in_the_fuzzer(__func__);
}
#endif

int fuse_session_mount(struct fuse_session *se, const char *mountpoint)
{
	(void)se, (void)mountpoint;
	not_in_the_fuzzer(__func__);
}

void fuse_session_unmount(struct fuse_session *se)
{
	(void)se;
	not_in_the_fuzzer(__func__);
}

int fuse_session_fd(struct fuse_session *se)
{
	(void)se;
	not_in_the_fuzzer(__func__);
}

/* No kernel to send an INTERRUPT: no request is ever interrupted. */
int fuse_req_interrupted(fuse_req_t req)
{
	(void)req;
	return 0;
}
