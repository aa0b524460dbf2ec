#!/usr/bin/env bash
# Regenerate kernel/patches/0001-misc-add-cohmem_pfn.patch: the module as an
# in-tree driver (drivers/misc/cohmem_pfn.c, include/uapi/linux/cohmem_pfn.h,
# a Kconfig entry selecting MAPPING_DIRTY_HELPERS and MMU_NOTIFIER, a Makefile line), against
# Debian's linux-source-6.1 (it applies to 6.12 as well: the kernel-patch test checks both).
# The new files are byte for byte those of kernel/.
#
#   kernel/make-patch.sh LINUX_SOURCE_6.1.deb
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
deb=${1:?usage: make-patch.sh linux-source-6.1_*.deb}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './usr/src/linux-source-6.1.tar.xz'
mkdir -p "$work/a" "$work/b"
tar -xJf "$work/usr/src/linux-source-6.1.tar.xz" -C "$work/a" --strip-components=1 \
	linux-source-6.1/drivers/misc/Kconfig linux-source-6.1/drivers/misc/Makefile
cp -r "$work/a/." "$work/b/"
mkdir -p "$work/b/include/uapi/linux"
cp "$here/cohmem_pfn.c" "$work/b/drivers/misc/cohmem_pfn.c"
cp "$here/include/uapi/linux/cohmem_pfn.h" "$work/b/include/uapi/linux/cohmem_pfn.h"
# The Kconfig entry goes first in the menu, the object before the first one: context that
# 6.1 and 6.12 share, so that the patch applies to both without fuzz.
awk '!done && /^config / {
	print "config COHMEM_PFN"
	print "\ttristate \"cohmem: pfnmap buffers with dirty tracking for user space\""
	print "\tdepends on MMU"
	print "\tselect MAPPING_DIRTY_HELPERS"
	print "\tselect MMU_NOTIFIER"
	print "\thelp"
	print "\t  /dev/cohmem-pfn creates buffers that user space maps"
	print "\t  VM_IO | VM_PFNMAP, with the dirty tracking of vmwgfx (page-table"
	print "\t  and mkwrite methods over every mapping of a buffer) behind ioctls"
	print "\t  that follow clean_record_shared_mapping_range(). For libcohmem."
	print ""
	print "\t  A PCI device given to the driver (new_id or driver_override) has"
	print "\t  its largest memory BAR served the same way, as"
	print "\t  /dev/cohmem-pfn-<PCI address>."
	print ""
	print "\t  To compile this driver as a module, choose M here: the module"
	print "\t  will be called cohmem_pfn."
	print ""
	done = 1
} { print }' "$work/a/drivers/misc/Kconfig" >"$work/b/drivers/misc/Kconfig"
awk '!done && /^obj-/ { print "obj-$(CONFIG_COHMEM_PFN)\t\t+= cohmem_pfn.o"; done = 1 } { print }' \
	"$work/a/drivers/misc/Makefile" >"$work/b/drivers/misc/Makefile"

{
	printf 'From: cohmem developers\nSubject: [PATCH] misc: add cohmem_pfn, pfnmap buffers with dirty tracking\n\n'
	printf 'The cohmem_pfn module of cohmem (kernel/ in its tree) as a driver under\n'
	printf 'drivers/misc/: buffers mapped VM_IO | VM_PFNMAP whose writes, through\n'
	printf 'every mapping, are reported with wp_shared_mapping_range() and\n'
	printf 'clean_record_shared_mapping_range(), as vmwgfx does for its buffers.\n\n'
	printf -- '---\n'
	(cd "$work" && diff -ruN a b) || true
} >"$here/patches/0001-misc-add-cohmem_pfn.patch"
echo "wrote $here/patches/0001-misc-add-cohmem_pfn.patch"
