/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpu-transfer: the fbsync loop as a virtio-gpu 2D driver speaks it.
 *
 * The "guest" owns a framebuffer in tracked memory, attached as the backing
 * of resource 1. Every frame it turns libcohmem's dirty rectangles into
 * VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D and VIRTIO_GPU_CMD_RESOURCE_FLUSH
 * commands (struct layouts from <linux/virtio_gpu.h>, little-endian) in a
 * control queue. The "host" decodes the queue as a device would: it checks
 * every command, copies each transfer from the backing into its own copy of
 * the resource and answers each command. At the end the host resource must
 * equal the guest framebuffer.
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_gpu.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "options.h"
#include "scene.h"

#define RESOURCE_ID 1
#define QUEUE_SIZE (1 << 20)

/* ---- the control queue ------------------------------------------------------ */

struct queue {
	unsigned char buf[QUEUE_SIZE];
	size_t len;
	unsigned commands;
};

static void *queue_push(struct queue *q, uint32_t type, size_t size)
{
	struct virtio_gpu_ctrl_hdr *hdr;

	if (q->len + size > sizeof(q->buf)) {
		fprintf(stderr, "virtio-gpu-transfer: control queue full\n");
		exit(1);
	}
	hdr = (void *)(q->buf + q->len);
	memset(hdr, 0, size);
	hdr->type = htole32(type);
	q->len += size;
	q->commands++;
	return hdr;
}

static struct virtio_gpu_rect le_rect(unsigned x, unsigned y, unsigned w, unsigned h)
{
	return (struct virtio_gpu_rect){ htole32(x), htole32(y), htole32(w), htole32(h) };
}

/* ---- the guest driver ------------------------------------------------------- */

