/* SPDX-License-Identifier: MIT */
/*
 * vk-share: a Vulkan program that writes a chosen share of a large
 * HOST_COHERENT buffer every frame and shows the buffer's first
 * width x height x 4 bytes in an X window (copied into the swapchain image),
 * so that a capture replays to the same picture only if it holds every byte
 * written. The workload of tests/gfxrecon-test.sh and bench/gfxrecon-bench.sh.
 *
 *   vk-share [--pages N] [--share PERCENT] [--frames N] [--size WxH]
 *            [--threads 1|2] [--read-file FILE] [--own-sigsegv]
 *            [--dump-frames A,B,...] [--dump-dir DIR]
 *   vk-share --compare A.bmp B.bmp
 *
 * Each frame f writes share % of the pages (at least one), chosen and filled
 * from f alone; with --threads 2 a second thread writes every other one of
 * them at the same time; with --read-file one more page is filled by
 * read(2) from FILE (a kernel write into mapped memory). Then it copies the
 * picture, presents, and waits for the queue: the buffer holds still while
 * the device reads it. --own-sigsegv installs a SIGSEGV handler of its own
 * after mapping (one that does not chain), as some applications do.
 * --extra-maps adds two smaller allocations whose mappings are not the
 * buffer's simple case: one mapped from offset 100 to its end (a pointer
 * that is not page-aligned, kept mapped and freed while mapped), one whose
 * mapping covers 5000 bytes from offset 4132 of three pages (mapped, written
 * and unmapped every frame); each frame writes both, and the first rows of
 * the picture show them (copied from them after the buffer's rows).
 * --dump-frames writes the picture of those frames (1-based, as
 * gfxrecon-replay numbers them) as DIR/live_frame_N.bmp. At the end it
 * prints the median frame time. --compare: exit 0 if two 32-bit BMP files
 * hold the same RGB pixels (either row order), 1 if not.
 */
#define _GNU_SOURCE
#define VK_USE_PLATFORM_XLIB_KHR
#include <X11/Xlib.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <vulkan/vulkan.h>

#define PAGE 4096u
#define MAX_IMAGES 8
/* --extra-maps: A, 66048 bytes mapped from offset 100; B, 3 pages, [4132, 9132) mapped each frame */
#define EXTRA_A_SIZE (16 * PAGE + 512)
#define EXTRA_A_MAP 100u
#define EXTRA_B_SIZE (3 * PAGE)
#define EXTRA_B_MAP (PAGE + 36)
#define EXTRA_B_LEN 5000u
#define EXTRA_WIDTH 1024u	/* the picture's rows these copy into are this wide */
#define EXTRA_A_ROWS 14u	/* A's bytes [128, 128 + 14 rows) of memory: within what its mapping writes */

static struct options {
	size_t pages;
	double share;
	unsigned frames, width, height, threads;
	const char *read_file, *dump_dir, *dump_frames;
	int own_sigsegv, extra_maps;
} opt = { .pages = 1024, .share = 10, .frames = 30, .width = 512, .height = 512, .threads = 1, .dump_dir = "." };

