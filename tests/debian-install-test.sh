#!/usr/bin/env bash
# The packages on a fresh minimal Debian 12 (or, with SUITE trixie, 13):
# installed with apt into a debootstrap root (cached as a tarball under
# ~/.cache/cohmem/chroot), then, inside it: a program built with pkg-config
# and one with find_package(cohmem), cohmemctl probe, cohmemd started as its
# unit's ExecStart starts it with two processes sharing a buffer through it,
# DKMS building cohmem_pfn against two kernels' headers (Debian 12: its 6.1
# and bookworm-backports' 6.12; Debian 13: its 6.12 and trixie-backports'
# newest); the modules DKMS built, loaded and tested in the QEMU matrix (when
# BUILD_DIR is given; on Debian 13, the newest's: the matrix has no row for
# trixie's own 6.12); and purging leaves no file behind.
#   tests/debian-install-test.sh DEB_DIR [BUILD_DIR [SUITE]]
# The packages must have been built on SUITE's release (tests/debian13-test.sh
# builds Debian 13's in a trixie root); for bookworm, DEB_DIR is built here
# when it does not hold this tree's.
# (about 13 minutes here: most of it apt installing a toolchain and two
# kernels' headers into the root, and the two QEMU runs)
# Needs root (chroot, mounts) and the Debian archive; exits 77 without them.
set -euo pipefail
# DEB_DIR without this tree's packages (one missing, or built from another commit or
# another state of the work tree): build them there first (tests/debian-package.sh).
tree=$(cd "$(dirname "$0")/.." && pwd)
suite=${3:-bookworm}
case $suite in
bookworm) backports=bookworm-backports ;;
trixie) backports=trixie-backports ;;
*) echo "debian-install: FAIL: SUITE is bookworm or trixie, not $suite"; exit 1 ;;
esac
tree_id=$(git -C "$tree" rev-parse HEAD 2>/dev/null || echo no-git)$(git -C "$tree" diff HEAD 2>/dev/null | md5sum | cut -c1-8)
built=true
for pkg in libcohmem0 libcohmem-dev cohmemd cohmem-pfn-dkms cohmem-vnc cohmem-vulkan-layer; do
	ls "$1"/${pkg}_*.deb >/dev/null 2>&1 || built=false
done
[ "$(cat "$1/.tree-id" 2>/dev/null)" = "$tree_id" ] || built=false
if ! $built && [ "$suite" != bookworm ]; then
	echo "debian-install: FAIL: $1 does not hold this tree's packages built on $suite"
	exit 1
fi
if ! $built; then
	command -v dpkg-buildpackage >/dev/null && command -v dh_dkms >/dev/null ||
		{ echo "SKIP: no packages in $1, and dpkg-dev or dh-dkms is missing"; exit 77; }
	rm -rf "$1"
	"$(dirname "$0")/debian-package.sh" "$1"
	echo "$tree_id" >"$1/.tree-id"
fi
debs=$(realpath "$1")
build=${2:+$(realpath "$2")}
src=$(realpath "$(dirname "$0")/..")
. "$src/tests/debian-archive.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (debootstrap, chroot)"; exit 77; }
command -v debootstrap >/dev/null || { echo "SKIP: debootstrap missing"; exit 77; }

# The debootstrap root, made once under the cache's lock for it (another run of this test, from
# another build tree, may be making it) and written under a temporary name renamed into place: a
# run killed half way leaves no tarball that looks whole.
base=$archive_cache/chroot/$suite-minbase.tar
mkdir -p "$(dirname "$base")" || { echo "debian-install: FAIL: cannot create $(dirname "$base")"; exit 1; }
exec 8>>"$base.lock"
flock 8 || { echo "debian-install: FAIL: cannot lock $base.lock"; exit 1; }
if [ ! -s "$base" ]; then
	rm -f "$base".partial-*	# a killed run's: only the lock holder writes them
	staging=$(mktemp -d)
	echo "debian-install: debootstrap --variant=minbase $suite (cached as $base)"
	debootstrap --variant=minbase "$suite" "$staging" "$archive_mirror" >"$staging.log" 2>&1 ||
		{ tail -20 "$staging.log"; echo "SKIP: debootstrap failed (no archive?)"; rm -rf "$staging" "$staging.log"; exit 77; }
	partial=$(mktemp "$base.partial-XXXXXX")
	tar -C "$staging" -cf "$partial" . && mv "$partial" "$base" ||
		{ rm -rf "$partial" "$staging" "$staging.log"; echo "debian-install: FAIL: cannot write $base"; exit 1; }
	rm -rf "$staging" "$staging.log"
