# Debian's archive through a private apt directory per suite: the suite's
# packages, blind to what is installed and with no change to the system's
# apt sources, cached under ~/.cache/cohmem (or $COHMEM_CACHE_DIR). Sourced
# by kernel-build-test.sh and qemu/kernel-matrix.sh.
# shellcheck shell=sh
archive_cache=${COHMEM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cohmem}
archive_mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
	head -n 1)
archive_mirror=${archive_mirror:-http://deb.debian.org/debian}

# archive_apt SUITE COMMAND ARGS...: apt-get or apt-cache on that suite alone.
archive_apt() {
	apt_dir=$archive_cache/apt/$1
	apt_suite=$1
	shift
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $archive_mirror $apt_suite main" \
		>"$apt_dir/sources.list"
	"$@" -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" \
		-o Dir::State::status=/dev/null -o Debug::NoLocking=1
}

# archive_depends SUITE PACKAGE REGEX: the first dependency of PACKAGE matching REGEX (refreshing the
# lists once a day), or nothing.
archive_depends() {
	if [ -z "$(find "$archive_cache/apt/$1/lists" -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
		archive_apt "$1" apt-get update -qq >/dev/null 2>&1 || true
	fi
	archive_apt "$1" apt-cache depends "$2" 2>/dev/null | awk -v re="$3" '$1 == "Depends:" && $2 ~ re { print $2; exit }'
}

# archive_headers SUITE: the extracted headers directory of the suite's default amd64 kernel
# (downloaded the first time), or nothing, with the reason on stderr.
archive_headers() {
	flavour=$(archive_depends "$1" linux-headers-amd64 '^linux-headers-[0-9]')
	if [ -z "$flavour" ]; then	# offline: whatever is cached for the suite
		find "$archive_cache/headers/$1" -mindepth 4 -maxdepth 4 -path '*/usr/src/linux-headers-*-amd64' \
			2>/dev/null | head -n 1
		return 0
	fi
	root=$archive_cache/headers/$1/${flavour#linux-headers-}
	hdr=$root/usr/src/$flavour
	if [ ! -e "$hdr/.cohmem-ready" ]; then
		common=$(archive_depends "$1" "$flavour" '-common$')
		kbuild=$(archive_depends "$1" "$flavour" '^linux-kbuild-')
		dl=$(mktemp -d)
		(cd "$dl" && archive_apt "$1" apt-get download -qq "$flavour" "$common" "$kbuild") >/dev/null 2>&1 ||
			{ echo "cannot download $flavour from $1" >&2; rm -rf "$dl"; return 0; }
		rm -rf "$root"
		mkdir -p "$root"
		for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$root"; done
		rm -rf "$dl"
		# Its Makefile includes the common part by absolute path.
		sed -i "s|include /usr/src/|include $root/usr/src/|" "$hdr/Makefile"
		touch "$hdr/.cohmem-ready"
	fi
	echo "$hdr"
}

# archive_kernel SUITE: the suite's default amd64 kernel as PATH.vmlinuz, with its fuse module beside
# it as PATH.fuse.ko where FUSE is a module (6.1; 6.12 builds it in), downloaded and extracted the
# first time; or nothing.
archive_kernel() {
	pkg=$(archive_depends "$1" linux-image-amd64 '^linux-image-[0-9]')
	if [ -z "$pkg" ]; then
		ls "$archive_cache/kernels/"linux-image-*.vmlinuz 2>/dev/null | grep -F "$2" | head -n 1
		return 0
	fi
	out=$archive_cache/kernels/$pkg
	mkdir -p "$archive_cache/kernels"
	if [ ! -s "$out.vmlinuz" ]; then
		dl=$(mktemp -d)
		(cd "$dl" && archive_apt "$1" apt-get download -qq "$pkg") >/dev/null 2>&1 || { rm -rf "$dl"; return 0; }
		dpkg-deb --fsys-tarfile "$dl"/*.deb | tar -x -C "$dl" --wildcards './boot/vmlinuz-*' './lib/modules/*'
		ko=$(ls "$dl"/lib/modules/*/kernel/fs/fuse/fuse.ko* 2>/dev/null || true)
		case $ko in
		*.xz) xz -dc "$ko" >"$out.fuse.ko" ;;
		?*) mv "$ko" "$out.fuse.ko" ;;
		esac
		mv "$dl"/boot/vmlinuz-* "$out.vmlinuz"	# last: it marks the entry complete
		rm -rf "$dl"
	fi
	echo "$out.vmlinuz"
}
