#!/usr/bin/env bash
# Build cohmem's Debian source and binary packages into OUT (default
# build-package) from this tree, then run lintian on them: no errors and no
# warnings (overrides, each with its reason, live in debian/*.lintian-overrides).
#   tests/debian-package.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build-package}")
version=$(dpkg-parsechangelog -S Version)
upstream=${version%-*}
tree=$out/cohmem-$upstream

rm -rf "$out"
mkdir -p "$out"
# The orig tarball: the tree without debian/, build directories or git.
tar --exclude=./debian --exclude='./build*' --exclude=./.git --exclude=./.cache \
	--transform "s,^\\.,cohmem-$upstream," -cJf "$out/cohmem_$upstream.orig.tar.xz" .
tar -C "$out" -xJf "$out/cohmem_$upstream.orig.tar.xz"
cp -a debian "$tree/"
(cd "$tree" && dpkg-buildpackage -us -uc --build=full >"$out/build.log" 2>&1) || {
	tail -40 "$out/build.log" >&2
	echo "debian-package: dpkg-buildpackage failed (log: $out/build.log)" >&2
	exit 1
}
changes=$(ls "$out"/cohmem_"$version"_*.changes)
echo "debian-package: built $(cd "$out" && ls ./*.deb ./*.dsc | tr '\n' ' ')"
lintian --fail-on error,warning --display-info "$changes"
echo "debian-package: lintian found no errors and no warnings in $(basename "$changes")"