fi
exec 8>&-

root=$(mktemp -d /tmp/cohmem-install.XXXXXX)
cleanup() {
	for m in run/cohmem run dev/pts dev sys proc; do
		mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
	done
	rm -rf "$root"
}
trap cleanup EXIT
tar -C "$root" -xf "$base"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs tmpfs "$root/run"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
	DEBIAN_FRONTEND=noninteractive "$@"; }
# Debian 12: the machine's own suites (bookworm, -updates, -security: the matrix's 6.1 kernel
# comes from them). Debian 13: trixie and trixie-updates of the machine's mirror. And the
# release's backports, for the second kernel.
if [ "$suite" = bookworm ] && [ -e /etc/apt/sources.list.d/debian.sources ]; then
	rm -f "$root/etc/apt/sources.list"
	cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
elif [ "$suite" != bookworm ]; then
	printf 'deb %s %s main\n' "$archive_mirror" "$suite" "$archive_mirror" "$suite-updates" >"$root/etc/apt/sources.list"
fi
echo "deb $archive_mirror $backports main" >"$root/etc/apt/sources.list.d/backports.list"
in_root apt-get update -qq

# What the test itself needs, before the snapshot that purging must restore.
# The headers of the kernels the QEMU matrix boots, read as it reads them (debian-archive.sh:
# bookworm's private lists are of the machine's bookworm suites, which the root's apt uses too).
# debian-archive.sh says what it could not resolve: 1 is the archive out of reach.
rc=0
hrel=$(archive_depends "$suite" linux-headers-amd64 '^linux-headers-[0-9]') &&
	hbpo=$(archive_depends "$backports" linux-headers-amd64 '^linux-headers-[0-9]') || rc=$?
[ "$rc" != 1 ] || { echo "SKIP: the kernels' headers cannot be resolved (the archive cannot be reached)"; exit 77; }
[ "$rc" = 0 ] || { echo "debian-install: FAIL: the kernels' headers cannot be resolved"; exit 1; }
t0=$(date +%s)
# adduser: every installed Debian has it (priority important; fuse3 depends on it), Debian 13's
# minbase root does not, and autoremove would not take it away again.
in_root apt-get install -y -qq --no-install-recommends gcc libc6-dev pkg-config cmake make dkms adduser \
	"$hrel" "$hbpo" >/dev/null
snapshot() {
	(cd "$root" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp \
		-o -path ./var/cache -o -path ./var/lib/apt -o -path ./var/lib/dpkg -o -path ./var/log \
		-o -path ./var/lib/systemd/deb-systemd-helper-enabled -o -path ./var/lib/dkms \
		-o -path './usr/lib/modules/*/modules.*' \) -prune -o -print | sort)
}
snapshot >"$root/tmp/before"

mkdir -p "$root/tmp/debs" "$root/tmp/consumer"
cp "$debs"/libcohmem0_*.deb "$debs"/libcohmem-dev_*.deb "$debs"/cohmemd_*.deb "$debs"/cohmem-pfn-dkms_*.deb \
	"$debs"/cohmem-vnc_*.deb "$debs"/cohmem-vulkan-layer_*.deb \
	"$root/tmp/debs/"
cp "$src"/tests/consumer/* "$root/tmp/consumer/"
in_root sh -c 'apt-get install -y -qq /tmp/debs/*.deb' >"$root/tmp/install.log" 2>&1 ||
	{ cat "$root/tmp/install.log"; exit 1; }
echo "debian-install: installed $(cd "$root/tmp/debs" && ls | tr '\n' ' ')"

# Consumers of libcohmem-dev.
in_root sh -c 'cc -o /tmp/pc-consumer /tmp/consumer/consumer.c $(pkg-config --cflags --libs cohmem) && /tmp/pc-consumer'
in_root sh -c 'cmake -S /tmp/consumer -B /tmp/cm >/dev/null && cmake --build /tmp/cm >/dev/null && /tmp/cm/consumer'
in_root cohmemctl probe
in_root cohmem-vnc --help >/dev/null
in_root cohmem-desktop --help >/dev/null
# The Vulkan layer: its manifest where the loader looks, naming the library by its path, whose own
# libraries resolve (loading it for real needs a Vulkan driver, which this root has not got:
# tests/gfxrecon-test.sh does that).
in_root sh -c 'so=$(sed -n "s/.*\"library_path\": \"\(.*\)\".*/\1/p" \
	/usr/share/vulkan/explicit_layer.d/VkLayer_cohmem_flush_coherent.json) &&
	test -f "$so" && ldd "$so" >/tmp/layer.ldd &&
	! grep -q "not found" /tmp/layer.ldd'

