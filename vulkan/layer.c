/* SPDX-License-Identifier: MIT */
/*
 * VK_LAYER_COHMEM_flush_coherent: a Vulkan layer that turns the
 * application's writes into mapped memory (HOST_COHERENT included) into
 * vkFlushMappedMemoryRanges() calls for the layers below it, with libcohmem
 * finding the written pages. Its first user is gfxreconstruct's capture
 * layer in "assisted" mode, which records exactly the flushed ranges:
 *
 *   VK_INSTANCE_LAYERS=VK_LAYER_COHMEM_flush_coherent:VK_LAYER_LUNARG_gfxreconstruct
 *   GFXRECON_MEMORY_TRACKING_MODE=assisted
 *
 * (cohmem-gfxrecon-capture(1) sets both). Before every queue submit and
 * host signal (vkSetEvent, vkSignalSemaphore), at every flush the
 * application makes and before every unmap, the layer cleans the mappings'
 * regions and flushes the pages written since the last time. See
 * cohmem-gfxrecon-capture(1).
 *
 * This file is the Vulkan plumbing: the loader interface, the dispatch
 * chain of each instance and device, and the calls the layer wraps. What is
 * done with mapped memory is in mapped.c.
 */
#include <cohmem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vk_layer.h>
#include <vulkan/vulkan.h>

#include "mapped.h"

#define LAYER_NAME "VK_LAYER_COHMEM_flush_coherent"
#define EXPORT __attribute__((visibility("default")))

/* The loader's dispatch table pointer: the same for an instance and its physical devices, a device and its queues. */
static void *key_of(const void *dispatchable)
{
	return *(void *const *)dispatchable;
}

struct instance {
	struct instance *next_in_list;
	void *key;
	VkInstance handle;
	PFN_vkGetInstanceProcAddr gipa;
	PFN_vkDestroyInstance destroy;
};

struct device {
	struct device *next_in_list;
	void *key;
	VkDevice handle;
	PFN_vkGetDeviceProcAddr gdpa;
	PFN_vkDestroyDevice destroy;
	PFN_vkAllocateMemory allocate;
	PFN_vkFreeMemory free;
	PFN_vkMapMemory map;
	PFN_vkUnmapMemory unmap;
	PFN_vkFlushMappedMemoryRanges flush;
	PFN_vkQueueSubmit submit;
	PFN_vkQueueSubmit2 submit2;
	PFN_vkQueueSubmit2KHR submit2_khr;
	PFN_vkSetEvent set_event;
	PFN_vkSignalSemaphore signal_semaphore;
	PFN_vkSignalSemaphoreKHR signal_semaphore_khr;
#ifdef VK_KHR_map_memory2
	PFN_vkMapMemory2KHR map2_khr;
	PFN_vkUnmapMemory2KHR unmap2_khr;
#endif
	struct mapped_set *mapped;
};

/* Instances and devices are few and long-lived: lists under one lock. */
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct instance *instances;
static struct device *devices;

static struct instance *instance_of(const void *dispatchable)
{
	struct instance *i;

	pthread_mutex_lock(&list_lock);
	for (i = instances; i && i->key != key_of(dispatchable); i = i->next_in_list)
		;
	pthread_mutex_unlock(&list_lock);
	return i;
}

static struct device *device_of(const void *dispatchable)
{
	struct device *d;

	pthread_mutex_lock(&list_lock);
	for (d = devices; d && d->key != key_of(dispatchable); d = d->next_in_list)
		;
	pthread_mutex_unlock(&list_lock);
	return d;
}

/* COHMEM_VK_BACKEND (a backend's name, default auto) and COHMEM_VK_ADAPTIVE (1: adaptive regions). */
static struct mapped_config config_from_env(void)
{
	struct mapped_config cfg = { .backend = COHMEM_BACKEND_AUTO };
	const char *backend = getenv("COHMEM_VK_BACKEND"), *adaptive = getenv("COHMEM_VK_ADAPTIVE");
	enum cohmem_backend b;

	if (backend && *backend && cohmem_backend_from_name(backend, &b) == 0)
		cfg.backend = b;
	else if (backend && *backend)
		fprintf(stderr, "%s: COHMEM_VK_BACKEND=%s is no backend; using auto\n", LAYER_NAME, backend);
	cfg.adaptive = adaptive && strcmp(adaptive, "1") == 0;
	return cfg;
}