static void die(const char *what, VkResult r)
{
	fprintf(stderr, "vk-share: %s failed (VkResult %d)\n", what, (int)r);
	exit(1);
}
#define VK(call)                                  \
	do {                                      \
		VkResult r_ = (call);             \
		if (r_ != VK_SUCCESS)             \
			die(#call, r_);           \
	} while (0)

/* ---- what a frame writes: from the frame number alone ---------------------------------- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static size_t gcd(size_t a, size_t b)
{
	while (b) {
		size_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * The k-th page frame f writes: a walk from a page of the frame's with a
 * stride prime to the page count, so that the frame's pages are distinct
 * (share % written is share % of the pages).
 */
static size_t frame_page(unsigned f, size_t k)
{
	size_t start = (size_t)(mix(f) % opt.pages), stride = (size_t)(mix((uint64_t)f ^ 0x5555) % opt.pages) | 1;

	while (gcd(stride, opt.pages) != 1)
		stride += 2;
	return (size_t)((start + (uint64_t)k * stride) % opt.pages);
}

static size_t frame_count(void)
{
	size_t n = (size_t)(opt.pages * opt.share / 100.0 + 0.5);

	return n ? n : 1;
}

static void fill_page(char *page, unsigned f, size_t pg)
{
	uint64_t *w = (uint64_t *)page, seed = mix(((uint64_t)f << 40) ^ pg ^ 0x9e3779b97f4a7c15ull);

	for (size_t i = 0; i < PAGE / sizeof(*w); i++)
		w[i] = mix(seed + i);
}

struct writer {
	char *mem;
	unsigned frame, first, step;	/* pages first, first + step, ... of the frame */
	pthread_barrier_t *go, *done;
	int stop;
};

static void write_share(char *mem, unsigned f, unsigned first, unsigned step)
{
	for (size_t k = first; k < frame_count(); k += step) {
		size_t pg = frame_page(f, k);

		fill_page(mem + pg * PAGE, f, pg);
	}
}

static void *second_writer(void *arg)
{
	struct writer *w = arg;

	for (;;) {
		pthread_barrier_wait(w->go);
		if (w->stop)
			return NULL;
		write_share(w->mem, w->frame, w->first, w->step);
		pthread_barrier_wait(w->done);
	}
}

/*
 * The kernel's write: one more page read(2) from the file (from an offset of
 * the frame's), one the frame's stores have not touched first (unless the
 * choice lands on one of them): a tracker that write-protects sees the kernel
 * write into a protected page.
 */
static void read_into(char *mem, unsigned f, int fd, off_t file_size)
{
	size_t pg = frame_page(f, frame_count());
	off_t at = (off_t)(mix(f) % (uint64_t)(file_size / PAGE)) * PAGE;
	ssize_t n = pread(fd, mem + pg * PAGE, PAGE, at);

	if (n != PAGE) {
		fprintf(stderr, "vk-share: read(2) into mapped memory failed: %s\n", n < 0 ? strerror(errno) : "short");
		exit(3);
	}
}

static void own_handler(int sig)
{
	static const char msg[] = "vk-share: SIGSEGV reached the application's own handler\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(98);
	_exit(99);
}

/* ---- BMP: what gfxrecon-replay writes (32 bits a pixel, BGRA) -------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8), p[2] = (unsigned char)(v >> 16),
	p[3] = (unsigned char)(v >> 24);
}

static int write_bmp(const char *path, const unsigned char *bgra, unsigned w, unsigned h)
{
	unsigned char hdr[54] = { 'B', 'M' };
	FILE *f = fopen(path, "wb");

	if (!f)
		return -1;
	put32(hdr + 2, 54 + w * h * 4);
	put32(hdr + 10, 54);
	put32(hdr + 14, 40);
	put32(hdr + 18, w);
	put32(hdr + 22, (uint32_t)-(int32_t)h);	/* top-down */
	hdr[26] = 1;
	hdr[28] = 32;
	fwrite(hdr, 1, sizeof(hdr), f);
	fwrite(bgra, 4, (size_t)w * h, f);
	return fclose(f);
}

struct bmp {
	unsigned w, h;
	unsigned char *px;	/* top-down BGRA */
};

static int read_bmp(const char *path, struct bmp *b)
{
	FILE *f = fopen(path, "rb");
	unsigned char hdr[54];
	uint32_t off;
	int32_t h;
	unsigned char *raw;

	if (!f)
		return -1;
	if (fread(hdr, 1, 54, f) != 54 || hdr[0] != 'B' || hdr[1] != 'M' || hdr[28] != 32) {
		fclose(f);
		return -1;
	}
	off = hdr[10] | hdr[11] << 8 | hdr[12] << 16 | (uint32_t)hdr[13] << 24;
	b->w = hdr[18] | hdr[19] << 8 | hdr[20] << 16 | (uint32_t)hdr[21] << 24;
	h = (int32_t)(hdr[22] | hdr[23] << 8 | hdr[24] << 16 | (uint32_t)hdr[25] << 24);
	b->h = (unsigned)(h < 0 ? -h : h);
	raw = malloc((size_t)b->w * b->h * 4);
	b->px = malloc((size_t)b->w * b->h * 4);
	if (!raw || !b->px || fseek(f, off, SEEK_SET) || fread(raw, 4, (size_t)b->w * b->h, f) != (size_t)b->w * b->h) {
		free(raw);
		free(b->px);
		fclose(f);
		return -1;
	}
	fclose(f);
	for (unsigned y = 0; y < b->h; y++)
		memcpy(b->px + (size_t)y * b->w * 4, raw + (size_t)(h < 0 ? y : b->h - 1 - y) * b->w * 4, b->w * 4);
	free(raw);
	return 0;
}