# cohmemd as its unit starts it: Environment=, ExecStartPre= and ExecStart= of the installed unit.
unit=$root/lib/systemd/system/cohmemd.service
env_line=$(sed -n 's/^Environment=//p' "$unit")
expand() { in_root sh -c "$env_line; eval \"echo \$1\"" sh "$1"; }
pre=$(expand "$(sed -n 's/^ExecStartPre=//p' "$unit")")
start=$(expand "$(sed -n 's/^ExecStart=//p' "$unit")")
mnt=$(in_root sh -c "$env_line; echo \$COHMEMD_MOUNT")
echo "debian-install: ExecStart=$start"
in_root $pre
in_root sh -c "$start >/tmp/cohmemd.log 2>&1 & echo \$! >/tmp/cohmemd.pid"
for _ in $(seq 100); do
	grep -q " $root$mnt fuse" /proc/mounts && break
	sleep 0.1
done
grep -q " $root$mnt fuse" /proc/mounts || { cat "$root/tmp/cohmemd.log"; echo "cohmemd did not mount"; exit 1; }
in_root sh -c "cc -o /tmp/buffer-pair /tmp/consumer/buffer-pair.c \$(pkg-config --cflags --libs cohmem) && /tmp/buffer-pair $mnt"
in_root cohmemctl ls "$mnt" >/dev/null
kill "$(cat "$root/tmp/cohmemd.pid")"
for _ in $(seq 100); do grep -q " $root$mnt fuse" /proc/mounts || break; sleep 0.1; done
grep -q " $root$mnt fuse" /proc/mounts && umount -l "$root$mnt"

# DKMS, for both kernels' headers.
pfn_version=$(in_root dpkg-query -W -f='${Version}' cohmem-pfn-dkms)
pfn_version=${pfn_version%-*}
for h in "$hrel" "$hbpo"; do
	kver=${h#linux-headers-}
	in_root dkms install "cohmem-pfn/$pfn_version" -k "$kver" >"$root/tmp/dkms.log" 2>&1 ||
		{ cat "$root/tmp/dkms.log"; echo "dkms failed for $kver"; exit 1; }
	ko=$(find "$root/lib/modules/$kver" -name 'cohmem_pfn.ko*' | head -n 1)
	[ -n "$ko" ] || { echo "dkms built no module for $kver"; exit 1; }
	echo "debian-install: dkms built $(basename "$ko") for $kver"
	row=$backports
	[ "$h" = "$hbpo" ] || row=$suite
	# The matrix's rows: bookworm (6.1), bookworm-backports (6.12), trixie-backports (newest).
	if [ -n "$build" ] && [ "$row" != trixie ]; then
		case $ko in *.xz) xz -dc "$ko" >"$root/tmp/cohmem_pfn-$kver.ko" ;; *) cp "$ko" "$root/tmp/cohmem_pfn-$kver.ko" ;; esac
		COHMEM_MATRIX_MODULE=$root/tmp/cohmem_pfn-$kver.ko COHMEM_MATRIX_ONLY=' pfn$' \
			"$src/tests/qemu/kernel-matrix.sh" "$build" "$row"
	fi
done

# Removing and purging leave nothing behind: the packages, then what apt installed for them
# (fuse3, libfuse3-3 or -4). depmod's indexes (modules.*) are state dkms's removal regenerates, not files
# of a package: the snapshots leave them out. What was there before was installed without its
# recommendations, so autoremove must not keep a package because one of those recommends it
# (on Debian 13 it kept libgcrypt20, which libvncserver1's dependencies brought).
in_root sh -c 'apt-get purge -y -qq libcohmem0 libcohmem-dev cohmemd cohmem-pfn-dkms cohmem-vnc cohmem-vulkan-layer &&
	apt-get autoremove --purge -y -qq -o APT::AutoRemove::RecommendsImportant=false \
		-o APT::AutoRemove::SuggestsImportant=false' >"$root/tmp/purge.log" 2>&1 ||
	{ cat "$root/tmp/purge.log"; exit 1; }
snapshot >"$root/tmp/after"
if ! diff -u "$root/tmp/before" "$root/tmp/after"; then
	echo "debian-install: purging left the files above (+) behind"
	exit 1
fi
[ ! -e "$root/var/lib/dkms/cohmem-pfn" ] || { echo "dkms still knows cohmem-pfn"; exit 1; }
echo "debian-install: installed, linked, probed, served, built the module and purged clean in $(( $(date +%s) - t0 )) s"
