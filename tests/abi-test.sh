#!/bin/sh
# The ABI is exactly what the public headers declare: every function in
# include/*.h is exported in the public version node and has a man page;
# the only other exports are cohmem_private_* in the private node (for
# cohmemctl); nothing else is exported.
# Usage: abi-test.sh LIBRARY VERSION_SCRIPT INCLUDE_DIR MAN_DIR
set -eu
lib=$1 map=$2 include=$3 man=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Type A is a version node itself (COHMEM_0.2), not a symbol.
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sort -u >"$tmp/versioned"
sed 's/@.*//' "$tmp/versioned" | sort -u >"$tmp/exported"
grep -oE '^[[:space:]]*cohmem_[a-z_]+;' "$map" | tr -d ' \t;' | sort -u >"$tmp/mapped"
cat "$include"/*.h | grep -vE '^[[:space:]]*(\*|/\*)' | grep -oE '\bcohmem_[a-z_]+\(' | tr -d '(' |
	sort -u >"$tmp/declared"
grep -v '^cohmem_private_' "$tmp/exported" >"$tmp/public" || true

status=0
if ! diff -u "$tmp/exported" "$tmp/mapped" >"$tmp/diff"; then
	echo "exported symbols differ from the version script's:"
	cat "$tmp/diff"
	status=1
fi
if ! diff -u "$tmp/public" "$tmp/declared" >"$tmp/diff"; then
	echo "public exported symbols differ from the headers' declarations:"
	cat "$tmp/diff"
	status=1
fi
if grep '^cohmem_private_' "$tmp/versioned" | grep -v '@@*COHMEM_PRIVATE_' ; then
	echo "private symbols outside the private version node"
	status=1
fi
if grep -v '^cohmem_private_' "$tmp/versioned" | grep '@@*COHMEM_PRIVATE_'; then
	echo "public symbols in the private version node"
	status=1
fi
while read -r fn; do
	test -f "$man/$fn.3" || { echo "no man page for $fn"; status=1; }
done <"$tmp/declared"
[ "$status" = 0 ] && echo "abi: $(wc -l <"$tmp/public") public functions exported, declared, versioned and documented; $(grep -c '^cohmem_private_' "$tmp/exported") private"
exit $status
