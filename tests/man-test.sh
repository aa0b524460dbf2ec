#!/bin/sh
# Every man page renders without a groff warning. Usage: man-test.sh MAN_DIR
set -eu
command -v groff >/dev/null || { echo "SKIP: groff is not installed"; exit 77; }
status=0
for page in "$1"/*.[1378]; do
	grep -q '^\.so ' "$page" && continue
	out=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || status=1
	[ -z "$out" ] || { echo "$page: $out"; status=1; }
done
exit $status
