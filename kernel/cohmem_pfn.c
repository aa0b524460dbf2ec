// SPDX-License-Identifier: GPL-2.0
/*
 * cohmem_pfn: buffers that user space maps VM_SHARED | VM_IO | VM_PFNMAP, as
 * TTM maps device memory, with dirty tracking over every mapping of a buffer
 * by the two methods of vmwgfx_page_dirty.c:
 *
 *  - page table: PTEs are inserted writable; a clean harvests the hardware
 *    dirty bits with clean_record_shared_mapping_range(). No faults.
 *  - mkwrite: PTEs are inserted read-only; a write faults into pfn_mkwrite,
 *    which records the page; a clean write-protects with
 *    wp_shared_mapping_range() first.
 *
 * Both helpers walk the buffer's own address_space (one pseudo inode per
 * buffer), so one clean covers every process and every mapping: the i_mmap
 * walk. A clean always does both harvests: dirty PTEs (present mappings) and
 * the pages pfn_mkwrite recorded.
 *
 * Exact when a mapping goes away: munmap() and exit zap a mapping's PTEs, and
 * a pfnmap PTE's dirty bit dies with it (no struct page to pass it to), before
 * vm_ops->close runs. So every VMA is either
 *
 *  - watched: the mm that mapped it carries our mmu_notifier, whose
 *    invalidate_range_start(MMU_NOTIFY_UNMAP) (munmap, mremap) and release
 *    (exit, exec) harvest the range into pending before the zap; or
 *  - unwatched: a forked child's copy (registering a notifier needs
 *    mm_take_all_locks(), which must not run in the middle of dup_mmap()), or
 *    a mapping whose mm could not take one. Its PTEs become writable only in
 *    pfn_mkwrite, which records the page after it makes the PTE writable:
 *    its open write-protects the range in every mapping (after
 *    copy_page_range() on Linux 6.1, before it on 6.12 and later, with the
 *    parent's faults held off by the fork either way), faults insert
 *    read-only, and while any unwatched VMA exists a clean write-protects
 *    before it harvests, as in the mkwrite method. Nothing of it is lost
 *    when it closes.
 *
 * Two kinds of buffer: memory the module allocates (/dev/cohmem-pfn creates
 * them), and device memory: the BAR of a PCI device given to the driver
 * (echo VENDOR DEVICE > /sys/bus/pci/drivers/cohmem_pfn/new_id), served as
 * /dev/cohmem-pfn-<PCI address>. Every file of a device buffer shares the
 * buffer's address_space (as DRM shares its anon inode's), so the walk finds
 * the mappings of every process that opened the node.
 *
 * Locking: faulted and pending are bitmaps of atomic bits. pfn_mkwrite sets
 * faulted's under the PTE lock; the notifier and mprotect set pending's under
 * PTE locks too, and a clean that could not report gives bits back to it;
 * cleans take them with test_and_clear_bit(). harvest_lock orders a clean's
 * use of the helpers against a VMA becoming unwatched, and guards the
 * unwatched count. clean_lock serializes cleans and protects scratch (which
 * clean_record_shared_mapping_range() writes non-atomically) while its bits
 * are copied to user space. pfn_mm.lock guards a notifier's list of VMAs.
 * Order: mmap_lock -> pfn_mm.lock, mmap_lock -> harvest_lock -> i_mmap_rwsem
 * (taken by the helpers), clean_lock -> harvest_lock. The notifier takes no
 * lock that is held around a call that notifies (the helpers notify every mm
 * they walk), and calls nothing that notifies itself.
 *
 * A buffer lives while its kref does: one reference per open file, and one
 * for the PCI binding of a device buffer. gone_lock orders device removal
 * against faults, so that no PTE to a released BAR outlives the removal.
 */
#include <linux/bitmap.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/io.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pci.h>
#include <linux/pseudo_fs.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/cohmem_pfn.h>

/*
 * Linux 6.3 made vma->vm_flags read-only behind vm_flags_set() (which takes
 * the VMA's write lock where per-VMA locks exist); before it, the field is
 * written directly. Kernels that backported vm_flags_set() to an older
 * version (some distributions did) need the version below adjusted.
 */
#if !IS_ENABLED(CONFIG_MAPPING_DIRTY_HELPERS)
#error "cohmem_pfn needs a kernel built with CONFIG_MAPPING_DIRTY_HELPERS (DRM_VMWGFX selects it)"
#endif
#if !IS_ENABLED(CONFIG_MMU_NOTIFIER)
#error "cohmem_pfn needs a kernel built with CONFIG_MMU_NOTIFIER (KVM selects it)"
#endif
#if IS_ENABLED(CONFIG_HIGHPTE)
#error "cohmem_pfn reads page tables through the kernel's direct map: no CONFIG_HIGHPTE (32-bit)"
#endif

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void vm_flags_set(struct vm_area_struct *vma, unsigned long flags)
{
	vma->vm_flags |= flags;
}
#endif

/*
 * 6.6 gave pte_mkwrite() a VMA (for x86's shadow stacks; x86 no longer
 * inlines it, nor exports it) and named the old one pte_mkwrite_novma().
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 6, 0)
#define pte_mkwrite_novma(pte) pte_mkwrite(pte)
#endif

/* 5.14 added vma_lookup(): find_vma() that only returns a VMA containing addr. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 14, 0)
static inline struct vm_area_struct *vma_lookup(struct mm_struct *mm, unsigned long addr)
{
	struct vm_area_struct *vma = find_vma(mm, addr);

	return vma && addr >= vma->vm_start ? vma : NULL;
}
#endif

#define COHMEM_PFN_MAGIC 0x636f686d	/* "cohm" */
#define MAX_BYTES (16ULL << 30)
/* vmwgfx: small buffers start with the page-table method; 3 scans decide a switch. */
#define SMALL_PAGES 512
#define SWITCH_SCANS 3
#define DIRTY_PERCENT 10

