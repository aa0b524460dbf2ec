/* SPDX-License-Identifier: MIT */
/*
 * A pass that compares instead of writing back: the helper reads the pages
 * of the buffer the page cache holds — through its own descriptor, without
 * cleaning them — against the state file's, and hands over those that
 * differ (helper_compare()); they are stored and marked here like any
 * WRITE (STORE_COMPARED). Nothing is write-protected, so a producer that
 * rewrites the same pages every interval takes no fault for them; the cost
 * is reading every page the page cache holds, each pass. adapt.c chooses.
 *
 * Why no write is lost. A write that completed before the pass started is
 * in the page cache when the helper reads the page, so the page differs
 * from the state file, unless the bytes stored there already are the same:
 * stored and marked by a WRITE, or by an earlier pass. A WRITE stored while
 * the pass runs (the kernel's own writeback, a write(2)) may carry bytes
 * newer than those the helper read: such pages are not stored over
 * (b->meanwhile); the WRITE marked them, and if the page cache holds newer
 * bytes yet, the page is dirty and differs at the next pass.
 */
#include <errno.h>
#include <string.h>

#include "daemon.h"

/* May found page i be stored? Not if a WRITE stored it meanwhile, or the buffer was cut below it. */
static bool storable(const struct buffer *b, const struct compare_area *a, uint64_t i, size_t ps)
{
	return !pageset_count(&b->meanwhile, a->pg[i], 1) && a->pg[i] * ps < b->size;
}

/*
 * Store what the helper found, in runs: found pages that follow each other
 * lie side by side in the area too, so a run is one store. b->lock. The
 * pages stored; *err is set if some could be neither stored nor remembered.
 */
static int64_t store_found(struct daemon *d, struct buffer *b, struct compare_area *a, int *err)
{
	size_t ps = d->page_size;
	uint64_t n = a->n < COMPARE_PAGES ? a->n : COMPARE_PAGES;
	int64_t stored = 0;

	lock_assert_held(&b->lock);
	for (uint64_t i = 0, run; i < n; i += run) {
		uint64_t off = a->pg[i] * ps, len;
		ssize_t done;

		run = 1;
		if (!storable(b, a, i, ps))
			continue;
		while (i + run < n && a->pg[i + run] == a->pg[i] + run && a->len[i + run - 1] == ps &&
		       storable(b, a, i + run, ps))
			run++;
		len = (run - 1) * ps + a->len[i + run - 1];
		if (len > b->size - off)
			len = b->size - off;	/* cut meanwhile */
		done = store_write(d, b, compare_data(a, i, ps), len, off, STORE_COMPARED);
		if (done == (ssize_t)len)
			stored += (int64_t)run;
		else if (!pageset_count(&b->unstored, a->pg[i], 1))
			*err = done < 0 ? (int)done : -ENOSPC;	/* not even remembered */
		/* else unstored, like a failed writeback: held, retried, and the cleans answer for it */
	}
	return stored;
}

int compare_pass(struct daemon *d, struct buffer *b, struct compare_result *ret)
{
	uint64_t size, pages, pg = 0;
	int state, err = 0;

	*ret = (struct compare_result){ 0, 0 };
	lock_take(&b->lock);
	size = b->size;
	state = b->fd;		/* open while our own descriptor is: through the pass */
	b->comparing = true;
	b->meanwhile_lost = false;
	lock_drop(&b->lock);
	pages = (size + d->page_size - 1) / d->page_size;
	while (pg < pages && !err) {
		struct compare_area *a;
		double t0 = now_us();
		int64_t n = helper_compare(d, b->ino, pg, pages, size, state, &a);

		ret->read_us += now_us() - t0;

		if (n < 0) {
			err = (int)n;
			break;
		}
		lock_take(&b->lock);
		ret->changed += (uint64_t)store_found(d, b, a, &err);
		lock_drop(&b->lock);
		if (a->next <= pg)
			err = -EIO;	/* never: the helper always moves on */
		pg = a->next;
	}
	lock_take(&b->lock);
	b->comparing = false;
	pageset_clear(&b->meanwhile);
	if (b->meanwhile_lost && !err)
		err = -ENOMEM;	/* a WRITE's pages could not be noted: the caller writes back */
	pages_notify(b);
	lock_drop(&b->lock);
	return err;
}