static int compare(const char *a, const char *b)
{
	struct bmp x, y;
	size_t differ = 0;

	if (read_bmp(a, &x) || read_bmp(b, &y)) {
		fprintf(stderr, "vk-share: cannot read %s or %s as a 32-bit BMP\n", a, b);
		return 2;
	}
	if (x.w != y.w || x.h != y.h) {
		printf("%s is %ux%u, %s %ux%u\n", a, x.w, x.h, b, y.w, y.h);
		free(x.px);
		free(y.px);
		return 1;
	}
	for (size_t i = 0; i < (size_t)x.w * x.h; i++)
		differ += memcmp(x.px + i * 4, y.px + i * 4, 3) != 0;	/* RGB; alpha is the WSI's */
	if (differ)
		printf("%s and %s: %zu of %zu pixels differ\n", a, b, differ, (size_t)x.w * x.h);
	free(x.px);
	free(y.px);
	return differ != 0;
}

/* ---- Vulkan ------------------------------------------------------------------------------ */

struct vk {
	Display *dpy;
	Window win;
	VkInstance inst;
	VkPhysicalDevice phys;
	VkDevice dev;
	VkQueue queue;
	uint32_t family;
	VkSurfaceKHR surface;
	VkSwapchainKHR swapchain;
	VkImage images[MAX_IMAGES];
	uint32_t nimages;
	VkBuffer buffer;
	VkDeviceMemory memory;
	char *mem;
	/* --extra-maps */
	VkBuffer extra_buf[2];
	VkDeviceMemory extra_mem[2];
	char *extra_a;
	VkCommandPool pool;
	VkCommandBuffer cmd;
	VkSemaphore acquired, copied;
};

static uint32_t memory_type(struct vk *v, uint32_t bits, VkMemoryPropertyFlags want)
{
	VkPhysicalDeviceMemoryProperties mp;

	vkGetPhysicalDeviceMemoryProperties(v->phys, &mp);
	for (uint32_t i = 0; i < mp.memoryTypeCount; i++)
		if ((bits & (1u << i)) && (mp.memoryTypes[i].propertyFlags & want) == want)
			return i;
	fprintf(stderr, "vk-share: no HOST_VISIBLE | HOST_COHERENT memory\n");
	exit(1);
}

static void setup(struct vk *v)
{
	const char *inst_ext[] = { VK_KHR_SURFACE_EXTENSION_NAME, VK_KHR_XLIB_SURFACE_EXTENSION_NAME };
	const char *dev_ext[] = { VK_KHR_SWAPCHAIN_EXTENSION_NAME };
	VkApplicationInfo app = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "vk-share",
				  .apiVersion = VK_API_VERSION_1_1 };
	uint32_t n = 1;
	float prio = 1;

	v->dpy = XOpenDisplay(NULL);
	if (!v->dpy) {
		fprintf(stderr, "vk-share: no X display (DISPLAY)\n");
		exit(1);
	}
	v->win = XCreateSimpleWindow(v->dpy, DefaultRootWindow(v->dpy), 0, 0, opt.width, opt.height, 0, 0, 0);
	XMapWindow(v->dpy, v->win);
	XSync(v->dpy, False);
	VK(vkCreateInstance(&(VkInstanceCreateInfo){ .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
						     .pApplicationInfo = &app, .enabledExtensionCount = 2,
						     .ppEnabledExtensionNames = inst_ext },
			    NULL, &v->inst));
	if (vkEnumeratePhysicalDevices(v->inst, &n, &v->phys) < 0 || n == 0)
		die("vkEnumeratePhysicalDevices", VK_ERROR_INITIALIZATION_FAILED);
	VK(vkCreateXlibSurfaceKHR(v->inst, &(VkXlibSurfaceCreateInfoKHR){ .sType = VK_STRUCTURE_TYPE_XLIB_SURFACE_CREATE_INFO_KHR,
									  .dpy = v->dpy, .window = v->win },
				  NULL, &v->surface));
	v->family = 0;	/* lavapipe's one family does graphics, transfer and present */
	VK(vkCreateDevice(v->phys, &(VkDeviceCreateInfo){
		.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
		.pQueueCreateInfos = &(VkDeviceQueueCreateInfo){ .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
								 .queueFamilyIndex = v->family, .queueCount = 1,
								 .pQueuePriorities = &prio },
		.enabledExtensionCount = 1, .ppEnabledExtensionNames = dev_ext }, NULL, &v->dev));
	vkGetDeviceQueue(v->dev, v->family, 0, &v->queue);
}

