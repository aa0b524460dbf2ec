#!/usr/bin/env bash
# A browser as a remote desktop's client: noVNC (Debian's novnc) in headless Chromium,
# through websockify, with a password and not view-only, on an Xvfb desktop (openbox,
# two xterms) served by cohmem-vnc (or, with COHMEM_VNC_SERVER=x11vnc, by x11vnc on the
# same kind of Xvfb). tests/novnc/cdp-drive.py gives the page real browser input over
# the DevTools protocol: key events as a US keyboard makes them (Shift around shifted
# characters; noVNC turns them into keysyms) and mouse events on the canvas.
#   - a wrong password: noVNC's securityfailure; the right one connects;
#   - the mouse moved on the canvas moves X's pointer there; the wheel turned
#     over a window gives it buttons 5 and 4;
#   - a click into xterm A (B, the newest, had the focus), a command typed there and
#     Enter: the file it creates in A's directory holds, in order, every character
#     typed (shifted symbols too), and B's directory stays empty;
#   - clipboard: text set on X's CLIPBOARD or PRIMARY (xclip) arrives in the page
#     (noVNC's 'clipboard' event); text the page pastes (clipboardPasteFrom) is X's
#     CLIPBOARD and PRIMARY; beyond ASCII, UTF-8 from X (a euro sign too) and
#     Latin-1 from the page (all noVNC 1.3 sends libvncserver) arrive as they were.
#     x11vnc passes clipboard bytes through unconverted: for it, the non-ASCII
#     round trip is shown, not judged.
# Every wait is for something to happen; the seconds each part took are printed.
#
#   tests/novnc-input-test.sh BUILD_DIR
# Exit 0: passed; 1: failed; 77: skipped (a program missing, no /dev/fuse).
set -euo pipefail

build=$(cd "${1:?usage: novnc-input-test.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
novnc=/usr/share/novnc
server_kind=${COHMEM_VNC_SERVER:-cohmem-vnc}

skip() {
	echo "SKIP: $*"
	exit 77
}
for p in Xvfb openbox xterm xclip xdotool xwininfo xev websockify chromium; do
	command -v "$p" >/dev/null ||
		skip "$p is not installed (Debian: xvfb openbox xterm xclip xdotool x11-utils novnc websockify chromium)"
done
[ -e "$novnc/core/rfb.js" ] || skip "no noVNC in $novnc (Debian: novnc)"
[ -x /usr/bin/python3 ] || skip "no /usr/bin/python3"
case $server_kind in
cohmem-vnc)
	[ -x "$build/tools/cohmem-vnc" ] || skip "no cohmem-vnc in $build (libvncserver-dev missing?)"
	{ [ -r /dev/fuse ] && [ -w /dev/fuse ]; } || skip "cannot open /dev/fuse"
	;;
x11vnc) command -v x11vnc >/dev/null || skip "x11vnc is not installed (Debian: x11vnc)" ;;
*)
	echo "novnc-input-test: COHMEM_VNC_SERVER is cohmem-vnc or x11vnc, not '$server_kind'"
	exit 2
	;;
esac
command -v vncpasswd >/dev/null || command -v x11vnc >/dev/null ||
	skip "nothing writes a VNC password file (Debian: tigervnc-tools or x11vnc)"

session_name="novnc-input-test"
# shellcheck source=tests/xvfb-session.sh
. "$here/xvfb-session.sh"

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# now: seconds since the epoch, to the ns; span A B: the seconds from A to B (printed, never judged).
now() { date +%s.%N; }
span() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
t_start=$(now)

# VNC passwords are 8 characters at most (DES keys): both are exactly 8.
password=cohmem24 wrong_password=wrong-pw
if command -v vncpasswd >/dev/null; then
	echo "$password" | vncpasswd -f >"$tmp/passwd"
else
	x11vnc -storepasswd "$password" "$tmp/passwd" >/dev/null 2>&1
fi
[ -s "$tmp/passwd" ] || fail "no password file"

if [ "$server_kind" = x11vnc ]; then
	xvfb_start 640x480x24 xvfb memory
	port=$(free_port)
	x11vnc -display "$DISPLAY" -rfbport "$port" -localhost -forever -shared -rfbauth "$tmp/passwd" \
		>"$tmp/x11vnc.log" 2>&1 &
	server=$!
	pids+=("$server")
	wait_for "$tmp/x11vnc.log" "PORT=$port" $server
else
	session_start "$build" push 24 --rfbauth "$tmp/passwd"