static void guest_setup(struct queue *q, const struct scene *s)
{
	struct virtio_gpu_resource_create_2d *create;
	struct virtio_gpu_resource_attach_backing *attach;
	struct virtio_gpu_mem_entry *entry;
	struct virtio_gpu_set_scanout *scanout;

	create = queue_push(q, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, sizeof(*create));
	create->resource_id = htole32(RESOURCE_ID);
	create->format = htole32(VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
	create->width = htole32(s->fb.width);
	create->height = htole32(s->fb.height);

	/* One entry: the framebuffer's pages ("guest physical" here is our address). */
	attach = queue_push(q, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, sizeof(*attach) + sizeof(*entry));
	attach->resource_id = htole32(RESOURCE_ID);
	attach->nr_entries = htole32(1);
	entry = (void *)(attach + 1);
	entry->addr = htole64((uintptr_t)s->pixels);
	entry->length = htole32((uint32_t)(s->fb.stride * s->fb.height));

	scanout = queue_push(q, VIRTIO_GPU_CMD_SET_SCANOUT, sizeof(*scanout));
	scanout->r = le_rect(0, 0, s->fb.width, s->fb.height);
	scanout->scanout_id = htole32(0);
	scanout->resource_id = htole32(RESOURCE_ID);
}

/* The damage of one frame as commands: a transfer and a flush per rectangle. */
static void guest_frame(struct queue *q, const struct scene *s, const struct cohmem_rect *r, long n)
{
	for (long i = 0; i < n; i++) {
		struct virtio_gpu_transfer_to_host_2d *xfer;
		struct virtio_gpu_resource_flush *flush;

		xfer = queue_push(q, VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D, sizeof(*xfer));
		xfer->r = le_rect(r[i].x, r[i].y, r[i].w, r[i].h);
		xfer->offset = htole64((uint64_t)r[i].y * s->fb.stride + (uint64_t)r[i].x * 4);
		xfer->resource_id = htole32(RESOURCE_ID);

		flush = queue_push(q, VIRTIO_GPU_CMD_RESOURCE_FLUSH, sizeof(*flush));
		flush->r = xfer->r;
		flush->resource_id = htole32(RESOURCE_ID);
	}
}

/* ---- the host device ---------------------------------------------------------- */

struct host {
	uint32_t id, width, height, stride;
	unsigned char *image;		/* the host's copy of the resource */
	const unsigned char *backing;	/* attached guest memory */
	size_t backing_len;
	unsigned scanout_id;
	unsigned long long transferred, flushed_pixels, errors;
};

static bool rect_ok(const struct host *h, const struct virtio_gpu_rect *r)
{
	uint32_t x = le32toh(r->x), y = le32toh(r->y), w = le32toh(r->width), ht = le32toh(r->height);

	return h->image && x <= h->width && w <= h->width - x && y <= h->height && ht <= h->height - y;
}

static uint32_t host_transfer(struct host *h, const struct virtio_gpu_transfer_to_host_2d *t)
{
	uint32_t w = le32toh(t->r.width), ht = le32toh(t->r.height);
	uint32_t x = le32toh(t->r.x), y = le32toh(t->r.y);
	uint64_t offset = le64toh(t->offset);

	if (le32toh(t->resource_id) != h->id)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (!rect_ok(h, &t->r) || !h->backing || !w || !ht ||
	    offset + (uint64_t)(ht - 1) * h->stride + (uint64_t)w * 4 > h->backing_len)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	/* As QEMU does: rows of the backing at offset + row * stride. */
	for (uint32_t row = 0; row < ht; row++)
		memcpy(h->image + (size_t)(y + row) * h->stride + (size_t)x * 4,
		       h->backing + offset + (uint64_t)row * h->stride, (size_t)w * 4);
	h->transferred += (uint64_t)w * ht * 4;
	return VIRTIO_GPU_RESP_OK_NODATA;
}

/* One command at p (len bytes left): its length, or 0 for a malformed queue. */
static size_t host_command(struct host *h, const unsigned char *p, size_t len, uint32_t *resp)
{
	const struct virtio_gpu_ctrl_hdr *hdr = (const void *)p;

	if (len < sizeof(*hdr))
		return 0;
	switch (le32toh(hdr->type)) {
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D: {
		const struct virtio_gpu_resource_create_2d *c = (const void *)p;

		if (len < sizeof(*c))
			return 0;
		h->id = le32toh(c->resource_id);
		h->width = le32toh(c->width);
		h->height = le32toh(c->height);
		h->stride = h->width * 4;
		h->image = calloc((size_t)h->stride, h->height);
		*resp = le32toh(c->format) == VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM && h->image
				? VIRTIO_GPU_RESP_OK_NODATA
				: VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		return sizeof(*c);
	}
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING: {
		const struct virtio_gpu_resource_attach_backing *a = (const void *)p;
		const struct virtio_gpu_mem_entry *e = (const void *)(a + 1);

		if (len < sizeof(*a) + sizeof(*e) || le32toh(a->nr_entries) != 1)
			return 0;
		h->backing = (const unsigned char *)(uintptr_t)le64toh(e->addr);
		h->backing_len = le32toh(e->length);
		*resp = le32toh(a->resource_id) == h->id ? VIRTIO_GPU_RESP_OK_NODATA
							  : VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
		return sizeof(*a) + sizeof(*e);
	}
	case VIRTIO_GPU_CMD_SET_SCANOUT: {
		const struct virtio_gpu_set_scanout *sc = (const void *)p;

		if (len < sizeof(*sc))
			return 0;
		h->scanout_id = le32toh(sc->scanout_id);
		*resp = rect_ok(h, &sc->r) ? VIRTIO_GPU_RESP_OK_NODATA : VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		return sizeof(*sc);
	}
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
		if (len < sizeof(struct virtio_gpu_transfer_to_host_2d))
			return 0;
		*resp = host_transfer(h, (const void *)p);
		return sizeof(struct virtio_gpu_transfer_to_host_2d);
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH: {
		const struct virtio_gpu_resource_flush *f = (const void *)p;

		if (len < sizeof(*f))
			return 0;
		*resp = rect_ok(h, &f->r) && le32toh(f->resource_id) == h->id
				? VIRTIO_GPU_RESP_OK_NODATA
				: VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		h->flushed_pixels += (uint64_t)le32toh(f->r.width) * le32toh(f->r.height);
		return sizeof(*f);
	}
	default:
		*resp = VIRTIO_GPU_RESP_ERR_UNSPEC;
		return sizeof(*hdr);
	}
}

/* Process and empty the queue; every command must be answered OK. */
static void host_process(struct host *h, struct queue *q)
{
	for (size_t at = 0; at < q->len;) {
		uint32_t resp = VIRTIO_GPU_RESP_ERR_UNSPEC;
		size_t used = host_command(h, q->buf + at, q->len - at, &resp);

		if (!used) {
			fprintf(stderr, "virtio-gpu-transfer: malformed command at %zu\n", at);
			exit(1);
		}
		h->errors += resp != VIRTIO_GPU_RESP_OK_NODATA;
		at += used;
	}
	q->len = 0;
}

/* ---- the program -------------------------------------------------------------- */

struct transfer_options {
	struct scene_options so;
	unsigned frames, interval;
	size_t max;
	bool quiet;
};

static int parse(struct transfer_options *o, int argc, char *argv[])
{
	const struct option_spec specs[] = {
		OPTION_WIDTH(&o->so.width),
		OPTION_HEIGHT(&o->so.height),
		OPTION_FRAMES(&o->frames),
		OPTION_INTERVAL(&o->interval),
		OPTION_MAX_RECTS(&o->max),
		OPTION_BACKEND(&o->so.backend),
		OPTION_QUIET(&o->quiet),
		{ 0 },
	};

	return scene_parse("Usage: virtio-gpu-transfer [OPTIONS]\n"
			   "Sends the dirty rectangles of an animated framebuffer as virtio-gpu 2D\n"
			   "TRANSFER_TO_HOST_2D + RESOURCE_FLUSH commands to an emulated host, which\n"
			   "applies them to its copy of the resource; checks that copy at the end.\n",
			   specs, &o->so, &o->max, argc, argv);
}

/* The host's resource must equal the guest's framebuffer; prints the totals. 0, or 1 on a mismatch. */
static int check_host(const struct transfer_options *o, const struct scene *s, const struct queue *q,
		      const struct host *host)
{
	unsigned long long full = (unsigned long long)o->so.width * o->so.height * 4 * (o->frames + 1);

	if (host->errors) {
		fprintf(stderr, "virtio-gpu-transfer: FAILED: the host refused %llu commands\n", host->errors);
		return 1;
	}
	if (memcmp(host->image, s->pixels, (size_t)o->so.width * 4 * o->so.height)) {
		fprintf(stderr, "virtio-gpu-transfer: FAILED: the host resource differs from the guest\n");
		return 1;
	}
	printf("%u commands, %llu bytes transferred instead of %llu for full-frame transfers (%.1fx less)\n",
	       q->commands, host->transferred, full,
	       host->transferred ? (double)full / (double)host->transferred : 0.0);
	printf("host resource equals the guest framebuffer: coherent\n");
	return 0;
}

int main(int argc, char *argv[])
{
	struct transfer_options o = { .frames = 60, .interval = 16, .max = 16 };
	static struct queue q;
	struct host host = { 0 };
	struct scene s;
	unsigned char *shadow;	/* what the guest has transferred: to refine against */
	struct cohmem_rect *rects;
	int status = parse(&o, argc, argv), err;

	if (status >= 0)
		return status;
	err = scene_open(&s, &o.so);	/* stride = width * 4: virtio-gpu 2D backings are packed */
	shadow = calloc((size_t)o.so.width * 4, o.so.height);
	rects = calloc(o.max, sizeof(*rects));
	if (err || !shadow || !rects) {
		fprintf(stderr, "virtio-gpu-transfer: %s\n", strerror(err ? -err : ENOMEM));
		return 1;
	}
	guest_setup(&q, &s);
	host_process(&host, &q);
	printf("virtio-gpu-transfer: resource %u, %ux%u B8G8R8X8, %s backend\n", RESOURCE_ID, o.so.width,
	       o.so.height, cohmem_backend_name(cohmem_region_backend(s.r)));

	scene_start(&s);
	for (unsigned f = 0; f <= o.frames; f++) {
		unsigned before = q.commands;
		unsigned long long moved = host.transferred;
		long dirty, n;

		if (f == o.frames)
			scene_stop(&s);	/* the last round: the producer is quiet */
		else
			sleep_ms(o.interval);
		n = scene_damage(&s, shadow, rects, o.max, &dirty);
		if (n < 0) {
			fprintf(stderr, "virtio-gpu-transfer: %s\n", strerror((int)-n));
			return 1;
		}
		cohmem_fb_copy(&s.fb, shadow, s.pixels, rects, (size_t)n);
		guest_frame(&q, &s, rects, n);
		host_process(&host, &q);
		if (!o.quiet)
			printf("frame %3u: %5ld dirty pages -> %3u commands, %8llu bytes transferred\n", f,
			       dirty, q.commands - before, host.transferred - moved);
	}
	status = check_host(&o, &s, &q, &host);
	scene_close(&s);
	free(host.image);
	free(shadow);
	free(rects);
	return status;
}
