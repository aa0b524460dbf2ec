#!/usr/bin/env bash
# Build Linux 6.12 (Debian's linux-source-6.12, from bookworm-backports) with cohmem's kernel
# patches: kernel/patches/0001-misc-add-cohmem_pfn.patch (the module, built with the kernel)
# and the series in kernel/patches/pagemap-scan-pfnmap/ (PAGEMAP_SCAN of shared VM_PFNMAP
# mappings), with a configuration small enough for a 2-core machine
# (tests/qemu/patched-kernel.config over tinyconfig).
#
#   tests/qemu/patched-kernel.sh
#
# Prints the directory that holds the result: vmlinuz, config, cohmem_pfn.ko and the series'
# selftest (pagemap_pfnmap, static, for the guest). It is
# cached under $COHMEM_CACHE_DIR (default ~/.cache/cohmem)/kernels/, keyed by the patches,
# the configuration and this script: a change to any of them builds again (~25 min on this
# 2-core VM), anything else reuses it. The build tree is temporary.
# Exit 0: built or cached; 77: the source cannot be downloaded and is not cached (the reason on
# stderr); 1: the build failed (its log's end on stderr).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
series=$top/kernel/patches/pagemap-scan-pfnmap
config=$here/patched-kernel.config
module_patch=$top/kernel/patches/0001-misc-add-cohmem_pfn.patch
cache=${COHMEM_CACHE_DIR:-$HOME/.cache/cohmem}

# shellcheck source=tests/debian-archive.sh
. "$here/../debian-archive.sh"
mkdir -p "$cache/src" "$cache/kernels"
if deb=$(archive_deb bookworm-backports linux-source-6.12 "$cache/src"); then
	:
else
	rc=$?
	[ "$rc" = 1 ] && { echo "SKIP: linux-source-6.12 cannot be downloaded and is not cached" >&2; exit 77; }
	echo "patched-kernel: linux-source-6.12 cannot be had" >&2
	exit 1
fi
# The series' patches (the cover letter, 0000, is not one).
patches=()
for p in "$series"/0*-*.patch; do
	case ${p##*/} in 0000-*) ;; *) patches+=("$p") ;; esac
done
# The key: the source package's name (its version), the patches, the configuration, this script.
key=$( (echo "${deb##*/}"; cat "$module_patch" "${patches[@]}" "$config" "$0") | sha256sum | cut -c 1-16)
out=$cache/kernels/patched-6.12-$key
if [ -e "$out/vmlinuz" ] && [ -e "$out/cohmem_pfn.ko" ] && [ -e "$out/pagemap_pfnmap" ]; then
	echo "$out"
	exit 0
fi

# What a build needs besides gcc and make.
missing=
for tool in flex:flex bison:bison bc:bc; do
	command -v "${tool%%:*}" >/dev/null || missing="$missing ${tool#*:}"
done
[ -e /usr/include/libelf.h ] || missing="$missing libelf-dev"
[ -e /usr/include/openssl/ssl.h ] || missing="$missing libssl-dev"
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || missing="$missing libc6-dev"
if [ -n "$missing" ]; then
	echo "patched-kernel: building the kernel needs:$missing (Debian packages)" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./usr/src/linux-source-6.12.tar.xz
mkdir "$work/src" "$work/build"
tar -xJf "$work/usr/src/linux-source-6.12.tar.xz" -C "$work/src" --strip-components=1
rm -rf "$work/usr"
(cd "$work/src" && patch -p1 --quiet --fuzz=0 <"$module_patch")
for p in "${patches[@]}"; do
	(cd "$work/src" && patch -p1 --quiet --fuzz=0 <"$p") || {
		echo "patched-kernel: $(basename "$p") does not apply to $(basename "$deb")" >&2
		exit 1
	}
done

make -s -C "$work/src" O="$work/build" tinyconfig >/dev/null
"$work/src/scripts/kconfig/merge_config.sh" -m -O "$work/build" "$work/build/.config" "$config" >/dev/null
make -s -C "$work/src" O="$work/build" olddefconfig
# Every option the fragment sets must have survived (a dependency missing drops it silently).
while IFS= read -r line; do
	case $line in CONFIG_*=*) ;; *) continue ;; esac
	grep -qx -- "$line" "$work/build/.config" || {
		[ "${line#*=}" = n ] && ! grep -q "^${line%%=*}=" "$work/build/.config" && continue
		echo "patched-kernel: $line did not survive olddefconfig" >&2
		exit 1
	}
done <"$config"

start=$(date +%s)
jobs=$(($(nproc) + 1))
# Niced: it runs beside other tests (kernel-patched:build), which must not starve.
if ! nice -n 19 make -C "$work/src" O="$work/build" -j"$jobs" bzImage modules >"$work/build.log" 2>&1; then
	tail -n 40 "$work/build.log" >&2
	exit 1
fi
# The selftest, against the patched uapi headers, static: the guest has no libraries for it.
make -s -C "$work/src" O="$work/build" headers >/dev/null
mkdir -p "$out.part"
gcc -Wall -Wextra -Werror -O2 -U_FORTIFY_SOURCE -static -I "$work/src/tools/testing/selftests" \
	-isystem "$work/build/usr/include" -o "$out.part/pagemap_pfnmap" \
	"$work/src/tools/testing/selftests/mm/pagemap_pfnmap.c"
cp "$work/build/arch/x86/boot/bzImage" "$out.part/vmlinuz"
cp "$work/build/.config" "$out.part/config"
cp "$work/build/drivers/misc/cohmem_pfn.ko" "$out.part/cohmem_pfn.ko"
echo "$(($(date +%s) - start)) s with $jobs jobs on $(nproc) CPUs" >"$out.part/build-time"
rm -rf "$out"
mv "$out.part" "$out"
echo "patched-kernel: built in $(cat "$out/build-time")" >&2
echo "$out"