struct pfn_buf {
	struct kref ref;
	struct inode *inode;		/* its address_space is what the helpers walk */
	unsigned long npages;
	struct page **pages;		/* allocated at first fault; NULL for device memory */
	unsigned long base_pfn;		/* device memory: the BAR's first page frame */
	struct rw_semaphore gone_lock;	/* device memory: faults read gone, removal sets it */
	bool gone;
	unsigned long *faulted;		/* atomic bits: recorded by pfn_mkwrite */
	unsigned long *pending;		/* atomic bits: recorded by an unmap, or given back */
	unsigned long *scratch;		/* clean_lock */
	struct mutex clean_lock;
	struct mutex harvest_lock;
	unsigned long unwatched;	/* harvest_lock: VMAs no notifier watches */
	u32 policy;
	u32 method;			/* read by the fault handler without the lock */
	unsigned int change_count;
	u64 switches;
};

static struct vfsmount *pfn_mnt;

static int pfn_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, COHMEM_PFN_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type pfn_fs_type = {
	.name = "cohmem_pfn",
	.init_fs_context = pfn_init_fs_context,
	.kill_sb = kill_anon_super,
};

static void buf_free(struct kref *ref)
{
	struct pfn_buf *buf = container_of(ref, struct pfn_buf, ref);
	unsigned long i;

	for (i = 0; buf->pages && i < buf->npages; i++)
		if (buf->pages[i])
			__free_page(buf->pages[i]);
	kvfree(buf->pages);
	bitmap_free(buf->faulted);
	bitmap_free(buf->pending);
	bitmap_free(buf->scratch);
	if (buf->inode)
		iput(buf->inode);
	kfree(buf);
}

static void buf_put(struct pfn_buf *buf)
{
	kref_put(&buf->ref, buf_free);
}

/* ---- harvesting ---------------------------------------------------------------------- */

/* Move the bits of [first, first + nr) that are set in from to scratch. */
static void take_bits(struct pfn_buf *buf, unsigned long *from, pgoff_t first, pgoff_t nr)
{
	unsigned long bit = first;

	for_each_set_bit_from(bit, from, first + nr)
		if (test_and_clear_bit(bit, from))
			__set_bit(bit, buf->scratch);
}

/*
 * Harvest [first, first + nr) into scratch: the pages pfn_mkwrite recorded,
 * then protect (mkwrite, or while a VMA no notifier watches exists) and take
 * the dirty PTEs of every mapping, then the pages unmaps recorded. Caller
 * holds clean_lock (scratch). Returns the pages found.
 *
 * A write that races is found now or by the next harvest. pfn_mkwrite's bits
 * are taken before the walk: a bit set after they were taken stays for the
 * next harvest, and a PTE made writable before it is seen by this walk: the
 * recording walk reports it if a store has dirtied it, and where the walk
 * protects (mkwrite method, or an unwatched VMA exists) a later store faults
 * and records again; where it does not, the PTE stays dirty for the next
 * walk or the notifier. Taken after the
 * walk, a bit could be set (and its PTE made writable) just after the walk
 * passed, be reported before the store lands, and leave the store in a dirty
 * PTE that a forked child's exit zaps with no notifier to see it. An unmap's
 * bits can be taken last: they come from PTEs a zap is about to remove.
 */
static unsigned long harvest(struct pfn_buf *buf, pgoff_t first, pgoff_t nr)
{
	struct address_space *mapping = buf->inode->i_mapping;
	pgoff_t start = buf->npages, end = 0;
	unsigned long bit, count = 0;

	bitmap_clear(buf->scratch, first, nr);
	take_bits(buf, buf->faulted, first, nr);
	mutex_lock(&buf->harvest_lock);
	if (READ_ONCE(buf->method) == COHMEM_PFN_METHOD_MKWRITE || buf->unwatched)
		wp_shared_mapping_range(mapping, first, nr);
	clean_record_shared_mapping_range(mapping, first, nr, 0, buf->scratch, &start, &end);
	mutex_unlock(&buf->harvest_lock);
	take_bits(buf, buf->pending, first, nr);
	bit = first;
	for_each_set_bit_from(bit, buf->scratch, first + nr)
		count++;
	return count;
}

/* Give scratch's bits back to pending: a report that did not reach user space. */
static void unharvest(struct pfn_buf *buf, pgoff_t first, pgoff_t nr)
{
	unsigned long bit;

	bit = first;
	for_each_set_bit_from(bit, buf->scratch, first + nr)
		set_bit(bit, buf->pending);
}

/* ---- mappings: which VMAs a notifier watches --------------------------------------- */

/* Our notifier in one mm, with the VMAs of buffers it maps. */
struct pfn_mm {
	struct mmu_notifier notifier;
	struct mutex lock;		/* vmas */
	struct list_head vmas;
};

/* A VMA of a buffer: its vm_private_data. */
struct pfn_vma {
	struct pfn_buf *buf;
	struct vm_area_struct *vma;
	struct mm_struct *mm;		/* compared only: a VMA in another mm is a fork's copy */
	struct pfn_mm *watch;		/* NULL: unwatched */
	struct list_head link;		/* in watch->vmas */
};

struct unmap_walk {
	struct vm_area_struct *vma;
	struct pfn_buf *buf;
	void (*pte_fn)(pte_t *pte, unsigned long addr, struct unmap_walk *w);
};

static pgoff_t walk_pgoff(const struct unmap_walk *w, unsigned long addr)
{
	return w->vma->vm_pgoff + ((addr - w->vma->vm_start) >> PAGE_SHIFT);
}

/*
 * With the PTE lock held (walk_ptes): make the PTE
 * read-only, then read its dirty bit. A write after the first step faults
 * (x86 sets the dirty bit only through a walk that checks the write bit
 * again), into pfn_mkwrite while the VMA can still be found; no TLB flush is
 * needed, the zap that follows flushes. The PTE stays dirty, so a clean that
 * walks it concurrently reports it as well: nothing waits for anything.
 */
