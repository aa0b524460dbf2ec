#!/bin/sh
# Start vnc-server on a free port, follow it with vnc-check (a libvncclient
# client) until the server's sync point, and require the same picture.
# Usage: vnc-test.sh VNC_SERVER VNC_CHECK [SERVER ARGS...]
set -eu
server=$1 check=$2
shift 2
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT

"$server" --port 0 --frames 120 --interval 10 --sync-file "$tmp/frame.ppm" "$@" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	grep -q 'listening on' "$tmp/server.log" && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/server.log"; exit 1; }
	sleep 0.1
done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log")
[ -n "$port" ] || { echo "vnc-test: the server did not start"; cat "$tmp/server.log"; exit 1; }
status=0
"$check" --port "$port" --sync-file "$tmp/frame.ppm" --timeout 60 || status=$?
kill -TERM "$pid"
wait "$pid" || status=1
cat "$tmp/server.log"
exit $status