static void setup_swapchain(struct vk *v)
{
	VkSurfaceCapabilitiesKHR caps;
	VkBool32 present = VK_FALSE;

	VK(vkGetPhysicalDeviceSurfaceSupportKHR(v->phys, v->family, v->surface, &present));
	if (!present)
		die("presenting from queue family 0", VK_ERROR_FEATURE_NOT_PRESENT);
	VK(vkGetPhysicalDeviceSurfaceCapabilitiesKHR(v->phys, v->surface, &caps));
	VK(vkCreateSwapchainKHR(v->dev, &(VkSwapchainCreateInfoKHR){
		.sType = VK_STRUCTURE_TYPE_SWAPCHAIN_CREATE_INFO_KHR, .surface = v->surface,
		.minImageCount = caps.minImageCount, .imageFormat = VK_FORMAT_B8G8R8A8_UNORM,
		.imageColorSpace = VK_COLOR_SPACE_SRGB_NONLINEAR_KHR,
		.imageExtent = { opt.width, opt.height }, .imageArrayLayers = 1,
		.imageUsage = VK_IMAGE_USAGE_TRANSFER_DST_BIT | VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT,
		.preTransform = VK_SURFACE_TRANSFORM_IDENTITY_BIT_KHR,
		.compositeAlpha = VK_COMPOSITE_ALPHA_OPAQUE_BIT_KHR, .presentMode = VK_PRESENT_MODE_FIFO_KHR,
		.clipped = VK_TRUE }, NULL, &v->swapchain));
	v->nimages = MAX_IMAGES;
	VK(vkGetSwapchainImagesKHR(v->dev, v->swapchain, &v->nimages, v->images));
}

static void setup_buffer(struct vk *v)
{
	VkMemoryRequirements req;

	VK(vkCreateBuffer(v->dev, &(VkBufferCreateInfo){ .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
							 .size = opt.pages * PAGE,
							 .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT },
			  NULL, &v->buffer));
	vkGetBufferMemoryRequirements(v->dev, v->buffer, &req);
	VK(vkAllocateMemory(v->dev, &(VkMemoryAllocateInfo){
		.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
		.memoryTypeIndex = memory_type(v, req.memoryTypeBits,
					       VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) },
		NULL, &v->memory));
	VK(vkBindBufferMemory(v->dev, v->buffer, v->memory, 0));
	VK(vkMapMemory(v->dev, v->memory, 0, VK_WHOLE_SIZE, 0, (void **)&v->mem));
	VK(vkCreateCommandPool(v->dev, &(VkCommandPoolCreateInfo){ .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
								   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
								   .queueFamilyIndex = v->family },
				   NULL, &v->pool));
	VK(vkAllocateCommandBuffers(v->dev, &(VkCommandBufferAllocateInfo){
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = v->pool,
		.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1 }, &v->cmd));
	VK(vkCreateSemaphore(v->dev, &(VkSemaphoreCreateInfo){ .sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO }, NULL,
			     &v->acquired));
	VK(vkCreateSemaphore(v->dev, &(VkSemaphoreCreateInfo){ .sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO }, NULL,
			     &v->copied));
}