static void unmap_pte(pte_t *pte, unsigned long addr, struct unmap_walk *w)
{
	pgoff_t pgoff = walk_pgoff(w, addr);

	if (!pte_present(ptep_get(pte)))
		return;
	ptep_set_wrprotect(w->vma->vm_mm, addr, pte);
	if (pte_dirty(ptep_get(pte)) && pgoff < w->buf->npages)
		set_bit(pgoff, w->buf->pending);
}

/* The page table (PMD entry) that maps addr in mm, or NULL where there is none. */
static pmd_t *find_pmd(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	p4d_t *p4d;
	pud_t *pud;
	pmd_t *pmd;

	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return NULL;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return NULL;
	pud = pud_offset(p4d, addr);
	if (pud_none(*pud) || pud_bad(*pud))
		return NULL;
	pmd = pmd_offset(pud, addr);
	/* A huge entry is bad here too: buffers are mapped by PTEs only. */
	if (pmd_none(*pmd) || pmd_bad(*pmd))
		return NULL;
	return pmd;
}

/*
 * w->pte_fn on every PTE of [addr, end) that exists, under its page-table
 * lock, allocating nothing: what apply_to_existing_page_range() did, which
 * Linux 7.x no longer exports to modules. Page tables are looked up without
 * the RCU dance of pte_offset_map_lock() (not exported either): the callers
 * keep them from being freed (munmap, mremap and mprotect hold mmap_lock; at
 * exit, no one else uses the mm), and a 64-bit kernel has no highmem page
 * tables.
 */
static void walk_ptes(struct unmap_walk *w, unsigned long addr, unsigned long end)
{
	struct mm_struct *mm = w->vma->vm_mm;

	while (addr < end) {
		unsigned long next = pmd_addr_end(addr, end);
		pmd_t *pmd = find_pmd(mm, addr);

		if (pmd) {
			spinlock_t *ptl = pte_lockptr(mm, pmd);
			pte_t *pte = pte_offset_kernel(pmd, addr);

			spin_lock(ptl);
			for (; addr < next; addr += PAGE_SIZE, pte++)
				w->pte_fn(pte, addr, w);
			spin_unlock(ptl);
		}
		addr = next;
	}
}

/*
 * What [start, end) of this VMA's page tables holds goes to pending before
 * its PTEs are zapped. The caller (munmap, mremap, exit) keeps the page
 * tables from being freed. Not the mapping_dirty_helpers: they notify, and
 * this runs inside a notifier.
 */
static void unmap_harvest(struct pfn_vma *rec, unsigned long start, unsigned long end)
{
	struct vm_area_struct *vma = rec->vma;
	struct unmap_walk w = { .vma = vma, .buf = rec->buf, .pte_fn = unmap_pte };
	unsigned long lo = max(start, vma->vm_start), hi = min(end, vma->vm_end);

	if (lo < hi)
		walk_ptes(&w, lo, hi);
}

/* munmap() and mremap() notify MMU_NOTIFY_UNMAP before they zap or move PTEs. */
static int mm_invalidate_range_start(struct mmu_notifier *sub, const struct mmu_notifier_range *range)
{
	struct pfn_mm *pm = container_of(sub, struct pfn_mm, notifier);
	struct pfn_vma *rec;
	bool ours = false;

	if (range->event != MMU_NOTIFY_UNMAP)
		return 0;
	if (!mmu_notifier_range_blockable(range)) {
		/* The OOM reaper: it skips pfnmap VMAs, so a range of ours is not expected. */
		if (!mutex_trylock(&pm->lock))
			return -EAGAIN;
		list_for_each_entry(rec, &pm->vmas, link)
			ours |= rec->vma->vm_start < range->end && range->start < rec->vma->vm_end;
		mutex_unlock(&pm->lock);
		return ours ? -EAGAIN : 0;
	}
	mutex_lock(&pm->lock);
	list_for_each_entry(rec, &pm->vmas, link)
		unmap_harvest(rec, range->start, range->end);
	mutex_unlock(&pm->lock);
	return 0;
}

/* The mm's last user is gone (exit, exec): exit_mmap() zaps everything after this. */
static void mm_release(struct mmu_notifier *sub, struct mm_struct *mm)
{
	struct pfn_mm *pm = container_of(sub, struct pfn_mm, notifier);
	struct pfn_vma *rec;

	mutex_lock(&pm->lock);
	list_for_each_entry(rec, &pm->vmas, link)
		unmap_harvest(rec, 0, ULONG_MAX);
	mutex_unlock(&pm->lock);
}

static struct mmu_notifier *mm_alloc_notifier(struct mm_struct *mm)
{
	struct pfn_mm *pm = kzalloc(sizeof(*pm), GFP_KERNEL);

	if (!pm)
		return ERR_PTR(-ENOMEM);
	mutex_init(&pm->lock);
	INIT_LIST_HEAD(&pm->vmas);
	return &pm->notifier;
}

static void mm_free_notifier(struct mmu_notifier *sub)
{
	kfree(container_of(sub, struct pfn_mm, notifier));
}

static const struct mmu_notifier_ops pfn_mm_ops = {
	.release = mm_release,
	.invalidate_range_start = mm_invalidate_range_start,
	.alloc_notifier = mm_alloc_notifier,
	.free_notifier = mm_free_notifier,
};

/*
 * Watch rec's VMA with the notifier of its mm, registering one if the mm has
 * none (mm_take_all_locks(): the caller holds mmap_lock for writing and no
 * other lock, as in mmap). Returns false when the mm cannot take one.
 */