static VKAPI_ATTR VkResult VKAPI_CALL layer_CreateInstance(const VkInstanceCreateInfo *info,
							   const VkAllocationCallbacks *alloc, VkInstance *ret)
{
	VkLayerInstanceCreateInfo *link = (VkLayerInstanceCreateInfo *)info->pNext;
	PFN_vkGetInstanceProcAddr gipa;
	PFN_vkCreateInstance create;
	struct instance *i;
	VkResult r;

	while (link && !(link->sType == VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO &&
			 link->function == VK_LAYER_LINK_INFO))
		link = (VkLayerInstanceCreateInfo *)link->pNext;
	if (!link)
		return VK_ERROR_INITIALIZATION_FAILED;
	gipa = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
	link->u.pLayerInfo = link->u.pLayerInfo->pNext;	/* the next layer finds its own link */
	create = (PFN_vkCreateInstance)gipa(VK_NULL_HANDLE, "vkCreateInstance");
	i = calloc(1, sizeof(*i));
	if (!create || !i) {
		free(i);
		return VK_ERROR_INITIALIZATION_FAILED;
	}
	r = create(info, alloc, ret);
	if (r != VK_SUCCESS) {
		free(i);
		return r;
	}
	i->handle = *ret;
	i->key = key_of(*ret);
	i->gipa = gipa;
	i->destroy = (PFN_vkDestroyInstance)gipa(*ret, "vkDestroyInstance");
	pthread_mutex_lock(&list_lock);
	i->next_in_list = instances;
	instances = i;
	pthread_mutex_unlock(&list_lock);
	return VK_SUCCESS;
}

static VKAPI_ATTR void VKAPI_CALL layer_DestroyInstance(VkInstance instance, const VkAllocationCallbacks *alloc)
{
	struct instance **p, *i = NULL;

	if (!instance)
		return;
	pthread_mutex_lock(&list_lock);
	for (p = &instances; *p; p = &(*p)->next_in_list)
		if ((*p)->key == key_of(instance)) {
			i = *p;
			*p = i->next_in_list;
			break;
		}
	pthread_mutex_unlock(&list_lock);
	if (i) {
		i->destroy(instance, alloc);
		free(i);
	}
}

/* The device's nonCoherentAtomSize, through the instance's chain; 256, the spec's largest, if unknown. */
static VkDeviceSize atom_size(const struct instance *inst, VkPhysicalDevice phys)
{
	PFN_vkGetPhysicalDeviceProperties props =
		inst ? (PFN_vkGetPhysicalDeviceProperties)inst->gipa(inst->handle, "vkGetPhysicalDeviceProperties") : NULL;
	VkPhysicalDeviceProperties p;

	if (!props)
		return 256;
	props(phys, &p);
	return p.limits.nonCoherentAtomSize ? p.limits.nonCoherentAtomSize : 1;
}