/* A buffer over a whole new HOST_COHERENT allocation of @size bytes. */
static void coherent_buffer(struct vk *v, VkDeviceSize size, VkBuffer *buf, VkDeviceMemory *mem)
{
	VkMemoryRequirements req;

	VK(vkCreateBuffer(v->dev, &(VkBufferCreateInfo){ .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size,
							 .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT },
			  NULL, buf));
	vkGetBufferMemoryRequirements(v->dev, *buf, &req);
	VK(vkAllocateMemory(v->dev, &(VkMemoryAllocateInfo){
		.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
		.memoryTypeIndex = memory_type(v, req.memoryTypeBits,
					       VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) },
		NULL, mem));
	VK(vkBindBufferMemory(v->dev, *buf, *mem, 0));
}

static void setup_extra(struct vk *v)
{
	coherent_buffer(v, EXTRA_A_SIZE, &v->extra_buf[0], &v->extra_mem[0]);
	coherent_buffer(v, EXTRA_B_SIZE, &v->extra_buf[1], &v->extra_mem[1]);
	VK(vkMapMemory(v->dev, v->extra_mem[0], EXTRA_A_MAP, VK_WHOLE_SIZE, 0, (void **)&v->extra_a));
}

/* Frame f's bytes into both (B mapped for it and unmapped again): every byte the picture shows. */
static void write_extra(struct vk *v, unsigned f)
{
	char *b;

	for (size_t i = 0; i < EXTRA_A_SIZE - EXTRA_A_MAP; i++)
		v->extra_a[i] = (char)mix(((uint64_t)f << 32) ^ i ^ 0xa);
	VK(vkMapMemory(v->dev, v->extra_mem[1], EXTRA_B_MAP, EXTRA_B_LEN, 0, (void **)&b));
	for (size_t i = 0; i < EXTRA_B_LEN; i++)
		b[i] = (char)mix(((uint64_t)f << 32) ^ i ^ 0xb);
	vkUnmapMemory(v->dev, v->extra_mem[1]);
}

static void barrier(VkCommandBuffer cmd, VkImage image, VkImageLayout from, VkImageLayout to, VkAccessFlags src,
		    VkAccessFlags dst)
{
	vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 0, NULL, 0,
			     NULL, 1, &(VkImageMemoryBarrier){
				     .sType = VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, .srcAccessMask = src,
				     .dstAccessMask = dst, .oldLayout = from, .newLayout = to,
				     .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
				     .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED, .image = image,
				     .subresourceRange = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1 } });
}

/* Copy the picture into the next swapchain image, present it, and wait until the device is done. */
static void show(struct vk *v)
{
	uint32_t idx;
	VkPipelineStageFlags stage = VK_PIPELINE_STAGE_TRANSFER_BIT;

	VK(vkAcquireNextImageKHR(v->dev, v->swapchain, UINT64_MAX, v->acquired, VK_NULL_HANDLE, &idx));
	VK(vkResetCommandBuffer(v->cmd, 0));
	VK(vkBeginCommandBuffer(v->cmd, &(VkCommandBufferBeginInfo){ .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO }));
	barrier(v->cmd, v->images[idx], VK_IMAGE_LAYOUT_UNDEFINED, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 0,
		VK_ACCESS_TRANSFER_WRITE_BIT);
	vkCmdCopyBufferToImage(v->cmd, v->buffer, v->images[idx], VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1,
			       &(VkBufferImageCopy){ .imageSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1 },
						     .imageExtent = { opt.width, opt.height, 1 } });
	if (opt.extra_maps) {	/* over the first rows: A's, then one of B's */
		vkCmdCopyBufferToImage(v->cmd, v->extra_buf[0], v->images[idx], VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1,
				       &(VkBufferImageCopy){ .bufferOffset = 128,
							     .imageSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1 },
							     .imageExtent = { EXTRA_WIDTH, EXTRA_A_ROWS, 1 } });
		vkCmdCopyBufferToImage(v->cmd, v->extra_buf[1], v->images[idx], VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1,
				       &(VkBufferImageCopy){ .bufferOffset = EXTRA_B_MAP,
							     .imageSubresource = { VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1 },
							     .imageOffset = { 0, EXTRA_A_ROWS, 0 },
							     .imageExtent = { EXTRA_WIDTH, 1, 1 } });
	}
	barrier(v->cmd, v->images[idx], VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_IMAGE_LAYOUT_PRESENT_SRC_KHR,
		VK_ACCESS_TRANSFER_WRITE_BIT, 0);
	VK(vkEndCommandBuffer(v->cmd));
	VK(vkQueueSubmit(v->queue, 1, &(VkSubmitInfo){ .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
						       .waitSemaphoreCount = 1, .pWaitSemaphores = &v->acquired,
						       .pWaitDstStageMask = &stage, .commandBufferCount = 1,
						       .pCommandBuffers = &v->cmd, .signalSemaphoreCount = 1,
						       .pSignalSemaphores = &v->copied },
			 VK_NULL_HANDLE));
	VK(vkQueuePresentKHR(v->queue, &(VkPresentInfoKHR){ .sType = VK_STRUCTURE_TYPE_PRESENT_INFO_KHR,
							    .waitSemaphoreCount = 1, .pWaitSemaphores = &v->copied,
							    .swapchainCount = 1, .pSwapchains = &v->swapchain,
							    .pImageIndices = &idx }));
	VK(vkQueueWaitIdle(v->queue));
}