static bool vma_watch(struct pfn_vma *rec)
{
	struct mmu_notifier *sub = mmu_notifier_get_locked(&pfn_mm_ops, rec->mm);
	struct pfn_mm *pm;

	if (IS_ERR(sub))
		return false;
	pm = container_of(sub, struct pfn_mm, notifier);
	mutex_lock(&pm->lock);
	list_add(&rec->link, &pm->vmas);
	mutex_unlock(&pm->lock);
	rec->watch = pm;
	return true;
}

/*
 * rec's VMA has no notifier: write-protect its pages in every mapping before
 * they can be written through it, and have cleans protect as long as it
 * lives. A fork's open runs after copy_page_range() on 5.10 and 6.1 (the
 * child's copied PTEs are protected here, before the child runs) and before
 * it from 6.12 on (the parent's are, and the copy takes them read-only; the
 * fork holds the parent's faults off). Under harvest_lock, so that a clean
 * that ran without protecting is over before this VMA's PTEs can be used.
 */
static void vma_unwatch(struct pfn_vma *rec)
{
	struct pfn_buf *buf = rec->buf;
	struct vm_area_struct *vma = rec->vma;

	mutex_lock(&buf->harvest_lock);
	buf->unwatched++;
	wp_shared_mapping_range(buf->inode->i_mapping, vma->vm_pgoff, vma_pages(vma));
	mutex_unlock(&buf->harvest_lock);
}

static struct pfn_vma *vma_rec(struct pfn_buf *buf, struct vm_area_struct *vma, gfp_t gfp)
{
	struct pfn_vma *rec = kzalloc(sizeof(*rec), gfp);

	if (rec) {
		rec->buf = buf;
		rec->vma = vma;
		rec->mm = vma->vm_mm;
	}
	return rec;
}

/* ---- mappings: faults ---------------------------------------------------------------- */

static struct page *buf_page(struct pfn_buf *buf, pgoff_t pgoff)
{
	struct page *page = READ_ONCE(buf->pages[pgoff]), *fresh;

	if (page)
		return page;
	/* Charged to the memory cgroup of the process that touches the page. */
	fresh = alloc_page(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT);
	if (!fresh)
		return NULL;
	page = cmpxchg(&buf->pages[pgoff], NULL, fresh);
	if (page) {		/* another fault won */
		__free_page(fresh);
		return page;
	}
	return fresh;
}

/*
 * Device memory: removal sets gone under the write lock and then zaps every
 * mapping, so a fault either inserts before the zap or sees gone. The cache
 * mode is PAT's for the range (write-combining for a prefetchable BAR).
 */
static vm_fault_t device_insert(struct pfn_buf *buf, struct vm_fault *vmf, pgprot_t prot)
{
	vm_fault_t ret = VM_FAULT_SIGBUS;

	down_read(&buf->gone_lock);
	if (!buf->gone)
		ret = vmf_insert_pfn_prot(vmf->vma, vmf->address, buf->base_pfn + vmf->pgoff, prot);
	up_read(&buf->gone_lock);
	return ret;
}

static vm_fault_t buf_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct pfn_vma *rec = vma->vm_private_data;
	struct pfn_buf *buf = rec->buf;
	struct page *page;
	pgprot_t prot;

	if (vmf->pgoff >= buf->npages)
		return VM_FAULT_SIGBUS;
	/* mkwrite, or a VMA no notifier watches: read-only, so that the first write goes through pfn_mkwrite. */
	if (READ_ONCE(buf->method) == COHMEM_PFN_METHOD_MKWRITE || !rec->watch)
		prot = vm_get_page_prot(vma->vm_flags & ~VM_SHARED);
	else
		prot = vm_get_page_prot(vma->vm_flags);
	if (!buf->pages)
		return device_insert(buf, vmf, prot);
	page = buf_page(buf, vmf->pgoff);
	if (!page)
		return VM_FAULT_OOM;
	return vmf_insert_pfn_prot(vma, vmf->address, page_to_pfn(page), prot);
}

/*
 * A write to a read-only PTE. The PTE is made writable and dirty here, under
 * its lock, as finish_mkwrite_fault() would, and only then is the page
 * recorded, in faulted (which a clean takes before it walks). Returning 0
 * would have the core make the PTE writable after the bit is set: a clean
 * could then walk past the read-only PTE, take the bit, and return before the
 * store lands, and a forked child's exit would zap the dirty PTE that holds
 * it with no notifier to see it. A PTE that changed since the fault (a clean
 * cleaned it, another thread's fault made it writable, a device removal
 * zapped it) is left as it is: the write retries.
 */
static vm_fault_t buf_pfn_mkwrite(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct pfn_vma *rec = vma->vm_private_data;
	spinlock_t *ptl = pte_lockptr(vma->vm_mm, vmf->pmd);
	pte_t *pte = pte_offset_kernel(vmf->pmd, vmf->address);
	pte_t old, entry;

	if (vmf->pgoff >= rec->buf->npages)
		return VM_FAULT_SIGBUS;
	spin_lock(ptl);
	if (pte_same(ptep_get(pte), vmf->orig_pte)) {
		flush_cache_page(vma, vmf->address, pte_pfn(vmf->orig_pte));
		old = ptep_modify_prot_start(vma, vmf->address, pte);
		entry = pte_mkdirty(pte_mkyoung(pte_mkwrite_novma(old)));
#ifdef _PAGE_BIT_SAVED_DIRTY
		/* x86 6.6+: a read-only PTE keeps its dirty bit as SavedDirty (pte_mkwrite() moves it back). */
		entry = pte_clear_saveddirty(entry);
#endif
		ptep_modify_prot_commit(vma, vmf->address, pte, old, entry);
		update_mmu_cache(vma, vmf->address, pte);
		set_bit(vmf->pgoff, rec->buf->faulted);
	}
	spin_unlock(ptl);
	return VM_FAULT_NOPAGE;
}

