#!/usr/bin/env bash
# A person at a VNC viewer, played by tests/vnc-remote.c (libvncclient): on
# an Xvfb with openbox (click-to-focus) and two xterms, each a shell in a
# directory of its own, the viewer clicks into xterm A (B, the newest, has
# the focus), types a command full of shifted symbols and quotes, presses
# Return; the file the command writes in A's directory must hold exactly
# what was typed, in order, and B's directory nothing. Before that: a
# wrong password and none at all are refused (vnc-remote exit 3), the right
# one accepted; pointer moves arrive, one past the screen's edge lands on
# the edge; buttons 1-7 arrive (xinput's raw events). After: a viewer sees
# the keys it types change the xterm's picture; the clipboard both ways,
# CLIPBOARD and PRIMARY, in Latin-1: libvncclient 0.9.14 has no extended
# clipboard, so nothing beyond Latin-1 (a server with one must still
# serve Latin-1 to such viewers).
#
#   tests/vnc-input-test.sh BUILD_DIR
#
# The server: cohmem-vnc (--rfbauth) on cohmemd's mount; COHMEM_VNC_SERVER=x11vnc
# runs x11vnc on an Xvfb instead, the reference this test was checked against.
# x11vnc 0.9.16 passes 5 buttons (MAX_BUTTONS in its src/params.h), asks the
# owner of a selection for STRING only, and serves its own Latin-1 bytes as
# any target: against it, presses of 6 and 7 must not arrive, and the
# UTF8_STRING cases (an owner that offers only UTF-8, reading as UTF-8) are left out.
# Exit 0: passed; 1: failed; 77: skipped (a program missing, no /dev/fuse).
set -euo pipefail

build=$(cd "${1:?usage: vnc-input-test.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
kind=${COHMEM_VNC_SERVER:-cohmem-vnc}

skip() {
	echo "SKIP: $*"
	exit 77
}
for p in Xvfb xsetroot xterm openbox xdotool xwininfo xprop xclip xinput stdbuf iconv; do
	command -v "$p" >/dev/null ||
		skip "$p is not installed (Debian: xvfb x11-xserver-utils xterm openbox xdotool x11-utils xclip xinput)"
done
[ -x "$build/tests/vnc-remote" ] || skip "no vnc-remote in $build (libvncserver-dev, libx11-dev missing?)"
case $kind in
x11vnc) command -v x11vnc >/dev/null || skip "x11vnc is not installed (Debian: x11vnc)" ;;
cohmem-vnc)
	[ -x "$build/tools/cohmem-vnc" ] || skip "no cohmem-vnc in $build"
	{ [ -r /dev/fuse ] && [ -w /dev/fuse ]; } || skip "cannot open /dev/fuse"
	;;
*) echo "vnc-input-test: COHMEM_VNC_SERVER is cohmem-vnc or x11vnc, not $kind" >&2; exit 2 ;;
esac
command -v vncpasswd >/dev/null || command -v x11vnc >/dev/null ||
	skip "nothing writes a VNC password file (Debian: tigervnc-tools or x11vnc)"

session_name="vnc-input-test ($kind)"
# shellcheck source=tests/xvfb-session.sh
. "$here/xvfb-session.sh"

# The password, in the file the server reads (vncpasswd's format) and in plain text for the viewer.
password='s3cr3t!x'
echo "$password" >"$tmp/password"
echo wrong >"$tmp/wrong-password"
if command -v vncpasswd >/dev/null; then
	echo "$password" | vncpasswd -f >"$tmp/passwd"
else
	x11vnc -storepasswd "$password" "$tmp/passwd" >/dev/null 2>&1
fi

if [ "$kind" = x11vnc ]; then
	xvfb_start 640x480x24 xvfb memory
	# No -rfbport: it takes the first free port from 5900 and says which.
	x11vnc -display "$DISPLAY" -localhost -forever -shared -rfbauth "$tmp/passwd" >"$tmp/x11vnc.log" 2>&1 &
	server=$!
	pids+=("$server")
	wait_for "$tmp/x11vnc.log" "^PORT=" $server
	port=$(sed -n 's/^PORT=\([0-9]*\).*/\1/p' "$tmp/x11vnc.log" | head -n 1)
	buttons="1 2 3 4 5"
else
	session_start "$build" push 24 --rfbauth "$tmp/passwd"
	buttons="1 2 3 4 5 6 7"
fi
read -r width height < <(xwininfo -root | awk '/Width:/ { w = $2 } /Height:/ { h = $2 } END { print w, h }')

