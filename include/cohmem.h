/* SPDX-License-Identifier: MIT */
/*
 * cohmem — coherent shared memory emulation in user space.
 *
 * libcohmem tells a caller which pages of a memory region were written since
 * the last time it asked, with the contract of the kernel's
 * clean_record_shared_mapping_range() (born as apply_as_clean()) and
 * wp_shared_mapping_range() from mm/mapping_dirty_helpers.c.
 *
 * Conventions, for every function below unless it says otherwise:
 *  - Success is 0 or a count (>= 0); failure is a negative errno value. The
 *    library never uses errno as its interface and never prints.
 *  - Bad input returns an error and changes nothing.
 *  - A "page" is the system page size (sysconf(_SC_PAGESIZE)); page indexes
 *    count from the start of a region.
 *  - Bitmaps are arrays of unsigned long with the kernel's bit order: bit n
 *    is bit (n % COHMEM_BITS_PER_LONG) of word n / COHMEM_BITS_PER_LONG;
 *    COHMEM_BITMAP_LONGS(n) sizes one for n pages.
 *  - Arguments come in the kernel's order: what to look at (first index,
 *    count), then where to record it (bitmap_pgoff, bitmap, start, end).
 *
 * Threads: a tracker may be used from any thread. cohmem_region_clean() and
 * cohmem_region_wrprotect() on one region are serialized internally; calls on
 * different regions run in parallel. cohmem_region_add() and
 * cohmem_region_remove() may run concurrently with each other and with calls
 * on other regions, but a region must not be removed while another thread
 * still uses it, and cohmem_tracker_free() must not race any other call on
 * that tracker or its regions.
 *
 * fork(): the child inherits plain, untracked memory. Every call on a
 * tracker or region it inherited returns -ECHILD, except
 * cohmem_tracker_free(), which there only closes the tracker's descriptors:
 * it takes no lock (one another thread held at the fork stays held in the
 * child) and leaves the memory. The parent's tracking is not touched.
 *
 * The other APIs of libcohmem have headers of their own: <cohmem-fb.h>
 * (dirty rectangles of a framebuffer), <cohmem-buffer.h> (files of the
 * cohmemd daemon) and <cohmem-pfn.h> (memory of the cohmem_pfn module).
 */
#ifndef COHMEM_H
#define COHMEM_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COHMEM_VERSION_MAJOR 0
#define COHMEM_VERSION_MINOR 2
#define COHMEM_VERSION_MICRO 0

/** Bits in one word of a bitmap. */
#define COHMEM_BITS_PER_LONG (CHAR_BIT * sizeof(unsigned long))
/** Words of a bitmap with a bit for each of @npages pages. */
#define COHMEM_BITMAP_LONGS(npages) (((npages) + COHMEM_BITS_PER_LONG - 1) / COHMEM_BITS_PER_LONG)

/** A set of regions tracked with one backend configuration. Opaque. */
typedef struct cohmem_tracker cohmem_tracker;
/** One tracked range of the caller's address space. Opaque. */
typedef struct cohmem_region cohmem_region;

/**
 * How writes are detected. Every backend keeps the "no write is ever lost"
 * guarantee described at cohmem_region_clean(); they differ in the memory they can
 * track and in what they cost.
 *
 * | backend    | kernel                       | memory                       |
 * |------------|------------------------------|------------------------------|
 * | UFFD_ASYNC | >= 6.7 (WP_ASYNC, PAGEMAP_SCAN) | any mapping, kernel writes included |
 * | UFFD_SYNC  | >= 5.7 anon, >= 5.19 shmem   | anonymous and shmem/memfd    |
 * | SOFT_DIRTY | CONFIG_MEM_SOFT_DIRTY        | any writable mapping; exact only while writers are quiescent |
 * | MPROTECT   | any                          | any writable, non-executable mapping; kernel writes fail with EFAULT |
 * | PFN        | the cohmem_pfn module        | its buffers and the PCI BARs given to it, in every process |
 * | PFN_SCAN   | 6.12 with cohmem's PAGEMAP_SCAN patch (PM_SCAN_PFNMAP) | any driver's shared VM_PFNMAP mapping: DRM buffers in VRAM, PCI BARs (sysfs, vfio), ivshmem |
 */
