/* SPDX-License-Identifier: MIT */
#ifndef COHMEM_PAGE_H
#define COHMEM_PAGE_H

#include <stddef.h>

/* The base page size, from sysconf() once. */
size_t page_size(void);

#endif /* COHMEM_PAGE_H */
