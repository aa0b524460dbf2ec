#!/usr/bin/env bash
# The remote-display pipeline against the program it means to replace, under
# the same workloads, measured by the same client (vnc-bench):
#   cohmem   Xvfb keeping its screen on a cohmemd mount (-fbdir), cohmemd
#            (and its helper process), cohmem-vnc serving the screen file;
#   x11vnc   x11vnc on an Xvfb of its own whose screen is ordinary memory:
#            how people run x11vnc.
# Both run side by side; each workload is measured on one and then the
# other (the order alternates). Per workload: CPU seconds per second of the
# server and of what it makes work ("helpers": cohmemd, its helper and Xvfb;
# Xvfb), everything counted ("total"); bytes the client received; the time
# from a change on the screen to the client's picture showing it.
# Then keystroke to screen: on the cohmem Xvfb, an xterm, and x11vnc beside
# cohmem-vnc on that same display; a viewer (tests/vnc-remote) types keys
# into the xterm through each server in turn and times each, from the key
# event sent to the update that shows it.
#
#   bench/vnc-compare.sh BUILD_DIR [--quick] [--seconds S] [--mode M] [--transport T]
#
# --mode and --transport go to cohmemd (when its --help names them;
# --transport uring: root turns /sys/module/fuse/parameters/enable_uring on
# for the run, and back off after it).
# Targets, per workload: the whole cohmem pipeline's CPU <= 1.0x x11vnc's
# (and, idle, >= 3x less); a median latency <= x11vnc's; never more bytes;
# idle and typing, cohmem-vnc alone >= 10x less CPU than x11vnc alone;
# keystroke to screen, a median <= x11vnc's.
# --quick: 2 s and 3 probes a workload, 6 keystrokes (a smoke run for CTest).
# Without xterm, xdotool or vnc-remote, no keystroke latency (said).
# Exit 0 whether or not targets hold (a benchmark measures); 77 if a
# program is missing; 2 for options this cohmemd does not have; 1 if a run failed.
set -euo pipefail

usage() {
	echo "usage: vnc-compare.sh BUILD_DIR [--quick] [--seconds S] [--mode M] [--transport T]" >&2
	exit 2
}
[ $# -ge 1 ] || usage
build=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
seconds=10 probes=20 keys=40 daemon_args=() transport=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) seconds=2 probes=3 keys=6 ;;
	--seconds) [ $# -ge 2 ] || usage; seconds=$2; shift ;;
	--mode | --transport)
		[ $# -ge 2 ] || usage
		daemon_args+=("$1" "$2")
		[ "$1" = --transport ] && transport=$2
		shift
		;;
	*) usage ;;
	esac
	shift
done

for p in Xvfb x11vnc; do
	command -v "$p" >/dev/null || { echo "SKIP: $p is not installed (Debian: xvfb x11vnc)"; exit 77; }
done
[ -x "$build/bench/vnc-bench" ] && [ -x "$build/tools/cohmem-vnc" ] ||
	{ echo "SKIP: no vnc-bench or cohmem-vnc in $build"; exit 77; }
