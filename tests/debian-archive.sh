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
# machine's mirror, and with a backports suite of a release the machine does not name
# (trixie-backports), that release too: what the backports depend on (the compiler of the
# kernel's headers) is there. Only Debian's own entries count (signed by its keyring or
# unsigned, on a .../debian or .../debian-security path): a third-party repository of the same
# suite name is not the archive.
_archive_sources() {
	# Either file may be missing: that is no error (not even under a caller's pipefail).
	{ cat /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null || :; } |
		awk -v suite="$1" -v mirror="$archive_mirror" -v key="$archive_keyring" '
		function keep(uri, s, signed) {
			if (uri !~ /\/debian(-security)?\/?$/ || (signed != "" && signed !~ /debian-archive-keyring/))
				return
			if (s == base)
				havebase = 1
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
		BEGIN { enabled = 1; base = suite ~ /-backports$/ ? substr(suite, 1, length(suite) - 10) : "" }
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
			if (!n) {
				print "deb [signed-by=" key "] " mirror " " suite " main"
				if (base != "" && !havebase)
					print "deb [signed-by=" key "] " mirror " " base " main"
			}
		}'
}

# _archive_apt SUITE COMMAND ARGS...: apt-get or apt-cache on SUITE's private directory.
# apt's own locks would make a second caller fail at once rather than wait: the suite's flock
# (_archive_locked) serialises the callers instead. No sandbox user: _apt cannot enter a cache
# under root's home. A backports suite is the default release: its packages win over those of
# the release beside it (which apt would otherwise prefer).
_archive_apt() {
	apt_dir=$archive_cache/apt/$1
	case $1 in
	*-backports) apt_release=$1 ;;
	*) apt_release= ;;
	esac
	shift
	"$@" -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" \
		-o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root \
		${apt_release:+-o APT::Default-Release="$apt_release"}
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
	# One apt-cache for them all (each reads the lists: a second here), one per package to say which
	# is missing.
	if ! _archive_apt "$get_suite" apt-cache show "$@" >/dev/null 2>&1; then
		for get_pkg in "$@"; do
			_archive_apt "$get_suite" apt-cache show "$get_pkg" >/dev/null 2>&1 ||
				_archive_why 2 "$get_suite's lists have no $get_pkg" || return
		done
	fi
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
# downloaded the first time: `make -C DIR M=...` builds a module against it. When its compiler
# (.kernelvariables: $(CROSS_COMPILE)gcc-14 for trixie-backports' kernels) is not on this
# machine, that compiler comes with it, from the suite's lists (_archive_toolchain).
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
		_archive_toolchain "$1" "$archive_part/root" "$root" "$flavour" || return
		# Its Makefile names the common part (and, since 7.x, itself as KBUILD_OUTPUT) by absolute
		# path: the final one. The tree is complete (marked ready) before it takes its name.
		sed -i "s|^include /usr/src/|include $root/usr/src/|; s|^KBUILD_OUTPUT=/usr/src/|KBUILD_OUTPUT=$root/usr/src/|" \
			"$archive_part/root/usr/src/$flavour/Makefile" &&
			touch "$archive_part/root/usr/src/$flavour/.cohmem-ready" &&
			rm -rf "$root" && mv "$archive_part/root" "$root" || _archive_why 2 "cannot set up $root" || return
	fi
	echo "$hdr"
}

# archive_missing_cc HEADERS: the compiler the headers name (gcc-N, from their .config) when this
# machine lacks it, or nothing. Headers built by an older release's gcc (bullseye's gcc-10 on
# Debian 12, bookworm's gcc-12 for 6.1 on Debian 13) build modules with the machine's gcc
# (CC=gcc); those that name a cross-prefixed compiler get theirs from _archive_toolchain.
archive_missing_cc() {
	archive_cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\(gcc-[0-9]*\) .*/\1/p' "$1/.config" 2>/dev/null) || archive_cc=
	[ -z "$archive_cc" ] || command -v "$archive_cc" >/dev/null || echo "$archive_cc"
}

