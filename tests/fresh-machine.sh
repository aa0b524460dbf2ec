#!/usr/bin/env bash
# The README's promise, checked as a newcomer would: `./run test` on a fresh
# Debian machine, run by a user with sudo (or, with --as-root, by root).
#
#   tests/fresh-machine.sh [--as-root] [--rev REV] [--worktree] [--log FILE] [--keep]
#                          [--variant VARIANT] [--tmp disk|tmpfs] [--net isolated|host]
#                          [--command CMD] [--export-debs DIR] [--apt-cache] [SUITE [REPO]]
#
# SUITE: the Debian suite to debootstrap (default bookworm). REPO: a git
# repository (default: the one holding this script); REV (default HEAD) is
# cloned into the new user's home, with --worktree also REPO's uncommitted
# changes and untracked files (read only: nothing is written to REPO).
#
# 1. debootstraps SUITE (--variant=minbase, plus sudo and git), cached as a
#    tarball under ${COHMEM_CACHE_DIR:-~/.cache/cohmem}/chroot (renamed into
#    place when complete); every run unpacks a new root from it, whose own
#    cohmem cache (~/.cache/cohmem of its user) is empty;
# 2. mounts what a running Debian has and a bare root lacks: proc; a sysfs
#    with fusectl on /sys/fs/fuse/connections and cgroup2 on /sys/fs/cgroup
#    (systemd mounts both); a /dev of its own whose nodes have udev's modes
#    (/dev/fuse 0666: the host's may be 0600, and is not touched), with
#    /dev/pts (a new devpts instance) and /dev/shm; a tmpfs /run with
#    /run/lock and /run/user/UID; /tmp (bookworm and older: on disk, as
#    Debian 12 has it; newer suites: a tmpfs, as Debian 13 mounts it); and
#    what systemd-tmpfiles would create (/tmp/.X11-unix ...) and the
#    /etc/mtab -> ../proc/self/mounts link that fusermount3 needs;
#    and (--net isolated, the default) a network and IPC namespace of its
#    own, as a machine of its own has: loopback only, the archive's hosts
#    (those of its apt sources) reached through a relay that /etc/hosts
#    points at. Without it the root shares this host's ports, X displays
#    and abstract sockets with whatever else runs here (other test runs'
#    Xvfb :1, cohmem-vnc on 5900, x11vnc on 5901 ...), which a fresh
#    machine has not; --net host shares them;
# 3. creates the user `dev` (uid 1000, group sudo, passwordless sudo) and
#    clones REPO into ~dev/cohmem;
# 4. runs exactly `./run test` there, in a login shell of that user
#    (runuser -l: the PATH of a Debian login, no /usr/sbin for a user), with
#    the file limits of a systemd login (nofile 1024, hard 524288), its
#    output in FILE (default /tmp/cohmem-fresh-SUITE-USER-DATE.log) and on
#    stdout; then prints how long it took and the log's last lines, and
#    exits with its status;
# 5. at exit, even interrupted (INT, TERM, HUP): kills every process whose
#    root is the new root (test daemons left behind included), unmounts
#    everything under it and removes it (--keep: keeps its files, unmounted).
#
# --command CMD runs CMD instead of `./run test` in that directory (to chase one
# failure, e.g. --command './run test || (cd build && ctest -R cohmemd --output-on-failure)').
# --export-debs DIR: after CMD succeeded, copies the packages it built there
# (build-package/*.deb, as `./run package` makes them) into DIR, which it
# empties first (tests/debian13-test.sh installs them into another root).
# --apt-cache: the root's /var/cache/apt/archives is a directory kept under
# the cache (chroot/SUITE-apt-archives), so that the packages `run` installs
# are downloaded once, not at every run (apt still resolves and installs them
# all; the user's own cache stays empty). One run at a time per suite uses
# it: another gets none.
#
# Needs root (debootstrap, chroot, mounts), debootstrap and the Debian
# archive named in /etc/apt/sources.list.d/debian.sources (or
# deb.debian.org). The whole suite there: about an hour on 2 cores.
set -euo pipefail

