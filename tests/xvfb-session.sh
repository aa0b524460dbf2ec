# Sourced by tests/xvfb-vnc-test.sh, tests/novnc-test.sh and bench/vnc-compare.sh: cohmemd on a
# temporary mount, Xvfb keeping its screen there (-fbdir), and cohmem-vnc; by
# tests/vnc-resize-test.sh for its helpers only (tmp, pids, fail, wait_for).
#
#   session_start BUILD_DIR MODE DEPTH [SERVER ARGS...]
#
# MODE push: cohmemd writes back every 30 ms and cohmem-vnc sleeps until the
#   daemon says it has pages (poll). MODE pull: cohmemd never writes back on
#   its own (--interval 0); cohmem-vnc cleans every 30 ms, which has the
#   kernel write back first. DEPTH: the X server's, 24 or 16.
# Sets tmp (removed at exit, with every process in pids), DISPLAY, port (the
# server's), server, cohmemd and xvfb (pids); fail() prints the logs in $tmp and exits 1.
# session_name names the caller in messages; session_geometry is the screen's
# size (default 640x480).

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "${session_name:-session}: FAILED: $*"
	for f in "$tmp"/*.log; do
		echo "--- $(basename "$f")"
		tail -n 20 "$f"
	done
	exit 1
}

# Waits for a line in a log (a hang detector: 20 s).
wait_for() {
	for _ in $(seq 200); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no '$2' in $(basename "$1")"
}

# xvfb_start WxHxD LOG: an X server keeping its screen on the mount, on a display number
# it picks (-displayfd: tests run side by side); sets xvfb and DISPLAY, and paints the
# root black once it answers.
xvfb_start() {
	rm -f "$tmp/display"
	Xvfb -displayfd 3 -screen 0 "$1" -fbdir "$tmp/mnt" -nolisten tcp -noreset \
		3>"$tmp/display" >"$tmp/$2.log" 2>&1 &
	xvfb=$!
	pids+=($xvfb)
	for _ in $(seq 200); do
		[ -s "$tmp/display" ] && break
		sleep 0.1
	done
	[ -s "$tmp/display" ] || fail "Xvfb did not say its display"
	export DISPLAY=:$(head -n 1 "$tmp/display")
	for _ in $(seq 200); do
		xsetroot -solid black 2>/dev/null && break
		sleep 0.1
	done
	xsetroot -solid black || fail "Xvfb did not start"
}

session_start() {
	local build=$1 mode=$2 depth=$3 daemon_interval=30 server_interval=0
	shift 3
	[ "$mode" = pull ] && daemon_interval=0 server_interval=30
	mkdir -p "$tmp/mnt" "$tmp/state"
	"$build/daemon/cohmemd" --mount "$tmp/mnt" --state-dir "$tmp/state" --interval $daemon_interval \
		>"$tmp/cohmemd.log" 2>&1 &
	cohmemd=$!
	pids+=($cohmemd)
	wait_for "$tmp/cohmemd.log" "serving"

	xvfb_start "${session_geometry:-640x480}x$depth" xvfb

	"$build/tools/cohmem-vnc" --xwd "$tmp/mnt/Xvfb_screen0" --port 0 --interval $server_interval "$@" \
		>"$tmp/cohmem-vnc.log" 2>&1 &
	server=$!
	pids+=($server)
	wait_for "$tmp/cohmem-vnc.log" "listening on"
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/cohmem-vnc.log")
}