enum cohmem_backend {
	COHMEM_BACKEND_AUTO = 0,     /* best available for each region's memory type */
	COHMEM_BACKEND_UFFD_ASYNC,   /* UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN (Linux >= 6.7) */
	COHMEM_BACKEND_UFFD_SYNC,    /* userfaultfd WP + fault thread: the "mkwrite" method */
	COHMEM_BACKEND_SOFT_DIRTY,   /* clear_refs + pagemap bit 55 */
	COHMEM_BACKEND_MPROTECT,     /* mprotect + SIGSEGV */
	COHMEM_BACKEND_PFN,          /* kernel module for VM_IO pfnmap buffers */
	COHMEM_BACKEND_PFN_SCAN,     /* PAGEMAP_SCAN of any shared VM_PFNMAP mapping (patched kernel) */
};

/**
 * cohmem_region_add() flag: do not apply MADV_NOHUGEPAGE to the region.
 *
 * By default a region is advised MADV_NOHUGEPAGE so that khugepaged cannot
 * fold written pages into a 2 MiB page, which the kernel then reports and
 * protects whole (pages that were not written would be reported). With this
 * flag the caller keeps transparent huge pages and accepts such coarser
 * reports. cohmem_region_remove() does not undo MADV_NOHUGEPAGE: Linux has no
 * advice that returns a range to the system default.
 */
#define COHMEM_REGION_ALLOW_HUGEPAGES (1u << 0)

/**
 * cohmem_region_add() flag: the caller promises that no thread writes to the
 * region while cohmem_region_clean() or cohmem_region_wrprotect() runs on it. It lets
 * COHMEM_BACKEND_AUTO choose backends that are exact only then (soft-dirty,
 * before mprotect). Without the promise a write during a clean may be lost
 * with such a backend. Explicit backends ignore the flag.
 */
#define COHMEM_REGION_QUIESCENT (1u << 1)

/**
 * cohmem_region_add() flag: adaptive tracking. Extra reports are allowed,
 * lost writes never are: a write that completes before cohmem_region_clean()
 * returns is still reported by that clean or a later one. The region then
 * weighs, with costs it measures on this machine (a write fault plus a
 * re-protect, against comparing and copying a page):
 *  - hot pages: a page reported by consecutive cleans is left writable and
 *    reported by every clean (or, with a shadow, whenever it differs from
 *    it), until it has cost as much in reports as a fault would have; then
 *    it is protected again to learn whether it cooled down;
 *  - the region's mode: when tracking costs more than the alternative for
 *    three whole-region cleans in a row, the region stops protecting and
 *    reports by comparing with the caller's shadow (COHMEM_MODE_COMPARE, see
 *    cohmem_region_set_shadow()) or, without one, reports every page
 *    (COHMEM_MODE_COPY) while it samples a small window of pages to see
 *    when the rate falls; it goes back to tracking when that would cost
 *    at least 20 % less, three times in a row.
 * cohmem_region_stats() shows what the policy did. Without the flag a region
 * is exact (see cohmem_region_clean()).
 */
#define COHMEM_REGION_ADAPTIVE (1u << 2)

/** How an adaptive region produces its reports now (cohmem_region_stats()). */
enum cohmem_mode {
	COHMEM_MODE_TRACK = 0,	/* write-protection; also every non-adaptive region */
	COHMEM_MODE_COMPARE,	/* page by page against the caller's shadow */
	COHMEM_MODE_COPY,	/* every page in the range is reported */
};

/**
 * cohmem_tracker_new() - create a tracker.
 * @backend: the backend to use for every region, or COHMEM_BACKEND_AUTO to
 *           choose per region: UFFD_ASYNC where the kernel supports it, else
 *           UFFD_SYNC for anonymous and shmem memory.
 * @flags:   must be 0 (reserved).
 * @ret:     receives the tracker.
 *
 * An explicit backend is set up at once (for UFFD_SYNC this starts the
 * tracker's fault thread), so an unusable backend is reported here. AUTO sets
 * backends up on first use.
 *
 * Return: 0; -EINVAL for a NULL @ret, unknown @backend or flags;
 * -EOPNOTSUPP if @backend cannot work on this kernel or with these privileges
 * (cohmem_backend_supported() says the same without creating anything);
 * -ENOMEM, -EMFILE and other errors from the system.
 * Thread-safety: may be called from any thread.
 */
