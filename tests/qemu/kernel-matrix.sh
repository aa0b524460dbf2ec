#!/usr/bin/env bash
# Run the library's test suite inside Debian 12's Linux 6.1 under QEMU (TCG),
# or with SUITE bookworm-backports inside its Linux 6.12, or with SUITE
# trixie-backports inside Debian's newest backports kernel (7.3 as of
# December 2026; the row follows linux-image-amd64 there).
#
#   tests/qemu/kernel-matrix.sh BUILD_DIR [SUITE]
#
# The kernel (linux-image-amd64's, with fuse.ko where FUSE is a module) and
# its headers come from that suite of the archive the machine uses, through a
# private apt directory (tests/debian-archive.sh; cached in $COHMEM_CACHE_DIR,
# default ~/.cache/cohmem): for bookworm, the machine's own bookworm suites
# (-updates, -security), so that it boots the 6.1 kernel the machine would
# install, without touching the system's apt lists or needing root.
# Linux 6.12 and later have UFFD_FEATURE_WP_ASYNC and PAGEMAP_SCAN: there every
# backend must run, uffd-async and pfn side by side.
# trixie-backports' headers need trixie's gcc-14, binutils and glibc (its
# kbuild programs and gcc do not run on bookworm's glibc): debian-archive.sh
# puts them beside the headers, from trixie's lists, run through trixie's own
# dynamic loader (cache: ~215 MB for that row, of which 175 MB the headers and
# compiler, 15 MB the kernel, 21 MB the lists). Its kernel has
# CONFIG_FUSE_IO_URING: there cohmemd's suite runs a second time
# (cohmemd-uring) with /sys/module/fuse/parameters/enable_uring set to 1 and
# COHMEMD_TEST_TRANSPORT=uring, and the verdicts say which kernel and which
# transport each cohmemd run had.
#
# It builds a busybox initramfs with the test programs and the libraries they
# need, boots it, runs every (program, backend) pair CMake registered
# (BUILD_DIR/tests/backend-tests.txt), and cohmemd's suite and stress test,
# and fails if any fails in the guest. It builds the cohmem_pfn module
# (kernel/) against the kernel's headers, loads it in the guest, and runs the
# pfn entries there too; without the headers those entries are skipped with
# the reason.
# Linux 6.1 has no UFFD_FEATURE_WP_ASYNC or PAGEMAP_SCAN: there uffd-async
# must report itself unavailable in every program, and everything else must
# run, not skip.
#
# With SUITE patched, it boots Linux 6.12 built here with cohmem's kernel patches
# (tests/qemu/patched-kernel.sh: cohmem_pfn built with it, and PAGEMAP_SCAN of shared VM_PFNMAP
# mappings), with a bochs display beside the ivshmem device: there the pfn-scan backend must
# run, on a DRM dumb buffer in VRAM, the ivshmem BAR mapped through sysfs and cohmem_pfn
# buffers, and the host checks what the guest wrote (the ivshmem file, a screendump of the
# display); on every other kernel pfn-scan must say it is unavailable.
#
# COHMEM_MATRIX_ONLY=REGEX keeps only the matching list lines (to chase one failure).
# COHMEM_MATRIX_MODULE=KO loads that cohmem_pfn.ko instead of building one (DKMS's, in
# debian-install-test.sh).
# Exit 0: passed; 1: failed; 77: skipped (no qemu or busybox, or the archive
# out of reach with no kernel cached), with the reason on stdout.
set -euo pipefail

build=$(cd "${1:?usage: kernel-matrix.sh BUILD_DIR [SUITE]}" && pwd)
suite=${2:-bookworm}
work=$(mktemp -d)
trap '[ -n "${COHMEM_MATRIX_KEEP:-}" ] && cp "$work/console" "$COHMEM_MATRIX_KEEP"; rm -rf "$work"' EXIT

skip() {
	echo "SKIP: $*"
	exit 77
}

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (Debian: qemu-system-x86)"
busybox=$(command -v busybox) || skip "busybox is not installed (Debian: busybox-static)"
list=$build/tests/backend-tests.txt
[ -s "$list" ] || skip "no test list at $list: build the tests first"

