/* SPDX-License-Identifier: MIT */
/*
 * cohmemctl: look at cohmem on this machine.
 *
 *   cohmemctl probe [--json]   what works for this kernel and user, and why
 *   cohmemctl ls MOUNT         the buffers of a cohmemd mount, who maps them
 *   cohmemctl status MOUNT     how that cohmemd is served (its transport)
 *
 * Exit status of probe: 0 if any backend can track memory here, 1 if none;
 * of ls and status: 0, or 1 if MOUNT is not a cohmemd mount; 2 for bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cohmem.h"
#include "cohmem-pfn.h"
#include "cohmemd-proto.h"
#include "kabi.h"
#include "text.h"
#include "uffd.h"	/* for the types of libcohmem's COHMEM_PRIVATE probes */

/* Backends are numbered from AUTO (0) up; cohmem_backend_name() ends the list. */
#define BACKEND_MAX 16

/* ---- facts ----------------------------------------------------------------- */

struct fact {
	const char *key;	/* JSON key */
	const char *label;	/* for people */
	bool ok;
	char detail[160];
};

#define MAX_FACTS 24	/* probe_*() add 16 */

struct report {
	struct fact facts[MAX_FACTS];
	size_t nfacts;
	struct {
		bool supported;
		unsigned caps;
		char why[160];
	} backend[BACKEND_MAX];
	int nbackends;		/* AUTO and every backend this libcohmem names */
	struct {
		const char *key, *label;
		char plain[32], quiescent[32];
	} choice[3];
};