# Refused: a wrong password, and none (the server must not let a client in without one).
refused() {	# name, then vnc-remote's options
	local name=$1 st=0
	shift
	env -u VNC_PASSWORD timeout "$patience" "$build/tests/vnc-remote" "$@" 127.0.0.1 "$port" move 1 1 \
		>"$tmp/$name.out" 2>"$tmp/$name.err" || st=$?
	[ $st = 3 ] || fail "$name: vnc-remote exited $st, not 3 (refused): $(cat "$tmp/$name.out" "$tmp/$name.err")"
	! grep -q connected "$tmp/$name.out" || fail "$name: vnc-remote had a session"
	echo "$name: refused: $(cat "$tmp/$name.err")"
}
refused "wrong password" --password-file "$tmp/wrong-password"
refused "no password"
grep -q "asks for a password" "$tmp/no password.err" || fail "no password: not refused for want of one"
kill -0 "$server" 2>/dev/null || fail "$kind died after the refused clients"

# The session: vnc-remote reads its commands from a pipe, one a line, and says "ok N" after line N.
mkfifo "$tmp/remote.fifo"
"$build/tests/vnc-remote" --password-file "$tmp/password" 127.0.0.1 "$port" - <"$tmp/remote.fifo" \
	>"$tmp/remote.log" 2>&1 &
remote=$!
pids+=("$remote")
exec {remote_in}>"$tmp/remote.fifo"
trap '' PIPE	# a write to a viewer that died fails (below), it does not kill the test
# unpiped PROGRAM ARGS...: runs PROGRAM without the viewer's pipe, which must end when the test closes it.
unpiped() {
	exec {remote_in}>&-
	exec "$@"
}
wait_for "$tmp/remote.log" "^connected" $remote
echo "the right password: $(head -n 1 "$tmp/remote.log")"
sent=0
remote() {	# COMMAND WORDS...: one line to the viewer, and its "ok"
	sent=$((sent + 1))
	{ printf '%s\n' "$*" >&"$remote_in"; } 2>/dev/null || fail "vnc-remote exited: $(tail -n 5 "$tmp/remote.log")"
	wait_for "$tmp/remote.log" "^ok $sent\$" $remote
}

