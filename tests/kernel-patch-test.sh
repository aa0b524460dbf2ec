#!/usr/bin/env bash
# kernel/patches/0001-*.patch applies cleanly to Debian's linux-source-6.1, and
# the files it adds are the out-of-tree module's, byte for byte.
#   kernel-patch-test.sh SOURCE_DIR
# Exit 77 (skipped, with the reason) when linux-source-6.1 cannot be had.
set -euo pipefail
src=$(cd "${1:?usage: kernel-patch-test.sh SOURCE_DIR}" && pwd)
patch_file=$(ls "$src"/kernel/patches/0001-*.patch)
cache=${COHMEM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cohmem}/src
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v patch >/dev/null || { echo "SKIP: patch is not installed"; exit 77; }
mkdir -p "$cache"
deb=$(ls "$cache"/linux-source-6.1_*.deb 2>/dev/null | tail -n 1 || true)
if [ -z "$deb" ]; then
	(cd "$cache" && apt-get download linux-source-6.1 >/dev/null 2>&1) ||
		{ echo "SKIP: apt-get download linux-source-6.1 failed"; exit 77; }
	deb=$(ls "$cache"/linux-source-6.1_*.deb | tail -n 1)
fi

dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './usr/src/linux-source-6.1.tar.xz'
mkdir "$work/tree"
tar -xJf "$work/usr/src/linux-source-6.1.tar.xz" -C "$work/tree" --strip-components=1 \
	linux-source-6.1/drivers/misc/Kconfig linux-source-6.1/drivers/misc/Makefile
(cd "$work/tree" && patch -p1 --quiet --fuzz=0 <"$patch_file") ||
	{ echo "the patch does not apply cleanly to $(basename "$deb")"; exit 1; }
cmp "$work/tree/drivers/misc/cohmem_pfn.c" "$src/kernel/cohmem_pfn.c" ||
	{ echo "drivers/misc/cohmem_pfn.c differs from kernel/cohmem_pfn.c: run kernel/make-patch.sh"; exit 1; }
cmp "$work/tree/include/uapi/linux/cohmem_pfn.h" "$src/kernel/include/uapi/linux/cohmem_pfn.h" ||
	{ echo "the uapi header differs from kernel/'s: run kernel/make-patch.sh"; exit 1; }
grep -q 'select MAPPING_DIRTY_HELPERS' "$work/tree/drivers/misc/Kconfig"
grep -q 'CONFIG_COHMEM_PFN' "$work/tree/drivers/misc/Makefile"
echo "kernel patch: applies to $(basename "$deb"), same source as kernel/"