fi

# The desktop: openbox (click to focus, new windows focused), a window that reports the
# mouse's buttons (xev), xterm A and then xterm B, each with a shell in its own directory.
export XDG_CONFIG_HOME=$tmp/xdg XDG_CACHE_HOME=$tmp/xdg-cache
# Windows are made only once openbox runs its --startup command: it sets _NET_SUPPORTING_WM_CHECK
# before it manages windows, and a window mapped in between stayed unmapped, unmanaged, in one
# run of 3 on Debian 13 under load.
openbox --sm-disable --startup "touch $tmp/openbox-up" >"$tmp/openbox.log" 2>&1 &
pids+=("$!")
wm_running() {
	[ -e "$tmp/openbox-up" ] && xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q "window id"
}
patiently wm_running || fail "openbox did not start managing the screen in $patience s"
# mapped NAME: X Y W H of the window named NAME (its inside, on the screen), once mapped.
mapped() {
	xwininfo -name "$1" 2>/dev/null | awk '
		/Absolute upper-left X/ { x = $NF } /Absolute upper-left Y/ { y = $NF }
		/Width:/ { w = $NF } /Height:/ { h = $NF } /Map State: IsViewable/ { v = 1 }
		END { if (!v) exit 1; print x, y, w, h }'
}
window_up() {
	mapped "$1" >/dev/null
}
xev -name wheel -geometry 120x80+500+380 -event button >"$tmp/xev.log" 2>&1 &
pids+=("$!")
patiently window_up wheel || fail "xev's window did not appear in $patience s"
# terminal NAME GEOMETRY: an xterm titled NAME, its shell in $tmp/NAME's last letter.
terminal() {
	mkdir "$tmp/${1: -1}"
	# shellcheck disable=SC2016 # the inner shell expands $1
	xterm -T "$1" -geometry "$2" -e sh -c 'cd "$1" && exec sh' sh "$tmp/${1: -1}" >"$tmp/$1.log" 2>&1 &
	pids+=("$!")
	patiently window_up "$1" || fail "xterm $1 did not appear in $patience s"
}
terminal termA 80x10+0+0
terminal termB 80x10+0+240
focused() {
	[ "$(xdotool getwindowfocus getwindowname 2>/dev/null)" = "$1" ]
}
patiently focused termB || fail "xterm B, the newest window, did not get the focus in $patience s"
t_desktop=$(now)

# noVNC's modules and the page, served by websockify beside the WebSocket bridge.
mkdir "$tmp/web"
ln -s "$novnc/core" "$novnc/vendor" "$tmp/web/"
cp "$here/novnc/input.html" "$tmp/web/"
web_port=$(free_port)
websockify --web "$tmp/web" "127.0.0.1:$web_port" "127.0.0.1:$port" >"$tmp/websockify.log" 2>&1 &
websockify=$!
pids+=("$websockify")
wait_for "$tmp/websockify.log" "Listen on" $websockify