usage() {
	sed -n '5,7s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

# ---- the command line -------------------------------------------------------------
as_root=false keep=false worktree=false rev=HEAD log='' variant=minbase tmp_kind='' cmd='./run test'
net=isolated export_debs='' apt_cache=false
positional=()
while [ $# -gt 0 ]; do
	case $1 in
	--as-root) as_root=true ;;
	--keep) keep=true ;;
	--worktree) worktree=true ;;
	--rev) rev=${2:?--rev needs a revision}; shift ;;
	--log) log=${2:?--log needs a file}; shift ;;
	--variant) variant=${2:?--variant needs a debootstrap variant}; shift ;;
	--tmp) tmp_kind=${2:?--tmp needs disk or tmpfs}; shift ;;
	--command) cmd=${2:?--command needs a command}; shift ;;
	--net) net=${2:?--net needs isolated or host}; shift ;;
	--export-debs) export_debs=${2:?--export-debs needs a directory}; shift ;;
	--apt-cache) apt_cache=true ;;
	-h | --help) usage ;;
	-*) echo "fresh-machine: unknown option $1" >&2; usage ;;
	*) positional+=("$1") ;;
	esac
	shift
done
[ ${#positional[@]} -le 2 ] || usage
suite=${positional[0]:-bookworm}
repo=${positional[1]:-$(dirname "$0")/..}
repo=$(realpath "$repo")
case ${tmp_kind:-default} in
default)	# Debian 13 (trixie) made /tmp a tmpfs; 12 and older keep it on the root file system.
	case $suite in buster | bullseye | bookworm) tmp_kind=disk ;; *) tmp_kind=tmpfs ;; esac ;;
disk | tmpfs) ;;
*) usage ;;
esac
case $net in isolated | host) ;; *) usage ;; esac

