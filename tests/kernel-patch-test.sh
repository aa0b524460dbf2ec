#!/usr/bin/env bash
# kernel/patches/0001-*.patch applies cleanly (no fuzz) to Debian's
# linux-source-6.1 (bookworm) and linux-source-6.12 (bookworm-backports), and
# the files it adds are the out-of-tree module's, byte for byte. The sources
# come from the archive through a private apt directory (tests/debian-archive.sh,
# which refreshes its lists and locks it against the other tests) and are cached.
#   kernel-patch-test.sh SOURCE_DIR
# Exit 77 (skipped, with the reason) when the archive cannot be reached and
# neither source is cached; 1, saying why, on any other failure.
set -euo pipefail
src=$(cd "${1:?usage: kernel-patch-test.sh SOURCE_DIR}" && pwd)
# shellcheck source=tests/debian-archive.sh
. "$src/tests/debian-archive.sh"
patch_file=$(ls "$src"/kernel/patches/0001-*.patch) || { echo "kernel patch: FAIL: no kernel/patches/0001-*.patch"; exit 1; }
cache=$archive_cache/src
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v patch >/dev/null || { echo "SKIP: patch is not installed"; exit 77; }

# fail MESSAGE: the test fails, saying why (set -e alone would end it without a word).
fail() {
	echo "kernel patch: FAIL: $*"
	exit 1
}

checked=0
for pair in bookworm:6.1 bookworm-backports:6.12; do
	suite=${pair%%:*} version=${pair#*:}
	# The cached package, or the archive's, downloaded once (debian-archive.sh says what it could
	# not get): 1 is the archive out of reach with nothing cached, anything else a failure.
	if deb=$(archive_deb "$suite" "linux-source-$version" "$cache"); then
		:
	else
		rc=$?
		[ "$rc" = 1 ] || fail "linux-source-$version ($suite) cannot be had"
		echo "kernel patch: linux-source-$version ($suite) cannot be downloaded and is not cached"
		continue
	fi
	rm -rf "${work:?}/usr" "$work/tree"
	# A package that does not extract is damaged: removed, so that the next run downloads it again.
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards "./usr/src/linux-source-$version.tar.xz" || {
		rm -f "$deb"
		fail "$deb does not extract: removed from the cache"
	}
	mkdir "$work/tree"
	tar -xJf "$work/usr/src/linux-source-$version.tar.xz" -C "$work/tree" --strip-components=1 \
		"linux-source-$version/drivers/misc/Kconfig" "linux-source-$version/drivers/misc/Makefile" ||
		fail "drivers/misc/Kconfig or Makefile is missing from $(basename "$deb")"
	(cd "$work/tree" && patch -p1 --quiet --fuzz=0 <"$patch_file") ||
		fail "the patch does not apply cleanly to $(basename "$deb")"
	cmp "$work/tree/drivers/misc/cohmem_pfn.c" "$src/kernel/cohmem_pfn.c" ||
		fail "drivers/misc/cohmem_pfn.c differs from kernel/cohmem_pfn.c: run kernel/make-patch.sh"
	cmp "$work/tree/include/uapi/linux/cohmem_pfn.h" "$src/kernel/include/uapi/linux/cohmem_pfn.h" ||
		fail "the uapi header differs from kernel/'s: run kernel/make-patch.sh"
	for select in MAPPING_DIRTY_HELPERS MMU_NOTIFIER; do
		grep -q "select $select" "$work/tree/drivers/misc/Kconfig" ||
			fail "the patched drivers/misc/Kconfig does not select $select"
	done
	grep -q 'CONFIG_COHMEM_PFN' "$work/tree/drivers/misc/Makefile" ||
		fail "the patched drivers/misc/Makefile does not build CONFIG_COHMEM_PFN"
	echo "kernel patch: applies to $(basename "$deb"), same source as kernel/"
	checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || { echo "SKIP: no linux-source package could be had"; exit 77; }