# ---- the kernel ---------------------------------------------------------------
# shellcheck source=tests/debian-archive.sh
. "$(dirname "$0")/../debian-archive.sh"
# debian-archive.sh says what it could not get: 1 is the archive out of reach with nothing cached.
if [ "$suite" = patched ]; then
	if patched=$("$(dirname "$0")/patched-kernel.sh"); then
		vmlinuz=$patched/vmlinuz
		kconfig=$patched/config
		COHMEM_MATRIX_MODULE=${COHMEM_MATRIX_MODULE:-$patched/cohmem_pfn.ko}
	else
		rc=$?
		[ "$rc" = 77 ] && skip "the patched kernel's source cannot be downloaded and is not cached"
		echo "kernel-matrix: FAIL: the patched kernel does not build"
		exit 1
	fi
elif vmlinuz=$(archive_kernel "$suite"); then
	:
else
	rc=$?
	[ "$rc" = 1 ] && skip "$suite's linux-image-amd64 cannot be downloaded and is not cached"
	echo "kernel-matrix: FAIL: $suite's linux-image-amd64 cannot be had"
	exit 1
fi

# ---- the cohmem_pfn module, for that kernel ----------------------------------------
kver=$(basename "$vmlinuz" .vmlinuz)
kver=${kver#linux-image-}
[ "$suite" = patched ] && kver=6.12-patched
# Its headers from the same lists as the kernel, unless a module comes ready-made. Out of the
# archive's reach and not cached, those installed here (linux-headers-$kver) will do.
headers=/usr/src/linux-headers-$kver
if [ -z "${COHMEM_MATRIX_MODULE:-}" ] && [ "$suite" != patched ]; then
	if archived=$(archive_headers "$suite"); then
		# linux-image-amd64 and linux-headers-amd64 are built from one version of Debian's linux
		# source, read from the same lists: other names would boot a kernel the module was not
		# built for.
		[ "${archived##*/}" = "linux-headers-$kver" ] || {
			echo "kernel-matrix: FAIL: $suite's headers are ${archived##*/}, its kernel $kver"
			exit 1
		}
		headers=$archived
	else
		rc=$?
		[ "$rc" = 1 ] || { echo "kernel-matrix: FAIL: linux-headers-$kver cannot be had"; exit 1; }
	fi
fi
module=
if [ -n "${COHMEM_MATRIX_MODULE:-}" ]; then	# a module built elsewhere (DKMS: debian-install-test.sh)
	module=$COHMEM_MATRIX_MODULE
	echo "kernel-matrix: cohmem_pfn from $module"
elif [ -e "$headers/Makefile" ]; then
	cp -r "$(dirname "$0")/../../kernel" "$work/kmod"
	# Headers whose compiler this machine lacks (6.1's gcc-12 on Debian 13): the machine's gcc.
	kcc=
	[ -z "$(archive_missing_cc "$headers")" ] || kcc=gcc
	make -s -C "$headers" M="$work/kmod" ${kcc:+CC=$kcc} CONFIG_DEBUG_INFO_BTF_MODULES= modules >"$work/kmod.log" 2>&1 || {
		echo "kernel-matrix: cohmem_pfn does not build against $headers:"
		cat "$work/kmod.log"
		exit 1
	}
	module=$work/kmod/cohmem_pfn.ko
else
	echo "kernel-matrix: SKIP pfn entries: linux-headers-$kver cannot be downloaded and is not cached"
	grep -v ' pfn$' "$list" >"$work/list" || true
	list=$work/list
fi

# A kernel built with FUSE over io_uring: cohmemd's suite a second time, on that transport.
if grep -qx 'CONFIG_FUSE_IO_URING=y' "${kconfig:-${vmlinuz%.vmlinuz}.config}" 2>/dev/null &&
	grep -q '^test-daemon cohmemd ' "$list"; then
	cp "$list" "$work/list-uring"
	echo "test-daemon cohmemd-uring COHMEM_TEST_DAEMON=1 COHMEMD_TEST_TRANSPORT=uring" >>"$work/list-uring"
	list=$work/list-uring
fi

if [ -n "${COHMEM_MATRIX_ONLY:-}" ]; then
	grep -E -- "$COHMEM_MATRIX_ONLY" "$list" >"$work/only" || true
	list=$work/only
fi

# ---- the initramfs --------------------------------------------------------------
root=$work/root
# The build tree's layout: /tests, /tools and /daemon, as the tests expect their neighbours.
mkdir -p "$root"/{bin,dev,proc,sys,tmp,work,tests,tools,daemon,lib/cohmem}

# A program and every shared library it loads, at the same paths.
copy_with_libs() {
	local lib
	cp "$1" "$2"
	for lib in $(ldd "$1" 2>/dev/null | grep -oE '/[^ ]+' | grep -v "^$build/"); do
		[ -e "$root$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
	done
}

copy_with_libs "$busybox" "$root/bin/busybox"
# glibc dlopen()s libgcc_s for pthread_cancel (libfuse's worker threads): ldd cannot see it.
libgcc=$(gcc -print-file-name=libgcc_s.so.1)
install -D -m 755 "$(readlink -f "$libgcc")" "$root/lib/x86_64-linux-gnu/libgcc_s.so.1"
for applet in sh mount mkdir cat tail grep poweroff reboot setsid env insmod rm ls sleep dmesg; do
	ln -s busybox "$root/bin/$applet"
done
for prog in $(awk '{ print $1 }' "$list" | sort -u) unpriv-helper; do
	copy_with_libs "$build/tests/$prog" "$root/tests/$prog"
done
copy_with_libs "$build/tools/cohmemctl" "$root/tools/cohmemctl"
[ -x "$build/daemon/cohmemd" ] && copy_with_libs "$build/daemon/cohmemd" "$root/daemon/cohmemd"
# The patched row measures device memory too (bench/pfn-bench.c) and runs the series' selftest.
if [ "$suite" = patched ]; then
	[ -x "$build/bench/pfn-bench" ] && copy_with_libs "$build/bench/pfn-bench" "$root/tests/pfn-bench"
	[ -x "$patched/pagemap_pfnmap" ] && cp "$patched/pagemap_pfnmap" "$root/tests/pagemap_pfnmap"
fi
# Debian's 6.1 builds FUSE as a module, 6.12 into the kernel.
[ -e "${vmlinuz%.vmlinuz}.fuse.ko" ] && cp "${vmlinuz%.vmlinuz}.fuse.ko" "$root/fuse.ko"
[ -n "$module" ] && cp "$module" "$root/cohmem_pfn.ko"
cp -L "$build/lib/libcohmem.so.0" "$root/lib/cohmem/"
cp "$list" "$root/tests/backend-tests.txt"

cat >"$root/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /dev/shm && mount -t tmpfs shm /dev/shm
# ramfs: a file system that is neither shmem nor anonymous memory, for the file-mapping tests
mount -t ramfs work /work
[ -e /fuse.ko ] && insmod /fuse.ko
export LD_LIBRARY_PATH=/lib/cohmem TMPDIR=/work HOME=/work
# What a test must say while it runs (tests/pfn-scan.c's picture for the screendump).
export COHMEM_TEST_CONSOLE=/dev/console
if [ -e /cohmem_pfn.ko ]; then
	insmod /cohmem_pfn.ko
	# QEMU's ivshmem-plain (1af4:1110): its BAR 2 is a file of the host. Given to the driver.
	echo "1af4 1110" >/sys/bus/pci/drivers/cohmem_pfn/new_id
	for d in /sys/bus/pci/drivers/cohmem_pfn/0000:*; do
		[ -e "$d" ] && export COHMEM_TEST_PFN_BAR=/dev/cohmem-pfn-${d##*/}
	done
	echo "MATRIX-IVSHMEM ${COHMEM_TEST_PFN_BAR:-none}"
fi
cd /work
echo "MATRIX-KERNEL $(cat /proc/sys/kernel/osrelease)"
echo "MATRIX-PROBE-BEGIN"
/tools/cohmemctl probe
echo "MATRIX-PROBE-END"
# "program label [VAR=value...]": without assignments, the label is the backend to test.
# A label ending in -uring runs with FUSE over io_uring switched on, and off again after it.
uring=/sys/module/fuse/parameters/enable_uring
while read -r prog label vars; do
	case $label in
	*-uring)
		if [ ! -e $uring ]; then
			echo "MATRIX-RESULT $prog $label 77"
			echo "no $uring: this kernel has no FUSE over io_uring"
			continue
		fi
		echo 1 >$uring
		;;
	esac
	case $prog in
	test-daemon*) echo "MATRIX-TRANSPORT $prog $label enable_uring=$(cat $uring 2>/dev/null || echo absent) $vars" ;;
	esac
	if [ -n "$vars" ]; then
		env $vars /tests/$prog >/tmp/out 2>&1
	else
		COHMEM_TEST_BACKEND=$label /tests/$prog >/tmp/out 2>&1
	fi
	rc=$?
	case $label in *-uring) echo 0 >$uring ;; esac
	echo "MATRIX-RESULT $prog $label $rc"
	grep -h "Synthesis" /tmp/out
	if [ $rc != 0 ]; then
		tail -n 25 /tmp/out
	fi
