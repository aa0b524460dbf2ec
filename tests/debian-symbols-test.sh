#!/bin/sh
# debian/libcohmem0.symbols lists exactly what the library exports, each
# symbol in its version node (and the nodes themselves): a symbol added to
# or moved in lib/libcohmem.map without the symbols file, or the other way
# round, fails here before dpkg-gensymbols would fail a package build.
# Usage: debian-symbols-test.sh LIBRARY SYMBOLS_FILE
set -eu
lib=$1 symbols=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# nm prints sym@@NODE for a default version, and the node itself as type A.
nm -D --defined-only "$lib" | awk '{ sub(/@@?/, "@", $3); if ($2 == "A") print $3 "@" $3; else print $3 }' |
	sort -u >"$tmp/exported"
grep -E '^ [A-Za-z_]' "$symbols" | awk '{ print $1 }' | sort -u >"$tmp/listed"
if ! diff -u "$tmp/listed" "$tmp/exported"; then
	echo "debian-symbols: $symbols and the library's exports differ (- symbols file, + library)"
	exit 1
fi
echo "debian-symbols: $(wc -l <"$tmp/exported") exports, all in $symbols"
