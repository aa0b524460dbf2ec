#!/bin/sh
# The README's "by hand" build on a machine with only a compiler, CMake and
# pkg-config: no optional package is visible (an empty pkg-config path), so
# the configure must succeed, say what it skips and which package brings it,
# and build the library and cohmemctl. Usage: minimal-build-test.sh SOURCE_DIR
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/no-pc"

PKG_CONFIG_LIBDIR=$tmp/no-pc PKG_CONFIG_PATH= cmake -S "$src" -B "$tmp/build" >"$tmp/configure.log" 2>&1 ||
	{ cat "$tmp/configure.log"; echo "a plain configure failed"; exit 1; }
for part in "the test suite (install libcriterion-dev)" "cohmem-bench (install libxxhash-dev)" \
	"cohmemd (install libfuse3-dev)"; do
	grep -qF -- "$part" "$tmp/configure.log" || { cat "$tmp/configure.log"; echo "not said: $part"; exit 1; }
done
cmake --build "$tmp/build" -j2 >"$tmp/build.log" 2>&1 || { tail -40 "$tmp/build.log"; exit 1; }
test -x "$tmp/build/tools/cohmemctl" && test -e "$tmp/build/lib/libcohmem.so.0" ||
	{ echo "the library or cohmemctl was not built"; exit 1; }
"$tmp/build/tools/cohmemctl" probe >/dev/null || test $? = 1
echo "minimal build: configure and build work without optional packages"
