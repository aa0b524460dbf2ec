#!/usr/bin/env bash
# Serve an X server's screen over VNC through cohmem: cohmemd on a temporary
# mount, Xvfb keeping its screen there (-fbdir), and cohmem-vnc serving it.
# Runs until interrupted (Ctrl-C), then stops all three and unmounts.
#
#   examples/serve-xvfb.sh BUILD_DIR [DISPLAY [GEOMETRY [PORT]]]
#
# DISPLAY defaults to :1, GEOMETRY to 1280x720x24, PORT to 5900 + the
# display's number. Then draw on it (DISPLAY=:1 xterm &) and look at it
# with any VNC client on 127.0.0.1:PORT (gvncviewer 127.0.0.1:1).
set -euo pipefail

build=$(cd "${1:?usage: serve-xvfb.sh BUILD_DIR [DISPLAY [GEOMETRY [PORT]]]}" && pwd)
display=${2:-:1}
geometry=${3:-1280x720x24}
port=${4:-$((5900 + ${display#:}))}
tmp=$(mktemp -d)
pids=()
stop() {
	trap - EXIT INT TERM
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap stop EXIT
trap 'exit 0' INT TERM

mkdir "$tmp/mnt" "$tmp/state"
"$build/daemon/cohmemd" --mount "$tmp/mnt" --state-dir "$tmp/state" --interval 30 2>"$tmp/cohmemd.log" &
pids+=($!)
for _ in $(seq 100); do grep -q serving "$tmp/cohmemd.log" && break; sleep 0.1; done
grep -q serving "$tmp/cohmemd.log" || { cat "$tmp/cohmemd.log"; exit 1; }

Xvfb "$display" -screen 0 "$geometry" -fbdir "$tmp/mnt" -nolisten tcp -noreset 2>"$tmp/xvfb.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/mnt/Xvfb_screen0" ] && break; sleep 0.1; done
DISPLAY=$display xsetroot -solid '#305080' 2>/dev/null || true

"$build/tools/cohmem-vnc" --xwd "$tmp/mnt/Xvfb_screen0" --port "$port" &
pids+=($!)
echo "serve-xvfb: Xvfb $display ($geometry) on cohmemd at $tmp/mnt, VNC on 127.0.0.1:$port"
echo "serve-xvfb: draw with DISPLAY=$display xterm &, look with gvncviewer 127.0.0.1:$((port - 5900)); Ctrl-C stops"
wait "${pids[2]}"
