#!/bin/sh
# Install the build into a scratch prefix and build consumers against it, with
# find_package(cohmem) and with pkg-config. Usage: install-test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name libcohmem.so.0 | head -n 1)")
for f in include/cohmem.h include/cohmem-fb.h include/cohmem-buffer.h include/cohmem-pfn.h \
	include/linux/cohmem_pfn.h share/man/man3/cohmem_region_clean.3 share/man/man7/cohmem.7; do
	test -e "$prefix/$f" || { echo "not installed: $f"; exit 1; }
done
if test -x "$build/daemon/cohmemd"; then
	for f in sbin/cohmemd share/man/man8/cohmemd.8 share/man/man3/cohmem_buffer_attach.3 \
		lib/systemd/system/cohmemd.service; do
		test -e "$prefix/$f" || { echo "not installed: $f"; exit 1; }
	done
fi
test -L "$libdir/libcohmem.so" || { echo "no development symlink"; exit 1; }

cmake -S "$src/tests/consumer" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
LD_LIBRARY_PATH=$libdir "$tmp/cmake/consumer"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
test "$(pkg-config --modversion cohmem)" = "$(sed -n 's/^project(cohmem VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")"
# shellcheck disable=SC2046
cc -o "$tmp/pc-consumer" "$src/tests/consumer/consumer.c" $(pkg-config --cflags --libs cohmem)
LD_LIBRARY_PATH=$libdir "$tmp/pc-consumer"
echo "install: find_package and pkg-config consumers work"