static struct fact *add_fact(struct report *rep, const char *key, const char *label, bool ok,
			     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static struct fact *add_fact(struct report *rep, const char *key, const char *label, bool ok,
			     const char *fmt, ...)
{
	struct fact *f = &rep->facts[rep->nfacts++];
	va_list ap;

	*f = (struct fact){ .key = key, .label = label, .ok = ok };
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
	return f;
}

static long read_sysctl(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static const char *open_error(int err)
{
	return err ? strerror(-err) : "works";
}

/* PAGEMAP_SCAN of shared VM_PFNMAP mappings: the kernel patch series in kernel/patches/. */
static void probe_pfnmap_scan(struct report *rep)
{
	char why[256];
	bool ok = !cohmem_backend_explain(COHMEM_BACKEND_PFN_SCAN, why, sizeof(why));

	add_fact(rep, "pagemap_scan_pfnmap", "  of VM_PFNMAP (PM_SCAN_PFNMAP)", ok, "%s%s",
		 ok ? "yes: any driver's shared pfnmap mapping can be tracked" : "no: ", ok ? "" : why);
}

static void probe_userfaultfd(struct report *rep)
{
	static const struct {
		const char *key, *label;
		uint64_t bit;
		const char *since;
	} features[] = {
		{ "feature_wp", "  UFFD_FEATURE_PAGEFAULT_FLAG_WP", UFFD_FEATURE_PAGEFAULT_FLAG_WP, "5.7" },
		{ "feature_wp_hugetlbfs_shmem", "  UFFD_FEATURE_WP_HUGETLBFS_SHMEM",
		  UFFD_FEATURE_WP_HUGETLBFS_SHMEM, "5.19" },
		{ "feature_wp_unpopulated", "  UFFD_FEATURE_WP_UNPOPULATED", UFFD_FEATURE_WP_UNPOPULATED,
		  "6.4" },
		{ "feature_wp_async", "  UFFD_FEATURE_WP_ASYNC", UFFD_FEATURE_WP_ASYNC, "6.7" },
	};
	static const char *const method_names[] = {
		[UFFD_OPEN_NONE] = "none",
		[UFFD_OPEN_SYSCALL] = "userfaultfd(2)",
		[UFFD_OPEN_DEVICE] = "/dev/userfaultfd",
		[UFFD_OPEN_USER_MODE_ONLY] = "userfaultfd(2) with UFFD_USER_MODE_ONLY",
	};
	const struct uffd_caps *caps = cohmem_private_uffd_caps();
	int sys = cohmem_private_uffd_try_open(UFFD_OPEN_SYSCALL);
	int dev = cohmem_private_uffd_try_open(UFFD_OPEN_DEVICE);
	int umo = cohmem_private_uffd_try_open(UFFD_OPEN_USER_MODE_ONLY);

	add_fact(rep, "userfaultfd", "userfaultfd", !caps->error, "%s%s",
		 caps->error ? "unavailable: " : "opened with ",
		 caps->error ? strerror(-caps->error) : method_names[caps->method]);
	add_fact(rep, "uffd_syscall", "  userfaultfd(2)", !sys, "%s (vm.unprivileged_userfaultfd = %ld)",
		 open_error(sys), read_sysctl("/proc/sys/vm/unprivileged_userfaultfd"));
	add_fact(rep, "uffd_dev", "  /dev/userfaultfd", !dev, "%s", open_error(dev));
	add_fact(rep, "uffd_user_mode_only", "  UFFD_USER_MODE_ONLY", !umo, "%s%s", open_error(umo),
		 umo ? "" : " (kernel-mode faults get EFAULT)");
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		bool ok = caps->features & features[i].bit;

		add_fact(rep, features[i].key, features[i].label, ok, "%s (Linux %s)",
			 ok ? "yes" : "no", features[i].since);
	}
	add_fact(rep, "uffd_wp_register", "  write-protect registration", caps->wp, "%s",
		 caps->wp ? "works" : "refused");
	add_fact(rep, "pagemap_scan", "PAGEMAP_SCAN ioctl", caps->pagemap_scan, "%s (Linux 6.7)",
		 caps->pagemap_scan ? "yes" : "no");
	probe_pfnmap_scan(rep);
}

static void probe_others(struct report *rep)
{
	char why[160];
	bool sd = !cohmem_backend_explain(COHMEM_BACKEND_SOFT_DIRTY, why, sizeof(why));

	add_fact(rep, "soft_dirty", "soft-dirty", sd, "%s%s",
		 sd ? "effective: written pages become soft-dirty after a clear" : "no: ",
		 sd ? "" : why);
	add_fact(rep, "max_map_count", "vm.max_map_count", true,
		 "%ld (mprotect splits a mapping per written page; past this it degrades)",
		 read_sysctl("/proc/sys/vm/max_map_count"));
}

/* Device memory served by cohmem_pfn: the PCI devices given to it, by node. */
static void probe_pfn_devices(struct report *rep)
{
	char list[160] = "", *at = list;
	glob_t g;

	if (access(COHMEM_PFN_DEVICE, F_OK)) {
		add_fact(rep, "pfn_devices", "cohmem_pfn device memory", false, "the module is not loaded");
		return;
	}
	if (glob(COHMEM_PFN_DEVICE_PREFIX "*", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			struct cohmem_pfn_info info = { 0 };
			int fd = open(g.gl_pathv[i], O_RDONLY | O_CLOEXEC), err = fd < 0 ? errno : 0;
			char size[64];

			if (fd >= 0 && ioctl(fd, COHMEM_PFN_INFO, &info))
				err = errno;
			if (fd >= 0)
				close(fd);
			if (err)
				snprintf(size, sizeof(size), "size unknown: %s", strerror(err));
			else
				snprintf(size, sizeof(size), "%llu KiB", (unsigned long long)info.size >> 10);
			at += snprintf(at, sizeof(list) - (size_t)(at - list), "%s%s (%s)", i ? ", " : "",
				       g.gl_pathv[i] + strlen(COHMEM_PFN_DEVICE_PREFIX), size);
			if (at >= list + sizeof(list))
				break;
		}
		globfree(&g);
	}
	add_fact(rep, "pfn_devices", "cohmem_pfn device memory", *list, "%s",
		 *list ? list : "none (give a PCI device: echo VENDOR DEVICE > "
				"/sys/bus/pci/drivers/cohmem_pfn/new_id)");
}

/* Every backend, and why it does not work here: the library's own words. */
static void probe_backends(struct report *rep)
{
	int b;

	for (b = COHMEM_BACKEND_AUTO + 1; b < BACKEND_MAX && cohmem_backend_name(b); b++) {
		rep->backend[b].supported = !cohmem_backend_capabilities(b, &rep->backend[b].caps);
		if (!rep->backend[b].supported)
			cohmem_backend_explain(b, rep->backend[b].why, sizeof(rep->backend[b].why));
	}
	rep->nbackends = b;
}

static const char *fs_name(long type)
{
	switch (type) {
	case TMPFS_MAGIC:
		return "tmpfs";
	case EXT4_SUPER_MAGIC:
		return "ext4";
	case BTRFS_SUPER_MAGIC:
		return "btrfs";
	case XFS_SUPER_MAGIC:
		return "xfs";
	case RAMFS_MAGIC:
		return "ramfs";
	case FUSE_SUPER_MAGIC:
		return "fuse";
	case OVERLAYFS_SUPER_MAGIC:
		return "overlayfs";
	default:
		return "another file system";
	}
}

/* What AUTO picks for len bytes at mem, plain and for quiescent writers. */
static void auto_choice(void *mem, size_t len, unsigned flags, char *out, size_t outlen)
{
	cohmem_tracker *t = NULL;
	cohmem_region *r;
	int err = cohmem_tracker_new(COHMEM_BACKEND_AUTO, 0, &t);

	if (!err)
		err = cohmem_region_add(t, mem, len, flags, &r);
	snprintf(out, outlen, "%s", err ? "none" : cohmem_backend_name(cohmem_region_backend(r)));
	cohmem_tracker_free(t);
}

/* A shared mapping of a regular file on a disk-like file system, or NULL. */
static void *map_disk_file(size_t len, const char **fs)
{
	const char *dirs[] = { getenv("TMPDIR"), "/var/tmp", "/tmp", "." };
	struct statfs st;
	void *mem = MAP_FAILED;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && mem == MAP_FAILED; i++) {
		char path[4096];
		int fd;

		if (!dirs[i])
			continue;
		snprintf(path, sizeof(path), "%s/cohmemctl-XXXXXX", dirs[i]);
		fd = mkstemp(path);
		if (fd < 0)
			continue;
		unlink(path);
		if (!ftruncate(fd, (off_t)len) && !fstatfs(fd, &st)) {
			mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			*fs = fs_name(st.f_type);
		}
		close(fd);
	}
	return mem == MAP_FAILED ? NULL : mem;
}

