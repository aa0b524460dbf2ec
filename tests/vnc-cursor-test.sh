#!/usr/bin/env bash
# One pointer on every client: cohmem-vnc with an X display hides Xvfb's
# software cursor (which Xvfb draws into the screen file) while every client
# draws the cursor itself, and sends them X's shape and the pointer's place;
# while a client that cannot draw one is connected, the cursor is back in the
# pixels and the others are sent an empty shape.
#
#   tests/vnc-cursor-test.sh BUILD_DIR
# Exit 0: passed; 1: failed; 77: skipped.
set -euo pipefail

build=$(cd "${1:?usage: vnc-cursor-test.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
for p in Xvfb xwd xdotool; do
	command -v "$p" >/dev/null || { echo "SKIP: $p is not installed (Debian: xvfb x11-apps xdotool)"; exit 77; }
done
[ -x /usr/bin/python3 ] || { echo "SKIP: no /usr/bin/python3"; exit 77; }
[ -x "$build/tools/cohmem-vnc" ] || { echo "SKIP: no cohmem-vnc in $build"; exit 77; }
[ -r /dev/fuse ] && [ -w /dev/fuse ] || { echo "SKIP: cannot open /dev/fuse"; exit 77; }

session_name="vnc-cursor-test"
# shellcheck source=tests/xvfb-session.sh
. "$here/xvfb-session.sh"
session_start "$build" push 24
wait_for "$tmp/cohmem-vnc.log" "X display :[0-9]*: keyboard and pointer" $server
# A fresh Xvfb draws no cursor until one is set (the first window entered, or this): set, it
# draws it into the screen file. Set by a client that stays (a program's window's cursor):
# X may refuse the image of one whose client left (xsetroot's: xcursor.c's load_shape()).
/usr/bin/python3 "$here/vnc/hold-cursor.py" 24 >"$tmp/held.log" 2>&1 &
held=$!
pids+=($held)
wait_for "$tmp/held.log" "defined" $held

# Whether the screen file (what cohmem-vnc serves) holds the cursor: it differs from
# xwd -root (which X answers without its software cursor) only around the pointer.
file_is_root() {
	xwd -root -silent >"$tmp/root.xwd" || fail "xwd"
	"$build/tests/picture-compare" "$tmp/mnt/Xvfb_screen0" "$tmp/root.xwd" >"$tmp/compare.out"
}
file_has_cursor() {
	! file_is_root && grep -q "in [0-9]*x[0-9]* at 1[89][0-9],1[34][0-9]" "$tmp/compare.out"
}
# client NAME shape|plain: a client in the background, its lines in NAME.log
client() {
	/usr/bin/python3 "$here/vnc/cursor-client.py" "$port" "$2" >"$tmp/$1.log" 2>&1 &
	pids+=($!)
	eval "$1=$!"
	wait_for "$tmp/$1.log" "connected" $!
}
lines() { wc -l <"$tmp/$1.log"; }
# said_after NAME N PATTERN: NAME's log has a line matching PATTERN after its first N lines.
said_after() {
	tail -n +"$(($2 + 1))" "$tmp/$1.log" | grep -q "$3"
}

xdotool mousemove 200 150
client shaped shape
patiently said_after shaped 0 "cursor 24x24" || fail "the shape-drawing client got no cursor shape"
patiently file_is_root || fail "the cursor is still in the pixels with only a shape-drawing client: $(cat "$tmp/compare.out")"
echo "a client that draws the cursor: it got X's shape; the pixels have no cursor"

n=$(lines shaped)
xdotool mousemove 240 180
patiently said_after shaped "$n" "pos 240 180" || fail "the pointer moved in X: no position update"
echo "the pointer moved in X: the client was told where"
xdotool mousemove 200 150
patiently file_is_root || fail "the pixels gained a cursor"

n=$(lines shaped)
client plain plain
patiently said_after shaped "$n" "cursor 0x0" || fail "a plain client came: the shaped one was not told to draw none"
patiently file_has_cursor || fail "a plain client came: no cursor in the pixels: $(cat "$tmp/compare.out")"
echo "a client that cannot draw it: the cursor is in the pixels, the other draws none"

n=$(lines shaped)
kill "$plain"
patiently said_after shaped "$n" "cursor [1-9][0-9]*x[1-9]" || fail "the plain client left: no shape again"
patiently file_is_root || fail "the plain client left: the cursor stayed in the pixels"
echo "it left: the shape again, and no cursor in the pixels"

# A shape larger than libvncserver can send in one piece (128x128, 64 KiB at 32 bits a pixel:
# rfbSendCursorShape() builds it in its 32 KiB update buffer) stays in the pixels: sent, it
# went out as an update's header and nothing more, the client's stream out of step for good.
n=$(lines shaped)
/usr/bin/python3 "$here/vnc/hold-cursor.py" 128 >"$tmp/big.log" 2>&1 &
big=$!
pids+=($big)
wait_for "$tmp/big.log" "defined" $big
patiently said_after shaped "$n" "cursor 0x0" || fail "a 128x128 cursor: the shaped client was not told to draw none"
file_differs() { ! file_is_root; }
patiently file_differs || fail "a 128x128 cursor: not in the pixels"
n=$(lines shaped)
xdotool mousemove 230 170
patiently said_after shaped "$n" "frame" || fail "a 128x128 cursor: the shaped client's stream stopped"
kill "$big"
echo "a cursor too large to send as a shape: in the pixels, and the client's stream intact"

kill -TERM "$server"
wait "$server" || fail "cohmem-vnc did not exit 0"
echo "vnc-cursor-test: passed"
