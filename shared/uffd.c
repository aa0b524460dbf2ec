/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kabi.h"
#include "page.h"
#include "uffd.h"
#include "vma.h"

#define UFFD_FLAGS (O_CLOEXEC | O_NONBLOCK)

static int uffd_open(enum uffd_open_method method)
{
	int dev, fd;

	switch (method) {
	case UFFD_OPEN_SYSCALL:
		fd = (int)syscall(SYS_userfaultfd, UFFD_FLAGS);
		break;
	case UFFD_OPEN_USER_MODE_ONLY:
		fd = (int)syscall(SYS_userfaultfd, UFFD_FLAGS | UFFD_USER_MODE_ONLY);
		break;
	case UFFD_OPEN_DEVICE:
		dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev < 0)
			return -errno;
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, UFFD_FLAGS);
		if (fd < 0)
			fd = -errno;
		close(dev);
		return fd;
	default:
		return -EOPNOTSUPP;
	}
	return fd < 0 ? -errno : fd;
}

static int uffd_api(int fd, uint64_t features, uint64_t *supported)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	if (ioctl(fd, UFFDIO_API, &api))
		return -errno;
	if (supported)
		*supported = api.features;
	return 0;
}

static int uffd_new_by(enum uffd_open_method method, uint64_t features)
{
	int fd = uffd_open(method), err;

	if (fd < 0)
		return fd;
	err = uffd_api(fd, features, NULL);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int uffd_try_open(enum uffd_open_method method)
{
	int fd = uffd_open(method);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int uffd_new(uint64_t features)
{
	return uffd_new_by(uffd_caps()->method, features);
}

static struct uffd_caps caps;
static pthread_once_t caps_once = PTHREAD_ONCE_INIT;

/* Whether WP registration works (CONFIG_HAVE_ARCH_USERFAULTFD_WP, 5.7+), tried on page. */
static bool probe_wp(void *page)
{
	int fd = uffd_new_by(caps.method, 0);
	bool ok = fd >= 0 && uffd_register_wp(fd, (uintptr_t)page, page_size()) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static bool probe_pagemap_scan(void *page)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct page_region out;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (uintptr_t)page,
		.end = (uintptr_t)page + page_size(),
		.vec = (uintptr_t)&out,
		.vec_len = 1,
		.return_mask = PAGE_IS_PRESENT,
	};
	bool ok = fd >= 0 && ioctl(fd, PAGEMAP_SCAN, &arg) >= 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static void caps_probe(void)
{
	static const enum uffd_open_method order[] = {
		UFFD_OPEN_SYSCALL, UFFD_OPEN_DEVICE, UFFD_OPEN_USER_MODE_ONLY,
	};
	int fd = -EOPNOTSUPP;
	void *page;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		fd = uffd_open(order[i]);
		if (fd >= 0) {
			caps.method = order[i];
			break;
		}
		if (i == 0)
			caps.error = fd;	/* the syscall's reason is the telling one */
	}
	if (fd < 0)
		return;
	caps.error = uffd_api(fd, 0, &caps.features);
	close(fd);
	if (caps.error) {
		caps.method = UFFD_OPEN_NONE;
		return;
	}
	page = mmap(NULL, page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return;
	caps.wp = probe_wp(page);
	caps.pagemap_scan = probe_pagemap_scan(page);
	munmap(page, page_size());
}

const struct uffd_caps *uffd_caps(void)
{
	pthread_once(&caps_once, caps_probe);
	return &caps;
}


int uffd_register_wp(int fd, uintptr_t start, size_t len)
{
	struct uffdio_register reg = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	if (!ioctl(fd, UFFDIO_REGISTER, &reg))
		return 0;
	/* Alignment and holes were checked by the caller: EINVAL means the memory type. */
	return errno == EINVAL ? -EOPNOTSUPP : -errno;
}

int uffd_unregister(int fd, uintptr_t start, size_t len)
{
	struct uffdio_range range = { .start = start, .len = len };

	return ioctl(fd, UFFDIO_UNREGISTER, &range) ? -errno : 0;
}

int uffd_wake(int fd, uintptr_t start, size_t len)
{
	struct uffdio_range range = { .start = start, .len = len };

	return ioctl(fd, UFFDIO_WAKE, &range) ? -errno : 0;
}

int uffd_writeprotect_one(int fd, uintptr_t start, size_t len, bool protect)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = start, .len = len },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	/*
	 * EAGAIN only while a non-cooperative event is pending: wait it out.
	 * Success is any non-negative return: Debian's 6.1 returned a positive
	 * value at times (the storm test saw its release "fail" with a stale
	 * errno while the range was in fact unprotected).
	 */
	for (;;) {
		if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp) >= 0)
			return 0;
		if (errno != EAGAIN)
			return -errno;
		sched_yield();
	}
}

struct wp_walk {
	int fd;
	bool protect;
};

static int writeprotect_vma(const struct vma_info *v, void *arg)
{
	const struct wp_walk *w = arg;

	return uffd_writeprotect_one(w->fd, v->start, v->end - v->start, w->protect);
}

int uffd_writeprotect(int fd, uintptr_t start, size_t len, bool protect)
{
	struct wp_walk w = { .fd = fd, .protect = protect };
	int err = uffd_writeprotect_one(fd, start, len, protect);

	/* One page never crosses mappings; and fault threads must not get to malloc. */
	if ((err != -EINVAL && err != -ENOENT) || len <= page_size())
		return err;
	return vma_walk(0, start, start + len, writeprotect_vma, &w);
}

int uffd_track(int fd, uintptr_t start, size_t len)
{
	int err = uffd_register_wp(fd, start, len);

	if (err)
		return err;
	/* With WP_UNPOPULATED, pages never touched get markers: their first write is seen too. */
	err = uffd_writeprotect(fd, start, len, true);
	if (err)
		uffd_unregister(fd, start, len);
	return err;
}

int uffd_release(int fd, uintptr_t start, size_t len)
{
	int err = uffd_writeprotect(fd, start, len, false);

	if (err && err != -ENOENT)
		return err;
	err = uffd_unregister(fd, start, len);
	/* ENOMEM: nothing mapped there any more; EINVAL: only foreign mappings left. */
	return err == -ENOMEM || err == -EINVAL ? 0 : err;
}