static VKAPI_ATTR VkResult VKAPI_CALL layer_CreateDevice(VkPhysicalDevice phys, const VkDeviceCreateInfo *info,
							 const VkAllocationCallbacks *alloc, VkDevice *ret)
{
	VkLayerDeviceCreateInfo *link = (VkLayerDeviceCreateInfo *)info->pNext;
	struct instance *inst = instance_of(phys);
	PFN_vkGetInstanceProcAddr gipa;
	PFN_vkGetDeviceProcAddr gdpa;
	PFN_vkCreateDevice create;
	struct mapped_config cfg = config_from_env();
	struct mapped_next next;
	struct device *d;
	VkResult r;

	while (link && !(link->sType == VK_STRUCTURE_TYPE_LOADER_DEVICE_CREATE_INFO &&
			 link->function == VK_LAYER_LINK_INFO))
		link = (VkLayerDeviceCreateInfo *)link->pNext;
	if (!link)
		return VK_ERROR_INITIALIZATION_FAILED;
	gipa = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
	gdpa = link->u.pLayerInfo->pfnNextGetDeviceProcAddr;
	link->u.pLayerInfo = link->u.pLayerInfo->pNext;
	create = (PFN_vkCreateDevice)gipa(inst ? inst->handle : VK_NULL_HANDLE, "vkCreateDevice");
	d = calloc(1, sizeof(*d));
	if (!create || !d) {
		free(d);
		return VK_ERROR_INITIALIZATION_FAILED;
	}
	r = create(phys, info, alloc, ret);
	if (r != VK_SUCCESS) {
		free(d);
		return r;
	}
	d->handle = *ret;
	d->key = key_of(*ret);
	d->gdpa = gdpa;
#define NEXT(field, name) d->field = (__typeof__(d->field))gdpa(*ret, name)
	NEXT(destroy, "vkDestroyDevice");
	NEXT(allocate, "vkAllocateMemory");
	NEXT(free, "vkFreeMemory");
	NEXT(map, "vkMapMemory");
	NEXT(unmap, "vkUnmapMemory");
	NEXT(flush, "vkFlushMappedMemoryRanges");
	NEXT(submit, "vkQueueSubmit");
	NEXT(submit2, "vkQueueSubmit2");
	NEXT(submit2_khr, "vkQueueSubmit2KHR");
	NEXT(set_event, "vkSetEvent");
	NEXT(signal_semaphore, "vkSignalSemaphore");
	NEXT(signal_semaphore_khr, "vkSignalSemaphoreKHR");
#ifdef VK_KHR_map_memory2
	NEXT(map2_khr, "vkMapMemory2KHR");
	NEXT(unmap2_khr, "vkUnmapMemory2KHR");
#endif
#undef NEXT
	cfg.atom = atom_size(inst, phys);
	next = (struct mapped_next){ .device = *ret, .flush = d->flush };
	if (mapped_set_new(&cfg, &next, &d->mapped) < 0) {
		d->destroy(*ret, alloc);
		free(d);
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	}
	pthread_mutex_lock(&list_lock);
	d->next_in_list = devices;
	devices = d;
	pthread_mutex_unlock(&list_lock);
	return VK_SUCCESS;
}

/* COHMEM_VK_STATS=1: one line on stderr when a device goes (tests and benchmarks read it). */
static void print_stats(struct device *d)
{
	struct mapped_stats st;
	const char *want = getenv("COHMEM_VK_STATS");

	if (!want || strcmp(want, "1"))
		return;
	mapped_set_stats(d->mapped, &st);
	fprintf(stderr,
		"%s: %llu syncs, %llu pages (%llu bytes) flushed, %llu maps (%llu untracked), %llu clean errors; "
		"adaptive regions: %llu write faults, %llu mode switches\n",
		LAYER_NAME, st.syncs, st.pages_flushed, st.bytes_flushed, st.maps, st.maps_untracked,
		st.clean_errors, st.faults, st.mode_switches);
}

static VKAPI_ATTR void VKAPI_CALL layer_DestroyDevice(VkDevice device, const VkAllocationCallbacks *alloc)
{
	struct device **p, *d = NULL;

	if (!device)
		return;
	pthread_mutex_lock(&list_lock);
	for (p = &devices; *p; p = &(*p)->next_in_list)
		if ((*p)->key == key_of(device)) {
			d = *p;
			*p = d->next_in_list;
			break;
		}
	pthread_mutex_unlock(&list_lock);
	if (!d)
		return;
	print_stats(d);
	mapped_set_free(d->mapped);	/* the regions go before the memory under them */
	d->destroy(device, alloc);
	free(d);
}

static VKAPI_ATTR VkResult VKAPI_CALL layer_AllocateMemory(VkDevice device, const VkMemoryAllocateInfo *info,
							   const VkAllocationCallbacks *alloc, VkDeviceMemory *ret)
{
	struct device *d = device_of(device);
	VkResult r = d->allocate(device, info, alloc, ret);

	if (r == VK_SUCCESS && mapped_set_allocated(d->mapped, *ret, info->allocationSize) < 0) {
		d->free(device, *ret, alloc);
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	}
	return r;
}

static VKAPI_ATTR void VKAPI_CALL layer_FreeMemory(VkDevice device, VkDeviceMemory memory,
						   const VkAllocationCallbacks *alloc)
{
	struct device *d = device_of(device);

	if (memory)
		mapped_set_unmapping(d->mapped, memory, true);	/* freeing unmaps */
	d->free(device, memory, alloc);
}