/*
 * A new VMA from an old one: a split or mremap() in the same mm (watched as
 * the old one was), or a fork's copy in the child's mm (unwatched). open()
 * cannot fail, and a VMA without its record could not be tracked: the record
 * is a small allocation that may wait for memory.
 */
static void buf_vm_open(struct vm_area_struct *vma)
{
	struct pfn_vma *old = vma->vm_private_data;
	struct pfn_vma *rec = vma_rec(old->buf, vma, GFP_KERNEL | __GFP_NOFAIL);

	vma->vm_private_data = rec;
	if (!(old->watch && old->mm == vma->vm_mm && vma_watch(rec)))
		vma_unwatch(rec);
}

/*
 * The mapping is gone. A watched one was harvested by the notifier before
 * its PTEs went; an unwatched one's PTEs were writable only after a
 * pfn_mkwrite that recorded the page (under the PTE lock, before any store
 * through it could land). Nothing to record.
 */
static void buf_vm_close(struct vm_area_struct *vma)
{
	struct pfn_vma *rec = vma->vm_private_data;
	struct pfn_buf *buf = rec->buf;

	if (rec->watch) {
		mutex_lock(&rec->watch->lock);
		list_del(&rec->link);
		mutex_unlock(&rec->watch->lock);
		mmu_notifier_put(&rec->watch->notifier);
	} else {
		mutex_lock(&buf->harvest_lock);
		buf->unwatched--;
		mutex_unlock(&buf->harvest_lock);
	}
	kfree(rec);
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 11, 0)
/* A read-only dirty PTE: its dirty bit to pending, and clean. */
static void clean_ro_pte(pte_t *pte, unsigned long addr, struct unmap_walk *w)
{
	pgoff_t pgoff = walk_pgoff(w, addr);
	pte_t old;

	if (!pte_present(ptep_get(pte)) || pte_write(ptep_get(pte)) || !pte_dirty(ptep_get(pte)))
		return;
	if (pgoff < w->buf->npages)
		set_bit(pgoff, w->buf->pending);
	old = ptep_modify_prot_start(w->vma, addr, pte);
	ptep_modify_prot_commit(w->vma, addr, pte, old, pte_mkclean(old));
}

/*
 * mprotect() makes a read-only PTE of a shared mapping writable without a
 * fault when it is dirty (can_change_pte_writable(): the filesystem has been
 * told). An unwatched VMA has such PTEs between a clean's two walks (the
 * write-protecting one keeps dirty bits for the recording one): made
 * writable, they would take stores no pfn_mkwrite records, which the child's
 * exit would zap unseen. So their dirty bits go to pending first, and they
 * stay read-only. mprotect holds mmap_lock for writing (and the VMA's write
 * lock): no fault makes a PTE of this VMA writable until it is done. A
 * watched VMA's dirty PTEs are the notifier's at unmap.
 */
static int buf_vm_mprotect(struct vm_area_struct *vma, unsigned long start, unsigned long end,
			   unsigned long newflags)
{
	struct pfn_vma *rec = vma->vm_private_data;
	struct unmap_walk w = { .vma = vma, .buf = rec->buf, .pte_fn = clean_ro_pte };

	if (!rec->watch && (newflags & VM_WRITE))
		walk_ptes(&w, max(start, vma->vm_start), min(end, vma->vm_end));
	return 0;
}
#endif

static const struct vm_operations_struct buf_vm_ops = {
	.fault = buf_fault,
	.pfn_mkwrite = buf_pfn_mkwrite,
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 11, 0)
	.mprotect = buf_vm_mprotect,
#endif
	.open = buf_vm_open,
	.close = buf_vm_close,
};

/*
 * A private mapping would be a COW mapping: walk_page_mapping() stops at the
 * first VMA that is not VM_SHARED | VM_MAYWRITE, so it would hide every later
 * mapping from the helpers. Refused, as TTM refuses COW mappings.
 */
static int buf_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct pfn_buf *buf = file->private_data;
	unsigned long pages = vma_pages(vma);
	struct pfn_vma *rec;

	if ((vma->vm_flags & (VM_SHARED | VM_MAYWRITE)) != (VM_SHARED | VM_MAYWRITE))
		return -EINVAL;
	if (READ_ONCE(buf->gone))	/* a hint: device_insert() is what keeps the BAR safe */
		return -ENODEV;
	if (vma->vm_pgoff >= buf->npages || pages > buf->npages - vma->vm_pgoff)
		return -EINVAL;
	rec = vma_rec(buf, vma, GFP_KERNEL);
	if (!rec)
		return -ENOMEM;
	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &buf_vm_ops;
	vma->vm_private_data = rec;
	/* Without a notifier (signal pending, no memory) the mapping is tracked as a fork's copy. */
	if (!vma_watch(rec))
		vma_unwatch(rec);
	return 0;
}

/* ---- cleaning ------------------------------------------------------------------------ */

static void set_method(struct pfn_buf *buf, u32 method)
{
	if (buf->method == method)
		return;
	/* To mkwrite: protect now, so that writes start to fault; dirty PTEs stay dirty. */
	if (method == COHMEM_PFN_METHOD_MKWRITE)
		wp_shared_mapping_range(buf->inode->i_mapping, 0, buf->npages);
	WRITE_ONCE(buf->method, method);
	buf->switches++;
	buf->change_count = 0;
}

/* vmwgfx's rule, after a scan of the whole buffer that found count pages written. */
static void adapt_method(struct pfn_buf *buf, unsigned long count)
{
	bool toward_other;

	if (buf->policy != COHMEM_PFN_POLICY_AUTO)
		return;
	if (buf->method == COHMEM_PFN_METHOD_PAGETABLE)
		toward_other = count == 0;	/* idle: faults would be rare, scans are wasted */
	else
		toward_other = 100UL * count / buf->npages > DIRTY_PERCENT;
	buf->change_count = toward_other ? buf->change_count + 1 : 0;
	if (buf->change_count >= SWITCH_SCANS)
		set_method(buf, buf->method == COHMEM_PFN_METHOD_PAGETABLE ? COHMEM_PFN_METHOD_MKWRITE
									     : COHMEM_PFN_METHOD_PAGETABLE);
}

