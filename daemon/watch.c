/* SPDX-License-Identifier: MIT */
/*
 * The watcher thread: it wakes for processes that exit (an attachment's
 * pidfd becomes readable), for the --interval timer, and to stop.
 *
 * --interval: every buffer with a poller waiting and pages to write back
 * gets a writeback pass, so pages written through mappings wake it without
 * anyone cleaning.
 *
 * Termination (SIGTERM, SIGINT, SIGHUP) is orderly and happens here, while
 * the FUSE loop still serves: the collectors stop and every dirty page is
 * written back and stored, the daemon's own descriptors on its mount are
 * closed (their FLUSH and RELEASE need the loop), and only then is the
 * session told to exit.
 */
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "daemon.h"

#define TIMER_ID UINT64_MAX
#define STOP_ID (UINT64_MAX - 1)

/*
 * Would a pass of b find anything to do? Not if nothing of it is dirty or
 * under writeback (peek.c) and no store is to be retried: an idle buffer
 * costs a cachestat(2) per tick, no round trip. A WRITE of a page whose
 * writeback ended early (older kernels) may still be on its way: it wakes
 * the pollers itself when it is stored (fs.c). Caller holds b->lock.
 */
static bool pass_needed(const struct buffer *b)
{
	lock_assert_held(&b->lock);
	return b->peek_fd < 0 || b->unstored.count || b->held.n || peek_idle(b->peek_fd) != 1;
}

/* A tick found b clean: a pass that changed nothing, for adapt.c. Caller holds b->lock. */
static void idle_tick(struct daemon *d, struct buffer *b)
{
	enum coherence before = adapt_choice(&b->adapt, d->mode);

	adapt_idle(&b->adapt);
	if (adapt_choice(&b->adapt, d->mode) != before && d->mode == MODE_ADAPTIVE)
		logmsg("%s: %s from its next pass", b->name, before == COHERENCE_TRACK ? "compared" : "tracked");
}

/* --interval: a pass for each buffer whose consumers poll, if it has something to write back. */
static void tick(struct daemon *d)
{
	lock_take(&d->lock);
	for (size_t i = 0; i < d->nbuffers; i++) {
		struct buffer *b = d->buffers[i];
		bool polled = false;

		lock_take(&b->lock);
		for (size_t j = 0; j < b->nconsumers && !polled; j++)
			polled = b->consumers[j]->ph != NULL;
		if (polled && pass_needed(b))
			collect_pass(d, b);
		else if (polled)
			idle_tick(d, b);
		lock_drop(&b->lock);
	}
	lock_drop(&d->lock);
}

static void terminate(struct daemon *d)
{
	logmsg("stopping: storing what is written, closing our own descriptors");
	collect_stop(d);
	fuse_session_exit(d->se);
	pthread_kill(d->main_thread, SIGUSR1);	/* out of its sem_wait() in the loop */
}

static void *watch(void *arg)
{
	struct daemon *d = arg;

	helper_use_channel(d->limits.collectors);	/* shared with main: see main() */
	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(d->epoll, ev, 16, -1);

		for (int i = 0; i < n; i++) {
			uint64_t ticks;

			if (ev[i].data.u64 == STOP_ID) {
				if (atomic_load(&d->stopping) == 1)
					terminate(d);
				return NULL;
			}
			if (ev[i].data.u64 == TIMER_ID) {
				if (read(d->timer, &ticks, sizeof(ticks)) > 0)
					tick(d);
			} else {
				attach_exited(d, ev[i].data.u64);
			}
		}
	}
}

int watch_start(struct daemon *d)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = STOP_ID };

	if (epoll_ctl(d->epoll, EPOLL_CTL_ADD, d->stop, &ev))
		return -errno;
	if (d->interval_ms) {
		struct itimerspec its = {
			.it_interval = { d->interval_ms / 1000, (long)(d->interval_ms % 1000) * 1000000 },
			.it_value = { d->interval_ms / 1000, (long)(d->interval_ms % 1000) * 1000000 },
		};

		ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = TIMER_ID };
		if (timerfd_settime(d->timer, 0, &its, NULL) ||
		    epoll_ctl(d->epoll, EPOLL_CTL_ADD, d->timer, &ev))
			return -errno;
	}
	return -pthread_create(&d->watcher, NULL, watch, d);
}

void watch_stop(struct daemon *d)
{
	uint64_t one = 1;
	int none = 0;

	atomic_compare_exchange_strong(&d->stopping, &none, 2);	/* the loop ended by itself: just leave */
	if (write(d->stop, &one, sizeof(one)) == sizeof(one))
		pthread_join(d->watcher, NULL);
}