done </tests/backend-tests.txt
# The patched kernel's own selftest, on the ivshmem BAR through sysfs; and the clean costs.
if [ -x /tests/pagemap_pfnmap ]; then
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat $d/vendor)" = 0x1af4 ] && [ "$(cat $d/device)" = 0x1110 ] && res=$d/resource2
	done
	PAGEMAP_PFNMAP_RESOURCE=$res /tests/pagemap_pfnmap >/tmp/out 2>&1
	rc=$?
	cat /tmp/out
	echo "MATRIX-SELFTEST $rc"
fi
if [ -x /tests/pfn-bench ]; then
	echo "MATRIX-BENCH-BEGIN"
	/tests/pfn-bench --rounds 9
	echo "MATRIX-BENCH-END $?"
fi
# Every process that mapped a buffer is gone: its notifier is freed after a grace period, which
# the module's exit waits for.
if [ -e /cohmem_pfn.ko ]; then
	echo "1af4 1110" >/sys/bus/pci/drivers/cohmem_pfn/remove_id
	rmmod cohmem_pfn && echo "MATRIX-RMMOD ok"
fi
echo "MATRIX-DMESG-BEGIN"
dmesg | grep -iE 'cohmem|bug|oops|warn|rip:|call trace' | tail -n 40
echo "MATRIX-DMESG-END"
echo "MATRIX-DONE"
# A kernel without ACPI (the patched row's) halts at poweroff; a reboot ends QEMU (-no-reboot).
[ -d /sys/firmware/acpi ] && poweroff -f
reboot -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initrd.gz")

