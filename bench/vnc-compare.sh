#!/usr/bin/env bash
# cohmem-vnc against x11vnc on one Xvfb display (its screen on a cohmemd
# mount), under the same workloads, measured by the same client (vnc-bench):
# CPU seconds per second of each server and of what it makes work (cohmemd
# and its helper, Xvfb), bytes the client received, and the time from a
# change on the screen to the client's picture showing it.
#
#   bench/vnc-compare.sh BUILD_DIR [--quick]
#
# Targets: an order of magnitude less server CPU than x11vnc where little
# changes (idle, typing), never more bytes, a lower median latency.
# --quick: 2 s and 3 probes a workload (a smoke run for CTest).
# Exit 0 whether or not targets hold (a benchmark measures); 77 if a
# program is missing; 1 if a run failed.
set -euo pipefail

build=$(cd "${1:?usage: vnc-compare.sh BUILD_DIR [--quick]}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
seconds=10 probes=20
[ "${2:-}" = --quick ] && seconds=2 probes=3

for p in Xvfb x11vnc; do
	command -v "$p" >/dev/null || { echo "SKIP: $p is not installed (Debian: xvfb x11vnc)"; exit 77; }
done
[ -x "$build/bench/vnc-bench" ] && [ -x "$build/tools/cohmem-vnc" ] ||
	{ echo "SKIP: no vnc-bench or cohmem-vnc in $build"; exit 77; }
[ -r /dev/fuse ] && [ -w /dev/fuse ] || { echo "SKIP: cannot open /dev/fuse"; exit 77; }

session_name=vnc-compare
session_geometry=1280x720
# shellcheck source=tests/xvfb-session.sh
. "$here/../tests/xvfb-session.sh"
session_start "$build" push 24
helper=$(ps -o pid= --ppid "$cohmemd" | tr -d ' ' | head -n 1)
helpers=$cohmemd,$xvfb${helper:+,$helper}
workloads=(idle typing window full)

measure() {	# name port pid
	for w in "${workloads[@]}"; do
		"$build/bench/vnc-bench" --port "$2" --display "$DISPLAY" --pids "$3" --helpers "$helpers" \
			--workload "$w" --seconds $seconds --probes $probes >"$tmp/$1-$w.out" 2>"$tmp/$1-$w.log" ||
			fail "vnc-bench against $1, $w: $(cat "$tmp/$1-$w.log" "$tmp/$1-$w.out")"
	done
}

measure cohmem "$port" "$server"
kill -TERM "$server"
wait "$server" || true

x11vnc_port=$((port + 1))
x11vnc -display "$DISPLAY" -rfbport $x11vnc_port -localhost -shared -forever -nopw -noncache -nocursor \
	-quiet >"$tmp/x11vnc.log" 2>&1 &
x11vnc=$!
pids+=($x11vnc)
wait_for "$tmp/x11vnc.log" "PORT=$x11vnc_port"
measure x11vnc $x11vnc_port $x11vnc

field() {	# file key [index]: the value after key
	awk -v k="$2" -v i="${3:-1}" '{ for (n = 1; n < NF; n++) if ($n == k) print $(n + i) }' "$1"
}

echo "vnc-compare: 1280x720x24 Xvfb on cohmemd, $seconds s a workload, $probes latency probes (median, p90)"
# A probe the client did not see within 5 s counts as 5000 ms: "shown" says how many it saw.
printf '%-8s %-8s %10s %10s %12s %8s %16s %6s\n' workload server "cpu s/s" "helpers" "bytes" "updates" \
	"latency ms" "shown"
for w in "${workloads[@]}"; do
	for s in cohmem x11vnc; do
		f=$tmp/$s-$w.out
		printf '%-8s %-8s %10s %10s %12s %8s %8s %7s %6s\n' "$w" "$s" "$(field "$f" cpu)" "$(field "$f" helpers)" \
			"$(field "$f" bytes)" "$(field "$f" updates)" "$(field "$f" latency_ms)" "$(field "$f" latency_ms 2)" \
			"$(field "$f" probes)"
	done
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
	read -r ratio holds < <(awk -v c="$(field "$c" cpu)" -v x="$(field "$x" cpu)" 'BEGIN {
		r = (c > 0) ? x / c : 1e9; printf "%.1f %d\n", r, (r >= 10) }')
	read -r total < <(awk -v c="$(field "$c" cpu)" -v ch="$(field "$c" helpers)" -v x="$(field "$x" cpu)" \
		-v xh="$(field "$x" helpers)" 'BEGIN { printf "%.2f\n", (c + ch > 0) ? (x + xh) / (c + ch) : 0 }')
	echo "               $w: with cohmemd and Xvfb counted, x11vnc's / cohmem-vnc's = ${total}x"
	case $w in idle | typing) target "$w: x11vnc's CPU / cohmem-vnc's >= 10" "$holds" "${ratio}x" ;;
	*) echo "               $w: x11vnc's CPU / cohmem-vnc's = ${ratio}x (no target: much changes)" ;;
	esac
	read -r ratio holds < <(awk -v c="$(field "$c" bytes)" -v x="$(field "$x" bytes)" 'BEGIN {
		r = (x > 0) ? c / x : ((c > 0) ? 1e9 : 1); printf "%.2f %d\n", r, (c <= x) }')
	target "$w: cohmem-vnc's bytes / x11vnc's <= 1" "$holds" "${ratio}x"
	read -r ratio holds < <(awk -v c="$(field "$c" latency_ms)" -v x="$(field "$x" latency_ms)" 'BEGIN {
		printf "%.2f %d\n", (x > 0) ? c / x : 0, (c < x) }')
	target "$w: cohmem-vnc's median latency / x11vnc's < 1" "$holds" "${ratio}x"
done
echo "vnc-compare: $held targets held, $missed missed"
