/* SPDX-License-Identifier: MIT */
#include <unistd.h>

#include "page.h"

size_t page_size(void)
{
	static size_t size;

	/* A benign race: every thread computes and stores the same value. */
	if (!size)
		size = (size_t)sysconf(_SC_PAGESIZE);
	return size;
}
