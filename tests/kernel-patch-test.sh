#!/usr/bin/env bash
# kernel/patches/0001-*.patch applies cleanly (no fuzz) to Debian's
# linux-source-6.1 (bookworm) and linux-source-6.12 (bookworm-backports), and
# the files it adds are the out-of-tree module's, byte for byte. The sources
# come from the archive through a private apt directory and are cached.
#   kernel-patch-test.sh SOURCE_DIR
# Exit 77 (skipped, with the reason) when neither source can be had.
set -euo pipefail
src=$(cd "${1:?usage: kernel-patch-test.sh SOURCE_DIR}" && pwd)
. "$src/tests/debian-archive.sh"
patch_file=$(ls "$src"/kernel/patches/0001-*.patch)
cache=$archive_cache/src
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v patch >/dev/null || { echo "SKIP: patch is not installed"; exit 77; }
mkdir -p "$cache"

# source_deb SUITE VERSION: the cached linux-source-VERSION package, downloaded the first time.
source_deb() {
	if ! ls "$cache/linux-source-$2_"*.deb >/dev/null 2>&1; then
		(cd "$cache" && archive_apt "$1" apt-get download -qq "linux-source-$2") >/dev/null 2>&1 || true
	fi
	ls "$cache/linux-source-$2_"*.deb 2>/dev/null | tail -n 1
}

checked=0
for pair in bookworm:6.1 bookworm-backports:6.12; do
	suite=${pair%%:*} version=${pair#*:}
	deb=$(source_deb "$suite" "$version")
	if [ -z "$deb" ]; then
		echo "kernel patch: linux-source-$version ($suite) cannot be downloaded and is not cached"
		continue
	fi
	rm -rf "$work/usr" "$work/tree"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards "./usr/src/linux-source-$version.tar.xz"
	mkdir "$work/tree"
	tar -xJf "$work/usr/src/linux-source-$version.tar.xz" -C "$work/tree" --strip-components=1 \
		"linux-source-$version/drivers/misc/Kconfig" "linux-source-$version/drivers/misc/Makefile"
	(cd "$work/tree" && patch -p1 --quiet --fuzz=0 <"$patch_file") ||
		{ echo "the patch does not apply cleanly to $(basename "$deb")"; exit 1; }
	cmp "$work/tree/drivers/misc/cohmem_pfn.c" "$src/kernel/cohmem_pfn.c" ||
		{ echo "drivers/misc/cohmem_pfn.c differs from kernel/cohmem_pfn.c: run kernel/make-patch.sh"; exit 1; }
	cmp "$work/tree/include/uapi/linux/cohmem_pfn.h" "$src/kernel/include/uapi/linux/cohmem_pfn.h" ||
		{ echo "the uapi header differs from kernel/'s: run kernel/make-patch.sh"; exit 1; }
	grep -q 'select MAPPING_DIRTY_HELPERS' "$work/tree/drivers/misc/Kconfig"
	grep -q 'select MMU_NOTIFIER' "$work/tree/drivers/misc/Kconfig"
	grep -q 'CONFIG_COHMEM_PFN' "$work/tree/drivers/misc/Makefile"
	echo "kernel patch: applies to $(basename "$deb"), same source as kernel/"
	checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || { echo "SKIP: no linux-source package could be had"; exit 77; }
