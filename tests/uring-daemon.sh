#!/usr/bin/env bash
# Run a daemon test program with FUSE over io_uring switched on or off for
# this machine (/sys/module/fuse/parameters/enable_uring), restoring the
# setting it found afterwards, whatever the program did.
#
#   tests/uring-daemon.sh on|off PROGRAM [ARGS...]
#
# on: the program's daemons run with --transport uring (COHMEMD_TEST_TRANSPORT);
# off: with --transport auto, which must fall back to /dev/fuse.
# Exit 77 (skipped), saying why, when not root or when the kernel has no
# enable_uring (no CONFIG_FUSE_IO_URING, or older than 6.14).
set -euo pipefail

mode=${1:?usage: uring-daemon.sh on|off PROGRAM [ARGS...]}
shift
param=/sys/module/fuse/parameters/enable_uring
[ "$(id -u)" -eq 0 ] || { echo "SKIP: switching $param needs root"; exit 77; }
# The module may not be loaded yet: opening /dev/fuse loads it.
[ -e "$param" ] || { exec 3<>/dev/fuse; exec 3>&-; } 2>/dev/null || true
[ -e "$param" ] || { echo "SKIP: no $param: this kernel has no FUSE over io_uring (Linux 6.14+, CONFIG_FUSE_IO_URING)"; exit 77; }

old=$(cat "$param")
restore() { echo "$old" >"$param"; }
trap restore EXIT
case $mode in
on) echo 1 >"$param"; export COHMEMD_TEST_TRANSPORT=uring ;;
off) echo 0 >"$param"; export COHMEMD_TEST_TRANSPORT=auto ;;
*) echo "uring-daemon.sh: on or off, not $mode" >&2; exit 2 ;;
esac
echo "uring-daemon.sh: enable_uring $(cat "$param") (was $old), COHMEMD_TEST_TRANSPORT=$COHMEMD_TEST_TRANSPORT"
"$@"
