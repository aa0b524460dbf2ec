/* SPDX-License-Identifier: MIT */
/*
 * VNC authentication (vncauth.h). The check is libvncserver's own —
 * rfbDecryptPasswdFromFile() and the challenge encrypted with the password
 * (rfbEncryptBytes()) — with the comparison in constant time, and around it
 * the record of wrong passwords by address: VNCAUTH_FREE_TRIES are free,
 * then each wrong one makes the address wait VNCAUTH_FIRST_WAIT s, doubled
 * every time, to VNCAUTH_LONGEST_WAIT; the right one clears the record. An
 * answer that arrives while its address must wait is refused unchecked:
 * guesses made on many connections at once count one after another, under
 * one lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vncauth.h"

struct address {
	char host[64];
	unsigned wrong;		/* wrong passwords since the last right one */
	double last, until;	/* the last wrong one; waiting until */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct address addresses[VNCAUTH_ADDRESSES];

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The address's record, or NULL; with make, a new one (replacing the oldest). */
static struct address *find(const char *host, bool make)
{
	struct address *oldest = &addresses[0];

	for (int i = 0; i < VNCAUTH_ADDRESSES; i++) {
		struct address *a = &addresses[i];

		if (a->host[0] && !strncmp(a->host, host, sizeof(a->host) - 1))
			return a;
		if (!a->host[0] || (oldest->host[0] && a->last < oldest->last))
			oldest = a;
	}
	if (!make)
		return NULL;
	*oldest = (struct address){ .wrong = 0 };
	snprintf(oldest->host, sizeof(oldest->host), "%s", host);
	return oldest;
}

long vnc_auth_may_try(const char *host, double now)
{
	struct address *a;
	long left = 0;

	pthread_mutex_lock(&lock);
	a = find(host ? host : "", false);
	if (a && a->until > now)
		left = (long)(a->until - now) + 1;
	pthread_mutex_unlock(&lock);
	return left;
}

void vnc_auth_record(const char *host, bool right, double now)
{
	struct address *a;

	pthread_mutex_lock(&lock);
	a = find(host ? host : "", !right);
	if (a && right) {
		*a = (struct address){ .wrong = 0 };
	} else if (a) {
		unsigned over = ++a->wrong > VNCAUTH_FREE_TRIES ? a->wrong - VNCAUTH_FREE_TRIES : 0;
		double wait = over ? VNCAUTH_FIRST_WAIT : 0;

		for (unsigned i = 1; i < over && wait < VNCAUTH_LONGEST_WAIT; i++)
			wait *= 2;
		a->last = now;
		a->until = now + (wait < VNCAUTH_LONGEST_WAIT ? wait : VNCAUTH_LONGEST_WAIT);
	}
	pthread_mutex_unlock(&lock);
}

bool vnc_auth_waiting(const char *host)
{
	return vnc_auth_may_try(host, now_s()) > 0;
}

/* Equal in time that does not depend on where they differ. */
static bool same(const unsigned char *a, const unsigned char *b, size_t n)
{
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return !d;
}

static rfbBool check(rfbClientPtr cl, const char *response, int len)
{
	unsigned char expected[CHALLENGESIZE];
	char *password;
	long wait;
	bool right;

	/* One at a time: the record of a guess is made before the next is judged. */
	static pthread_mutex_t judging = PTHREAD_MUTEX_INITIALIZER;

	pthread_mutex_lock(&judging);
	wait = vnc_auth_may_try(cl->host, now_s());
	if (wait > 0) {
		pthread_mutex_unlock(&judging);
		fprintf(stderr, "cohmem-vnc: %s: refused unchecked: too many wrong passwords, %ld s to wait\n", cl->host,
			wait);
		return FALSE;
	}
	password = rfbDecryptPasswdFromFile(cl->screen->authPasswdData);
	if (!password) {
		pthread_mutex_unlock(&judging);
		fprintf(stderr, "cohmem-vnc: %s: no password in it now: every client refused\n",
			(char *)cl->screen->authPasswdData);
		return FALSE;
	}
	memcpy(expected, cl->authChallenge, CHALLENGESIZE);
	rfbEncryptBytes(expected, password);
	memset(password, 0, strlen(password));
	free(password);
	right = len == CHALLENGESIZE && same(expected, (const unsigned char *)response, CHALLENGESIZE);
	vnc_auth_record(cl->host, right, now_s());
	pthread_mutex_unlock(&judging);
	if (!right)
		fprintf(stderr, "cohmem-vnc: %s: wrong password\n", cl->host);
	return right;
}

int vnc_auth_setup(rfbScreenInfoPtr screen, const char *file)
{
	char *password = rfbDecryptPasswdFromFile((char *)file);
	struct stat st;

	if (!password) {
		fprintf(stderr, "cohmem-vnc: --rfbauth %s: no password in it (make one with vncpasswd FILE or "
				"x11vnc -storepasswd FILE)\n", file);
		return -EINVAL;
	}
	memset(password, 0, strlen(password));
	free(password);
	if (!stat(file, &st) && (st.st_mode & 077))
		fprintf(stderr, "cohmem-vnc: --rfbauth %s: readable by others (chmod 600 it)\n", file);
	screen->authPasswdData = (void *)file;
	screen->passwordCheck = check;
	return 0;
}
