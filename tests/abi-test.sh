#!/bin/sh
# The ABI is exactly what the header declares: every function in cohmem.h is
# exported, listed in the version script and has a man page, and nothing else
# is exported. Usage: abi-test.sh LIBRARY VERSION_SCRIPT HEADER MAN_DIR
set -eu
lib=$1 map=$2 header=$3 man=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Type A is the version node itself (COHMEM_0.1), not a symbol.
nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u >"$tmp/exported"
grep -oE '^[[:space:]]*cohmem_[a-z_]+;' "$map" | tr -d ' \t;' | sort -u >"$tmp/mapped"
grep -vE '^[[:space:]]*(\*|/\*)' "$header" | grep -oE '\bcohmem_[a-z_]+\(' | tr -d '(' | sort -u >"$tmp/declared"

status=0
for list in mapped declared; do
	if ! diff -u "$tmp/exported" "$tmp/$list" >"$tmp/diff"; then
		echo "exported symbols differ from the $list ones:"
		cat "$tmp/diff"
		status=1
	fi
done
while read -r fn; do
	test -f "$man/$fn.3" || { echo "no man page for $fn"; status=1; }
done <"$tmp/declared"
[ "$status" = 0 ] && echo "abi: $(wc -l <"$tmp/exported") functions exported, declared, versioned and documented"
exit $status