int cohmem_tracker_new(enum cohmem_backend backend, unsigned flags, cohmem_tracker **ret);

/**
 * cohmem_tracker_free() - remove every region of @t, as
 * cohmem_region_remove() does, stop its threads and free it.
 * @t: the tracker; NULL is fine and does nothing.
 *
 * Every cohmem_region of @t is invalid afterwards.
 * Thread-safety: no other call on @t or its regions may run concurrently.
 */
void cohmem_tracker_free(cohmem_tracker *t);

/**
 * cohmem_tracker_backend() - the backend @t was created with (AUTO stays
 * AUTO; cohmem_region_backend() tells what a region got).
 * Return: the backend, or COHMEM_BACKEND_AUTO for a NULL @t.
 * Thread-safety: any thread.
 */
enum cohmem_backend cohmem_tracker_backend(const cohmem_tracker *t);

/**
 * cohmem_backend_name() - a stable lower-case name for @b: "auto",
 * "uffd-async", "uffd-sync", "soft-dirty", "mprotect" or "pfn".
 * Return: a static string, or NULL for a value outside the enum.
 * Thread-safety: any thread.
 */
const char *cohmem_backend_name(enum cohmem_backend b);

/**
 * cohmem_backend_supported() - whether @b can track memory in this process
 * on this kernel, with these privileges. The answer is probed once per
 * process and then cached.
 *
 * Return: 0 if it can (for AUTO: if any backend can); -EOPNOTSUPP if it
 * cannot; -EINVAL for a value outside the enum.
 * Thread-safety: any thread.
 */
int cohmem_backend_supported(enum cohmem_backend b);

/**
 * cohmem_backend_explain() - why @b can or cannot track memory here, for
 * people: what cohmemctl probe prints.
 * @b:   a backend (AUTO: whether any can).
 * @why: receives a NUL-terminated sentence ("works" when it can), truncated
 *       to @len bytes.
 * @len: room in @why, > 0.
 *
 * Return: what cohmem_backend_supported() returns for @b: 0 or -EOPNOTSUPP;
 * -EINVAL (and @why untouched) for a value outside the enum, a NULL @why or
 * a zero @len.
 * Thread-safety: any thread.
 */
int cohmem_backend_explain(enum cohmem_backend b, char *why, size_t len);

/**
 * cohmem_backend_from_name() - the backend that cohmem_backend_name() calls
 * @name ("auto", "uffd-async", ...): for command lines and configuration.
 * @name: the name, exactly (case matters).
 * @ret:  receives the backend.
 * Return: 0; -EINVAL (and *@ret untouched) for NULL pointers or an unknown name.
 * Thread-safety: any thread.
 */
int cohmem_backend_from_name(const char *name, enum cohmem_backend *ret);

/* Capabilities of a backend in this process, from cohmem_backend_capabilities(). */
#define COHMEM_CAP_EXACT_CONCURRENT (1u << 0) /* exact and lossless while writers run during a clean */
#define COHMEM_CAP_KERNEL_WRITES    (1u << 1) /* kernel-mode writes (read(2) into a region) succeed and are reported */
#define COHMEM_CAP_SPARSE           (1u << 2) /* adding a region does not populate pages never touched */
#define COHMEM_CAP_ANON             (1u << 3) /* private anonymous memory */
#define COHMEM_CAP_SHMEM            (1u << 4) /* shmem: memfd, MAP_SHARED|MAP_ANONYMOUS, /dev/shm */
#define COHMEM_CAP_FILE             (1u << 5) /* shared mappings of other files (ext4, FUSE, ...) */
#define COHMEM_CAP_PFNMAP           (1u << 6) /* VM_IO|VM_PFNMAP mappings of cohmem_pfn buffers */