[ -r /dev/fuse ] && [ -w /dev/fuse ] || { echo "SKIP: cannot open /dev/fuse"; exit 77; }
for ((i = 0; i < ${#daemon_args[@]}; i += 2)); do
	"$build/daemon/cohmemd" --help 2>&1 | grep -q -e "${daemon_args[i]}" ||
		{ echo "vnc-compare: this cohmemd has no ${daemon_args[i]}" >&2; exit 2; }
done

session_name=vnc-compare
session_geometry=1280x720
session_daemon_args=(${daemon_args[@]+"${daemon_args[@]}"})
# shellcheck source=tests/xvfb-session.sh
. "$here/../tests/xvfb-session.sh"

# FUSE over io_uring is off until root turns it on; put back what was there.
uring_param=/sys/module/fuse/parameters/enable_uring uring_old=
restore_uring() {
	[ -z "$uring_old" ] || echo "$uring_old" >"$uring_param" || true
}
trap 'cleanup; restore_uring' EXIT
if [ "$transport" = uring ] && [ "$(cat "$uring_param" 2>/dev/null)" != Y ]; then
	[ -e "$uring_param" ] || { echo "SKIP: this kernel has no FUSE over io_uring ($uring_param)"; exit 77; }
	echo 1 2>/dev/null >"$uring_param" || { echo "SKIP: cannot turn on $uring_param (root can)"; exit 77; }
	uring_old=0
fi

session_start "$build" push 24
helper=$(ps -o pid= --ppid "$cohmemd" | tr -d ' ' | head -n 1)
cohmem_display=$DISPLAY
cohmem_helpers=$cohmemd,$xvfb${helper:+,$helper}

xvfb_start "${session_geometry}x24" xvfb-memory memory
x11vnc_display=$DISPLAY
x11vnc_helpers=$xvfb
x11vnc_port=$((port + 1))
x11vnc -display "$x11vnc_display" -rfbport $x11vnc_port -localhost -shared -forever -nopw -noncache -nocursor \
	-quiet >"$tmp/x11vnc.log" 2>&1 &
x11vnc=$!
pids+=("$x11vnc")
wait_for "$tmp/x11vnc.log" "PORT=$x11vnc_port" $x11vnc
workloads=(idle typing window full)

measure() {	# side workload
	local port=$port pid=$server helpers=$cohmem_helpers display=$cohmem_display
	[ "$1" = x11vnc ] && port=$x11vnc_port pid=$x11vnc helpers=$x11vnc_helpers display=$x11vnc_display
	"$build/bench/vnc-bench" --port "$port" --display "$display" --pids "$pid" --helpers "$helpers" \
		--workload "$2" --seconds "$seconds" --probes $probes >"$tmp/$1-$2.out" 2>"$tmp/$1-$2.log" ||
		fail "vnc-bench against $1, $2: $(cat "$tmp/$1-$2.log" "$tmp/$1-$2.out")"
}

# Keystroke to screen, on the cohmem display (after the workloads: its x11vnc and xterm would
# count in their CPU): an xterm with the focus, the pointer away from it, and x11vnc beside
# cohmem-vnc. vnc-remote types $keys keys through each and prints each one's time to the screen.
# A server that never shows a key (no input) is waited for $patience s, then said so.
# keystroke SIDE PORT: half of the side's keys; their times are added to $tmp/SIDE-keys.ms.
keystroke() {
	local out=$tmp/$1-keys.out st=0
	timeout "$patience" "$build/tests/vnc-remote" 127.0.0.1 "$2" latency $((keys / 2)) "${keys_rect[@]}" \
		>"$out" 2>"$tmp/$1-keys.log" || st=$?
	[ $st != 124 ] || { keys_said[$1]="no key shown in $patience s"; return; }
	[ $st = 0 ] || fail "vnc-remote against $1: $(cat "$tmp/$1-keys.log")"
	sed -n 's/^latency [0-9]*: \([0-9.]*\) ms.*/\1/p' "$out" >>"$tmp/$1-keys.ms"
}
# keys_summary SIDE: sets keys_ms[SIDE] (the median) and keys_p90[SIDE] of both halves.
keys_summary() {
	local f=$tmp/$1-keys.ms
	[ -s "$f" ] && [ -z "${keys_said[$1]:-}" ] || return 0
	read -r "keys_ms[$1]" "keys_p90[$1]" < <(sort -g "$f" | awk '{ v[NR] = $1 } END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		p = v[int(NR * 0.9 + 0.999)]; printf "%.3f %.3f\n", m, p }')
}
declare -A keys_ms keys_p90 keys_said
keystrokes() {
	local missing win
	for missing in xterm xdotool xwininfo "$build/tests/vnc-remote"; do
		command -v "$missing" >/dev/null || { keys_said[all]="no $missing"; return; }
	done
	DISPLAY=$cohmem_display xterm -T vnc-compare-keys -geometry 80x24+0+0 -e sh >"$tmp/xterm.log" 2>&1 &
	pids+=($!)
	win=$(DISPLAY=$cohmem_display timeout "$patience" xdotool search --sync --onlyvisible --name '^vnc-compare-keys$' |
		head -n 1) || fail "the xterm did not show in $patience s"
	DISPLAY=$cohmem_display timeout "$patience" xdotool windowfocus --sync "$win" mousemove 1279 719 ||
		fail "could not focus the xterm in $patience s"
	read -r -a keys_rect < <(DISPLAY=$cohmem_display xwininfo -id "$win" | awk '/Absolute upper-left X/ { x = $NF }
		/Absolute upper-left Y/ { y = $NF } /Width:/ { w = $2 } /Height:/ { h = $2 } END { print x, y, w, h }')
	x11vnc -display "$cohmem_display" -localhost -shared -forever -nopw -noncache -nocursor \
		>"$tmp/x11vnc-keys.log" 2>&1 &	# no -rfbport: the first free port from 5900, said
	pids+=($!)
	wait_for "$tmp/x11vnc-keys.log" "^PORT=" $!
	x11vnc_port=$(sed -n 's/^PORT=\([0-9]*\).*/\1/p' "$tmp/x11vnc-keys.log" | head -n 1)
	# In halves, ABBA: a machine that grows busier or quieter meanwhile weighs on both alike.
	keystroke cohmem "$port"
	keystroke x11vnc "$x11vnc_port"
	keystroke x11vnc "$x11vnc_port"
	keystroke cohmem "$port"
	keys_summary cohmem
	keys_summary x11vnc
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for i in "${!workloads[@]}"; do
	w=${workloads[i]}
	if [ $((i % 2)) = 0 ]; then
		measure cohmem "$w"
		measure x11vnc "$w"
	else
		measure x11vnc "$w"
		measure cohmem "$w"
	fi
done
keystrokes
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

field() {	# file key [index]: the value after key
	awk -v k="$2" -v i="${3:-1}" '{ for (n = 1; n < NF; n++) if ($n == k) print $(n + i) }' "$1"
}

echo "vnc-compare: 1280x720x24, $seconds s a workload, $probes latency probes (median, p90);" \
	"load average $load_start at the start, $load_end at the end"
echo "  cohmem: Xvfb on cohmemd${daemon_args[*]:+ (${daemon_args[*]})}, its helper, cohmem-vnc;" \
	"x11vnc: x11vnc, Xvfb in ordinary memory"
said=$(grep -i -m 1 -e transport -e uring -e ' mode' "$tmp/cohmemd.log" || true)
[ -z "$said" ] || echo "  cohmemd said: $said"
# A probe the client did not see within 5 s counts as 5000 ms: "shown" says how many it saw.
printf '%-8s %-8s %9s %9s %9s %12s %8s %16s %6s\n' workload side "server" "helpers" "total" "bytes" "updates" \
	"latency ms" "shown"
for w in "${workloads[@]}"; do
	for s in cohmem x11vnc; do
		f=$tmp/$s-$w.out
		printf '%-8s %-8s %9s %9s %9s %12s %8s %8s %7s %6s\n' "$w" "$s" "$(field "$f" cpu)" "$(field "$f" helpers)" \
			"$(awk -v c="$(field "$f" cpu)" -v h="$(field "$f" helpers)" 'BEGIN { printf "%.5f", c + h }')" \
			"$(field "$f" bytes)" "$(field "$f" updates)" "$(field "$f" latency_ms)" "$(field "$f" latency_ms 2)" \
			"$(field "$f" probes)"
	done
done
echo "keystroke to screen: $keys keys typed into an xterm on the cohmem display through each server" \
	"(vnc-remote; in halves, cohmem x11vnc x11vnc cohmem), median and p90 ms${keys_said[all]:+: ${keys_said[all]}}"
keys_of() {	# side: its median and p90, or what happened instead
	if [ -n "${keys_ms[$1]:-}" ]; then echo "${keys_ms[$1]} ms (p90 ${keys_p90[$1]})"; else echo "${keys_said[$1]:--}"; fi
}
for s in cohmem x11vnc; do
	printf '%-8s %-8s %s\n' keystroke "$s" "$(keys_of "$s")"
done
held=0 missed=0
target() {	# description holds(0/1) detail
	if [ "$2" = 1 ]; then
		echo "target held:   $1 ($3)"
		held=$((held + 1))
	else
		echo "target MISSED: $1 ($3)"
		missed=$((missed + 1))
	fi
}
for w in "${workloads[@]}"; do
	c=$tmp/cohmem-$w.out x=$tmp/x11vnc-$w.out
	read -r ratio holds < <(awk -v c="$(field "$c" cpu)" -v ch="$(field "$c" helpers)" -v x="$(field "$x" cpu)" \
		-v xh="$(field "$x" helpers)" 'BEGIN { r = (x + xh > 0) ? (c + ch) / (x + xh) : 1e9
		printf "%.2f %d\n", r, (r <= 1.0) }')
	target "$w: total CPU, cohmem / x11vnc <= 1.0" "$holds" "${ratio}x"
	if [ "$w" = idle ]; then
		read -r ratio holds < <(awk -v c="$(field "$c" cpu)" -v ch="$(field "$c" helpers)" -v x="$(field "$x" cpu)" \
			-v xh="$(field "$x" helpers)" 'BEGIN { r = (c + ch > 0) ? (x + xh) / (c + ch) : 1e9
			printf "%.2f %d\n", r, (r >= 3) }')
		target "$w: total CPU, x11vnc / cohmem >= 3" "$holds" "${ratio}x"
	fi
	read -r ratio holds < <(awk -v c="$(field "$c" latency_ms)" -v x="$(field "$x" latency_ms)" 'BEGIN {
		printf "%.2f %d\n", (x > 0) ? c / x : 0, (c <= x) }')
	target "$w: median latency, cohmem / x11vnc <= 1" "$holds" "${ratio}x"
	read -r ratio holds < <(awk -v c="$(field "$c" bytes)" -v x="$(field "$x" bytes)" 'BEGIN {
		r = (x > 0) ? c / x : ((c > 0) ? 1e9 : 1); printf "%.2f %d\n", r, (c <= x) }')
	target "$w: bytes, cohmem-vnc / x11vnc <= 1" "$holds" "${ratio}x"
	read -r ratio holds < <(awk -v c="$(field "$c" cpu)" -v x="$(field "$x" cpu)" 'BEGIN {
		r = (c > 0) ? x / c : 1e9; printf "%.1f %d\n", r, (r >= 10) }')
	case $w in idle | typing) target "$w: server CPU, x11vnc / cohmem-vnc >= 10" "$holds" "${ratio}x" ;;
	*) echo "               $w: server CPU, x11vnc / cohmem-vnc = ${ratio}x (no target: much changes)" ;;
	esac
done
if [ -n "${keys_ms[cohmem]:-}" ] && [ -n "${keys_ms[x11vnc]:-}" ]; then
	read -r ratio holds < <(awk -v c="${keys_ms[cohmem]}" -v x="${keys_ms[x11vnc]}" 'BEGIN {
		printf "%.2f %d\n", (x > 0) ? c / x : 0, (c <= x) }')
	target "keystroke: median latency, cohmem-vnc / x11vnc <= 1" "$holds" \
		"${ratio}x: ${keys_ms[cohmem]} / ${keys_ms[x11vnc]} ms"
elif [ -z "${keys_said[all]:-}" ]; then
	target "keystroke: median latency, cohmem-vnc / x11vnc <= 1" 0 "cohmem-vnc: $(keys_of cohmem), x11vnc: $(keys_of x11vnc)"
fi
echo "vnc-compare: $held targets held, $missed missed"
