/* SPDX-License-Identifier: MIT */
/*
 * cohmemd-demo: coherent shared memory between processes, end to end.
 *
 * It starts cohmemd on a temporary mount, creates a framebuffer there as a
 * buffer file, and forks a producer process that maps it, attaches the
 * mapping and animates it. This process is the consumer: it sleeps in
 * poll(2) on its own descriptor until the daemon has pages for it, asks
 * cohmem_buffer_clean() which, turns them into rectangles and copies those
 * into its own "device" copy. At the end the producer stops, one last clean
 * runs, and the device copy must equal both the buffer and the daemon's
 * state file. Then the daemon is stopped and unmounts.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cohmem-buffer.h"
#include "options.h"
#include "scene.h"


static char dir[] = "/tmp/cohmemd-demo-XXXXXX", mnt[64], state[64], buf_path[96];

static void die(const char *what)
{
	fprintf(stderr, "cohmemd-demo: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Start cohmemd and wait until the mount answers. */
static pid_t start_daemon(const char *cohmemd)
{
	char log[96];
	struct stat top, m;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/cohmemd.log", dir);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0)
			dup2(fd, 2);
		execl(cohmemd, cohmemd, "--mount", mnt, "--state-dir", state, "--interval", "20",
		      (char *)NULL);
		_exit(127);
	}
	if (stat(dir, &top))
		die(dir);
	for (int i = 0; i < 500; i++) {
		if (stat(mnt, &m) == 0 && m.st_dev != top.st_dev)
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
		usleep(10000);
	}
	fprintf(stderr, "cohmemd-demo: cohmemd did not start (see %s)\n", log);
	exit(1);
}

/* The producer: its own process, mapping the buffer file. */
static void producer(const struct scene_options *o, const struct cohmem_fb *fb, size_t size, int stop)
{
	int fd = open(buf_path, O_RDWR);
	unsigned char *m = fd < 0 ? MAP_FAILED : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct timespec pace = { 0, (long)o->tick_us * 1000 };
	struct pollfd p = { .fd = stop, .events = POLLIN };
	int err;

	if (m == MAP_FAILED)
		die("producer: mmap");
	err = cohmem_buffer_attach(fd, m, size, 0);
	if (err) {
		fprintf(stderr, "cohmemd-demo: producer: attach: %s\n", strerror(-err));
		_exit(1);
	}
	for (unsigned t = 0; poll(&p, 1, 0) == 0; t++) {
		scene_draw(o, fb, m, t);
		nanosleep(&pace, NULL);
	}
	cohmem_buffer_detach(fd, m);
	_exit(0);
}

/* What moved in one frame: the rectangles that changed, as WxH+X+Y. */
static void print_moved(unsigned frame, long dirty, const struct cohmem_rect *r, long n)
{
	printf("frame %3u: %4ld dirty pages -> %2ld rectangles:", frame, dirty, n);
	for (long i = 0; i < n && i < 4; i++)
		printf(" %ux%u+%u+%u", r[i].w, r[i].h, r[i].x, r[i].y);
	printf("%s\n", n > 4 ? " ..." : "");
}

struct consumer {
	int fd;
	const unsigned char *view;	/* its read-only mapping of the buffer */
	unsigned char *device;
	unsigned long *bitmap;
	struct cohmem_rect rects[32];
	unsigned long long pages, rects_total, bytes;
};

/* One clean: rectangles into the device copy. Returns the rectangles, or -errno. */
static long consume(struct consumer *c, const struct cohmem_fb *fb, size_t pages, long *dirty)
{
	long n;

	memset(c->bitmap, 0, COHMEM_BITMAP_LONGS(pages) * sizeof(unsigned long));
	*dirty = cohmem_buffer_clean(c->fd, 0, pages, 0, c->bitmap, NULL, NULL);
	if (*dirty <= 0)
		return *dirty;
	n = cohmem_fb_rects(fb, 0, c->bitmap, c->rects, 32);
	if (n > 0)
		n = cohmem_fb_refine(fb, c->view, c->device, c->rects, (size_t)n);
	if (n > 0)
		c->bytes += (unsigned long long)cohmem_fb_copy(fb, c->device, c->view, c->rects, (size_t)n);
	c->pages += (unsigned long long)*dirty;
	c->rects_total += n > 0 ? (unsigned long long)n : 0;
	return n;
}

