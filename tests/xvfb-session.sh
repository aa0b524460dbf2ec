# Sourced by tests/xvfb-vnc-test.sh, tests/novnc-test.sh and bench/vnc-compare.sh: cohmemd on a
# temporary mount, Xvfb keeping its screen there (-fbdir), and cohmem-vnc; by
# tests/vnc-resize-test.sh and tests/raw-vnc-test.sh for its helpers only (tmp, pids, fail,
# patience, patiently, left, wait_for, server_counts). tests/novnc-test.sh and
# tests/novnc-input-test.sh start their browser with chromium_start.
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
# size (default 640x480); session_daemon_args (an array), more options for cohmemd.
#
# No wait here or in its callers judges how fast anything is: each waits for what it waits
# for (a log line, a picture, a process) for as long as a loaded machine takes, and only a
# hang detector ends it, after $patience seconds (COHMEM_TEST_PATIENCE; CTest's TIMEOUT is
# 600 s), with the logs.

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

patience=${COHMEM_TEST_PATIENCE:-240}

# patiently COMMAND...: runs COMMAND every 0.1 s until it succeeds (0), or until $patience
# seconds have passed (1).
patiently() {
	local end=$((SECONDS + patience))
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# left END: the seconds from now to END (a $SECONDS), at least 1: the bound of one command
# within a wait that ends at END.
left() {
	local n=$(($1 - SECONDS))
	echo $((n > 0 ? n : 1))
}

# wait_for FILE PATTERN [PID]: waits for a line in a log, while process PID (the log's
# writer) lives.
wait_for() {
	local file=$1 pattern=$2 pid=${3:-}
	logged() {
		grep -q "$pattern" "$file" 2>/dev/null && return 0
		[ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || fail "no '$pattern' in $(basename "$file"): its writer exited"
		return 1
	}
	patiently logged || fail "no '$pattern' in $(basename "$file") after $patience s"
}

# server_counts: has cohmem-vnc ($server, logging to cohmem-vnc.log) print its counts
# (SIGUSR1), and sets counts to that line.
counts_since() {
	[ "$(grep -c "damage passes" "$tmp/cohmem-vnc.log" || true)" -gt "$1" ]
}
server_counts() {
	local lines
	lines=$(grep -c "damage passes" "$tmp/cohmem-vnc.log" || true)
	kill -USR1 "$server"
	patiently counts_since "$lines" || fail "cohmem-vnc printed no counts in $patience s (SIGUSR1)"
	counts=$(grep "damage passes" "$tmp/cohmem-vnc.log" | tail -n 1)
}

# xvfb_start WxHxD LOG [memory]: an X server keeping its screen on the mount (with memory:
# in its own memory, as X servers do), on a display number it picks (-displayfd: tests run
# side by side); sets xvfb and DISPLAY, and paints the root black once it answers. No
# auto-repeat (-r): a key typed (xdotool) whose release a loaded machine delays past the
# repeat delay is still typed once.
xvfb_start() {
	local fbdir=(-fbdir "$tmp/mnt")
	[ "${3:-}" = memory ] && fbdir=()
	rm -f "$tmp/display"
	Xvfb -displayfd 3 -screen 0 "$1" ${fbdir[@]+"${fbdir[@]}"} -nolisten tcp -noreset -r \
		3>"$tmp/display" >"$tmp/$2.log" 2>&1 &
	xvfb=$!
	pids+=($xvfb)
	said_display() {
		[ -s "$tmp/display" ] && return 0
		kill -0 "$xvfb" 2>/dev/null || fail "Xvfb exited before it said its display"
		return 1
	}
	patiently said_display || fail "Xvfb did not say its display in $patience s"
	export DISPLAY=:$(head -n 1 "$tmp/display")
	answers() {
		xsetroot -solid black 2>/dev/null && return 0
		kill -0 "$xvfb" 2>/dev/null || fail "Xvfb exited before it answered"
		return 1
	}
	patiently answers || fail "Xvfb did not answer in $patience s"
}

# chromium_start [FLAGS...]: headless Chromium (as root it needs --no-sandbox), its DevTools
# port its own to pick; sets chromium (its pid) and devtools (the port), and waits until it
# lists a page (tests/novnc's drivers give it only 10 s for that: a loaded machine takes longer).
chromium_start() {
	chromium --headless=new --no-sandbox --disable-gpu --no-first-run --user-data-dir="$tmp/chrome" "$@" \
		--remote-debugging-address=127.0.0.1 --remote-debugging-port=0 about:blank >"$tmp/chromium.log" 2>&1 &
	chromium=$!
	pids+=($chromium)
	wait_for "$tmp/chromium.log" "DevTools listening on" $chromium
	devtools=$(sed -n 's|.*DevTools listening on ws://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$tmp/chromium.log" | head -n 1)
	page_listed() {
		/usr/bin/python3 - "$devtools" <<-'PY' 2>/dev/null
			import json, sys, urllib.request
			with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/list") as r:
			    sys.exit(not any(t["type"] == "page" for t in json.load(r)))
		PY
	}
	patiently page_listed || fail "Chromium listed no page in $patience s"
}

session_start() {
	local build=$1 mode=$2 depth=$3 daemon_interval=30 server_interval=0
	shift 3
	[ "$mode" = pull ] && daemon_interval=0 server_interval=30
	mkdir -p "$tmp/mnt" "$tmp/state"
	"$build/daemon/cohmemd" --mount "$tmp/mnt" --state-dir "$tmp/state" --interval $daemon_interval \
		${session_daemon_args[@]+"${session_daemon_args[@]}"} >"$tmp/cohmemd.log" 2>&1 &
	cohmemd=$!
	pids+=($cohmemd)
	wait_for "$tmp/cohmemd.log" "serving" $cohmemd

	xvfb_start "${session_geometry:-640x480}x$depth" xvfb

	"$build/tools/cohmem-vnc" --xwd "$tmp/mnt/Xvfb_screen0" --port 0 --interval $server_interval "$@" \
		>"$tmp/cohmem-vnc.log" 2>&1 &
	server=$!
	pids+=($server)
	wait_for "$tmp/cohmem-vnc.log" "listening on" $server
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/cohmem-vnc.log")
}
