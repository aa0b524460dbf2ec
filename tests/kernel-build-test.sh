#!/bin/sh
# cohmem_pfn builds without a warning at W=1 (as errors) against Debian's
# kernels: bookworm's 6.1 and bookworm-backports' 6.12 (where vm_flags is
# read-only, since 6.3). Headers come from the archive the machine already
# uses, through a private apt directory (no change to the system's apt
# sources), and are cached, extracted, under ~/.cache/cohmem/headers.
# Exit 77 (skipped), saying why, when they can neither be fetched nor are cached.
# Usage: kernel-build-test.sh SOURCE_DIR
set -eu
src=$1
cache=${XDG_CACHE_HOME:-$HOME/.cache}/cohmem/headers
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$cache"

# apt for one suite, in a directory of its own, blind to what is installed: apt SUITE ARGS...
apt() {
	apt_dir=$cache/apt-$1
	apt_suite=$1
	shift
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $apt_suite main" \
		>"$apt_dir/sources.list"
	"$@" -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" \
		-o Dir::State::status=/dev/null -o Debug::NoLocking=1
}

# The extracted headers of the suite's default amd64 kernel, or nothing (said on stderr).
headers_for() {
	suite=$1
	if [ -z "$(find "$cache/apt-$suite/lists" -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
		apt "$suite" apt-get update -qq >/dev/null 2>&1 || true
	fi
	flavour=$(apt "$suite" apt-cache depends linux-headers-amd64 2>/dev/null |
		awk '/Depends: linux-headers-[0-9]/ { print $2; exit }')
	if [ -z "$flavour" ]; then	# offline: whatever is cached for the suite
		find "$cache/$suite" -mindepth 4 -maxdepth 4 -path '*/usr/src/linux-headers-*-amd64' 2>/dev/null | head -n 1
		return 0
	fi
	root=$cache/$suite/${flavour#linux-headers-}
	hdr=$root/usr/src/$flavour
	if [ ! -e "$hdr/.cohmem-ready" ]; then
		common=$(apt "$suite" apt-cache depends "$flavour" | awk '/Depends: linux-headers-.*-common$/ { print $2; exit }')
		kbuild=$(apt "$suite" apt-cache depends "$flavour" | awk '/Depends: linux-kbuild-/ { print $2; exit }')
		(cd "$tmp" && apt "$suite" apt-get download -qq "$flavour" "$common" "$kbuild") >/dev/null 2>&1 ||
			{ echo "kernel-build: cannot download $flavour from $suite" >&2; return 0; }
		rm -rf "$root"
		mkdir -p "$root"
		for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$root"; done
		rm -f "$tmp"/*.deb
		# Its Makefile includes the common part by absolute path.
		sed -i "s|include /usr/src/|include $root/usr/src/|" "$hdr/Makefile"
		touch "$hdr/.cohmem-ready"
	fi
	echo "$hdr"
}

built=0
for suite in bookworm bookworm-backports; do
	hdr=$(headers_for "$suite")
	if [ -z "$hdr" ]; then
		echo "kernel-build: no headers of $suite's kernel (offline and not cached)"
		continue
	fi
	rm -rf "$tmp/kmod"
	cp -r "$src/kernel" "$tmp/kmod"
	# BTF needs pahole (dwarves), which the headers do not depend on: not what this checks.
	if ! make -s -C "$hdr" M="$tmp/kmod" W=1 KCFLAGS=-Werror CONFIG_DEBUG_INFO_BTF_MODULES= modules \
		>"$tmp/log" 2>&1; then
		cat "$tmp/log"
		echo "kernel-build: FAILED against $hdr"
		exit 1
	fi
	echo "kernel-build: builds cleanly at W=1 against ${hdr##*/} ($suite)"
	built=$((built + 1))
done
[ "$built" -gt 0 ] || { echo "SKIP: no kernel headers could be had"; exit 77; }