/*
 * OR scratch's bits of [first, first + nr) into the user bitmap at bit
 * (page - pgoff). The user bitmap is __u64 words (bit n is bit n % 64 of
 * word n / 64) whatever the caller's long is: a 32-bit process gets the
 * same layout as a 64-bit one, so compat_ptr_ioctl() is all it needs.
 */
static int copy_bits_to_user(struct pfn_buf *buf, const struct cohmem_pfn_clean *a)
{
	u64 __user *ubm = u64_to_user_ptr(a->bitmap);
	unsigned long w0 = (a->first - a->bitmap_pgoff) / 64;
	unsigned long w1 = (a->first + a->nr - 1 - a->bitmap_pgoff) / 64;
	unsigned long bit, rel;
	u64 *words;
	int err = 0;

	words = kvmalloc_array(w1 - w0 + 1, sizeof(u64), GFP_KERNEL);
	if (!words)
		return -ENOMEM;
	if (copy_from_user(words, ubm + w0, (w1 - w0 + 1) * sizeof(u64))) {
		err = -EFAULT;
		goto out;
	}
	bit = a->first;
	for_each_set_bit_from(bit, buf->scratch, a->first + a->nr) {
		rel = bit - a->bitmap_pgoff - w0 * 64;
		words[rel / 64] |= 1ULL << (rel % 64);
	}
	if (copy_to_user(ubm + w0, words, (w1 - w0 + 1) * sizeof(u64)))
		err = -EFAULT;
out:
	kvfree(words);
	return err;
}

/* The bits set, relative to bitmap_pgoff, widen [start, end) as apply_as_clean does. */
static void widen(struct pfn_buf *buf, struct cohmem_pfn_clean *a)
{
	unsigned long lo = find_next_bit(buf->scratch, a->first + a->nr, a->first), hi = lo, bit;
	bool none = a->start >= a->end;

	bit = lo;
	for_each_set_bit_from(bit, buf->scratch, a->first + a->nr)
		hi = bit + 1;
	if (none || lo - a->bitmap_pgoff < a->start)
		a->start = lo - a->bitmap_pgoff;
	if (none || hi - a->bitmap_pgoff > a->end)
		a->end = hi - a->bitmap_pgoff;
}

static bool range_ok(struct pfn_buf *buf, u64 first, u64 nr)
{
	return nr && nr <= buf->npages && first <= buf->npages - nr;
}

static long buf_clean(struct pfn_buf *buf, void __user *uarg)
{
	struct cohmem_pfn_clean a;
	int err = 0;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (!range_ok(buf, a.first, a.nr) || a.bitmap_pgoff > a.first || !a.bitmap)
		return -EINVAL;
	mutex_lock(&buf->clean_lock);
	a.count = harvest(buf, a.first, a.nr);
	if (a.first == 0 && a.nr == buf->npages)
		adapt_method(buf, a.count);
	if (a.count) {
		err = copy_bits_to_user(buf, &a);
		if (!err) {
			widen(buf, &a);
			err = copy_to_user(uarg, &a, sizeof(a)) ? -EFAULT : 0;
		}
		if (err)
			unharvest(buf, a.first, a.nr);
	} else {
		err = copy_to_user(uarg, &a, sizeof(a)) ? -EFAULT : 0;
	}
	mutex_unlock(&buf->clean_lock);
	return err;
}

static long buf_wrprotect(struct pfn_buf *buf, void __user *uarg)
{
	struct cohmem_pfn_wrprotect a;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (!range_ok(buf, a.first, a.nr))
		return -EINVAL;
	mutex_lock(&buf->clean_lock);
	a.count = harvest(buf, a.first, a.nr);
	mutex_unlock(&buf->clean_lock);
	return copy_to_user(uarg, &a, sizeof(a)) ? -EFAULT : 0;
}

static long buf_method(struct pfn_buf *buf, unsigned int cmd, void __user *uarg)
{
	struct cohmem_pfn_method a = { 0 };

	if (cmd == COHMEM_PFN_SET_METHOD) {
		if (copy_from_user(&a, uarg, sizeof(a)))
			return -EFAULT;
		if (a.policy > COHMEM_PFN_POLICY_MKWRITE)
			return -EINVAL;
	}
	mutex_lock(&buf->clean_lock);
	if (cmd == COHMEM_PFN_SET_METHOD) {
		buf->policy = a.policy;
		if (a.policy != COHMEM_PFN_POLICY_AUTO)
			set_method(buf, a.policy == COHMEM_PFN_POLICY_MKWRITE ? COHMEM_PFN_METHOD_MKWRITE
									      : COHMEM_PFN_METHOD_PAGETABLE);
	}
	a.policy = buf->policy;
	a.method = buf->method;
	a.switches = buf->switches;
	mutex_unlock(&buf->clean_lock);
	return copy_to_user(uarg, &a, sizeof(a)) ? -EFAULT : 0;
}

static long buf_info(struct pfn_buf *buf, void __user *uarg)
{
	struct cohmem_pfn_info a = {
		.size = (u64)buf->npages << PAGE_SHIFT,
		.flags = buf->pages ? 0 : COHMEM_PFN_INFO_DEVICE,
	};

	return copy_to_user(uarg, &a, sizeof(a)) ? -EFAULT : 0;
}

static long buf_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct pfn_buf *buf = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case COHMEM_PFN_CLEAN:
		return buf_clean(buf, uarg);
	case COHMEM_PFN_WRPROTECT:
		return buf_wrprotect(buf, uarg);
	case COHMEM_PFN_SET_METHOD:
	case COHMEM_PFN_GET_METHOD:
		return buf_method(buf, cmd, uarg);
	case COHMEM_PFN_INFO:
		return buf_info(buf, uarg);
	default:
		return -ENOTTY;
	}
}

