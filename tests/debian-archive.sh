# Debian's archive through a private apt directory per suite: the suite's
# packages, blind to what is installed and with no change to the system's
# apt sources or lists, cached under ~/.cache/cohmem (or $COHMEM_CACHE_DIR).
# Sourced by kernel-build-test.sh, kernel-patch-test.sh, debian-install-test.sh
# and qemu/kernel-matrix.sh.
#
# Tests that CTest runs in parallel, and runs of two build trees, share that
# cache: every public helper holds the suite's lock (flock on
# apt/SUITE/lock) while it refreshes lists, reads them and downloads, and
# whatever lands in the cache (a .deb, a kernel, a headers tree) is made
# under a temporary name in its final directory and renamed into place, so
# that nobody, not even the next run after one that was killed, sees half of
# it.
#
# The public helpers print what they give on stdout and return 0; or print
# one line on stderr saying what could not be had and why, and return
#   1  when the archive cannot be reached and nothing usable is cached (skip),
#   2  for anything else (a package missing from fresh lists, a broken
#      package, a full disk: fail).
# shellcheck shell=sh
archive_cache=${COHMEM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cohmem}
archive_keyring=/usr/share/keyrings/debian-archive-keyring.gpg
archive_mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
	head -n 1)
archive_mirror=${archive_mirror:-http://deb.debian.org/debian}

# _archive_sources SUITE: the private sources.list of SUITE. Where the machine's Debian sources
# name SUITE, every one of SUITE, SUITE-updates and SUITE-security they name, with their mirrors
# (bookworm's kernel is bookworm-security's when there is one: the private directory must pick
# the package the machine would); otherwise (bookworm-backports, bullseye) SUITE alone from the
# machine's mirror. Only Debian's own entries count (signed by its keyring or unsigned, on a
# .../debian or .../debian-security path): a third-party repository of the same suite name is
# not the archive.
_archive_sources() {
	# Either file may be missing: that is no error (not even under a caller's pipefail).
	{ cat /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null || :; } |
		awk -v suite="$1" -v mirror="$archive_mirror" -v key="$archive_keyring" '
		function keep(uri, s, signed) {
			if (uri !~ /\/debian(-security)?\/?$/ || (signed != "" && signed !~ /debian-archive-keyring/))
				return
			if (s != suite && s != suite "-updates" && s != suite "-security")
				return
			line = "deb [signed-by=" key "] " uri " " s " main"
			if (!(line in seen)) { seen[line] = 1; print line; n++ }
		}
		function flush(   i, j, nu, ns, u, s) {	# the end of a deb822 stanza
			if (deb && enabled) {
				nu = split(uris, u, " "); ns = split(suites, s, " ")
				for (i = 1; i <= nu; i++)
					for (j = 1; j <= ns; j++)
						keep(u[i], s[j], signed)
			}
			deb = 0; enabled = 1; uris = suites = signed = ""
		}
		BEGIN { enabled = 1 }
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1; next }
		tolower($1) == "uris:" { $1 = ""; uris = $0; next }
		tolower($1) == "suites:" { $1 = ""; suites = $0; next }
		tolower($1) == "signed-by:" { signed = $2; next }
		tolower($1) == "enabled:" { enabled = tolower($2) != "no"; next }
		$1 == "deb" {	# one-line format: deb [options] uri suite components
			signed = ""
			if (match($0, /\[[^]]*\]/)) {
				opts = substr($0, RSTART + 1, RLENGTH - 2)
				$0 = substr($0, 1, RSTART - 1) substr($0, RSTART + RLENGTH)
				if (match(opts, /signed-by=[^ ]*/))
					signed = substr(opts, RSTART + 10, RLENGTH - 10)
			}
			keep($2, $3, signed)
			signed = ""
		}
		END {
			flush()
			if (!n)
				print "deb [signed-by=" key "] " mirror " " suite " main"
		}'
}

# _archive_apt SUITE COMMAND ARGS...: apt-get or apt-cache on SUITE's private directory.
# apt's own locks would make a second caller fail at once rather than wait: the suite's flock
# (_archive_locked) serialises the callers instead. No sandbox user: _apt cannot enter a cache
# under root's home.
_archive_apt() {
	apt_dir=$archive_cache/apt/$1
	shift
	"$@" -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" \
		-o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root
}

# _archive_locked SUITE FUNCTION ARGS...: FUNCTION ARGS in a subshell that holds SUITE's lock.
# FUNCTION returns 0, or 1 or 2 with archive_what and archive_why set, which this prints; and it
# works in archive_part (a temporary directory beside what it makes), which this removes.
# Locks do not nest (a second flock on the same file waits for the first): only the public
# helpers take it, and they call only the _archive_* functions, which do not.
_archive_locked() {
	{ mkdir -p "$archive_cache/apt/$1" && : >>"$archive_cache/apt/$1/lock"; } 2>/dev/null || {
		echo "archive: cannot write $archive_cache/apt/$1" >&2
		return 2
	}
	(
		flock 9 || { echo "archive: cannot lock $archive_cache/apt/$1/lock" >&2; exit 2; }
		shift
		archive_part='' archive_what='' archive_why='' archive_rc=0
		# Not a plain "$@": dash keeps a caller's set -e in command substitutions, and it would
		# end this subshell before the message and the cleanup.
		"$@" || archive_rc=$?
		[ -z "$archive_part" ] || rm -rf "$archive_part"
		[ "$archive_rc" = 0 ] || echo "archive: cannot get $archive_what: ${archive_why:-unknown reason}" >&2
		exit "$archive_rc"
	) 9>>"$archive_cache/apt/$1/lock"
}