# The pointer, where the viewer moves it, and on the edge when moved past it.
pointer() {	# X Y: the pointer is there
	local X Y
	eval "$(xdotool getmouselocation --shell)"
	[ "$X $Y" = "$1 $2" ]
}
for to in "123 45" "10000 10000:$((width - 1)) $((height - 1))"; do
	remote move "${to%:*}"
	# shellcheck disable=SC2086 # X and Y
	patiently pointer ${to#*:} || fail "moved to ${to%:*}, the pointer is at $(xdotool getmouselocation)"
	echo "moved to ${to%:*}: the pointer is at ${to#*:}"
done

# Buttons, on the bare root window: xinput shows each press (its raw event's detail). Once its
# events show up (xdotool moves), the viewer presses 1-7 and then 1 again: the presses that
# arrived before that last 1 are all that will.
unpiped stdbuf -oL xinput test-xi2 --root >"$tmp/xinput.out" 2>&1 &
xinput=$!
pids+=("$xinput")
xinput_listens() {
	xdotool mousemove_relative 1 0
	grep -q RawMotion "$tmp/xinput.out"
}
patiently xinput_listens || fail "xinput test-xi2 showed no motion in $patience s"
presses() {
	awk '/RawButtonPress/ { p = 1; next } p && /detail:/ { printf "%s%s", s, $2; s = " "; p = 0 }' \
		"$tmp/xinput.out"
}
for b in 1 2 3 4 5 6 7 1; do
	remote click 320 240 $b
done
all_pressed() {
	[ "$(presses | wc -w)" -ge "$(wc -w <<<"$buttons 1")" ]
}
patiently all_pressed || fail "pressed 1-7 and 1, xinput saw: $(presses)"
[ "$(presses)" = "$buttons 1" ] || fail "pressed 1-7 and 1, xinput saw $(presses), not $buttons 1"
echo "buttons: xinput saw $(presses)"
kill "$xinput"

# The desktop: openbox, then xterm A and xterm B, B last (so focused), each a shell in its own directory.
# Windows only once openbox runs its --startup command (see novnc-input-test.sh).
unpiped openbox --sm-disable --startup "touch $tmp/openbox-up" >"$tmp/openbox.log" 2>&1 &
pids+=($!)
managed() {
	[ -e "$tmp/openbox-up" ] && xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q "window id"
}
patiently managed || fail "openbox did not manage the display in $patience s"
declare -A win
for t in A:0 B:240; do
	name=${t%:*}
	mkdir "$tmp/$name"
	# shellcheck disable=SC2016 # $1: the shell in the xterm expands it
	unpiped env LC_ALL=C.UTF-8 xterm -u8 -T "vnc-input-$name" -geometry "80x10+0+${t#*:}" -e sh -c 'cd "$1" && exec sh' sh "$tmp/$name" \
		>"$tmp/xterm-$name.log" 2>&1 &
	pids+=($!)
	win[$name]=$(timeout "$patience" xdotool search --sync --onlyvisible --name "^vnc-input-$name\$" | head -n 1) ||
		fail "xterm $name did not show in $patience s"
done
focused() {	# NAME: xterm NAME has the keyboard
	[ "$(xdotool getwindowfocus 2>/dev/null)" = "${win[$1]}" ]
}
patiently focused B || fail "openbox did not focus the new xterm B"

# Click into A: it must take the focus, as the click is all that gives it.
read -r ax ay aw ah < <(xwininfo -id "${win[A]}" | awk '/Absolute upper-left X/ { x = $NF }
	/Absolute upper-left Y/ { y = $NF } /Width:/ { w = $2 } /Height:/ { h = $2 } END { print x, y, w, h }')
remote click $((ax + aw / 2)) $((ay + ah / 2))
patiently focused A || fail "clicked into xterm A, the focus is on $(xdotool getwindowfocus getwindowname)"
echo "clicked into xterm A: it has the focus"

# Type: unshifted and shifted symbols, quotes, digits; the shell writes them as typed, in order.
# A second command says the first is done.
expected='Hello, World! 0123456789 ~!@#$%^&*()_+{}|:"<>? `-=[]\;,./'
remote type "printf '%s\n' '$expected' > typed"
remote key Return
remote type "touch done"
remote key Return
done_somewhere() {
	[ -e "$tmp/A/done" ] || [ -e "$tmp/B/done" ]
}
patiently done_somewhere || fail "the typed commands did not run in $patience s"
[ -z "$(ls -A "$tmp/B")" ] || fail "xterm B got keys: $(ls -A "$tmp/B")"
[ -e "$tmp/A/typed" ] || fail "xterm A did not write 'typed': the command went wrong"
printf '%s\n' "$expected" >"$tmp/expected"
cmp -s "$tmp/expected" "$tmp/A/typed" ||
	fail "xterm A wrote '$(cat "$tmp/A/typed")', not '$expected'"
echo "typed into xterm A: $(cat "$tmp/A/typed")"

# Another keyboard map (German: @ | \ { } [ ] ~ € are AltGr's, z and y change places, " is
# Shift+2), and keysyms no key has (Cyrillic; the Unicode keysym of €): typed as what they are.
if [ "$kind" = cohmem-vnc ] && command -v setxkbmap >/dev/null; then
	setxkbmap de || fail "setxkbmap de"
	expected='AltGr: @|\{}[]~€ "zy" Жё'
	remote type "printf '%s\n' '$expected' > altgr"
	remote key Return
	remote type "touch altgr-done"
	remote key Return
	patiently test -e "$tmp/A/altgr-done" || fail "the commands typed on a German map did not run"
	printf '%s\n' "$expected" >"$tmp/expected"
	cmp -s "$tmp/expected" "$tmp/A/altgr" || fail "on a German map xterm A wrote '$(cat "$tmp/A/altgr")', not '$expected'"
	echo "typed on a German map, AltGr and keysyms no key has: $(cat "$tmp/A/altgr")"
	setxkbmap us || fail "setxkbmap us"
fi

# The viewer sees what it types: a second one (its commands on its command line, so its picture
# is the one from before the keys) types into A, and A's picture must change.
timeout "$patience" "$build/tests/vnc-remote" --password-file "$tmp/password" 127.0.0.1 "$port" \
	type ': seen' wait-change "$ax" "$ay" "$aw" "$ah" >"$tmp/seen.log" 2>&1 ||
	fail "a viewer typed into xterm A and did not see A change: $(cat "$tmp/seen.log")"
echo "a viewer typed into xterm A and saw it change"
# cohmem-vnc looks at the screen file right after a key or a click, not only when cohmemd
# writes back: its counts say it did.
if [ "$kind" = cohmem-vnc ]; then
	server_counts
	grep -q " [1-9][0-9]* after input" <<<"$counts" || fail "no look after input: $counts"
	echo "looks after input: $(grep -o "[0-9]* after input" <<<"$counts")"
fi

# The clipboard, from X to the viewer: an owner of the selection (xclip, until another takes it).
own() {	# SELECTION TARGET ENCODING TEXT: xclip owns SELECTION, serving TEXT as TARGET
	printf '%s' "$4" | iconv -f UTF-8 -t "$3" >"$tmp/owned"
	unpiped xclip -quiet -selection "$1" -t "$2" -i "$tmp/owned" >/dev/null 2>&1 &
	pids+=($!)
}
to_viewer() {	# SELECTION TARGET ENCODING TEXT
	own "$@"
	remote wait-cut-text "$4"
	echo "$1 ($2) to the viewer: $4"
}
to_viewer clipboard STRING ISO-8859-1 'Grüße, café! ½ «x» ÿ'
to_viewer primary STRING ISO-8859-1 'primary: naïve ¿Qué?'
[ "$kind" = x11vnc ] || to_viewer clipboard UTF8_STRING UTF-8 'déjà vu: UTF8_STRING'

# An owner that hands its text over only in pieces (INCR, 500 bytes each): the viewer gets it whole.
if [ "$kind" = cohmem-vnc ] && [ -x "$build/tests/x-incr-owner" ]; then
	incr_text=$(for i in $(seq 1 300); do printf 'incr-%04d ' "$i"; done)
	printf '%s' "$incr_text" >"$tmp/incr.txt"
	unpiped "$build/tests/x-incr-owner" CLIPBOARD 500 "$tmp/incr.txt" >"$tmp/incr-owner.log" 2>&1 &
	pids+=($!)
	wait_for "$tmp/incr-owner.log" "^owned" $!
	remote wait-cut-text "$incr_text"
	echo "clipboard in pieces (INCR, ${#incr_text} bytes in 500-byte pieces) to the viewer: whole"
	# In pieces of Latin-1 (STRING): read as Latin-1, not as UTF-8.
	incr_text="$incr_text déjà, ÿ"
	printf '%s' "$incr_text" | iconv -f UTF-8 -t ISO-8859-1 >"$tmp/incr.txt"
	unpiped "$build/tests/x-incr-owner" CLIPBOARD 500 "$tmp/incr.txt" STRING >"$tmp/incr-owner.log" 2>&1 &
	pids+=($!)
	wait_for "$tmp/incr-owner.log" "^owned" $!
	remote wait-cut-text "$incr_text"
	echo "clipboard in Latin-1 pieces (INCR, STRING) to the viewer: whole, é and ÿ included"
fi

# From the viewer to X: CLIPBOARD and PRIMARY both hold it.
text='Ça coûte 5 £, ½ prix; "quoted"'
remote cut-text "$text"
holds() {	# SELECTION TARGET ENCODING
	[ "$(timeout "$patience" xclip -o -selection "$1" -t "$2" 2>/dev/null | iconv -f "$3" -t UTF-8)" = "$text" ]
}
for sel in clipboard primary; do
	patiently holds $sel STRING ISO-8859-1 ||
		fail "$sel: '$(timeout "$patience" xclip -o -selection $sel -t STRING 2>&1 | iconv -f ISO-8859-1 -t UTF-8)', not '$text'"
	[ "$kind" = x11vnc ] || holds $sel UTF8_STRING UTF-8 ||
		fail "$sel as UTF8_STRING: '$(timeout "$patience" xclip -o -selection $sel -t UTF8_STRING 2>&1)', not '$text'"
	echo "the viewer to $sel: $text"
done

# A view-only server on the same screen: its viewer's pointer and keys reach nothing. The viewer
# waits for the picture to change (xsetroot) after them: the server answered its update request
# sent after them, so it had read them.
if [ "$kind" = cohmem-vnc ]; then
	unpiped "$build/tools/cohmem-vnc" --xwd "$tmp/mnt/Xvfb_screen0" --port 0 --view-only \
		>"$tmp/view-only.log" 2>&1 &
	view_only=$!
	pids+=($view_only)
	wait_for "$tmp/view-only.log" "listening on" $view_only
	vport=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/view-only.log")
	xdotool mousemove 5 5
	before=$(xdotool getmouselocation)
	unpiped sh -c "sleep 1; xsetroot -solid '#123456'" &
	timeout "$patience" "$build/tests/vnc-remote" 127.0.0.1 "$vport" move 300 100 click 300 100 \
		type 'touch view-only' key Return wait-change 0 0 "$width" "$height" >"$tmp/view-only-viewer.log" 2>&1 ||
		fail "the view-only viewer: $(cat "$tmp/view-only-viewer.log")"
	[ "$(xdotool getmouselocation)" = "$before" ] || fail "a view-only viewer moved the pointer: $(xdotool getmouselocation)"
	kill -USR1 $view_only
	wait_for "$tmp/view-only.log" "0 key and pointer events" $view_only
	[ ! -e "$tmp/A/view-only" ] && [ ! -e "$tmp/B/view-only" ] || fail "a view-only viewer typed"
	echo "a view-only server: its viewer's pointer and keys reached nothing"
fi

# The viewer leaves at the end of its commands.
exec {remote_in}>&-
wait "$remote" || fail "vnc-remote exited $?"
kill -0 "$server" 2>/dev/null || fail "$kind died"
if [ "$kind" = cohmem-vnc ]; then	# stopped, so that a sanitizer's report (leaks at exit) is in its log, shown
	kill -TERM "$server"
	wait "$server" || fail "cohmem-vnc did not exit 0"
	cat "$tmp/cohmem-vnc.log"
fi
echo "vnc-input-test ($kind): passed"