/* A descriptor's last close: every mapping made through it is gone too. */
static int buf_release(struct inode *inode, struct file *file)
{
	buf_put(file->private_data);
	return 0;
}

static const struct file_operations buf_fops = {
	.owner = THIS_MODULE,
	.mmap = buf_mmap,
	.unlocked_ioctl = buf_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = buf_release,
};

/* ---- /dev/cohmem-pfn ----------------------------------------------------------------- */

/* A buffer of size bytes with its own inode; with_pages: memory of its own, else device memory. */
static struct pfn_buf *buf_new(u64 size, bool with_pages)
{
	struct pfn_buf *buf = kzalloc(sizeof(*buf), GFP_KERNEL);
	struct inode *inode;

	if (!buf)
		return ERR_PTR(-ENOMEM);
	kref_init(&buf->ref);
	buf->npages = size >> PAGE_SHIFT;
	if (with_pages)
		buf->pages = kvcalloc(buf->npages, sizeof(*buf->pages), GFP_KERNEL_ACCOUNT);
	buf->faulted = bitmap_zalloc(buf->npages, GFP_KERNEL);
	buf->pending = bitmap_zalloc(buf->npages, GFP_KERNEL);
	buf->scratch = bitmap_zalloc(buf->npages, GFP_KERNEL);
	if ((with_pages && !buf->pages) || !buf->faulted || !buf->pending || !buf->scratch) {
		buf_put(buf);
		return ERR_PTR(-ENOMEM);
	}
	inode = alloc_anon_inode(pfn_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		buf_put(buf);
		return ERR_CAST(inode);
	}
	inode->i_size = size;
	buf->inode = inode;
	init_rwsem(&buf->gone_lock);
	mutex_init(&buf->clean_lock);
	mutex_init(&buf->harvest_lock);
	buf->policy = COHMEM_PFN_POLICY_AUTO;
	buf->method = buf->npages < SMALL_PAGES ? COHMEM_PFN_METHOD_PAGETABLE : COHMEM_PFN_METHOD_MKWRITE;
	return buf;
}

/* Reserve a descriptor, tell user space its number, and only then install it. */
static int install_fd(struct file *file, __s32 __user *ufd)
{
	int fd = get_unused_fd_flags(O_CLOEXEC);

	if (fd < 0)
		return fd;
	if (put_user(fd, ufd)) {
		put_unused_fd(fd);
		return -EFAULT;
	}
	fd_install(fd, file);
	return 0;
}

static long dev_create(struct cohmem_pfn_create __user *uarg)
{
	struct cohmem_pfn_create a;
	struct pfn_buf *buf;
	struct file *file;
	int err;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (a.flags || !a.size || !PAGE_ALIGNED(a.size))
		return -EINVAL;
	if (a.size > MAX_BYTES)
		return -EFBIG;
	buf = buf_new(a.size, true);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	/* The file takes an inode reference of its own, and buf's one kref. */
	ihold(buf->inode);
	/* alloc_file_pseudo() takes no module reference, but the last fput() drops one. */
	__module_get(THIS_MODULE);
	file = alloc_file_pseudo(buf->inode, pfn_mnt, "cohmem-pfn", O_RDWR, &buf_fops);
	if (IS_ERR(file)) {
		module_put(THIS_MODULE);
		iput(buf->inode);
		buf_put(buf);
		return PTR_ERR(file);
	}
	file->private_data = buf;
	err = install_fd(file, &uarg->fd);
	if (err)
		fput(file);	/* releases buf */
	return err;
}

static long dev_lookup(struct cohmem_pfn_lookup __user *uarg)
{
	struct mm_struct *mm = current->mm;
	struct cohmem_pfn_lookup a;
	struct vm_area_struct *vma;
	struct file *file = NULL;
	int err;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (!a.len || !PAGE_ALIGNED(a.addr) || !PAGE_ALIGNED(a.len) || a.addr + a.len < a.addr)
		return -EINVAL;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, a.addr);
	if (vma && vma->vm_ops == &buf_vm_ops && a.addr + a.len <= vma->vm_end) {
		file = get_file(vma->vm_file);
		a.pgoff = vma->vm_pgoff + ((a.addr - vma->vm_start) >> PAGE_SHIFT);
	}
	mmap_read_unlock(mm);
	if (!file)
		return -ENODEV;	/* not one mapping of a cohmem_pfn buffer */
	if (copy_to_user(&uarg->pgoff, &a.pgoff, sizeof(a.pgoff))) {
		fput(file);
		return -EFAULT;
	}
	err = install_fd(file, &uarg->fd);
	if (err)
		fput(file);
	return err;
}