/* Whether this user may open /dev/fuse, which mounting needs; says why not. */
static bool fuse_usable(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "cohmemd-demo: cannot open /dev/fuse (%s): FUSE mounts need it (udev makes it "
				"0666; run as root here)\n", strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

/* The daemon to start: path if given, else the one built next to this program. */
static void daemon_at(const char *path, char *out, size_t len)
{
	ssize_t n;

	if (path) {
		snprintf(out, len, "%s", path);
		return;
	}
	n = readlink("/proc/self/exe", out, len - 32);
	if (n <= 0)
		die("/proc/self/exe");
	out[n] = '\0';
	strcpy(strrchr(out, '/') + 1, "../daemon/cohmemd");
}

/* One last clean (the producer is quiet now); the copy must equal the mapping and the state file. */
static int check_copies(struct consumer *c, const struct cohmem_fb *fb, size_t size, size_t pages)
{
	unsigned char *file = malloc(size);
	char statefile[128];
	long dirty;
	int sfd, differ;

	consume(c, fb, pages, &dirty);
	snprintf(statefile, sizeof(statefile), "%s/framebuffer", state);
	sfd = open(statefile, O_RDONLY);
	if (!file || sfd < 0 || pread(sfd, file, size, 0) != (ssize_t)size)
		die(statefile);
	differ = memcmp(c->device, c->view, size) || memcmp(c->device, file, size);
	if (differ)
		fprintf(stderr, "cohmemd-demo: FAILED: the consumer's copy differs\n");
	close(sfd);
	free(file);
	return differ;
}

/* SIGTERM: cohmemd must unmount and exit 0; then the temporary directory goes. 0 or 1. */
static int stop_daemon(pid_t daemon)
{
	char cmd[128];
	int status;

	kill(daemon, SIGTERM);
	if (waitpid(daemon, &status, 0) != daemon || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "cohmemd-demo: cohmemd did not stop cleanly (status %#x; see %s/cohmemd.log)\n",
			status, dir);
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		return 1;
	printf("cohmemd stopped and unmounted %s\n", mnt);
	return 0;
}

int main(int argc, char *argv[])
{
	char cohmemd[PATH_MAX];
	const char *daemon_path = NULL;
	unsigned frames = 60, woken = 0;
	const struct option_spec specs[] = {
		{ "frames", 'n', OPTION_UNSIGNED, &frames, "frames to consume" },
		{ "cohmemd", 0, OPTION_STRING, &daemon_path, "the daemon (default: built next to this program)" },
		{ 0 },
	};
	struct scene_options o;
	struct cohmem_fb fb;
	struct consumer c = { 0 };
	size_t size, pages;
	int stop[2], status;
	pid_t daemon, prod;

	status = options_parse("Usage: cohmemd-demo [OPTIONS]\n"
			       "Starts cohmemd on a temporary mount, animates a framebuffer in a buffer file\n"
			       "from a producer process, and receives its dirty rectangles in this process\n"
			       "through poll(2) and cohmem_buffer_clean(); prints what moved; stops and unmounts.\n",
			       specs, argc, argv);
	if (status >= 0)
		return status;
	if (!fuse_usable())
		return 77;
	daemon_at(daemon_path, cohmemd, sizeof(cohmemd));
	scene_defaults(&o);
	fb = (struct cohmem_fb){ 0, (size_t)o.width * 4, o.width, o.height, 4 };
	size = fb.stride * fb.height;
	pages = (size + 4095) / 4096;
	if (!mkdtemp(dir))
		die("mkdtemp");
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(buf_path, sizeof(buf_path), "%s/framebuffer", mnt);
	if (mkdir(mnt, 0755))
		die(mnt);
	daemon = start_daemon(cohmemd);
	printf("cohmemd-demo: cohmemd serves %s; buffer %s, %ux%u, 32 bpp\n", mnt, buf_path, o.width,
	       o.height);

	c.fd = open(buf_path, O_RDWR | O_CREAT, 0644);
	if (c.fd < 0 || ftruncate(c.fd, (off_t)size))
		die(buf_path);
	c.view = mmap(NULL, size, PROT_READ, MAP_SHARED, c.fd, 0);
	c.device = calloc(1, size);
	c.bitmap = calloc(COHMEM_BITMAP_LONGS(pages), sizeof(unsigned long));
	if (c.view == MAP_FAILED || !c.device || !c.bitmap || pipe(stop))
		die("setup");
	prod = fork();
	if (prod == 0)
		producer(&o, &fb, size, stop[0]);
	printf("cohmemd-demo: producer pid %d animates it; this process (pid %d) consumes\n", (int)prod,
	       (int)getpid());

	for (unsigned f = 0; f < frames; f++) {
		struct pollfd p = { .fd = c.fd, .events = POLLIN };
		long dirty, n;

		if (poll(&p, 1, 2000) == 1)
			woken++;
		n = consume(&c, &fb, pages, &dirty);
		if (n < 0) {
			fprintf(stderr, "cohmemd-demo: clean: %s\n", strerror((int)-n));
			return 1;
		}
		if (f < 5 || f % 20 == 0)
			print_moved(f, dirty, c.rects, n);
	}
	if (write(stop[1], "s", 1) != 1 || waitpid(prod, &status, 0) != prod || status)
		die("producer");
	if (check_copies(&c, &fb, size, pages))
		return 1;
	printf("%u frames (%u woken by poll): %llu dirty pages, %llu rectangles, %llu bytes moved "
	       "instead of %llu for full frames (%.1fx less)\n",
	       frames, woken, c.pages, c.rects_total, c.bytes, (unsigned long long)size * (frames + 1),
	       c.bytes ? (double)size * (frames + 1) / (double)c.bytes : 0.0);
	printf("the consumer's copy equals the buffer and the daemon's state file: coherent\n");

	munmap((void *)c.view, size);
	close(c.fd);
	free(c.device);
	free(c.bitmap);
	return stop_daemon(daemon);
}
