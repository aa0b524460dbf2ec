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
# capture FILE SECONDS: the client's picture, in SECONDS at most (a hang detector).
capture() {
	if [ $client = gvnccapture ]; then
		timeout "$2" gvnccapture "127.0.0.1:$((port - 5900))" "$1"
	else
		timeout "$2" "$build/tests/vnc-capture" 127.0.0.1 "$port" "$1"
	fi
}

# After a step: the client's picture equals the display's (the server may be
# passes behind: captures until it is, for as long as the machine takes), and
# the given pixels are as given. root.xwd is then the display's picture.
step=0
check() {
	local what=$1 out='' end=$((SECONDS + patience))
	shift
	step=$((step + 1))
	for (( ; ; )); do
		xwd -root -silent >"$tmp/root.xwd" || fail "xwd"
		capture "$tmp/client.png" "$(left $end)" >"$tmp/capture.log" 2>&1 ||
			fail "step $step, $what: $client could not capture"
		if out=$("$build/tests/picture-compare" --bits $bits "$@" "$tmp/client.png" "$tmp/root.xwd"); then
			echo "step $step, $what: $client's picture and xwd's: $out"
			return 0
		fi
		[ "$SECONDS" -lt "$end" ] || fail "step $step, $what, still after $patience s: $out"
		sleep 0.5
	done
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
# drawn: whether the display's picture differs from plain.xwd's (something was drawn).
drawn() {
	xwd -root -silent >"$tmp/now.xwd" || fail "xwd"
	! "$build/tests/picture-compare" "$tmp/now.xwd" "$tmp/plain.xwd" >/dev/null
}
cp "$tmp/root.xwd" "$tmp/plain.xwd"
xeyes -geometry 200x150+40+60 >"$tmp/xeyes.log" 2>&1 &
pids+=($!)
patiently drawn || fail "xeyes drew nothing in $patience s"
check "xeyes at 40,60"
# The xterm's text cursor is red: where the display shows it tells how much of what was typed
# the xterm has drawn (it draws the text, then the cursor after it).
xterm -geometry 60x10+250+200 -fa '' -fn fixed -bg white -fg black -cr '#ff0000' -e sh -c 'cat' \
	>"$tmp/xterm.log" 2>&1 &
pids+=($!)
# cursor_at [X Y]: whether the display shows the cursor (at X,Y, a cell of cell_w x cell_h:
# what it was first seen as); sets cursor_x, cursor_y, cursor_w and cursor_h.
cursor_at() {
	local found
	xwd -root -silent >"$tmp/cursor.xwd" || fail "xwd"
	found=$("$build/tests/picture-compare" --bits $bits --find ff0000 "$tmp/cursor.xwd") || return 1
	read -r cursor_w cursor_h cursor_x cursor_y <<<"$(sed -n 's/.* in \([0-9]*\)x\([0-9]*\) at \([0-9]*\),\([0-9]*\)$/\1 \2 \3 \4/p' <<<"$found")"
	[ $# = 0 ] || [ "$cursor_x,$cursor_y,$cursor_w,$cursor_h" = "$1,$2,$cell_w,$cell_h" ]
}
patiently cursor_at || fail "the xterm showed no cursor in $patience s"
cell_w=$cursor_w cell_h=$cursor_h home_x=$cursor_x home_y=$cursor_y
# No window manager: the keyboard goes to the window with the input focus.
xdotool search --onlyvisible --class xterm windowfocus || fail "could not focus the xterm"
line='coherent memory, written by an X server'
xdotool type --delay 20 "$line"
patiently cursor_at $((home_x + ${#line} * cell_w)) "$home_y" ||
	fail "the xterm did not show '$line' in $patience s (its cursor at $cursor_x,$cursor_y)"
check "typing in an xterm"
# The passes that found pages written, and the pixels the server looked at (server_counts).
passes_written() {
	sed -n 's/.*(\([0-9]*\) with pages written).*/\1/p' <<<"$counts"
}
looked_at() {
	sed -n 's/.*looked at \([0-9]*\) pixels.*/\1/p' <<<"$counts"
}
# A line typed: the server looks at what the keystrokes dirtied, not the frame. However
# many keystrokes one pass finds (a slow machine gathers several; a fast one sees each
# alone), what it compares lies in the rows the line's typing changed (where the display's
# pictures before and after it differ: the three text lines the Return and 'line two'
# touch) and the rows the pages holding them reach beyond. So the pixels looked at are at
# most the passes that found pages written, times that many rows of the screen.
cp "$tmp/root.xwd" "$tmp/before-line.xwd"
server_counts
written_before=$(passes_written) looked_before=$(looked_at)
line='line two'
xdotool key --delay 20 Return && xdotool type --delay 20 "$line"
# Typed into cat: the first line again below it (cat's), and this one on the third.
patiently cursor_at $((home_x + ${#line} * cell_w)) $((home_y + 2 * cell_h)) ||
	fail "the xterm did not show '$line' in $patience s (its cursor at $cursor_x,$cursor_y)"
check "another line"
server_counts
passes=$(($(passes_written) - written_before)) looked=$(($(looked_at) - looked_before))
out=$("$build/tests/picture-compare" "$tmp/root.xwd" "$tmp/before-line.xwd") &&
	fail "typing a line changed nothing on the screen"
read -r box_rows box_top <<<"$(sed -n 's/.* in [0-9]*x\([0-9]*\) at [0-9]*,\([0-9]*\);.*/\1 \2/p' <<<"$out")"
[ -n "$box_rows" ] || fail "picture-compare said no box: $out"
# The screen file's row stride (the XWD header's bytes_per_line) and the page size.
stride=$(od -An -tu4 --endian=big -j48 -N4 "$tmp/mnt/Xvfb_screen0" | tr -d ' ')
page=$(getconf PAGESIZE)
reach=$(((page + stride - 1) / stride))
one_pass=$((640 * (box_rows + 2 * reach)))
[ $((box_rows * 4)) -lt 480 ] ||
	fail "typing a line changed $box_rows rows of the screen, not a few text lines: $out"
echo "typing a line: rows $box_top-$((box_top + box_rows - 1)) changed; $passes passes found pages written" \
	"and looked at $looked pixels (a pass may look at $one_pass: those rows, $reach more on each side)"
[ "$passes" -gt 0 ] || fail "typing a line: no pass found pages written"
[ "$looked" -le $((passes * one_pass)) ] ||
	fail "typing a line made the server look at $looked pixels in $passes passes, more than" \
		"$one_pass a pass (the rows the line changed and the pages around them)"
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
# cohmem-vnc looks for a replaced file every 500 ms: it may catch the restart's file once, or
# twice (seen once in a sanitized build under load: 2 replaced, 2 resizes); each is one resize.
resized() {
	server_counts
	grep -qE " [1-9][0-9]* resizes" <<<"$counts"
}
patiently resized || fail "cohmem-vnc did not follow the X server's restart in $patience s"
xsetroot -solid '#ff00ff'
check "the X server restarted at 800x600, a magenta root" --pixel 799,599,ff00ff
# The client connected before the restart: the new size, in the right colours.
end=$((SECONDS + patience))
for (( ; ; )); do
	xwd -root -silent >"$tmp/root.xwd" || fail "xwd"
	echo capture >&"${FOLLOW[1]}"
	read -r -t "$(left $end)" reply <&"${FOLLOW[0]}" || fail "the connected client captured nothing"
	out=$("$build/tests/picture-compare" --bits $bits --pixel 799,599,ff00ff "$tmp/follow.png" "$tmp/root.xwd") && break
	[ "$SECONDS" -lt "$end" ] || fail "the client connected since the start, after the restart: $out"
	sleep 0.5
done
echo "the client connected since the start, after the restart ($reply): $out"
exec {FOLLOW[1]}>&-

kill -TERM "$server"
wait "$server" || fail "cohmem-vnc did not exit 0"
cat "$tmp/cohmem-vnc.log"
# A resize for each file replaced (the restart); the header rewritten (installing colour maps)
# changed nothing else.
tail -n 1 "$tmp/cohmem-vnc.log" | grep -qE " ([1-9][0-9]*) resizes, 0 whole-frame refreshes, \1 files replaced" ||
	fail "cohmem-vnc did not resize once a file replaced, or served a whole frame again with nothing resized"
echo "xvfb-vnc-test ($mode, depth $depth): passed"