# ---- boot and judge ---------------------------------------------------------------
echo "kernel-matrix: booting $(basename "$vmlinuz" .vmlinuz) under QEMU (TCG)"
# Memory shared with the host, as a PCI BAR: what cohmem_pfn tracks as device memory.
ivshmem_pages=1024
truncate -s $((ivshmem_pages * 4))K "$work/ivshmem"
# The patched row has a display (bochs-drm binds QEMU's std VGA) and a monitor to take its
# screendump when the guest's DRM test says its picture is up.
display=()
[ "$suite" = patched ] && display=(-vga std -monitor "unix:$work/monitor,server=on,wait=off")
# One boot: the guest's console in $work/console.
boot_guest() {
	rm -f "$work/screen.ppm"
	qemu-system-x86_64 -accel tcg -smp 2 -m 3072 -nographic -no-reboot "${display[@]}" \
		-kernel "$vmlinuz" -initrd "$work/initrd.gz" \
		-object memory-backend-file,id=ivshmem,mem-path="$work/ivshmem",size=$((ivshmem_pages * 4))K,share=on \
		-device ivshmem-plain,memdev=ivshmem \
		-append "console=ttyS0 quiet panic=-1" </dev/null >"$work/console.raw" 2>&1 &
	qemu=$!
	# A hang detector that a slow machine does not trip: the guest prints a line for each program
	# it runs (the longest took 2 min here under TCG), so a guest silent for QUIET_S seconds hangs,
	# however long the whole run takes on a loaded machine (CTest's TIMEOUT bounds that).
	quiet_s=${COHMEM_MATRIX_QUIET_S:-900}
	quiet=0 last_size=-1 tick=5 dumps=0
	[ "$suite" = patched ] && tick=1
	while kill -0 "$qemu" 2>/dev/null; do
		sleep $tick
		# The picture stays up 5 s: a few tries, never a later (blank) screen.
		if [ "$suite" = patched ] && [ ! -e "$work/screen.ppm" ] && [ $dumps -lt 3 ] &&
			grep -q '^PFN-SCAN-DRM-READY' "$work/console.raw"; then
			dumps=$((dumps + 1))
			python3 -c 'import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"screendump " + sys.argv[2].encode() + b"\n"); time.sleep(1)' \
				"$work/monitor" "$work/screen.ppm" || true
		fi
		size=$(stat -c %s "$work/console.raw")
		if [ "$size" != "$last_size" ]; then
			quiet=0 last_size=$size
		elif [ $((quiet += tick)) -ge "$quiet_s" ]; then
			echo "kernel-matrix: the guest printed nothing for $quiet_s s: stopped as hung"
			kill "$qemu"
			break
		fi
	done
	wait "$qemu" || true
	tr -d '\r' <"$work/console.raw" >"$work/console"
}