/**
 * cohmem_backend_capabilities() - what @b can do in this process on this
 * kernel, as COHMEM_CAP_* bits. Probed once per process, then cached.
 * @b:    a backend other than AUTO.
 * @caps: receives the bits.
 *
 * Return: 0; -EINVAL for AUTO, a value outside the enum or a NULL @caps;
 * -EOPNOTSUPP if @b cannot work here at all (then *@caps is 0).
 * Thread-safety: any thread.
 */
int cohmem_backend_capabilities(enum cohmem_backend b, unsigned *caps);

/**
 * cohmem_tracker_capabilities() - what every region of @t can count on, as
 * COHMEM_CAP_* bits: for an explicit backend its capabilities; for AUTO the
 * memory types some backend it may choose can track, and the other bits only
 * where every backend it may choose has them (AUTO with
 * COHMEM_REGION_QUIESCENT regions may also choose soft-dirty, which lacks
 * COHMEM_CAP_EXACT_CONCURRENT).
 * @t:    the tracker.
 * @caps: receives the bits.
 *
 * Return: 0; -EINVAL for a NULL @t or @caps.
 * Thread-safety: any thread.
 */
int cohmem_tracker_capabilities(const cohmem_tracker *t, unsigned *caps);

/**
 * cohmem_region_add() - start tracking [@addr, @addr + @len).
 * @t:     the tracker.
 * @addr:  page-aligned start of an existing mapping.
 * @len:   page-aligned length, > 0. The range may span several mappings.
 * @flags: 0, or any of COHMEM_REGION_ALLOW_HUGEPAGES, COHMEM_REGION_QUIESCENT
 *         and COHMEM_REGION_ADAPTIVE.
 * @ret:   receives the region.
 *
 * The region starts clean: nothing is reported until it is written. The
 * memory stays readable and writable by every thread, and by the kernel
 * (read(2) into it, for example) — see the backend notes at cohmem_region_clean().
 *
 * Return: 0;
 * -EINVAL: NULL @t or @ret, unaligned @addr or @len, @len == 0, the range
 *          wraps, or unknown flags;
 * -ENOMEM: part of the range is not mapped (or no memory);
 * -EEXIST: the range overlaps a region of @t;
 * -EBUSY:  the memory is already tracked by another tracker (or another
 *          userfaultfd user);
 * -EPERM:  the mapping can never be written (a shared mapping of a file
 *          opened read-only), or, for soft-dirty and mprotect, is not
 *          writable now;
 * -EOPNOTSUPP: the tracker's backend cannot track this memory type here.
 * On error nothing is tracked and the memory is as it was.
 * Thread-safety: any thread; serialized with other adds and removes on @t.
 */
int cohmem_region_add(cohmem_tracker *t, void *addr, size_t len, unsigned flags,
		      cohmem_region **ret);

/**
 * cohmem_region_remove() - stop tracking @r, restore plain memory (no
 * write-protection is left behind; see COHMEM_REGION_ALLOW_HUGEPAGES for the
 * one advice that stays) and free @r.
 * @r: the region; NULL is fine and does nothing.
 *
 * The memory may have been unmapped already; that is not an error.
 * Return: 0 (also for NULL); a negative errno if the kernel refused to drop
 * the registration, in which case @r is freed anyway.
 * Thread-safety: no other call on @r may run concurrently.
 */
int cohmem_region_remove(cohmem_region *r);

/**
 * cohmem_region_backend() - the backend that tracks @r (never AUTO).
 * Return: the backend, or COHMEM_BACKEND_AUTO for a NULL @r.
 * Thread-safety: any thread.
 */
enum cohmem_backend cohmem_region_backend(const cohmem_region *r);