# _archive_toolchain SUITE TREE ROOT FLAVOUR: when the compiler that FLAVOUR's headers (extracted
# in TREE, which becomes ROOT) name is not on this machine, the suite's: that compiler, its
# binutils and the C library they and the headers' kbuild programs were built for (trixie's gcc-14
# and glibc 2.41 do not run on bookworm's 2.36), downloaded into TREE. Every program there runs
# through that library's own dynamic loader (a wrapper script in its place, the program beside it
# as NAME.elf), and the headers name the compiler by absolute path (CROSS_COMPILE). Lists usable,
# lock held.
_archive_toolchain() {
	vars=$2/usr/src/$4/.kernelvariables
	cross=$(sed -n 's/^override CROSS_COMPILE = \([a-z0-9_-]*-\)$/\1/p' "$vars" 2>/dev/null) || true
	cc=$(sed -n 's/^CC = .*(CROSS_COMPILE)\(gcc-[0-9]*\)$/\1/p' "$vars" 2>/dev/null) || true
	# Headers that name no compiler of that form build with the machine's (bookworm's own: gcc-12).
	[ -n "$cross" ] && [ -n "$cc" ] || return 0
	command -v "$cross$cc" >/dev/null && return 0
	_archive_depends "$1" "$4" "^$cc" || return
	tc_cc=$archive_dep
	_archive_depends "$1" "$4" '^linux-kbuild-' || return
	# The libraries the kbuild programs link (libelf for objtool), and everything they all need.
	tc_libs=$(_archive_apt "$1" apt-cache depends "$archive_dep" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^lib/ { print $2 }') || true
	# shellcheck disable=SC2086 # package names: one word each
	tc_pkgs=$(_archive_apt "$1" apt-get -s -qq install --no-install-recommends "$tc_cc" $tc_libs 2>&1 |
		awk '$1 == "Inst" { print $2 }') || true
	[ -n "$tc_pkgs" ] || _archive_why 2 "$1's lists cannot install $tc_cc" || return
	mkdir -p "$2/.debs" || _archive_why 2 "cannot write $2" || return
	# shellcheck disable=SC2086
	_archive_get "$1" "$2/.debs" $tc_pkgs || return
	for deb in "$2"/.debs/*.deb; do
		dpkg-deb -x "$deb" "$2" || _archive_why 2 "cannot extract $deb" || return
	done
	# What a module's build never runs (LTO, sanitizer runtimes, documents): 100 MB of the 280.
	rm -rf "$2/.debs" "$2/usr/share/doc" "$2/usr/share/man" "$2/usr/share/info" "$2/usr/share/locale" \
		"$2"/usr/bin/*-lto-dump-* "$2"/usr/libexec/gcc/*/*/lto1 "$2"/usr/lib/x86_64-linux-gnu/lib*san.so* \
		"$2"/usr/lib/gcc/*/*/lib*san*
	# The loader itself, not the lib64 link to it (Debian 12's is an absolute link, which would
	# name this machine's): in usr/lib from Debian 13's libc6 on, in lib in Debian 12's (which a
	# machine newer than the suite gets: Debian 13 with bookworm-backports' headers).
	ld=$(_archive_first "$2"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 \
		"$2"/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2) ||
		_archive_why 2 "$1's libc6 has no ld-linux-x86-64.so.2" || return
	ld=$3${ld#"$2"}
	libs=$3/usr/lib/x86_64-linux-gnu:$3/lib/x86_64-linux-gnu
	# The programs: executable ELF files that are no shared libraries (libc.so.6 is executable).
	find "$2" -type f -perm -u+x ! -name '*.so' ! -name '*.so.*' | while read -r prog; do
		[ "$(head -c 4 "$prog" | tr -d '\177')" = ELF ] || continue
		# shellcheck disable=SC2016 # $0 and $@: the wrapper's
		mv "$prog" "$prog.elf" &&
			printf '#!/bin/sh\nexec %s --library-path %s --argv0 "$0" %s "$@"\n' \
				"'$ld'" "'$libs'" "'$3${prog#"$2"}.elf'" >"$prog" &&
			chmod 755 "$prog" || exit 1
	done || _archive_why 2 "cannot wrap the programs of $2" || return
	# gcc looks for as and ld beside cc1 before $PATH (bookworm's binutils 2.40): the suite's.
	# cc1 is in usr/libexec/gcc from Debian 13's gcc-14 on, in usr/lib/gcc in Debian 12's gcc-12.
	for gcc_dir in "$2"/usr/libexec/gcc/*/*/ "$2"/usr/lib/gcc/*/*/; do
		[ -e "${gcc_dir}cc1" ] || continue
		for tool in as ld; do
			ln -sf "../../../../bin/$cross$tool" "$gcc_dir$tool" || _archive_why 2 "cannot write $gcc_dir" || return
		done
	done
	"$2${ld#"$3"}" --library-path "$2/usr/lib/x86_64-linux-gnu:$2/lib/x86_64-linux-gnu" \
		"$2/usr/bin/$cross$cc.elf" --version >/dev/null 2>&1 ||
		_archive_why 2 "$1's $cc does not run here through its own C library" || return
	sed -i "s|^override CROSS_COMPILE = .*|override CROSS_COMPILE = $3/usr/bin/$cross|" "$vars" ||
		_archive_why 2 "cannot write $vars"
}

# archive_kernel SUITE: the suite's default amd64 kernel as PATH.vmlinuz, with its fuse module
# beside it as PATH.fuse.ko where FUSE is a module (6.1; 6.12 and later build it in), and its
# configuration as PATH.config (kernels cached before it was kept have none), downloaded and
# extracted the first time.
archive_kernel() {
	_archive_locked "$1" _archive_kernel_locked "$1"
}

# _archive_first PATH...: the first PATH that exists (globs expanded by the caller; one that
# matched nothing stays as written and does not exist), or return 1. Not `ls A B`: it fails
# when any one of them is missing.
_archive_first() {
	for archive_path in "$@"; do
		[ -e "$archive_path" ] && { echo "$archive_path"; return 0; }
	done
	return 1
}

# _archive_kernel_extract DIR DEB: what archive_kernel keeps of DEB (the kernel, its
# configuration, modules.builtin, fuse.ko: whichever it holds), extracted into DIR. Not the
# 100 MB of other modules: named from the listing.
_archive_kernel_extract() {
	members=$(dpkg-deb -c "$2" | awk '{ print $6 }' | grep -E \
		'^\./(boot/(vmlinuz|config)-.*|(usr/)?lib/modules/[^/]+/(vmlinuz|config|modules\.builtin|kernel/fs/fuse/fuse\.ko(\.xz)?))$') ||
		return 0
	# shellcheck disable=SC2086 # $members: paths without blanks, one word each
	dpkg-deb --fsys-tarfile "$2" | tar -x -C "$1" $members || _archive_why 2 "cannot extract $members from $2"
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
		mkdir "$archive_part/x" && _archive_kernel_extract "$archive_part/x" "$deb" || return
		# Since 7.x the image is split: linux-image-VERSION only depends on linux-binary-VERSION (the
		# kernel), linux-base-VERSION (its configuration, modules.builtin) and
		# linux-modules-VERSION (every module), fetched only when FUSE is one of them.
		if ! _archive_first "$archive_part"/x/boot/vmlinuz-* "$archive_part"/x/usr/lib/modules/*/vmlinuz >/dev/null; then
			_archive_depends "$1" "$pkg" '^linux-binary-' || return
			split=$archive_dep
			_archive_depends "$1" "$pkg" '^linux-base-' || return
			split="$split $archive_dep"
			# shellcheck disable=SC2086 # package names
			_archive_get "$1" "$archive_part" $split || return
			for deb in "$archive_part"/linux-binary-*.deb "$archive_part"/linux-base-*.deb; do
				_archive_kernel_extract "$archive_part/x" "$deb" || return
			done
			if ! grep -qx 'kernel/fs/fuse/fuse\.ko' "$archive_part"/x/usr/lib/modules/*/modules.builtin 2>/dev/null; then
				_archive_depends "$1" "$pkg" '^linux-modules-' || return
				_archive_get "$1" "$archive_part" "$archive_dep" || return
				_archive_kernel_extract "$archive_part/x" "$archive_part/$archive_dep"_*.deb || return
			fi
		fi
		# shellcheck disable=SC2012 # package file names: no blanks or newlines
		vmlinuz=$(ls "$archive_part"/x/boot/vmlinuz-* "$archive_part"/x/usr/lib/modules/*/vmlinuz 2>/dev/null |
			head -n 1) || true
		[ -n "$vmlinuz" ] || _archive_why 2 "$pkg has no kernel (/boot/vmlinuz, /usr/lib/modules/*/vmlinuz)" || return
		# shellcheck disable=SC2012
		config=$(ls "$archive_part"/x/boot/config-* "$archive_part"/x/usr/lib/modules/*/config 2>/dev/null |
			head -n 1) || true
		# shellcheck disable=SC2012
		ko=$(ls "$archive_part"/x/usr/lib/modules/*/kernel/fs/fuse/fuse.ko* \
			"$archive_part"/x/lib/modules/*/kernel/fs/fuse/fuse.ko* 2>/dev/null | head -n 1) || true
		case $ko in
		*.xz) xz -dc "$ko" >"$archive_part/fuse.ko" ;;
		?*) mv "$ko" "$archive_part/fuse.ko" ;;
		esac || _archive_why 2 "cannot extract fuse.ko from $pkg" || return
		# The kernel last: it marks the entry complete.
		if [ -n "$ko" ]; then
			mv "$archive_part/fuse.ko" "$out.fuse.ko" || _archive_why 2 "cannot write $out.fuse.ko" || return
		fi
		if [ -n "$config" ]; then
			mv "$config" "$out.config" || _archive_why 2 "cannot write $out.config" || return
		fi
		mv "$vmlinuz" "$out.vmlinuz" || _archive_why 2 "cannot write $out.vmlinuz" || return
	fi
	echo "$out.vmlinuz"
}