# _archive_why RC REASON: return RC with REASON in archive_why.
_archive_why() {
	archive_why=$2
	return "$1"
}

# _archive_part DIR NAME: a new temporary directory for NAME in DIR as archive_part, after removing
# those a killed run left (only the lock holder makes them; NAME has no "_", the separator).
_archive_part() {
	# shellcheck disable=SC2015 # whichever step fails, the one reason
	mkdir -p "$1" && rm -rf "$1/.partial-$2_"* && archive_part=$(mktemp -d "$1/.partial-$2_XXXXXX") ||
		_archive_why 2 "cannot write $1"
}

# _archive_fresh SUITE: SUITE's private lists are usable: refreshed when missing, older than a
# day or made from other sources; when that fails (offline), the old ones if there are any.
# Otherwise return 1 with the reason in archive_why. Lock held.
_archive_fresh() {
	apt_dir=$archive_cache/apt/$1
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache" &&
		_archive_sources "$1" >"$apt_dir/sources.list.new" || _archive_why 2 "cannot write $apt_dir" || return
	# Rewritten only when it changes: its copy in "updated" (below) says what the lists are of.
	if cmp -s "$apt_dir/sources.list.new" "$apt_dir/sources.list"; then
		rm -f "$apt_dir/sources.list.new"
	else
		mv -f "$apt_dir/sources.list.new" "$apt_dir/sources.list" || _archive_why 2 "cannot write $apt_dir" || return
	fi
	# "updated" is a copy of the sources.list of the last complete update, made after it.
	if [ -n "$(find "$apt_dir/updated" -mtime -1 2>/dev/null)" ] &&
		cmp -s "$apt_dir/updated" "$apt_dir/sources.list"; then
		return 0
	fi
	# --error-on=any: an index that failed to download is a failure, not a warning.
	if _archive_apt "$1" apt-get update -qq --error-on=any >"$apt_dir/update.log" 2>&1; then
		cp "$apt_dir/sources.list" "$apt_dir/updated" || _archive_why 2 "cannot write $apt_dir"
		return
	fi
	archive_why="the archive cannot be reached ($(_archive_first_error "$apt_dir/update.log"))"
	if ls "$apt_dir/lists/"*_Packages* >/dev/null 2>&1; then
		echo "archive: $1's package lists could not be refreshed, using the old ones: $archive_why" >&2
		return 0
	fi
	return 1
}

# _archive_depends SUITE PACKAGE REGEX: the first dependency of PACKAGE's candidate matching REGEX
# as archive_dep (a variable: archive_why must survive), or return 2. Lists usable, lock held.
# (awk reads to the end: apt-cache must not die of SIGPIPE under a caller's pipefail.)
_archive_depends() {
	archive_dep=$(_archive_apt "$1" apt-cache depends "$2" 2>/dev/null |
		awk -v re="$3" '$1 == "Depends:" && $2 ~ re && !found { print $2; found = 1 }') || true
	[ -n "$archive_dep" ] || _archive_why 2 "$1's lists have no $2 depending on $3"
}

# _archive_get SUITE DIR PACKAGE...: apt-get download PACKAGE... into DIR, a directory of our own.
# Lists usable, lock held. A package the lists lack is a failure (2); anything else, the archive
# out of reach (1).
_archive_get() {
	get_suite=$1 get_dir=$2
	shift 2
	for get_pkg in "$@"; do
		_archive_apt "$get_suite" apt-cache show "$get_pkg" >/dev/null 2>&1 ||
			_archive_why 2 "$get_suite's lists have no $get_pkg" || return
	done
	(cd "$get_dir" && _archive_apt "$get_suite" apt-get download -qq "$@") >"$get_dir/download.log" 2>&1 ||
		_archive_why 1 "the download failed ($(_archive_first_error "$get_dir/download.log"))"
}

# _archive_first_error LOG: apt's first error or warning in LOG, on one line.
_archive_first_error() {
	{ grep -m 1 '^[EW]:' "$1" || tail -n 1 "$1"; } 2>/dev/null | cut -c 1-160
}

# archive_depends SUITE PACKAGE REGEX: the first dependency of PACKAGE matching REGEX in SUITE.
archive_depends() {
	_archive_locked "$1" _archive_depends_locked "$@"
}
_archive_depends_locked() {
	archive_what="$1's $2 dependency $3"
	_archive_fresh "$1" || return
	_archive_depends "$@" || return
	echo "$archive_dep"
}