static void probe_auto(struct report *rep)
{
	size_t len = 4 * (size_t)sysconf(_SC_PAGESIZE);
	int memfd = memfd_create("cohmemctl", MFD_CLOEXEC);
	const char *fs = "none";
	void *mem[3] = {
		mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
		memfd >= 0 && !ftruncate(memfd, (off_t)len)
			? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0)
			: MAP_FAILED,
		map_disk_file(len, &fs),
	};
	static char file_label[64];

	snprintf(file_label, sizeof(file_label), "file-backed (%s)", fs);
	rep->choice[0].key = "anonymous";
	rep->choice[0].label = "anonymous";
	rep->choice[1].key = "memfd";
	rep->choice[1].label = "memfd";
	rep->choice[2].key = "file";
	rep->choice[2].label = file_label;
	for (size_t i = 0; i < 3; i++) {
		if (!mem[i] || mem[i] == MAP_FAILED) {
			strcpy(rep->choice[i].plain, "untested");
			strcpy(rep->choice[i].quiescent, "untested");
			continue;
		}
		auto_choice(mem[i], len, 0, rep->choice[i].plain, sizeof(rep->choice[i].plain));
		auto_choice(mem[i], len, COHMEM_REGION_QUIESCENT, rep->choice[i].quiescent,
			    sizeof(rep->choice[i].quiescent));
		munmap(mem[i], len);
	}
	if (memfd >= 0)
		close(memfd);
}

