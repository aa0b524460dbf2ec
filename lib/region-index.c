/* SPDX-License-Identifier: MIT */
/*
 * The sorted index of regions (internal.h): a tracker's regions, for the
 * fault paths that map an address to its region, and the process's claims.
 * Plain data: the owner provides the locking.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/* Index of the first region starting at or after addr. */
static size_t index_of(const struct region_index *idx, uintptr_t addr)
{
	size_t lo = 0, hi = idx->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (idx->regions[mid]->start < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uintptr_t region_end(const cohmem_region *r)
{
	return region_addr(r, r->npages);
}

cohmem_region *region_index_at(const struct region_index *idx, uintptr_t addr)
{
	size_t i = index_of(idx, addr + 1);	/* first region starting after addr */
	cohmem_region *r = i ? idx->regions[i - 1] : NULL;

	return r && addr < region_end(r) ? r : NULL;
}

bool region_index_overlaps(const struct region_index *idx, uintptr_t start, uintptr_t end)
{
	size_t i = index_of(idx, start);

	if (i > 0 && region_end(idx->regions[i - 1]) > start)
		return true;
	return i < idx->n && idx->regions[i]->start < end;
}

int region_index_insert(struct region_index *idx, cohmem_region *r)
{
	size_t i = index_of(idx, r->start);

	if (idx->n == idx->capacity) {
		size_t capacity = idx->capacity ? 2 * idx->capacity : 8;
		cohmem_region **regions = realloc(idx->regions, capacity * sizeof(*regions));

		if (!regions)
			return -ENOMEM;
		idx->regions = regions;
		idx->capacity = capacity;
	}
	for (size_t j = idx->n; j > i; j--)
		idx->regions[j] = idx->regions[j - 1];
	idx->regions[i] = r;
	idx->n++;
	return 0;
}

void region_index_remove(struct region_index *idx, cohmem_region *r)
{
	size_t i = index_of(idx, r->start);

	if (i == idx->n || idx->regions[i] != r)
		return;
	idx->n--;
	for (; i < idx->n; i++)
		idx->regions[i] = idx->regions[i + 1];
	/*
	 * Empty: the array goes too. The process's claims index lives as long as
	 * the library; a library dlclose()d with its last region gone (a Vulkan
	 * layer's, at vkDestroyInstance) must leave nothing allocated behind.
	 */
	if (!idx->n) {
		free(idx->regions);
		idx->regions = NULL;
		idx->capacity = 0;
	}
}