# noVNC over TLS (websockify --cert in front of cohmem-vnc): a certificate of the test's own,
# which Chromium is told to trust by its key's hash (and no other).
trust=()
if [ "$server_kind" = cohmem-vnc ] && command -v openssl >/dev/null; then
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 \
		-subj /CN=127.0.0.1 >"$tmp/openssl.log" 2>&1 || fail "openssl req"
	spki=$(openssl x509 -in "$tmp/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64)
	trust=(--ignore-certificate-errors-spki-list="$spki")
fi

chromium_start ${trust[@]+"${trust[@]}"}

coproc CDP { /usr/bin/python3 "$here/novnc/cdp-drive.py" "$devtools" \
	"http://127.0.0.1:$web_port/input.html" 2>"$tmp/cdp.log"; }
pids+=("$CDP_PID")
exec {to_cdp}>&"${CDP[1]}" {from_cdp}<&"${CDP[0]}"

# drive COMMAND...: one command to cdp-drive.py; sets reply to its answer.
drive() {
	echo "$*" >&$to_cdp
	read -r -t "$patience" reply <&$from_cdp || fail "cdp-drive answered nothing to '$1' in $patience s"
	[[ $reply != error* ]] || fail "cdp-drive: $*: $reply"
}
# js_true JS: whether the page's JS is true (for patiently).
js_true() {
	drive eval "$1"
	[ "$reply" = true ]
}
patiently js_true "typeof window.connect === 'function'" || fail "the page's module did not load in $patience s"
t_browser=$(now)

# Passwords. The wrong one, handed over when noVNC asks for one: refused.
drive eval "connect('$wrong_password', 'asked')"
[ "$reply" = '"credentialsrequired securityfailure disconnect"' ] ||
	fail "a wrong password: noVNC saw $reply, not a security failure"
drive eval "JSON.stringify(window.lastSecurityFailure)"
echo "a wrong password: noVNC's securityfailure, $reply"
# The right one, given to the constructor: connected.
drive eval "connect('$password', 'options')"
[ "$reply" = '"connect"' ] || fail "the right password: noVNC saw $reply, not a connection"
patiently js_true "canvasSize() === '640x480'" || fail "noVNC's canvas is not 640x480 in $patience s"
echo "the right password: connected"
t_connected=$(now)

# The mouse: where the page's pointer goes, X's goes.
pointer_at() {
	[ "$(xdotool getmouselocation --shell 2>/dev/null | grep -E '^[XY]=' | tr '\n' ' ')" = "X=$1 Y=$2 " ]
}
drive move 333 222
patiently pointer_at 333 222 || fail "the mouse moved to 333,222 in the page: X's pointer is not there"
# The wheel over xev's window, down then up: buttons 5 and 4 there.
read -r wx wy ww wh < <(mapped wheel)
drive wheel $((wx + ww / 2)) $((wy + wh / 2)) 120
wait_for "$tmp/xev.log" "button 5,"
drive wheel $((wx + ww / 2)) $((wy + wh / 2)) -120
wait_for "$tmp/xev.log" "button 4,"
echo "the mouse: moved to 333,222; the wheel gave xev buttons 5 and 4"
t_mouse=$(now)

# A click into xterm A takes the focus from B.
read -r ax ay aw ah < <(mapped termA)
drive click $((ax + aw / 2)) $((ay + ah / 2))
patiently focused termA || fail "a click into xterm A did not focus it"
# A command typed there, every key of a US keyboard's main block in it, shifted or not;
# the file it writes in A's directory is the characters in the order they arrived.
IFS= read -r line <<'EOF'
Hello, World! ~@#$%^&*()_+{}|:"<>? abc-XYZ=[]\;,./`0123456789
EOF
drive type "printf '%s\\n' '"
drive eval "window.keysSent.length"
keys_before=$reply
drive type "$line"
drive eval "window.keysSent.slice($keys_before).join(' ')"
keys_line=$reply
drive type "' > typed"
drive eval "window.keysSent.length"
keys_before=$reply
drive key Enter
drive eval "window.keysSent.slice($keys_before).join(' ')"
keys_enter=$reply
typed() { [ -s "$tmp/A/typed" ]; }
patiently typed || fail "the command typed into xterm A wrote nothing in $patience s"
[ "$(cat "$tmp/A/typed")" = "$line" ] || fail "xterm A's command wrote '$(cat "$tmp/A/typed")', not '$line'"
[ -z "$(ls -A "$tmp/B")" ] || fail "xterm B's directory has $(ls -A "$tmp/B")"
echo "typed into xterm A: $line"
echo "noVNC's key events (keysym, + down, - up) for the line: $keys_line; for Enter: $keys_enter"
t_typed=$(now)

# The clipboard, both ways, both selections. A selection's owner on X: an xclip in the
# foreground (-quiet), until another client takes the selection.
# x_owns SELECTION TEXT: sets X's SELECTION to TEXT.
x_owns() {
	printf '%s' "$2" | xclip -selection "$1" -i -quiet >>"$tmp/xclip.log" 2>&1 &
	pids+=("$!")
}
# page_got TEXT: waits for noVNC's clipboard event with TEXT; says what it got, if not.
page_got() {
	patiently js_true "clipboardTexts.includes($(json "$1"))" && return 0
	drive eval "JSON.stringify(clipboardTexts)"
	echo "the page's clipboard events: $reply"
	return 1
}
json() { /usr/bin/python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
# x_has SELECTION TEXT: whether X's SELECTION is TEXT (UTF-8, xclip's target).
x_has() {
	[ "$(xclip -o -selection "$1" 2>/dev/null)" = "$2" ]
}
x_owns clipboard "CLIPBOARD from X"
page_got "CLIPBOARD from X" || fail "X's CLIPBOARD never reached the page"
x_owns primary "PRIMARY from X"
page_got "PRIMARY from X" || fail "X's PRIMARY never reached the page"
echo "X's CLIPBOARD and PRIMARY in the page"
drive eval "paste('pasted by noVNC')"
patiently x_has clipboard "pasted by noVNC" ||
	fail "the page's paste is not X's CLIPBOARD: '$(xclip -o -selection clipboard 2>&1)'"
patiently x_has primary "pasted by noVNC" ||
	fail "the page's paste is not X's PRIMARY: '$(xclip -o -selection primary 2>&1)'"
echo "the page's paste in X's CLIPBOARD and PRIMARY"
# Beyond ASCII. X to the page: libvncserver's extended clipboard carries UTF-8 to noVNC
# (euro sign included). The page to X: noVNC 1.3 uses the extended clipboard only
# when the server offers Notify, which libvncserver 0.9.14 never does, so it sends
# Latin-1 (ClientCutText); X's clipboard is UTF-8. x11vnc passes the bytes through
# unconverted both ways: for it, what arrived is shown, not judged.
from_x="café, 5 €" from_page="déjà vu"
drive eval "clipboardTexts.length"
events=$reply
x_owns clipboard "$from_x"
if [ "$server_kind" = x11vnc ]; then
	patiently js_true "clipboardTexts.length > $events" || fail "X's CLIPBOARD '$from_x' never reached the page"
	drive eval "JSON.stringify(clipboardTexts.at(-1))"
	echo "x11vnc (not judged): X's '$from_x' reached the page as $reply"
else
	page_got "$from_x" || fail "X's CLIPBOARD '$from_x' never reached the page"
	echo "X's CLIPBOARD in the page: $from_x"
fi
drive eval "paste($(json "$from_page"))"
if [ "$server_kind" = x11vnc ]; then
	x_other() { ! x_has clipboard "$from_x"; }
	patiently x_other || fail "the page's paste never took X's CLIPBOARD"
	echo "x11vnc (not judged): the page's '$from_page' is X's '$(xclip -o -selection clipboard | od -An -c | tr -s ' ')'"
else
	patiently x_has clipboard "$from_page" ||
		fail "the page's paste is not X's CLIPBOARD: '$(xclip -o -selection clipboard 2>&1)'"
	echo "the page's paste in X's CLIPBOARD: $from_page"
fi
t_clipboard=$(now)

# TLS in front, as the man page says: websockify --cert --ssl-only to the same cohmem-vnc. noVNC
# connects with wss:// and gets in with the password; plain ws:// to it is refused.
if [ ${#trust[@]} -gt 0 ]; then
	tls_port=$(free_port)
	websockify --cert "$tmp/cert.pem" --key "$tmp/key.pem" --ssl-only "127.0.0.1:$tls_port" "127.0.0.1:$port" \
		>"$tmp/websockify-tls.log" 2>&1 &
	pids+=($!)
	wait_for "$tmp/websockify-tls.log" "Listen on" $!
	drive eval "connect('$password', 'options', 'wss://127.0.0.1:$tls_port/websockify')"
	[ "$reply" = '"connect"' ] || fail "noVNC over wss:// through websockify --cert: $reply, not a connection"
	patiently js_true "canvasSize() === '640x480'" || fail "over wss://: the canvas is not 640x480"
	echo "noVNC over wss:// (websockify --cert --ssl-only) to cohmem-vnc: connected with the password"
	drive eval "connect('$password', 'options', 'ws://127.0.0.1:$tls_port/websockify')"
	[ "$reply" != '"connect"' ] || fail "plain ws:// to websockify --ssl-only connected"
	echo "plain ws:// to it: refused ($reply)"
	drive eval "connect('$password', 'options')"	# back on the plain bridge: nothing left on TLS
	[ "$reply" = '"connect"' ] || fail "the page did not connect again: $reply"
fi

echo "seconds: desktop $(span "$t_start" "$t_desktop"), browser $(span "$t_desktop" "$t_browser")," \
	"passwords $(span "$t_browser" "$t_connected"), mouse $(span "$t_connected" "$t_mouse")," \
	"typing $(span "$t_mouse" "$t_typed"), clipboard $(span "$t_typed" "$t_clipboard")," \
	"all $(span "$t_start" "$t_clipboard")"
exec {to_cdp}>&-
# Stopped before the X server and the browser are (at exit, all at once), and its log shown: a
# sanitizer's report at its exit counts.
if [ "$server_kind" = cohmem-vnc ]; then
	kill -TERM "$server"
	wait "$server" || fail "cohmem-vnc did not exit 0"
	cat "$tmp/cohmem-vnc.log"
fi
echo "novnc-input-test ($server_kind): passed"