# Under TCG, a kernel sometimes oopses in its first seconds while it patches its own text
# (int3 in run_timer_softirq, Debian's 6.12, once in a loaded CI run): a guest that never
# reached /init ran no test, and boots again (twice at most), saying so.
for attempt in 1 2 3; do
	boot_guest
	grep -q '^MATRIX-KERNEL ' "$work/console" && break
	[ "$attempt" = 3 ] && break
	echo "kernel-matrix: the guest died before /init ran (attempt $attempt); its console ends:"
	tail -n 8 "$work/console"
	echo "kernel-matrix: booting again"
done

guest_kernel=$(grep -o 'MATRIX-KERNEL .*' "$work/console" | cut -d' ' -f2 || true)
guest_kernel=${guest_kernel:-"did not boot"}
echo "kernel-matrix: cohmemctl probe in the guest ($guest_kernel):"
sed -n '/MATRIX-PROBE-BEGIN/,/^MATRIX-PROBE-END/p' "$work/console" | sed '1d;$d'
grep -q '^MATRIX-DONE' "$work/console" || {
	echo "kernel-matrix: the guest did not finish; its console:"
	tail -n 60 "$work/console"
	exit 1
}

# signed_pages TEXT FIRST: whether the ivshmem file's pages FIRST..FIRST+2 begin with "TEXT N" (N the
# page), as the guest's tests sign them; says which do not.
signed_pages() {
	local page sig ok=0
	for page in $2 $(($2 + 1)) $(($2 + 2)); do
		sig=$(dd if="$work/ivshmem" bs=4096 skip="$page" count=1 2>/dev/null | tr -d '\0' | head -c 64)
		if [ "$sig" != "$1 $page" ]; then
			echo "kernel-matrix: FAIL: page $page of the ivshmem file holds '$sig', not '$1 $page'"
			ok=1
		fi
	done
	return $ok
}

status=0
while read -r _ prog backend rc; do
	case $suite:$backend:$rc in
	bookworm:uffd-async:77) verdict="unavailable, as expected on 6.1" ;;
	patched:pfn-scan:77) verdict="FAIL: pfn-scan must run on the patched kernel" ;;
	*:pfn-scan:77) verdict="unavailable, as expected without the patched kernel" ;;
	bookworm:uffd-async:*) verdict="FAIL: uffd-async must be unavailable on 6.1 (exit $rc)" ;;
	*:0) verdict="passed" ;;
	*:77) verdict="FAIL: skipped, but $backend must run on $guest_kernel" ;;
	*) verdict="FAIL (exit $rc)" ;;
	esac
	printf '  %-22s %-14s %s\n' "$prog" "$backend" "$verdict"
	case $verdict in FAIL*) status=1 ;; esac
done < <(grep '^MATRIX-RESULT ' "$work/console")

# Which transport each of cohmemd's runs had.
while read -r _ prog label enable vars; do
	transport=$(echo "$vars" | grep -o 'COHMEMD_TEST_TRANSPORT=[^ ]*' | cut -d= -f2) || true
	echo "kernel-matrix: $guest_kernel: $prog $label: transport ${transport:-"the daemon's default"}, $enable"