static long dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case COHMEM_PFN_CREATE:
		return dev_create((void __user *)arg);
	case COHMEM_PFN_LOOKUP:
		return dev_lookup((void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice pfn_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "cohmem-pfn",
	.fops = &dev_fops,
	.mode = 0666,
};

/* ---- device memory: a PCI BAR given to the driver ---------------------------------- */
#ifdef CONFIG_PCI

static int bar = -1;
module_param(bar, int, 0444);
MODULE_PARM_DESC(bar, "BAR of a bound PCI device to serve (default -1: its largest memory BAR)");

struct pfn_device {
	struct miscdevice misc;
	char name[32];
	struct pfn_buf *buf;
	int bar;
	bool wc;	/* the BAR's range is reserved write-combining */
};

/* Opened through /dev/cohmem-pfn-<PCI address>: the same buffer, the same address_space. */
static int device_open(struct inode *inode, struct file *file)
{
	struct pfn_device *dev = container_of(file->private_data, struct pfn_device, misc);

	/* misc_open() holds misc_mtx: removal deregisters before it drops the binding's reference. */
	kref_get(&dev->buf->ref);
	file->private_data = dev->buf;
	file->f_mapping = dev->buf->inode->i_mapping;
	return 0;
}

static const struct file_operations device_fops = {
	.owner = THIS_MODULE,
	.open = device_open,
	.mmap = buf_mmap,
	.unlocked_ioctl = buf_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = buf_release,
};

static int pick_bar(struct pci_dev *pdev)
{
	int i, best = -1;

	if (bar >= 0)
		return bar < PCI_STD_NUM_BARS && (pci_resource_flags(pdev, bar) & IORESOURCE_MEM) ? bar : -1;
	for (i = 0; i < PCI_STD_NUM_BARS; i++)
		if ((pci_resource_flags(pdev, i) & IORESOURCE_MEM) &&
		    (best < 0 || pci_resource_len(pdev, i) > pci_resource_len(pdev, best)))
			best = i;
	return best;
}

/*
 * The device goes away: no fault may map its BAR again, what was written is
 * harvested into pending (its PTEs' dirty bits die with the zap), and every
 * mapping loses its PTEs. Later accesses get SIGBUS; cleans still report.
 */
static void buf_retire(struct pfn_buf *buf)
{
	struct address_space *mapping = buf->inode->i_mapping;

	down_write(&buf->gone_lock);
	buf->gone = true;
	up_write(&buf->gone_lock);
	mutex_lock(&buf->clean_lock);
	wp_shared_mapping_range(mapping, 0, buf->npages);
	harvest(buf, 0, buf->npages);
	unharvest(buf, 0, buf->npages);
	unmap_mapping_range(mapping, 0, 0, 1);
	mutex_unlock(&buf->clean_lock);
}

static int device_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int b = pick_bar(pdev), err;
	struct pfn_device *dev;
	resource_size_t start, len;

	if (b < 0)
		return -ENODEV;
	start = pci_resource_start(pdev, b);
	len = pci_resource_len(pdev, b);
	if (!PAGE_ALIGNED(start) || !PAGE_ALIGNED(len) || !len || len > MAX_BYTES)
		return -ENODEV;
	dev = devm_kzalloc(&pdev->dev, sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	err = pci_enable_device_mem(pdev);
	if (err)
		return err;
	err = pci_request_region(pdev, b, "cohmem_pfn");
	if (err)
		goto disable;
	/*
	 * Prefetchable memory (ivshmem's shared memory, a GPU aperture) may be
	 * write-combined; without the reservation PAT maps it uncached. (Not
	 * the devm_ variant: it is younger than the oldest kernel we build on.)
	 */
	if (pci_resource_flags(pdev, b) & IORESOURCE_PREFETCH)
		dev->wc = !arch_io_reserve_memtype_wc(start, len);
	dev->buf = buf_new(len, false);
	if (IS_ERR(dev->buf)) {
		err = PTR_ERR(dev->buf);
		goto release;
	}
	dev->buf->base_pfn = start >> PAGE_SHIFT;
	dev->bar = b;
	snprintf(dev->name, sizeof(dev->name), "cohmem-pfn-%s", pci_name(pdev));
	dev->misc = (struct miscdevice){
		.minor = MISC_DYNAMIC_MINOR,
		.name = dev->name,
		.fops = &device_fops,
		.parent = &pdev->dev,
		.mode = 0600,	/* device memory: root decides who gets it */
	};
	err = misc_register(&dev->misc);
	if (err)
		goto put;
	pci_set_drvdata(pdev, dev);
	dev_info(&pdev->dev, "BAR %d (%llu KiB) as /dev/%s\n", b, (unsigned long long)len >> 10, dev->name);
	return 0;
put:
	buf_put(dev->buf);
release:
	if (dev->wc)
		arch_io_free_memtype_wc(start, len);
	pci_release_region(pdev, b);
disable:
	pci_disable_device(pdev);
	return err;
}

static void device_remove(struct pci_dev *pdev)
{
	struct pfn_device *dev = pci_get_drvdata(pdev);

	misc_deregister(&dev->misc);
	buf_retire(dev->buf);
	buf_put(dev->buf);
	if (dev->wc)
		arch_io_free_memtype_wc(pci_resource_start(pdev, dev->bar), pci_resource_len(pdev, dev->bar));
	pci_release_region(pdev, dev->bar);
	pci_disable_device(pdev);
}

/* No id table: the driver takes only devices it is given (new_id, driver_override). */
static struct pci_driver pfn_pci_driver = {
	.name = "cohmem_pfn",
	.probe = device_probe,
	.remove = device_remove,
};

static int device_memory_init(void)
{
	return pci_register_driver(&pfn_pci_driver);
}

static void device_memory_exit(void)
{
	pci_unregister_driver(&pfn_pci_driver);
}
#else
static int device_memory_init(void)
{
	return 0;
}

static void device_memory_exit(void)
{
}
#endif

static int __init cohmem_pfn_init(void)
{
	int err;

	pfn_mnt = kern_mount(&pfn_fs_type);
	if (IS_ERR(pfn_mnt))
		return PTR_ERR(pfn_mnt);
	err = misc_register(&pfn_dev);
	if (err)
		goto unmount;
	err = device_memory_init();
	if (err)
		goto deregister;
	return 0;
deregister:
	misc_deregister(&pfn_dev);
unmount:
	kern_unmount(pfn_mnt);
	return err;
}

static void __exit cohmem_pfn_exit(void)
{
	device_memory_exit();
	misc_deregister(&pfn_dev);
	kern_unmount(pfn_mnt);
	/* Notifiers put by the last munmap are freed after an SRCU grace period, by our code. */
	mmu_notifier_synchronize();
}

module_init(cohmem_pfn_init);
module_exit(cohmem_pfn_exit);
MODULE_DESCRIPTION("cohmem: VM_IO pfnmap buffers with apply_as_clean dirty tracking");
MODULE_LICENSE("GPL");
