#!/usr/bin/env bash
# Real programs on both ends: cohmemd, Xvfb keeping its screen on the mount
# (-fbdir), X clients drawing, cohmem-vnc serving the screen, and
# gvnccapture (gtk-vnc, lossless) as the client. After each step the
# client's picture must equal `xwd -root` of the same display, pixel for
# pixel (picture-compare), and solid colours must be what was asked for.
#
#   tests/xvfb-vnc-test.sh BUILD_DIR MODE [DEPTH]
#
# MODE push: cohmemd writes back every 30 ms and cohmem-vnc sleeps until the
#   daemon says it has pages (poll).
# MODE pull: cohmemd never writes back on its own (--interval 0); cohmem-vnc
#   cleans every 30 ms, which has the kernel write back first.
# DEPTH 24 (default) or 16: the X server's depth (32 or 16 bits per pixel).
# Exit 0: passed; 1: failed; 77: skipped (a program missing, no /dev/fuse).
set -euo pipefail

build=$(cd "${1:?usage: xvfb-vnc-test.sh BUILD_DIR push|pull [DEPTH]}" && pwd)
mode=${2:?push or pull}
depth=${3:-24}
bits=8
[ "$depth" = 16 ] && bits=5

skip() {
	echo "SKIP: $*"
	exit 77
}
for p in Xvfb xwd xsetroot xeyes xterm xdotool gvnccapture; do
	command -v "$p" >/dev/null || skip "$p is not installed (Debian: xvfb x11-apps x11-xserver-utils xterm xdotool gvncviewer)"
done
[ -x "$build/tools/cohmem-vnc" ] || skip "no cohmem-vnc in $build (libvncserver-dev missing?)"
[ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "cannot open /dev/fuse"

session_name="xvfb-vnc-test ($mode, depth $depth)"
# shellcheck source=tests/xvfb-session.sh
. "$(dirname "$0")/xvfb-session.sh"
session_start "$build" "$mode" "$depth"

# The client: gvnccapture, but at depth 16 libvncclient's (tests/vnc-capture.c): gtk-vnc
# 1.3.1 shows a 16-bit server's red (0xf800) as c007c0, x11vnc's as well as ours.
client=gvnccapture
[ "$depth" = 16 ] && client=vnc-capture
capture() {
	if [ $client = gvnccapture ]; then
		timeout 20 gvnccapture "127.0.0.1:$((port - 5900))" "$1"
	else
		timeout 40 "$build/tests/vnc-capture" 127.0.0.1 "$port" "$1"
	fi
}

# After a step: the client's picture equals the display's (the server may be a
# pass behind: a few captures, up to 20 s), and the given pixels are as given.
step=0
check() {
	local what=$1 out=
	shift
	step=$((step + 1))
	for _ in $(seq 40); do
		xwd -root -silent >"$tmp/root.xwd" || fail "xwd"
		capture "$tmp/client.png" >"$tmp/capture.log" 2>&1 || fail "$client could not capture"
		if out=$("$build/tests/picture-compare" --bits $bits "$@" "$tmp/client.png" "$tmp/root.xwd"); then
			echo "step $step, $what: $client's picture and xwd's: $out"
			return 0
		fi
		sleep 0.5
	done
	fail "step $step, $what: $out"
}

# A libvncclient client connected from the start to the end: it must follow the resize below.
coproc FOLLOW { "$build/tests/vnc-capture" --follow 127.0.0.1 "$port" "$tmp/follow.png" 2>"$tmp/follow.log"; }
pids+=($FOLLOW_PID)

check "a black root" --pixel 0,0,000000 --pixel 639,479,000000
xsetroot -solid '#ff0000'
check "a red root" --pixel 0,0,ff0000 --pixel 320,240,ff0000
# Pure channels: at depth 16 the X server rounds other values its own way.
xsetroot -solid '#0000ff'
check "a blue root, not red" --pixel 10,470,0000ff
xsetroot -solid '#ffff00'
check "a yellow root" --pixel 600,20,ffff00
xeyes -geometry 200x150+40+60 >"$tmp/xeyes.log" 2>&1 &
pids+=($!)
sleep 1
check "xeyes at 40,60"
xterm -geometry 60x10+250+200 -fa '' -fn fixed -bg white -fg black -e sh -c 'cat' >"$tmp/xterm.log" 2>&1 &
pids+=($!)
sleep 1.5
xdotool search --sync --class xterm windowactivate --sync 2>/dev/null || true
xdotool type --delay 20 'coherent memory, written by an X server'
check "typing in an xterm"
# The server's counts so far (SIGUSR1): its last line of them.
server_counts() {
	local lines
	lines=$(grep -c "damage passes" "$tmp/cohmem-vnc.log" || true)
	kill -USR1 "$server"
	for _ in $(seq 200); do
		[ "$(grep -c "damage passes" "$tmp/cohmem-vnc.log" || true)" -gt "$lines" ] && break
		sleep 0.1
	done
	grep "damage passes" "$tmp/cohmem-vnc.log" | tail -n 1
}
looked_at() {
	server_counts | sed -n 's/.*looked at \([0-9]*\) pixels.*/\1/p'
}
before=$(looked_at)
xdotool key --delay 20 Return && xdotool type --delay 20 'line two'
check "another line"
# A line of text dirties a few rows: what the server compares follows that, not the frame.
after=$(looked_at)
[ $((after - before)) -lt $((640 * 480 / 4)) ] ||
	fail "typing a line made the server look at $((after - before)) pixels, more than a quarter frame"
echo "typing a line: the server looked at $((after - before)) pixels"
xsetroot -solid '#00ff00'
check "a green root behind the windows" --pixel 0,0,00ff00

# The X server restarts at another size on the same file (it truncates it and writes a new
# header): the server follows, and a new client gets the new frame.
kill "$xvfb"
wait "$xvfb" 2>/dev/null || true
xvfb_start "800x600x$depth" xvfb2
# gvnccapture asks for one update; libvncserver answers a request made across a resize
# with the new size alone (no pixels), and gvnccapture then waits forever: connect it
# only once the server has resized (libvncclient's and noVNC's clients ask again).
resized=false
for _ in $(seq 100); do
	server_counts | grep -q " 1 resizes" && resized=true && break
	sleep 0.2
done
$resized || fail "cohmem-vnc did not follow the X server's restart"
xsetroot -solid '#ff00ff'
check "the X server restarted at 800x600, a magenta root" --pixel 799,599,ff00ff
# The client connected before the restart: the new size, in the right colours.
for _ in $(seq 40); do
	xwd -root -silent >"$tmp/root.xwd" || fail "xwd"
	echo capture >&"${FOLLOW[1]}"
	read -r -t 60 reply <&"${FOLLOW[0]}" || fail "the connected client captured nothing"
	out=$("$build/tests/picture-compare" --bits $bits --pixel 799,599,ff00ff "$tmp/follow.png" "$tmp/root.xwd") && break
	sleep 0.5
done
[ "${out#equal}" != "$out" ] || fail "the client connected since the start, after the restart: $out"
echo "the client connected since the start, after the restart ($reply): $out"
exec {FOLLOW[1]}>&-

kill -TERM "$server"
wait "$server" || fail "cohmem-vnc did not exit 0"
cat "$tmp/cohmem-vnc.log"
# One resize (the restart); the header rewritten (installing colour maps) changed nothing else.
tail -n 1 "$tmp/cohmem-vnc.log" | grep -q " 1 resizes, 0 whole-frame refreshes" ||
	fail "cohmem-vnc did not resize once, or served a whole frame again with nothing resized"
echo "xvfb-vnc-test ($mode, depth $depth): passed"