# archive_deb SUITE PACKAGE DIR: a .deb of PACKAGE in DIR (the newest version there), downloaded
# from SUITE the first time.
archive_deb() {
	_archive_locked "$1" _archive_deb_locked "$@"
}
_archive_deb_locked() {
	archive_what="$2 from $1"
	# shellcheck disable=SC2012 # package file names: no blanks or newlines
	deb=$(ls "$3/$2"_*.deb 2>/dev/null | sort -V | tail -n 1) || true
	if [ -z "$deb" ]; then
		_archive_part "$3" "$2" || return
		_archive_fresh "$1" || return
		_archive_get "$1" "$archive_part" "$2" || return
		deb=$(ls "$archive_part/$2"_*.deb) && mv "$deb" "$3/" || _archive_why 2 "cannot write $3" || return
		deb=$3/${deb##*/}
	fi
	echo "$deb"
}

# archive_headers SUITE: the extracted headers directory of the suite's default amd64 kernel,
# downloaded the first time.
archive_headers() {
	_archive_locked "$1" _archive_headers_locked "$1"
}
_archive_headers_locked() {
	archive_what="$1's linux-headers-amd64"
	_archive_fresh "$1" || return
	_archive_depends "$1" linux-headers-amd64 '^linux-headers-[0-9]' || return
	flavour=$archive_dep
	dir=$archive_cache/headers/$1
	root=$dir/${flavour#linux-headers-}
	hdr=$root/usr/src/$flavour
	if [ ! -e "$hdr/.cohmem-ready" ]; then
		archive_what=$flavour
		_archive_depends "$1" "$flavour" '-common$' || return
		common=$archive_dep
		_archive_depends "$1" "$flavour" '^linux-kbuild-' || return
		kbuild=$archive_dep
		_archive_part "$dir" "$flavour" || return
		_archive_get "$1" "$archive_part" "$flavour" "$common" "$kbuild" || return
		for deb in "$archive_part"/*.deb; do
			dpkg-deb -x "$deb" "$archive_part/root" || _archive_why 2 "cannot extract $deb" || return
		done
		# Its Makefile includes the common part by absolute path: the final one. The tree is
		# complete (marked ready) before it takes its name.
		sed -i "s|include /usr/src/|include $root/usr/src/|" "$archive_part/root/usr/src/$flavour/Makefile" &&
			touch "$archive_part/root/usr/src/$flavour/.cohmem-ready" &&
			rm -rf "$root" && mv "$archive_part/root" "$root" || _archive_why 2 "cannot set up $root" || return
	fi
	echo "$hdr"
}

# archive_kernel SUITE: the suite's default amd64 kernel as PATH.vmlinuz, with its fuse module
# beside it as PATH.fuse.ko where FUSE is a module (6.1; 6.12 builds it in), downloaded and
# extracted the first time.
archive_kernel() {
	_archive_locked "$1" _archive_kernel_locked "$1"
}
_archive_kernel_locked() {
	archive_what="$1's linux-image-amd64"
	_archive_fresh "$1" || return
	_archive_depends "$1" linux-image-amd64 '^linux-image-[0-9]' || return
	pkg=$archive_dep
	out=$archive_cache/kernels/$pkg
	if [ ! -s "$out.vmlinuz" ]; then
		archive_what=$pkg
		_archive_part "$archive_cache/kernels" "$pkg" || return
		_archive_get "$1" "$archive_part" "$pkg" || return
		deb=$(ls "$archive_part/$pkg"_*.deb) || _archive_why 2 "apt-get download gave no $pkg" || return
		# The kernel and fuse.ko alone, not the 400 MB of modules: named from the listing.
		members=$(dpkg-deb -c "$deb" | awk '{ print $6 }' |
			grep -E '^\./(boot/vmlinuz-|lib/modules/[^/]+/kernel/fs/fuse/fuse\.ko(\.xz)?$)') || true
		# shellcheck disable=SC2086 # $members: paths without blanks, one word each
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$archive_part" $members ||
			_archive_why 2 "cannot extract $members from $deb" || return
		vmlinuz=$(ls "$archive_part"/boot/vmlinuz-*) || _archive_why 2 "$deb has no /boot/vmlinuz" || return
		ko=$(ls "$archive_part"/lib/modules/*/kernel/fs/fuse/fuse.ko* 2>/dev/null) || true
		case $ko in
		*.xz) xz -dc "$ko" >"$archive_part/fuse.ko" ;;
		?*) mv "$ko" "$archive_part/fuse.ko" ;;
		esac || _archive_why 2 "cannot extract fuse.ko from $deb" || return
		# The kernel last: it marks the entry complete.
		if [ -n "$ko" ]; then
			mv "$archive_part/fuse.ko" "$out.fuse.ko" || _archive_why 2 "cannot write $out.fuse.ko" || return
		fi
		mv "$vmlinuz" "$out.vmlinuz" || _archive_why 2 "cannot write $out.vmlinuz" || return
	fi
	echo "$out.vmlinuz"
}