/** Counters and state of one region, from cohmem_region_stats(). */
struct cohmem_region_stats {
	enum cohmem_backend backend;	/* as cohmem_region_backend() */
	size_t pages;			/* the region's size in pages */
	unsigned long long cleans;	/* cohmem_region_clean() calls that succeeded */
	unsigned long long pages_reported;	/* pages they reported */
	/*
	 * mprotect: times the region fell back to "every page dirty" because
	 * the kernel refused to split it further (vm.max_map_count): no write
	 * is lost, but every page is reported until a clean protects it again.
	 */
	unsigned long long degradations;
	int degraded;			/* 1 while in that state */
	/* Since 0.1: adaptive regions (COHMEM_REGION_ADAPTIVE); 0 for the others. */
	int adaptive;			/* 1 for an adaptive region */
	enum cohmem_mode mode;		/* how reports are produced now */
	unsigned long long mode_switches;	/* changes of mode */
	unsigned long long faults_inferred;	/* pages the backend found written: a fault each */
	unsigned long long pages_reprotected;	/* pages protected again (after a write or a hot spell) */
	unsigned long long hot_reports;	/* reports of pages kept writable (hot pages, other modes) */
	size_t hot_pages;		/* pages kept writable now, in track mode */
	/*
	 * Since 0.2, adaptive regions: bursts cut short while they happened.
	 * The backend released the whole region once one interval's faults had
	 * cost several copies of it: uffd-sync and mprotect in the fault path,
	 * uffd-async from a watcher thread that follows the process's minor
	 * faults; the next clean reported every page.
	 */
	unsigned long long fault_storms;
};

/**
 * cohmem_region_set_shadow() - give an adaptive region the caller's copy of
 * it, so that it can report by comparing instead of reporting every page.
 * @r:      an adaptive region (COHMEM_REGION_ADAPTIVE).
 * @shadow: the caller's device copy, laid out like the region (page i of the
 *          region at @shadow + i * page size), or NULL to forget it. The
 *          caller keeps it updated: after each clean it copies (at least)
 *          the reported pages from the region, and it changes it no other
 *          way. The library only reads it, during cohmem_region_clean().
 *
 * A page that equals its shadow page when compared is not reported: its
 * bytes are what the caller already has. A write after the compare differs
 * from the shadow and is reported by the next clean.
 * Return: 0; -EINVAL for a NULL @r or a region that is not adaptive.
 * Thread-safety: any thread; serialized with cohmem_region_clean() on @r.
 */
int cohmem_region_set_shadow(cohmem_region *r, const void *shadow);

/**
 * cohmem_region_stats() - fill @st with @r's counters and state.
 * @r:    the region.
 * @st:   receives the statistics.
 * @size: sizeof(*st) as the caller was compiled: later versions append
 *        fields, and only the first @size bytes are written.
 *
 * Return: 0; -EINVAL for a NULL @r or @st, or a @size smaller than the
 * fields of version 0.1 (offsetof(struct cohmem_region_stats, degraded) +
 * sizeof(int)).
 * Thread-safety: any thread; the counters are read without stopping writers
 * or cleans, each one atomically.
 */
int cohmem_region_stats(const cohmem_region *r, struct cohmem_region_stats *st, size_t size);

/**
 * cohmem_region_wrprotect() - mirror of wp_shared_mapping_range(): forget any dirty
 * state of pages [@first_index, @first_index + @nr) of @r and track them
 * afresh, so that only later writes are reported.
 *
 * Return: how many of those pages were writable (written since they were last
 * cleaned or protected) and are protected now; -EINVAL for a NULL @r or a
 * range past the region's end or overflowing; another negative errno if the
 * kernel failed (for example -EPERM or -ENOMEM when the memory was unmapped
 * or replaced behind the library's back). If the kernel fails after some
 * pages were protected, the call returns their count and a later call
 * returns the error.
 * Adaptive regions (COHMEM_REGION_ADAPTIVE): hot pages in the range are
 * protected again; in compare or copy mode, a range that is not the whole
 * region is left released (0 is returned) and the whole region goes back to
 * tracking.
 * Thread-safety: any thread; serialized with cohmem_region_clean() on @r.
 */
long cohmem_region_wrprotect(cohmem_region *r, size_t first_index, size_t nr);

