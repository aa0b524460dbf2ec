/* SPDX-License-Identifier: MIT */
/*
 * Mapped device memory tracked with libcohmem, and turned into
 * vkFlushMappedMemoryRanges() calls for the layers below.
 *
 * Each mapping is a cohmem region over the pages its pointer range touches
 * (the driver's own mapping: no shadow copy, no signal handler). A sync
 * cleans every region and flushes the written pages, clipped to their
 * mappings; a mapping that could not become a region is flushed whole. With
 * gfxreconstruct's capture layer below in its "assisted" mode, each flushed
 * range becomes one of its fill-memory commands.
 *
 * Locking: one mutex per set, held across the cleans and the flush call
 * below, so that an unmap on another thread cannot free memory a flush is
 * reading. Nothing below calls back into this layer.
 */
#include "mapped.h"

#include <cohmem.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LONG_BITS (8 * sizeof(unsigned long))

struct mapping {
	VkDeviceMemory memory;
	VkDeviceSize alloc_size;
	bool mapped;
	/* while mapped: */
	char *ptr;			/* what vkMapMemory() returned: memory offset @offset */
	VkDeviceSize offset, size;
	cohmem_region *region;		/* NULL: flushed whole */
	uintptr_t first;		/* the region: page-aligned start */
	size_t pages;
	unsigned long *bitmap;
	/*
	 * A clean reported pages that never reached the layers below (the flush
	 * below failed): the next sync flushes the whole mapping, since the
	 * region will not report those pages again.
	 */
	bool whole_next;
	bool in_batch;			/* collected by the sync under way */
};

struct mapped_set {
	pthread_mutex_t lock;
	struct mapped_config cfg;
	struct mapped_next next;
	cohmem_tracker *tracker;	/* created at the first map */
	size_t page_size;
	struct mapping *v;
	size_t n, cap;
	VkMappedMemoryRange *ranges;	/* scratch for one flush */
	size_t nranges, ranges_cap;
	struct mapped_stats stats;
};

int mapped_set_new(const struct mapped_config *cfg, const struct mapped_next *next, struct mapped_set **ret)
{
	struct mapped_set *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->cfg = *cfg;
	s->next = *next;
	s->page_size = (size_t)sysconf(_SC_PAGESIZE);
	*ret = s;
	return 0;
}

/* The region's counters into the set's, before it goes. */
static void count_region(struct mapped_stats *st, const cohmem_region *r)
{
	struct cohmem_region_stats rs;

	if (r && cohmem_region_stats(r, &rs, sizeof(rs)) == 0) {
		st->faults += rs.faults_inferred;
		st->mode_switches += rs.mode_switches;
	}
}

static void mapping_untrack(struct mapped_set *s, struct mapping *m)
{
	count_region(&s->stats, m->region);
	cohmem_region_remove(m->region);
	m->region = NULL;
	free(m->bitmap);
	m->bitmap = NULL;
	m->mapped = false;
	m->whole_next = false;
}

void mapped_set_free(struct mapped_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		mapping_untrack(s, &s->v[i]);
	cohmem_tracker_free(s->tracker);
	free(s->v);
	free(s->ranges);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static struct mapping *find(struct mapped_set *s, VkDeviceMemory memory)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].memory == memory)
			return &s->v[i];
	return NULL;
}