static VKAPI_ATTR VkResult VKAPI_CALL layer_MapMemory(VkDevice device, VkDeviceMemory memory, VkDeviceSize offset,
						      VkDeviceSize size, VkMemoryMapFlags flags, void **ptr)
{
	struct device *d = device_of(device);
	VkResult r = d->map(device, memory, offset, size, flags, ptr);

	if (r == VK_SUCCESS && mapped_set_mapped(d->mapped, memory, offset, size, *ptr) < 0) {
		d->unmap(device, memory);
		return VK_ERROR_MEMORY_MAP_FAILED;
	}
	return r;
}

static VKAPI_ATTR void VKAPI_CALL layer_UnmapMemory(VkDevice device, VkDeviceMemory memory)
{
	struct device *d = device_of(device);

	mapped_set_unmapping(d->mapped, memory, false);
	d->unmap(device, memory);
}

/*
 * The application's own flush: every mapping's written pages go down with
 * its ranges, in one call (its ranges may name bytes written where this
 * layer does not look: through another mapping of the same memory).
 */
static VKAPI_ATTR VkResult VKAPI_CALL layer_FlushMappedMemoryRanges(VkDevice device, uint32_t count,
								    const VkMappedMemoryRange *ranges)
{
	return mapped_set_sync(device_of(device)->mapped, count, ranges);
}

static VKAPI_ATTR VkResult VKAPI_CALL layer_QueueSubmit(VkQueue queue, uint32_t count, const VkSubmitInfo *submits,
							VkFence fence)
{
	struct device *d = device_of(queue);
	VkResult r = mapped_set_sync(d->mapped, 0, NULL);

	return r == VK_SUCCESS ? d->submit(queue, count, submits, fence) : r;
}

static VKAPI_ATTR VkResult VKAPI_CALL layer_QueueSubmit2(VkQueue queue, uint32_t count,
							 const VkSubmitInfo2 *submits, VkFence fence)
{
	struct device *d = device_of(queue);
	VkResult r = mapped_set_sync(d->mapped, 0, NULL);

	return r == VK_SUCCESS ? d->submit2(queue, count, submits, fence) : r;
}

static VKAPI_ATTR VkResult VKAPI_CALL layer_QueueSubmit2KHR(VkQueue queue, uint32_t count,
							    const VkSubmitInfo2 *submits, VkFence fence)
{
	struct device *d = device_of(queue);
	VkResult r = mapped_set_sync(d->mapped, 0, NULL);

	return r == VK_SUCCESS ? d->submit2_khr(queue, count, submits, fence) : r;
}

/* The host's signals release work already submitted, which may read what was written since. */
static VKAPI_ATTR VkResult VKAPI_CALL layer_SetEvent(VkDevice device, VkEvent event)
{
	struct device *d = device_of(device);
	VkResult r = mapped_set_sync(d->mapped, 0, NULL);

	return r == VK_SUCCESS ? d->set_event(device, event) : r;
}

static VKAPI_ATTR VkResult VKAPI_CALL layer_SignalSemaphore(VkDevice device, const VkSemaphoreSignalInfo *info)
{
	struct device *d = device_of(device);
	VkResult r = mapped_set_sync(d->mapped, 0, NULL);

	return r == VK_SUCCESS ? d->signal_semaphore(device, info) : r;
}

static VKAPI_ATTR VkResult VKAPI_CALL layer_SignalSemaphoreKHR(VkDevice device, const VkSemaphoreSignalInfo *info)
{
	struct device *d = device_of(device);
	VkResult r = mapped_set_sync(d->mapped, 0, NULL);

	return r == VK_SUCCESS ? d->signal_semaphore_khr(device, info) : r;
}

#ifdef VK_KHR_map_memory2
/* VK_KHR_map_memory2 (Vulkan headers from 1.3.252; core vkMapMemory2 in 1.4): the same as map and unmap. */
static VKAPI_ATTR VkResult VKAPI_CALL layer_MapMemory2KHR(VkDevice device, const VkMemoryMapInfoKHR *info, void **ptr)
{
	struct device *d = device_of(device);
	VkResult r = d->map2_khr(device, info, ptr);

	if (r == VK_SUCCESS && mapped_set_mapped(d->mapped, info->memory, info->offset, info->size, *ptr) < 0) {
		d->unmap(device, info->memory);
		return VK_ERROR_MEMORY_MAP_FAILED;
	}
	return r;
}

