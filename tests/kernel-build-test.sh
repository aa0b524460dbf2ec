#!/bin/sh
# cohmem_pfn builds without a warning at W=1 (as errors) against Debian's
# kernels: bookworm's 6.1, bookworm-backports' 6.12 (where vm_flags is
# read-only, since 6.3), trixie-backports' newest (7.3 as of December 2026,
# with trixie's gcc-14, which debian-archive.sh puts beside its headers), and
# bullseye's 5.10, older than the 5.15 LTS the module promises and the oldest
# kernel the archive has (its compiler, gcc-10, is not in bookworm: it is
# built with bookworm's gcc, and says so).
# Headers come from the archive the machine already
# uses, through a private apt directory (tests/debian-archive.sh: no change to
# the system's apt sources, locked against the other tests that use it), and
# are cached, extracted, under ~/.cache/cohmem/headers.
# Exit 77 (skipped), saying why, when the archive cannot be reached and no
# headers are cached; 1, saying why, on any other failure.
# Usage: kernel-build-test.sh SOURCE_DIR
set -eu
src=$1
# shellcheck source=tests/debian-archive.sh
. "$(dirname "$0")/debian-archive.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

built=0
for suite in bookworm bookworm-backports trixie-backports bullseye; do
	# debian-archive.sh says what it could not get: 1 is the archive out of reach with nothing
	# cached (that suite is left out), anything else a failure.
	if hdr=$(archive_headers "$suite"); then
		:
	else
		rc=$?
		if [ "$rc" != 1 ]; then
			echo "kernel-build: FAILED: the headers of $suite's kernel cannot be had"
			exit 1
		fi
		echo "kernel-build: no headers of $suite's kernel (the archive cannot be reached, none cached)"
		continue
	fi
	cc='' note=''
	missing=$(archive_missing_cc "$hdr")
	if [ -n "$missing" ]; then
		note=" with $(gcc -dumpfullversion), not its $missing"
		cc=gcc
	fi
	rm -rf "$tmp/kmod"
	cp -r "$src/kernel" "$tmp/kmod"
	# BTF needs pahole (dwarves), which the headers do not depend on: not what this checks.
	if ! make -s -C "$hdr" M="$tmp/kmod" ${cc:+CC=$cc} W=1 KCFLAGS=-Werror CONFIG_DEBUG_INFO_BTF_MODULES= modules \
		>"$tmp/log" 2>&1; then
		cat "$tmp/log"
		echo "kernel-build: FAILED against $hdr"
		exit 1
	fi
	echo "kernel-build: builds cleanly at W=1 against ${hdr##*/} ($suite)$note"
	built=$((built + 1))
done
[ "$built" -gt 0 ] || { echo "SKIP: no kernel headers could be had"; exit 77; }