/* ---- output ---------------------------------------------------------------- */

static const struct {
	unsigned bit;
	const char *name;
} cap_names[] = {
	{ COHMEM_CAP_EXACT_CONCURRENT, "exact-concurrent" },
	{ COHMEM_CAP_KERNEL_WRITES, "kernel-writes" },
	{ COHMEM_CAP_SPARSE, "sparse" },
	{ COHMEM_CAP_ANON, "anon" },
	{ COHMEM_CAP_SHMEM, "shmem" },
	{ COHMEM_CAP_FILE, "file" },
	{ COHMEM_CAP_PFNMAP, "pfnmap" },
};

static void print_text(const struct report *rep, const struct utsname *u)
{
	printf("kernel: %s %s, user: uid %d\n\n", u->sysname, u->release, (int)getuid());
	for (size_t i = 0; i < rep->nfacts; i++)
		printf("%-36s %s\n", rep->facts[i].label, rep->facts[i].detail);
	printf("\nbackends:\n");
	for (int b = COHMEM_BACKEND_AUTO + 1; b < rep->nbackends; b++) {
		printf("  %-11s %-4s", cohmem_backend_name(b), rep->backend[b].supported ? "yes" : "no");
		if (!rep->backend[b].supported) {
			printf(" %s\n", rep->backend[b].why);
			continue;
		}
		for (size_t c = 0; c < sizeof(cap_names) / sizeof(cap_names[0]); c++)
			if (rep->backend[b].caps & cap_names[c].bit)
				printf(" %s", cap_names[c].name);
		printf("\n");
	}
	printf("\nAUTO chooses (plain / with COHMEM_REGION_QUIESCENT):\n");
	for (size_t i = 0; i < 3; i++)
		printf("  %-30s %s / %s\n", rep->choice[i].label, rep->choice[i].plain,
		       rep->choice[i].quiescent);
}

/* Strings here come from the kernel, the C library and text_escape(): escape what JSON needs. */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_json(const struct report *rep, const struct utsname *u)
{
	printf("{\n  \"kernel\": ");
	json_string(u->release);
	printf(",\n  \"uid\": %d,\n  \"facts\": {\n", (int)getuid());
	for (size_t i = 0; i < rep->nfacts; i++) {
		printf("    \"%s\": { \"ok\": %s, \"detail\": ", rep->facts[i].key,
		       rep->facts[i].ok ? "true" : "false");
		json_string(rep->facts[i].detail);
		printf(" }%s\n", i + 1 < rep->nfacts ? "," : "");
	}
	printf("  },\n  \"backends\": {\n");
	for (int b = COHMEM_BACKEND_AUTO + 1; b < rep->nbackends; b++) {
		bool first = true;

		printf("    \"%s\": { \"supported\": %s, ", cohmem_backend_name(b),
		       rep->backend[b].supported ? "true" : "false");
		if (!rep->backend[b].supported) {
			printf("\"why\": ");
			json_string(rep->backend[b].why);
			printf(", ");
		}
		printf("\"capabilities\": [");
		for (size_t c = 0; c < sizeof(cap_names) / sizeof(cap_names[0]); c++) {
			if (rep->backend[b].caps & cap_names[c].bit) {
				printf("%s\"%s\"", first ? "" : ", ", cap_names[c].name);
				first = false;
			}
		}
		printf("] }%s\n", b + 1 < rep->nbackends ? "," : "");
	}
	printf("  },\n  \"auto\": {\n");
	for (size_t i = 0; i < 3; i++)
		printf("    \"%s\": { \"plain\": \"%s\", \"quiescent\": \"%s\" }%s\n", rep->choice[i].key,
		       rep->choice[i].plain, rep->choice[i].quiescent, i < 2 ? "," : "");
	printf("  },\n  \"any_backend\": %s\n}\n",
	       !cohmem_backend_supported(COHMEM_BACKEND_AUTO) ? "true" : "false");
}