int mapped_set_allocated(struct mapped_set *s, VkDeviceMemory memory, VkDeviceSize size)
{
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct mapping *v = realloc(s->v, cap * sizeof(*v));

		if (!v) {
			ret = -ENOMEM;
			goto out;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (struct mapping){ .memory = memory, .alloc_size = size };
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* The region over the pages [ptr, ptr + size) touches; on any failure the mapping stays untracked. */
static void mapping_track(struct mapped_set *s, struct mapping *m)
{
	uintptr_t start = (uintptr_t)m->ptr, end = start + m->size;
	unsigned flags = s->cfg.adaptive ? COHMEM_REGION_ADAPTIVE : 0;

	if (!s->tracker && cohmem_tracker_new((enum cohmem_backend)s->cfg.backend, 0, &s->tracker) < 0)
		return;
	m->first = start & ~(uintptr_t)(s->page_size - 1);
	m->pages = (end - m->first + s->page_size - 1) / s->page_size;
	m->bitmap = calloc((m->pages + LONG_BITS - 1) / LONG_BITS, sizeof(unsigned long));
	if (!m->bitmap)
		return;
	/* -EEXIST: a page shared with another mapping's region (small allocations of a heap) */
	if (cohmem_region_add(s->tracker, (void *)m->first, m->pages * s->page_size, flags, &m->region) < 0) {
		m->region = NULL;
		free(m->bitmap);
		m->bitmap = NULL;
	}
}

int mapped_set_mapped(struct mapped_set *s, VkDeviceMemory memory, VkDeviceSize offset, VkDeviceSize size,
		      void *ptr)
{
	struct mapping *m;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	m = find(s, memory);
	if (!m || m->mapped || !ptr) {
		ret = -EINVAL;
		goto out;
	}
	m->mapped = true;
	m->ptr = ptr;
	m->offset = offset;
	m->size = size == VK_WHOLE_SIZE ? m->alloc_size - offset : size;
	if (m->size)
		mapping_track(s, m);
	s->stats.maps++;
	s->stats.maps_untracked += !m->region;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/*
 * Room for every range one sync can make, taken before any clean: a clean
 * reports pages once, so nothing may fail between it and the flush.
 */
static int reserve_ranges(struct mapped_set *s, size_t extra)
{
	size_t need = extra;
	VkMappedMemoryRange *r;

	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].mapped)
			need += s->v[i].region ? s->v[i].pages / 2 + 1 : 1;	/* runs alternate */
	if (need <= s->ranges_cap)
		return 0;
	r = realloc(s->ranges, need * sizeof(*r));
	if (!r)
		return -ENOMEM;
	s->ranges = r;
	s->ranges_cap = need;
	return 0;
}

/*
 * [lo, hi) of @m's pointer range, clipped to the mapping and widened to the
 * device's nonCoherentAtomSize within it. The size is always explicit:
 * gfxreconstruct 0.9.18 reads VK_WHOLE_SIZE as "to the end of the
 * allocation", past a mapping that ends before it. A mapping whose offset
 * (or end, short of the allocation's) is not atom-aligned, as a coherent
 * mapping may be, gives a range that is not either: the bytes are flushed
 * anyway, which is what a capture needs.
 */
static void add_range(struct mapped_set *s, const struct mapping *m, uintptr_t lo, uintptr_t hi)
{
	VkDeviceSize atom = s->cfg.atom ? s->cfg.atom : 1, map_end = m->offset + m->size, off, end;

	if (lo < (uintptr_t)m->ptr)
		lo = (uintptr_t)m->ptr;
	if (hi > (uintptr_t)m->ptr + m->size)
		hi = (uintptr_t)m->ptr + m->size;
	off = m->offset + (lo - (uintptr_t)m->ptr);
	end = m->offset + (hi - (uintptr_t)m->ptr);
	off = off / atom * atom < m->offset ? m->offset : off / atom * atom;
	end = (end + atom - 1) / atom * atom > map_end ? map_end : (end + atom - 1) / atom * atom;
	s->ranges[s->nranges++] = (VkMappedMemoryRange){
		.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
		.memory = m->memory,
		.offset = off,
		.size = end - off,
	};
	s->stats.bytes_flushed += end - off;
}

/*
 * The pages of @m written since the last clean, as ranges (room reserved);
 * the whole mapping if it has no region or owes a whole flush.
 */
static void mapping_collect(struct mapped_set *s, struct mapping *m)
{
	size_t ps = s->page_size;
	long n = 0;

	m->in_batch = true;
	if (m->region) {
		memset(m->bitmap, 0, (m->pages + LONG_BITS - 1) / LONG_BITS * sizeof(unsigned long));
		n = cohmem_region_clean(m->region, 0, m->pages, 0, m->bitmap, NULL, NULL);
		if (n < 0) {
			/* what the clean could not report is flushed anyway, and again at every sync */
			s->stats.clean_errors++;
			count_region(&s->stats, m->region);
			cohmem_region_remove(m->region);
			m->region = NULL;
		}
	}
	if (!m->region || m->whole_next) {
		s->stats.pages_flushed += (m->size + ps - 1) / ps;
		if (m->size)
			add_range(s, m, (uintptr_t)m->ptr, (uintptr_t)m->ptr + m->size);
		return;
	}
	s->stats.pages_flushed += (unsigned long long)n;
	for (size_t pg = 0; pg < m->pages && n > 0;) {
		size_t run;

		if (!(m->bitmap[pg / LONG_BITS] & (1ul << (pg % LONG_BITS)))) {
			pg++;
			continue;
		}
		for (run = 1; pg + run < m->pages && (m->bitmap[(pg + run) / LONG_BITS] & (1ul << ((pg + run) % LONG_BITS)));
		     run++)
			;
		add_range(s, m, m->first + pg * ps, m->first + (pg + run) * ps);
		n -= (long)run;
		pg += run;
	}
}

/*
 * The collected ranges and @extra (the application's own) in one call below.
 * If it fails, the mappings collected owe a whole flush: their pages were
 * cleaned and will not be reported again.
 */
static VkResult flush_collected(struct mapped_set *s, uint32_t extra_count, const VkMappedMemoryRange *extra)
{
	VkResult r = VK_SUCCESS;

	if (extra_count)
		memcpy(s->ranges + s->nranges, extra, extra_count * sizeof(*extra));
	if (s->nranges + extra_count)
		r = s->next.flush(s->next.device, (uint32_t)(s->nranges + extra_count), s->ranges);
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].in_batch) {
			s->v[i].whole_next = r != VK_SUCCESS;
			s->v[i].in_batch = false;
		}
	s->nranges = 0;
	return r;
}

VkResult mapped_set_sync(struct mapped_set *s, uint32_t app_count, const VkMappedMemoryRange *app_ranges)
{
	VkResult r;

	pthread_mutex_lock(&s->lock);
	if (reserve_ranges(s, app_count) < 0) {
		r = VK_ERROR_OUT_OF_HOST_MEMORY;	/* nothing cleaned: nothing lost */
		goto out;
	}
	s->stats.syncs++;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].mapped)
			mapping_collect(s, &s->v[i]);
	r = flush_collected(s, app_count, app_ranges);
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

VkResult mapped_set_unmapping(struct mapped_set *s, VkDeviceMemory memory, bool freeing)
{
	struct mapping *m;
	VkResult r = VK_SUCCESS;

	pthread_mutex_lock(&s->lock);
	m = find(s, memory);
	if (m && m->mapped) {
		/* a failure here loses what was written: the mapping goes whatever happens */
		if (reserve_ranges(s, 0) == 0) {
			mapping_collect(s, m);
			r = flush_collected(s, 0, NULL);
		} else {
			r = VK_ERROR_OUT_OF_HOST_MEMORY;
		}
		mapping_untrack(s, m);
	}
	if (m && freeing)
		*m = s->v[--s->n];
	pthread_mutex_unlock(&s->lock);
	return r;
}

void mapped_set_stats(struct mapped_set *s, struct mapped_stats *st)
{
	pthread_mutex_lock(&s->lock);
	*st = s->stats;
	pthread_mutex_unlock(&s->lock);
}
