/* SPDX-License-Identifier: MIT */
/*
 * The mapped memory of one VkDevice, tracked with libcohmem, and the
 * vkFlushMappedMemoryRanges() calls that hand its written pages to the
 * layers and driver below (mapped.c). layer.c owns the Vulkan plumbing.
 */
#ifndef COHMEM_VK_MAPPED_H
#define COHMEM_VK_MAPPED_H

#include <stdbool.h>
#include <vulkan/vulkan.h>

struct mapped_set;

/* What the layer was told by the environment (layer.c reads it once). */
struct mapped_config {
	int backend;		/* enum cohmem_backend */
	bool adaptive;		/* COHMEM_REGION_ADAPTIVE */
	VkDeviceSize atom;	/* the device's nonCoherentAtomSize (flush ranges are aligned to it) */
};

/* The calls below the layer that the set makes itself. */
struct mapped_next {
	VkDevice device;
	PFN_vkFlushMappedMemoryRanges flush;
};

/* Counters, for COHMEM_VK_STATS (layer.c prints them at vkDestroyDevice). */
struct mapped_stats {
	unsigned long long syncs;		/* mapped_set_sync() calls */
	unsigned long long pages_flushed;	/* pages handed down, as ranges */
	unsigned long long bytes_flushed;
	unsigned long long maps, maps_untracked;	/* untracked: flushed whole at every sync */
	unsigned long long clean_errors;	/* cleans that failed: that mapping flushed whole */
	/* libcohmem's counters of the regions gone (cohmem_region_stats()) */
	unsigned long long faults, mode_switches;
};

int mapped_set_new(const struct mapped_config *cfg, const struct mapped_next *next, struct mapped_set **ret);
/* Forgets every mapping (their regions removed) and frees the set; NULL is fine. */
void mapped_set_free(struct mapped_set *s);

/* vkAllocateMemory() succeeded: remember the allocation's size (for VK_WHOLE_SIZE maps). */
int mapped_set_allocated(struct mapped_set *s, VkDeviceMemory memory, VkDeviceSize size);
/*
 * vkMapMemory() succeeded with @ptr: track [ptr, ptr + size). Memory that
 * cannot be tracked (a page shared with another tracked mapping, a backend
 * that refuses it) is flushed whole at every sync instead: nothing is lost.
 */
int mapped_set_mapped(struct mapped_set *s, VkDeviceMemory memory, VkDeviceSize offset, VkDeviceSize size,
		      void *ptr);
/* Before vkUnmapMemory() or vkFreeMemory(): flush what was written, then stop tracking. */
VkResult mapped_set_unmapping(struct mapped_set *s, VkDeviceMemory memory, bool freeing);
/*
 * Clean every tracked mapping and flush the written pages below, with
 * @app_ranges (the application's own flush, or none), in one
 * vkFlushMappedMemoryRanges() call: before a submit, a host signal, or at
 * the application's flush. Every write that completed before the call is in
 * what it flushes, or, if the call below fails, in the next sync's.
 */
VkResult mapped_set_sync(struct mapped_set *s, uint32_t app_count, const VkMappedMemoryRange *app_ranges);
void mapped_set_stats(struct mapped_set *s, struct mapped_stats *st);

#endif