/* What frame f showed: the buffer's bytes, and with --extra-maps A's and B's over the first rows. */
static const unsigned char *picture(struct vk *v, unsigned f)
{
	static unsigned char *pic;
	size_t len = (size_t)opt.width * opt.height * 4, row = (size_t)EXTRA_WIDTH * 4;

	if (!opt.extra_maps)
		return (const unsigned char *)v->mem;
	if (!pic && !(pic = malloc(len)))
		return NULL;
	memcpy(pic, v->mem, len);
	for (size_t y = 0; y < EXTRA_A_ROWS; y++)	/* A's memory from offset 128: its mapping's byte 28 on */
		memcpy(pic + y * opt.width * 4, v->extra_a + 128 - EXTRA_A_MAP + y * row, row);
	for (size_t i = 0; i < row; i++)		/* B's first row, as write_extra() wrote it */
		pic[EXTRA_A_ROWS * opt.width * 4 + i] = (unsigned char)mix(((uint64_t)f << 32) ^ i ^ 0xb);
	return pic;
}

static void teardown(struct vk *v)
{
	vkDeviceWaitIdle(v->dev);
	vkUnmapMemory(v->dev, v->memory);
	vkDestroySemaphore(v->dev, v->acquired, NULL);
	vkDestroySemaphore(v->dev, v->copied, NULL);
	vkDestroyCommandPool(v->dev, v->pool, NULL);
	vkDestroyBuffer(v->dev, v->buffer, NULL);
	vkFreeMemory(v->dev, v->memory, NULL);
	for (int i = 0; opt.extra_maps && i < 2; i++) {
		vkDestroyBuffer(v->dev, v->extra_buf[i], NULL);
		vkFreeMemory(v->dev, v->extra_mem[i], NULL);	/* A still mapped: freeing unmaps it */
	}
	vkDestroySwapchainKHR(v->dev, v->swapchain, NULL);
	vkDestroyDevice(v->dev, NULL);
	vkDestroySurfaceKHR(v->inst, v->surface, NULL);
	vkDestroyInstance(v->inst, NULL);
	XDestroyWindow(v->dpy, v->win);
	XCloseDisplay(v->dpy);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int wanted_dump(unsigned frame)
{
	char list[256], *save = NULL;

	if (!opt.dump_frames)
		return 0;
	snprintf(list, sizeof(list), "%s", opt.dump_frames);
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if ((unsigned)atoi(t) == frame)
			return 1;
	return 0;
}

static void parse(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--own-sigsegv")) {
			opt.own_sigsegv = 1;
			continue;
		}
		if (!strcmp(a, "--extra-maps")) {
			opt.extra_maps = 1;
			continue;
		}
		if (!val)
			goto usage;
		i++;
		if (!strcmp(a, "--pages"))
			opt.pages = strtoul(val, NULL, 0);
		else if (!strcmp(a, "--share"))
			opt.share = atof(val);
		else if (!strcmp(a, "--frames"))
			opt.frames = (unsigned)atoi(val);
		else if (!strcmp(a, "--size") && sscanf(val, "%ux%u", &opt.width, &opt.height) == 2)
			;
		else if (!strcmp(a, "--threads"))
			opt.threads = (unsigned)atoi(val);
		else if (!strcmp(a, "--read-file"))
			opt.read_file = val;
		else if (!strcmp(a, "--dump-frames"))
			opt.dump_frames = val;
		else if (!strcmp(a, "--dump-dir"))
			opt.dump_dir = val;
		else
			goto usage;
	}
	if (opt.pages == 0 || opt.share <= 0 || opt.share > 100 || opt.frames == 0 || opt.width == 0 ||
	    opt.height == 0 || (opt.threads != 1 && opt.threads != 2) ||
	    (size_t)opt.width * opt.height * 4 > opt.pages * PAGE || (opt.extra_maps && opt.width < EXTRA_WIDTH))
		goto usage;
	return;