static int probe(bool json)
{
	static struct report rep;
	struct utsname u;

	uname(&u);
	probe_userfaultfd(&rep);
	probe_others(&rep);
	probe_pfn_devices(&rep);
	probe_backends(&rep);
	probe_auto(&rep);
	if (json)
		print_json(&rep, &u);
	else
		print_text(&rep, &u);
	return cohmem_backend_supported(COHMEM_BACKEND_AUTO) ? 1 : 0;
}

/* A buffer's name as it prints: its printable text, every other byte escaped (shared/text.h). */
static void escaped_name(const struct cohmem_ioc_ls *e, char *out, size_t size)
{
	char name[sizeof(e->name) + 1];

	memcpy(name, e->name, sizeof(e->name));
	name[sizeof(e->name)] = '\0';	/* whatever the daemon sent */
	text_escape(out, size, name);
}

static void ls_text(const struct cohmem_ioc_ls *e)
{
	char name[4 * sizeof(e->name) + 1];

	escaped_name(e, name, sizeof(name));
	printf("%-24s %12llu %6o %5u:%-5u %9u %8llu ", name, (unsigned long long)e->size, e->mode, e->uid,
	       e->gid, e->consumers, (unsigned long long)e->pending);
	for (uint32_t i = 0; i < e->nmappings && i < COHMEM_LS_MAPPINGS; i++)
		printf(" %d %#llx+%#llx@%#llx", e->mappings[i].pid, (unsigned long long)e->mappings[i].addr,
		       (unsigned long long)e->mappings[i].len, (unsigned long long)e->mappings[i].offset);
	if (e->nmappings > COHMEM_LS_MAPPINGS)
		printf(" ...");
	if (e->hidden)
		printf(" (%u of other users)", e->hidden);
	printf("%s\n", e->nmappings || e->hidden ? "" : " -");
}

static void ls_json(const struct cohmem_ioc_ls *e, bool first)
{
	char name[4 * sizeof(e->name) + 1];

	escaped_name(e, name, sizeof(name));
	printf("%s\n  { \"name\": ", first ? "" : ",");
	json_string(name);
	printf(", \"bytes\": %llu, \"mode\": %u, \"uid\": %u, \"gid\": %u, \"consumers\": %u, "
	       "\"pending\": %llu, \"writebacks\": %u, \"hidden\": %u, \"mappings\": [",
	       (unsigned long long)e->size, e->mode, e->uid, e->gid, e->consumers, (unsigned long long)e->pending,
	       e->writebacks, e->hidden);
	for (uint32_t i = 0; i < e->nmappings && i < COHMEM_LS_MAPPINGS; i++)
		printf("%s{ \"pid\": %d, \"address\": %llu, \"length\": %llu, \"offset\": %llu }",
		       i ? ", " : "", e->mappings[i].pid, (unsigned long long)e->mappings[i].addr,
		       (unsigned long long)e->mappings[i].len, (unsigned long long)e->mappings[i].offset);
	printf("], \"more_mappings\": %s }", e->nmappings > COHMEM_LS_MAPPINGS ? "true" : "false");
}

/* How the cohmemd whose root dir is was started: 0, or -errno (-ENOTTY: a daemon older than the question). */
static int daemon_facts(int dir, struct cohmem_ioc_daemon *t)
{
	memset(t, 0, sizeof(*t));
	if (ioctl(dir, COHMEM_IOC_DAEMON, t))
		return -errno;
	t->transport[sizeof(t->transport) - 1] = '\0';	/* whatever the daemon sent */
	t->why[sizeof(t->why) - 1] = '\0';
	return 0;
}

static void transport_text(const struct cohmem_ioc_daemon *t)
{
	char transport[4 * sizeof(t->transport) + 1], why[4 * sizeof(t->why) + 1];

	text_escape(transport, sizeof(transport), t->transport);
	text_escape(why, sizeof(why), t->why);
	if (!strcmp(t->transport, "uring"))
		printf("transport: uring: FUSE over io_uring, %u queues, %u ring entries\n", t->queues, t->entries);
	else
		printf("transport: %s%s%s%s\n", transport, !strcmp(t->transport, "dev") ? ": /dev/fuse" : "",
		       why[0] ? "; io_uring not used: " : "", why);
}