done < <(grep '^MATRIX-TRANSPORT ' "$work/console")

if [ "$status" != 0 ]; then
	echo "kernel-matrix: failures; guest output around them:"
	grep -v '^MATRIX-PROBE' "$work/console" | grep -B1 -A25 '^MATRIX-RESULT .* [^0]$' | grep -v '^MATRIX-RESULT .* 0$' | head -n 200
fi
# The guest's writes into the BAR are in the host's file: the last three pages are signed.
if [ -n "$module" ] && grep -q '^test-pfn pfn$' "$list"; then
	if grep -q '^MATRIX-IVSHMEM none' "$work/console"; then
		echo "kernel-matrix: FAIL: the ivshmem device was not bound to cohmem_pfn in the guest"
		status=1
	elif ! grep -qE "^cohmem_pfn device memory +0000:[0-9a-f:.]+ \($((ivshmem_pages * 4)) KiB\)" "$work/console"; then
		echo "kernel-matrix: FAIL: cohmemctl probe does not list the ivshmem BAR"
		status=1
	fi
	signed_pages "cohmem ivshmem page" $((ivshmem_pages - 3)) || status=1
	if [ $status = 0 ]; then
		echo "kernel-matrix: the guest's writes into the ivshmem BAR reached the host's file"
	fi
fi
# The patched row: the series' selftest, the clean costs, and what the guest's pfn-scan tests
# wrote, seen from the host.
if [ "$suite" = patched ] && [ -x "$patched/pagemap_pfnmap" ]; then
	rc=$(grep -o '^MATRIX-SELFTEST [0-9]*' "$work/console" | cut -d' ' -f2 || true)
	if [ "$rc" = 0 ]; then
		echo "kernel-matrix: the series' selftest (pagemap_pfnmap) passed"
	else
		echo "kernel-matrix: FAIL: the series' selftest (pagemap_pfnmap) exited ${rc:-"never"}:"
		grep -E '^(ok|not ok|#)' "$work/console" | tail -n 30
		status=1
	fi
fi
if [ "$suite" = patched ] && grep -q '^MATRIX-BENCH-BEGIN' "$work/console"; then
	echo "kernel-matrix: clean costs in the guest (bench/pfn-bench.c; TCG: ratios only):"
	sed -n '/^MATRIX-BENCH-BEGIN/,/^MATRIX-BENCH-END/p' "$work/console" | sed '1d;$d'
	grep -q '^MATRIX-BENCH-END 0' "$work/console" || {
		echo "kernel-matrix: FAIL: pfn-bench found a method that missed written pages"
		status=1
	}
fi
if [ "$suite" = patched ] && grep -q '^test-pfn-scan pfn-scan$' "$list"; then
	signed_pages "cohmem pfn-scan page" $((ivshmem_pages - 7)) || status=1
	if ! "$(dirname "$0")/screen-bars.py" "$work/screen.ppm" "$(grep -m 1 -o '^PFN-SCAN-DRM-READY .*' "$work/console" || true)"; then
		echo "kernel-matrix: FAIL: the display does not show the DRM dumb buffer the guest wrote"
		status=1
	fi
fi
if [ -n "$module" ]; then
	if ! grep -q '^MATRIX-RMMOD ok' "$work/console"; then
		echo "kernel-matrix: FAIL: cohmem_pfn could not be unloaded after the tests"
		status=1
	elif sed -n '/^MATRIX-DMESG-BEGIN/,/^MATRIX-DMESG-END/p' "$work/console" |
		grep -qE 'BUG:|Oops|WARNING:|Call Trace'; then	# as the kernel spells them: -i matched "loops_per_jiffy"
		echo "kernel-matrix: FAIL: the guest's kernel log has a BUG, an oops or a warning:"
		sed -n '/^MATRIX-DMESG-BEGIN/,/^MATRIX-DMESG-END/p' "$work/console"
		status=1
	fi
fi
expected=$(wc -l <"$list")
ran=$(grep -c '^MATRIX-RESULT ' "$work/console")
[ "$ran" = "$expected" ] || {
	echo "kernel-matrix: $ran of $expected programs ran"
	status=1
}
echo "kernel-matrix: $guest_kernel: $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
