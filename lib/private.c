/* SPDX-License-Identifier: MIT */
/*
 * What only cohmemctl needs, exported in the COHMEM_PRIVATE version node so
 * that `cohmemctl probe` reports what the installed library sees, not what a
 * copy of its own would. Not for programs: these may change in any release,
 * and no public header declares them (shared/uffd.h does).
 */
#include "internal.h"
#include "uffd.h"

_public_ const struct uffd_caps *cohmem_private_uffd_caps(void)
{
	return uffd_caps();
}

_public_ int cohmem_private_uffd_try_open(enum uffd_open_method method)
{
	return uffd_try_open(method);
}