static VKAPI_ATTR VkResult VKAPI_CALL layer_UnmapMemory2KHR(VkDevice device, const VkMemoryUnmapInfoKHR *info)
{
	struct device *d = device_of(device);

	mapped_set_unmapping(d->mapped, info->memory, false);
	return d->unmap2_khr(device, info);
}
#endif

static PFN_vkVoidFunction device_function(const char *name)
{
	static const struct {
		const char *name;
		PFN_vkVoidFunction fn;
	} table[] = {
#define ENTRY(fn) { "vk" #fn, (PFN_vkVoidFunction)layer_##fn }
		ENTRY(DestroyDevice),
		ENTRY(AllocateMemory),
		ENTRY(FreeMemory),
		ENTRY(MapMemory),
		ENTRY(UnmapMemory),
		ENTRY(FlushMappedMemoryRanges),
		ENTRY(QueueSubmit),
		ENTRY(QueueSubmit2),
		ENTRY(QueueSubmit2KHR),
		ENTRY(SetEvent),
		ENTRY(SignalSemaphore),
		ENTRY(SignalSemaphoreKHR),
#ifdef VK_KHR_map_memory2
		ENTRY(MapMemory2KHR),
		ENTRY(UnmapMemory2KHR),
#endif
#undef ENTRY
	};

	for (size_t k = 0; k < sizeof(table) / sizeof(table[0]); k++)
		if (strcmp(name, table[k].name) == 0)
			return table[k].fn;
	return NULL;
}

EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL cohmem_vkGetDeviceProcAddr(VkDevice device, const char *name);

EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL cohmem_vkGetDeviceProcAddr(VkDevice device, const char *name)
{
	PFN_vkVoidFunction fn = device_function(name);
	struct device *d;

	if (strcmp(name, "vkGetDeviceProcAddr") == 0)
		return (PFN_vkVoidFunction)cohmem_vkGetDeviceProcAddr;
	d = device ? device_of(device) : NULL;
	if (!d)
		return NULL;
	/* a function the device below lacks (vkQueueSubmit2 before 1.3) stays absent */
	if (fn && d->gdpa(device, name))
		return fn;
	return d->gdpa(device, name);
}

EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL cohmem_vkGetInstanceProcAddr(VkInstance instance, const char *name);

EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL cohmem_vkGetInstanceProcAddr(VkInstance instance, const char *name)
{
	struct instance *i;

	if (strcmp(name, "vkGetInstanceProcAddr") == 0)
		return (PFN_vkVoidFunction)cohmem_vkGetInstanceProcAddr;
	if (strcmp(name, "vkCreateInstance") == 0)
		return (PFN_vkVoidFunction)layer_CreateInstance;
	if (strcmp(name, "vkDestroyInstance") == 0)
		return (PFN_vkVoidFunction)layer_DestroyInstance;
	if (strcmp(name, "vkCreateDevice") == 0)
		return (PFN_vkVoidFunction)layer_CreateDevice;
	if (strcmp(name, "vkGetDeviceProcAddr") == 0)
		return (PFN_vkVoidFunction)cohmem_vkGetDeviceProcAddr;
	if (device_function(name))
		return device_function(name);
	i = instance ? instance_of(instance) : NULL;
	return i ? i->gipa(instance, name) : NULL;
}

/* The loader's interface version 2: it asks for the two entry points here. */
EXPORT VKAPI_ATTR VkResult VKAPI_CALL vkNegotiateLoaderLayerInterfaceVersion(VkNegotiateLayerInterface *v)
{
	if (!v || v->sType != LAYER_NEGOTIATE_INTERFACE_STRUCT)
		return VK_ERROR_INITIALIZATION_FAILED;
	if (v->loaderLayerInterfaceVersion > 2)
		v->loaderLayerInterfaceVersion = 2;
	if (v->loaderLayerInterfaceVersion < 2)
		return VK_ERROR_INITIALIZATION_FAILED;
	v->pfnGetInstanceProcAddr = cohmem_vkGetInstanceProcAddr;
	v->pfnGetDeviceProcAddr = cohmem_vkGetDeviceProcAddr;
	v->pfnGetPhysicalDeviceProcAddr = NULL;
	return VK_SUCCESS;
}