static int status(const char *mount, bool json)
{
	int dir = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err;
	struct cohmem_ioc_daemon t;
	char transport[4 * sizeof(t.transport) + 1], why[4 * sizeof(t.why) + 1];

	err = dir < 0 ? -errno : daemon_facts(dir, &t);
	if (dir >= 0)
		close(dir);
	if (err) {
		fprintf(stderr, "cohmemctl: %s is not a cohmemd mount, or one older than this cohmemctl (%s)\n",
			mount, strerror(-err));
		return 1;
	}
	if (!json) {
		transport_text(&t);
		printf("durable: %s\n", t.flags & COHMEM_INFO_DURABLE ? "yes" : "no");
		return 0;
	}
	text_escape(transport, sizeof(transport), t.transport);
	text_escape(why, sizeof(why), t.why);
	printf("{ \"transport\": ");
	json_string(transport);
	printf(", \"queues\": %u, \"entries\": %u, \"why\": ", t.queues, t.entries);
	json_string(why);
	printf(", \"durable\": %s }\n", t.flags & COHMEM_INFO_DURABLE ? "true" : "false");
	return 0;
}

static int ls(const char *mount, bool json)
{
	int dir = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct cohmem_ioc_ls *e = calloc(1, sizeof(*e));
	int status = 0;

	if (dir < 0 || !e) {
		fprintf(stderr, "cohmemctl: %s: %s\n", mount, strerror(errno));
		free(e);
		return 1;
	}
	if (json) {
		printf("[");
	} else {
		struct cohmem_ioc_daemon t;

		if (!daemon_facts(dir, &t))	/* an older daemon does not say */
			transport_text(&t);
		printf("%-24s %12s %6s %11s %9s %8s  %s\n", "buffer", "bytes", "mode", "uid:gid", "consumers",
		       "pending", "mappings (pid address+length @offset)");
	}
	for (e->index = 0;; e->index++) {
		uint32_t index = e->index;

		memset(e, 0, sizeof(*e));
		e->index = index;
		if (ioctl(dir, COHMEM_IOC_LS, e)) {
			if (errno != ENOENT) {
				fprintf(stderr, "cohmemctl: %s is not a cohmemd mount (%s)\n", mount,
					strerror(errno));
				status = 1;
			}
			break;
		}
		if (json)
			ls_json(e, index == 0);
		else
			ls_text(e);
	}
	if (json)
		printf("\n]\n");
	close(dir);
	free(e);
	return status;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: cohmemctl probe [--json]\n"
		     "       cohmemctl ls [--json] MOUNT\n"
		     "       cohmemctl status [--json] MOUNT\n"
		     "  probe    what works for this kernel and user, and why; exit 0 if any\n"
		     "           backend can track memory here, 1 if none\n"
		     "  ls       the buffers of the cohmemd mounted at MOUNT: size, mode, owner,\n"
		     "           open descriptions, the most pages pending for one of them, and\n"
		     "           the mappings processes attached; names print as printable\n"
		     "           text, any other byte as \\xHH and a backslash as \\\\; first (not\n"
		     "           with --json) the daemon's transport, as status says it\n"
		     "  status   how the cohmemd mounted at MOUNT is served: its transport\n"
		     "           (uring: FUSE over io_uring, or dev: /dev/fuse, and why not\n"
		     "           io_uring) and whether it is --durable\n"
		     "  --json   the same, for scripts\n");
}

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool json = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 == argc && !strcmp(argv[optind], "probe"))
		return probe(json);
	if (optind + 2 == argc && !strcmp(argv[optind], "ls"))
		return ls(argv[optind + 1], json);
	if (optind + 2 == argc && !strcmp(argv[optind], "status"))
		return status(argv[optind + 1], json);
	usage(stderr);
	return 2;
}