usage:
	fprintf(stderr, "usage: vk-share [--pages N] [--share PERCENT] [--frames N] [--size WxH] [--threads 1|2]\n"
			"                [--read-file FILE] [--own-sigsegv] [--extra-maps] [--dump-frames A,B,..] [--dump-dir DIR]\n"
			"       vk-share --compare A.bmp B.bmp\n"
			"(the picture, width x height x 4 bytes, must fit in the buffer's pages)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct vk v = { 0 };
	pthread_barrier_t go, done;
	struct writer w = { .go = &go, .done = &done, .first = 1, .step = 2 };
	pthread_t th;
	double *ms;
	int fd = -1;
	off_t file_size = 0;

	if (argc == 4 && !strcmp(argv[1], "--compare"))
		return compare(argv[2], argv[3]);
	parse(argc, argv);
	ms = calloc(opt.frames, sizeof(*ms));
	if (opt.read_file) {
		fd = open(opt.read_file, O_RDONLY);
		file_size = fd < 0 ? 0 : lseek(fd, 0, SEEK_END);
		if (file_size < (off_t)PAGE) {
			fprintf(stderr, "vk-share: %s: want a file of a page or more\n", opt.read_file);
			return 1;
		}
	}
	setup(&v);
	setup_swapchain(&v);
	setup_buffer(&v);
	if (opt.extra_maps)
		setup_extra(&v);
	/* Every page written once first: what a frame does not write must not be the heap's leftovers. */
	for (size_t pg = 0; pg < opt.pages; pg++)
		fill_page(v.mem + pg * PAGE, UINT32_MAX, pg);
	if (opt.own_sigsegv)
		sigaction(SIGSEGV, &(struct sigaction){ .sa_handler = own_handler }, NULL);
	w.mem = v.mem;
	if (opt.threads == 2) {
		pthread_barrier_init(&go, NULL, 2);
		pthread_barrier_init(&done, NULL, 2);
		pthread_create(&th, NULL, second_writer, &w);
	}
	for (unsigned f = 0; f < opt.frames; f++) {
		double t0 = now_ms();

		if (opt.threads == 2) {
			w.frame = f;
			pthread_barrier_wait(&go);
			write_share(v.mem, f, 0, 2);
			pthread_barrier_wait(&done);
		} else {
			write_share(v.mem, f, 0, 1);
		}
		if (fd >= 0)
			read_into(v.mem, f, fd, file_size);
		if (opt.extra_maps)
			write_extra(&v, f);
		show(&v);
		ms[f] = now_ms() - t0;
		if (wanted_dump(f + 1)) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/live_frame_%u.bmp", opt.dump_dir, f + 1);
			if (write_bmp(path, picture(&v, f), opt.width, opt.height)) {
				fprintf(stderr, "vk-share: cannot write %s\n", path);
				return 1;
			}
		}
	}
	if (opt.threads == 2) {
		w.stop = 1;
		pthread_barrier_wait(&go);
		pthread_join(th, NULL);
	}
	teardown(&v);
	qsort(ms, opt.frames, sizeof(*ms), by_value);
	printf("vk-share: %u frames, %zu of %zu pages written a frame, median frame %.3f ms\n", opt.frames,
	       frame_count(), opt.pages, ms[opt.frames / 2]);
	free(ms);
	return 0;
}