/**
 * cohmem_region_clean() - mirror of clean_record_shared_mapping_range(): report and
 * clean the pages of @r written since they were last cleaned or protected.
 * @r:            the region.
 * @first_index:  first page of @r to look at.
 * @nr:           number of pages to look at (0 does nothing and returns 0).
 * @bitmap_pgoff: page index that bit 0 of @bitmap stands for; must be
 *                <= @first_index.
 * @bitmap:       for each reported page pg, bit (pg - @bitmap_pgoff) is set;
 *                other bits are left as they are.
 * @start, @end:  bound the set bits, relative to @bitmap_pgoff: on return
 *                [*start, *end) covers every bit this call set. On input
 *                *start >= *end means "none set yet"; otherwise the call only
 *                widens the pair. Both are left alone when nothing is
 *                reported. Either may be NULL: a lone @start is only ever
 *                lowered, a lone @end only raised.
 *
 * Every reported page is clean again when the call returns: it is reported
 * again only after a later write. Only writes through this process's own
 * mappings are seen; a write by another process into shared memory is not
 * (except with COHMEM_BACKEND_PFN, below).
 *
 * No write is ever lost: a write that completes before cohmem_region_clean() returns
 * is reported by that call or by a later one. Read the contents of a reported
 * page after the call returns.
 *
 * Exact: a page is reported only if a write to it began since it was last
 * cleaned; a page nobody wrote is never reported, and without concurrent
 * writers each written page is reported exactly once. A store to a protected
 * page faults before it lands, so a write that races a clean can be reported
 * twice: by the clean that ran between the fault and the store, and by the
 * next one (the kernel's mkwrite method behaves the same way). One exception,
 * PFN after a mapping closes, is in the backend notes.
 *
 * Backend notes:
 *  - UFFD_ASYNC: the kernel resolves write faults itself; kernel-mode writes
 *    (read(2) into the region) are tracked.
 *  - UFFD_SYNC: the tracker's fault thread resolves write faults. Kernel-mode
 *    writes are tracked too, except when the process could only open a
 *    user-mode-only userfaultfd (unprivileged, vm.unprivileged_userfaultfd=0
 *    and no access to /dev/userfaultfd): then they fail with EFAULT. A signal
 *    handler that interrupts cohmem_region_clean() must not write into the region.
 *  - SOFT_DIRTY: reads the soft-dirty bits of /proc/self/pagemap, then clears
 *    them with /proc/self/clear_refs. The clear is process-wide: every clean
 *    first collects the bits of every soft-dirty region of the process, so
 *    none loses another's. Exact only while no thread writes to the region
 *    during the clean: a write between the read and the clear is lost.
 *    Clears the soft-dirty state of all other memory of the process too.
 *  - MPROTECT: pages are made read-only; a process-wide SIGSEGV handler
 *    records the first write and makes the page writable. Faults outside
 *    tracked memory go to the handler installed before (libraries that
 *    install theirs later must chain to it). Kernel-mode writes into a
 *    protected page fail with EFAULT (read(2) into the region, for example).
 *    When the kernel refuses to split the mapping further (vm.max_map_count),
 *    the region degrades: it is made writable and every page counts as dirty
 *    until a clean protects it again (see cohmem_region_stats()). Do not
 *    change the protection of tracked memory yourself.
 *  - PFN: the cohmem_pfn module cleans the buffer pages behind the region
 *    in every mapping of the buffer, in every process (the kernel's i_mmap
 *    walk): writes through other mappings of those pages are reported too.
 *    Exact when a mapping goes away (munmap(), mremap(), exit, a forked
 *    child's copy): the module harvests its page-table dirty bits before the
 *    kernel drops them. While a forked child maps a copy, the buffer's
 *    writes go through write faults (the child's copy has no notifier to
 *    harvest it). Kernel-mode writes are tracked.
 *
 * Adaptive regions (COHMEM_REGION_ADAPTIVE) may also report pages that were
 * not written; every write is still reported as above.
 *
 * Return: the number of pages reported (bits set);
 * -EINVAL: NULL @r or @bitmap, a range past the region's end or overflowing,
 *          or @bitmap_pgoff > @first_index;
 * another negative errno if the kernel failed (for example -EPERM when the
 * memory was unmapped or replaced behind the library's back). If the kernel
 * fails after some pages were reported, the call returns their count (those
 * pages are clean now) and a later call returns the error.
 * Thread-safety: any thread; calls on one region are serialized.
 */
long cohmem_region_clean(cohmem_region *r, size_t first_index, size_t nr,
			 size_t bitmap_pgoff, unsigned long *bitmap, size_t *start, size_t *end);

#ifdef __cplusplus
}
#endif

#endif /* COHMEM_H */