[ "$(id -u)" -eq 0 ] || { echo "fresh-machine: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }
if [ "$net" = isolated ]; then
	for p in python3 ip unshare nsenter; do
		command -v "$p" >/dev/null ||
			{ echo "fresh-machine: --net isolated needs $p (or say --net host)" >&2; exit 1; }
	done
fi
command -v debootstrap >/dev/null || { echo "fresh-machine: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
# git refuses repositories of other users unless told they are safe; reading one is all we do.
git_src() { git -c safe.directory='*' --no-optional-locks -C "$repo" "$@"; }
commit=$(git_src rev-parse --verify "$rev^{commit}") ||
	{ echo "fresh-machine: $repo has no revision $rev" >&2; exit 1; }
branch=$(git_src symbolic-ref --short -q HEAD || echo main)

if $as_root; then who=root home=/root; else who=dev home=/home/dev; fi
log=${log:-/tmp/cohmem-fresh-$suite-$who-$(date +%Y%m%d-%H%M%S).log}
log=$(realpath -m "$log")
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}

# ---- cleanup, whatever happens ---------------------------------------------------
root='' staging='' tailer='' child='' relay=''
# shellcheck disable=SC2317	# these run from the EXIT trap
# The processes whose root directory is the new root or inside it (nested chroots).
root_pids() {
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		case $r in "$root" | "$root"/*) echo "${p#/proc/}" ;; esac
	done
}
# shellcheck disable=SC2317
# The mount points at or under the new root, deepest first.
root_mounts() {
	awk -v r="$root" '{ m = $5; gsub(/\\040/, " ", m) } m == r || index(m, r "/") == 1 { print m }' \
		/proc/self/mountinfo | sort -r
}
# shellcheck disable=SC2317
cleanup() {
	local status=$? pids m
	trap - EXIT INT TERM HUP
	set +e	# every step is tried, whatever the one before did
	[ -n "$child" ] && kill "$child" 2>/dev/null
	[ -n "$relay" ] && kill "$relay" 2>/dev/null
	if [ -n "$root" ] && [ -d "$root" ]; then
		# Everything that runs in the root, daemons left behind by tests included: TERM, then KILL.
		pids=$(root_pids)
		if [ -n "$pids" ]; then
			# shellcheck disable=SC2086
			kill -TERM $pids 2>/dev/null
			for _ in 1 2 3 4 5 6 7 8 9 10; do
				pids=$(root_pids)
				[ -z "$pids" ] && break
				sleep 0.5
			done
			# shellcheck disable=SC2086
			[ -z "$pids" ] || kill -KILL $pids 2>/dev/null
			sleep 0.5
		fi
		# Every mount under the root, deepest first; lazily when one stays busy.
		for m in $(root_mounts); do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done
		if [ -n "$(root_mounts)" ]; then
			echo "fresh-machine: still mounted under $root, not removing it:" >&2
			root_mounts >&2
		elif $keep; then
			echo "fresh-machine: kept the root (unmounted) at $root" >&2
		else
			rm -rf --one-file-system "$root"
		fi
	fi
	[ -n "$staging" ] && rm -rf --one-file-system "$staging" "$staging.log" "$base.new.$$"
	[ -n "$tailer" ] && kill "$tailer" 2>/dev/null
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- 1. the Debian root: debootstrap once, cached as a tarball ------------------------
cache=${COHMEM_CACHE_DIR:-$HOME/.cache/cohmem}/chroot
base=$cache/$suite-$variant-sudo-git.tar
t0=$(date +%s)
if [ ! -s "$base" ]; then
	mkdir -p "$cache"
	staging=$(mktemp -d "$cache/.staging-$suite.XXXXXX")
	echo "fresh-machine: debootstrap --variant=$variant --include=sudo,git $suite $mirror (cached as $base)"
	debootstrap --variant="$variant" --include=sudo,git "$suite" "$staging" "$mirror" >"$staging.log" 2>&1 ||
		{ tail -n 20 "$staging.log"; echo "fresh-machine: debootstrap failed"; exit 1; }
	chmod 755 "$staging"	# the root directory's mode, in the tarball
	# Written beside it, then renamed: a run interrupted here leaves no half tarball behind.
	tar -C "$staging" --numeric-owner -cf "$base.new.$$" .
	mv -f "$base.new.$$" "$base"
	rm -rf --one-file-system "$staging" "$staging.log"
	staging=
fi
root=$(mktemp -d /var/tmp/cohmem-fresh.XXXXXX)
tar -C "$root" --numeric-owner -xpf "$base"
chmod 755 "$root"	# tar gave it the mode of debootstrap's mktemp -d: 0700
echo "fresh-machine: a fresh $suite root at $root ($variant + sudo, git)"

# ---- 2. what a running machine has mounted ---------------------------------------
# The root, a mount point of its own and private: nothing mounted under it propagates
# elsewhere, and cleanup finds every mount below it.
mount --bind "$root" "$root"
mount --make-private "$root"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs "$root/sys"
mount -t fusectl fusectl "$root/sys/fs/fuse/connections"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$root/sys/fs/cgroup" ||
	echo "fresh-machine: no cgroup2 at /sys/fs/cgroup (carrying on)"
# /dev: a tmpfs of its own with the nodes udev would make, with udev's modes
# (50-udev-default.rules: fuse and tty 0666; userfaultfd keeps the kernel's 0600).
mount -t tmpfs -o nosuid,mode=755,size=4m dev "$root/dev"
node() {	# name mode [group]: the host's device numbers, a mode of our own
	local maj min
	[ -c "/dev/$1" ] || return 0
	read -r maj min < <(stat -c '%t %T' "/dev/$1")
	mknod -m "$2" "$root/dev/$1" c $((0x$maj)) $((0x$min))
	chroot "$root" chgrp "${3:-root}" "/dev/$1"
}
node null 666
node zero 666
node full 666
node random 666
node urandom 666
node tty 666 tty
node fuse 666
node userfaultfd 600
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir -m 755 "$root/dev/pts"
mkdir -m 1777 "$root/dev/shm"
mount -t devpts -o newinstance,nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$root/dev/shm"
mount -t tmpfs -o nosuid,nodev,mode=755,size=20% run "$root/run"
mkdir -m 1777 "$root/run/lock"
if [ "$tmp_kind" = tmpfs ]; then
	mount -t tmpfs -o nosuid,nodev,strictatime,mode=1777,size=50%,nr_inodes=1m tmpfs "$root/tmp"
fi
chmod 1777 "$root/tmp"
# What systemd-tmpfiles creates at boot (x11.conf) and a root without systemd lacks.
for d in .X11-unix .ICE-unix .XIM-unix .font-unix; do
	mkdir -m 1777 "$root/tmp/$d"
done
# fusermount3 reads the mount table from /etc/mtab (systemd makes the link).
ln -sfn ../proc/self/mounts "$root/etc/mtab"

# ---- the machine's configuration -------------------------------------------------
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The host's name (the root shares its UTS namespace), resolvable as the installer makes it.
host=$(hostname)
echo "$host" >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' "$host" \
	>"$root/etc/hosts"
# The installer's apt sources: the suite, its updates and its security updates.
rm -f "$root/etc/apt/sources.list"
if [ "$suite" = bookworm ] && [ -e /etc/apt/sources.list.d/debian.sources ]; then
	cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
else
	security=${mirror%/debian}/debian-security
	cat >"$root/etc/apt/sources.list.d/debian.sources" <<-EOF
	Types: deb
	URIs: $mirror
	Suites: $suite $suite-updates
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

	Types: deb
	URIs: $security
	Suites: $suite-security
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
fi
# The downloaded packages, kept: apt downloads as the root's _apt (into partial/) and moves
# them as root. The lock (fd 7, held until exit) keeps a second run of the suite out of it.
if $apt_cache; then
	archives=$cache/$suite-apt-archives
	mkdir -p "$archives/partial"
	if exec 7>>"$archives.lock" && flock -n 7; then
		chown "$(chroot "$root" id -u _apt)" "$archives/partial"
		chmod 700 "$archives/partial"
		mount --bind "$archives" "$root/var/cache/apt/archives"
		echo "fresh-machine: apt's downloads kept in $archives ($(du -sh "$archives" | cut -f1))"
	else
		echo "fresh-machine: $archives is in use by another run: downloading afresh"
	fi
fi
# No service a package installs is started in here (there is no init to stop it again).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

# ---- a network of its own ------------------------------------------------------------
# Namespaces kept by bind mounts under the root's /run (private, so cleanup unmounts them):
# loopback only, and each archive host of the apt sources at 127.0.3.N in /etc/hosts, where
# a relay (this host's python3, listening inside the namespace, connecting from outside)
# carries the bytes to the real host. Origin-form HTTP: nothing to configure for apt.
nsdir=$root/run/fresh-machine
if [ "$net" = isolated ]; then
	mkdir -m 700 "$nsdir"
	touch "$nsdir/net" "$nsdir/ipc"
	unshare --net="$nsdir/net" --ipc="$nsdir/ipc" true
	nsenter --net="$nsdir/net" ip link set lo up
	pairs=() i=0
	while read -r hp; do
		i=$((i + 1))
		h=${hp%%:*} port=80
		[ "$h" = "$hp" ] || port=${hp#*:}
		printf '127.0.3.%d\t%s\n' "$i" "$h" >>"$root/etc/hosts"
		pairs+=("127.0.3.$i:$port=$h:$port")
	done < <(sed -n 's|^URIs: *http://\([^/]*\).*|\1|p' "$root/etc/apt/sources.list.d/debian.sources" | sort -u)
	python3 - "$nsdir/net" "${pairs[@]}" >"$nsdir/relay.log" 2>&1 <<-'PY' &
	import ctypes, os, socket, sys, threading
	libc = ctypes.CDLL(None, use_errno=True)
	def setns(fd):	# CLONE_NEWNET, this thread only; sockets keep the namespace they were made in
	    if libc.setns(fd, 0x40000000):
	        raise OSError(ctypes.get_errno(), "setns")
	def pipe(a, b):
	    try:
	        while True:
	            data = a.recv(65536)
	            if not data:
	                break
	            b.sendall(data)
	    except OSError:
	        pass
	    try:
	        b.shutdown(socket.SHUT_WR)
	    except OSError:
	        pass
	def serve(c, upstream):
	    try:
	        u = socket.create_connection(upstream, timeout=60)
	        u.settimeout(None)
	    except OSError:
	        c.close()
	        return
	    back = threading.Thread(target=pipe, args=(u, c), daemon=True)
	    back.start()
	    pipe(c, u)
	    back.join()
	    c.close()
	    u.close()
	def accept(srv, upstream):
	    while True:
	        c, _ = srv.accept()
	        threading.Thread(target=serve, args=(c, upstream), daemon=True).start()
	home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
	inside = os.open(sys.argv[1], os.O_RDONLY)
	servers = []
	for pair in sys.argv[2:]:
	    listen, up = pair.split("=")
	    host, port = up.rsplit(":", 1)
	    upstream = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)[0][4]
	    setns(inside)
	    srv = socket.socket()
	    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	    addr, lport = listen.rsplit(":", 1)
	    srv.bind((addr, int(lport)))
	    srv.listen(128)
	    setns(home)
	    servers.append(threading.Thread(target=accept, args=(srv, upstream), daemon=True))
	print("relay: ready", " ".join(sys.argv[2:]), flush=True)
	for t in servers:
	    t.start()
	for t in servers:
	    t.join()
	PY
	relay=$!
	for _ in $(seq 100); do
		grep -qs 'relay: ready' "$nsdir/relay.log" && break
		kill -0 "$relay" 2>/dev/null || break
		sleep 0.1
	done
	grep -q 'relay: ready' "$nsdir/relay.log" || { cat "$nsdir/relay.log"; echo "fresh-machine: the relay did not start"; exit 1; }
	echo "fresh-machine: a network of its own: loopback, and $(sed -n 's/^relay: ready //p' "$nsdir/relay.log")"
fi
# What enters the root's network and IPC namespaces (nothing with --net host).
ns=()
[ "$net" = host ] || ns=(nsenter --net="$nsdir/net" --ipc="$nsdir/ipc")

# ---- 3. the user, and the tree --------------------------------------------------------
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
in_root useradd --create-home --uid 1000 --shell /bin/bash --groups sudo dev
echo 'dev ALL=(ALL:ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/dev"
chmod 440 "$root/etc/sudoers.d/dev"
uid=$(in_root id -u "$who")
mkdir -p "$root/run/user/$uid"
chmod 700 "$root/run/user/$uid"
in_root chown "$who:" "/run/user/$uid"

# A clone of its own (objects copied, never hard-linked to REPO's), on a branch as a newcomer's is.
dest=$root$home/cohmem
git -c safe.directory='*' clone --quiet --no-hardlinks --no-checkout "$repo" "$dest"
git -C "$dest" checkout --quiet -B "$branch" "$commit"
if $worktree; then	# REPO's uncommitted changes and untracked files, on top
	git_src diff --binary HEAD | git -C "$dest" apply --allow-empty
	git_src ls-files -z --others --exclude-standard | tar -C "$repo" --null -T - -cf - | tar -C "$dest" -xf -
fi
in_root chown -R "$who:" "$home/cohmem"
echo "fresh-machine: cloned $repo at ${commit:0:12}$($worktree && echo ' + its work tree') into $home/cohmem"

# ---- 4. ./run test, as the newcomer types it ---------------------------------------------
echo "fresh-machine: as $who in $home/cohmem: $cmd (log: $log)"
mkdir -p "$(dirname "$log")"
: >"$log"
tail -n +1 -f "$log" &
tailer=$!
start=$(date +%s)
# In the background, so that a signal reaches the trap at once (bash runs traps only
# between commands, and wait is one it interrupts).
(
	# A systemd login's limits: DefaultLimitNOFILE=1024:524288 (the hard limit only where
	# this root may raise it: CAP_SYS_RESOURCE), 8 MiB locked, no core file.
	ulimit -Hn 524288 2>/dev/null || true
	ulimit -Sn 1024
	ulimit -Sc 0
	ulimit -Sl 8192 2>/dev/null || true
	# shellcheck disable=SC2016	# ~ and $? are the login shell's
	exec "${ns[@]}" chroot "$root" /usr/bin/env -i TERM=dumb /usr/sbin/runuser -l "$who" -c \
		'export XDG_RUNTIME_DIR=/run/user/$(id -u); cd ~/cohmem && '"$cmd"
) </dev/null >>"$log" 2>&1 &
child=$!
status=0
wait "$child" || status=$?
child=
end=$(date +%s)
sleep 1	# the tail catches up
kill "$tailer" 2>/dev/null || true
wait "$tailer" 2>/dev/null || true
tailer=
secs=$((end - start))
echo
echo "fresh-machine: $cmd as $who on a fresh $suite (${commit:0:12}) exited $status after" \
	"$((secs / 3600))h$(printf %02d $((secs % 3600 / 60)))m$(printf %02d $((secs % 60)))s" \
	"($(($(date +%s) - t0)) s with the root's setup)"
echo "fresh-machine: the log is $log; it ends:"
tail -n 25 "$log" | sed 's/^/    /'
# What failed, last, where a CI's shortened log still shows it: each failed test's output,
# as ctest --output-on-failure printed it (up to its next test), 60 lines a test.
if [ "$status" != 0 ] && grep -qE '\*\*\*(Failed|Timeout|Exception)' "$log"; then
	echo "fresh-machine: the tests that failed in the root, with their output:"
	awk '/\*\*\*(Failed|Timeout|Exception)/ { on = 1; n = 0 }
	     on && /^ *Start +[0-9]+: |^ *[0-9]+\/[0-9]+ Test +#[0-9]+: .*(Passed|Skipped|Not Run)/ { on = 0 }
	     on && n++ < 60' "$log" | sed 's/^/    /'
fi
if [ "$status" = 0 ] && [ -n "$export_debs" ]; then
	rm -rf "$export_debs"
	mkdir -p "$export_debs"
	cp "$root$home"/cohmem/build-package/*.deb "$export_debs/" ||
		{ echo "fresh-machine: no packages in $home/cohmem/build-package to export"; exit 1; }
	echo "fresh-machine: exported $(cd "$export_debs" && echo *.deb) to $export_debs"
fi
exit "$status"
