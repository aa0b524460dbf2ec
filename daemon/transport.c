/* SPDX-License-Identifier: MIT */
/*
 * Which transport serves the mount (transport.h): --transport auto takes
 * io_uring when the kernel offers it and falls back to /dev/fuse, saying
 * why; --transport uring refuses to start without it (an operator who asks
 * for it wants to know, not to measure the other one by mistake); --transport
 * dev never tries.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "transport.h"

static const struct transport_ops *active;

int transport_parse(const char *name, enum transport_want *want)
{
	static const struct {
		const char *name;
		enum transport_want want;
	} names[] = { { "auto", TRANSPORT_AUTO }, { "uring", TRANSPORT_URING }, { "dev", TRANSPORT_DEV } };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i].name)) {
			*want = names[i].want;
			return 0;
		}
	}
	return -EINVAL;
}

/* io_uring, if it can be had: 0, or -errno with the reason in why. */
static int try_uring(struct daemon *d, char *why, size_t whylen)
{
#ifdef COHMEMD_HAVE_URING
	int err = transport_uring.start(d, why, whylen);

	if (!err)
		active = &transport_uring;
	return err;
#else
	(void)d;
	snprintf(why, whylen, "this cohmemd was built without liburing");
	return -EOPNOTSUPP;
#endif
}

int transport_start(struct daemon *d, enum transport_want want)
{
	struct transport_facts *t = &d->transport;
	int err;

	t->why[0] = '\0';
	if (want == TRANSPORT_DEV) {
		snprintf(t->why, sizeof(t->why), "--transport dev");
	} else if (!try_uring(d, t->why, sizeof(t->why))) {
		atomic_store(&t->name, active->name);
		logmsg("transport: io_uring, %u queues, %u ring entries", t->queues, atomic_load(&t->entries));
		return 0;
	} else if (want == TRANSPORT_URING) {
		logmsg("--transport uring: cannot use FUSE over io_uring: %s", t->why);
		return -1;
	}
	err = transport_dev.start(d, t->why, sizeof(t->why));
	if (err) {	/* /dev/fuse is what the mount was made with: nothing can refuse it */
		logmsg("transport: /dev/fuse: %s", strerror(-err));
		return -1;
	}
	active = &transport_dev;
	atomic_store(&t->name, active->name);
	logmsg("transport: /dev/fuse (io_uring not used: %s)", t->why);
	return 0;
}

void transport_stop(struct daemon *d)
{
	if (active)
		active->stop(d);
	active = NULL;
}
