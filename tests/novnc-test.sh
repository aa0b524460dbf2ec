#!/usr/bin/env bash
# A browser as the client: noVNC (Debian's novnc) in headless Chromium,
# through websockify, connected to cohmem-vnc serving Xvfb's screen from a
# cohmemd mount. After each step, the page's canvas (a PNG, taken through the
# DevTools protocol by tests/novnc/cdp-capture.py) must equal `xwd -root` of
# the display, pixel for pixel. One browser session follows every step: its
# updates are incremental, and it follows the X server restarted at another
# size.
#
#   tests/novnc-test.sh BUILD_DIR
# Exit 0: passed; 1: failed; 77: skipped (a program missing, no /dev/fuse).
set -euo pipefail

build=$(cd "${1:?usage: novnc-test.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
novnc=/usr/share/novnc

skip() {
	echo "SKIP: $*"
	exit 77
}
for p in Xvfb xwd xsetroot xeyes websockify chromium; do
	command -v "$p" >/dev/null || skip "$p is not installed (Debian: xvfb x11-apps x11-xserver-utils novnc websockify chromium)"
done
[ -e "$novnc/core/rfb.js" ] || skip "no noVNC in $novnc (Debian: novnc)"
[ -x /usr/bin/python3 ] || skip "no /usr/bin/python3"
[ -x "$build/tools/cohmem-vnc" ] || skip "no cohmem-vnc in $build (libvncserver-dev missing?)"
[ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "cannot open /dev/fuse"

session_name="novnc-test"
# shellcheck source=tests/xvfb-session.sh
. "$here/xvfb-session.sh"
session_start "$build" push 24

# noVNC's modules and our page, served by websockify beside the WebSocket bridge.
mkdir "$tmp/web"
ln -s "$novnc/core" "$novnc/vendor" "$tmp/web/"
cp "$here/novnc/capture.html" "$tmp/web/"
web_port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
websockify --web "$tmp/web" "127.0.0.1:$web_port" "127.0.0.1:$port" >"$tmp/websockify.log" 2>&1 &
websockify=$!
pids+=($websockify)
wait_for "$tmp/websockify.log" "Listen on" $websockify

chromium_start

coproc CDP { /usr/bin/python3 "$here/novnc/cdp-capture.py" "$devtools" \
	"http://127.0.0.1:$web_port/capture.html" "$tmp/browser.png" 2>"$tmp/cdp.log"; }
pids+=($CDP_PID)
# The page's module, once loaded, connects to the server through websockify.
wait_for "$tmp/websockify.log" "connecting to" $websockify

step=0
check() {
	local what=$1 out='' reply end=$((SECONDS + patience))
	shift
	step=$((step + 1))
	for (( ; ; )); do
		xwd -root -silent >"$tmp/root.xwd" || fail "xwd"
		echo capture >&"${CDP[1]}"
		read -r -t "$(left $end)" reply <&"${CDP[0]}" || fail "step $step: no capture from the browser"
		if out=$("$build/tests/picture-compare" "$@" "$tmp/browser.png" "$tmp/root.xwd"); then
			echo "step $step, $what: noVNC's canvas ($reply) and xwd's: $out"
			return 0
		fi
		[ "$SECONDS" -lt "$end" ] || fail "step $step, $what, still after $patience s: $out"
		sleep 0.5
	done
}

xsetroot -solid '#ff0000'
check "a red root" --pixel 0,0,ff0000
# drawn: whether the display's picture differs from plain.xwd's (xeyes drew something).
drawn() {
	xwd -root -silent >"$tmp/now.xwd" || fail "xwd"
	! "$build/tests/picture-compare" "$tmp/now.xwd" "$tmp/plain.xwd" >/dev/null
}
cp "$tmp/root.xwd" "$tmp/plain.xwd"
xeyes -geometry 200x150+40+60 >"$tmp/xeyes.log" 2>&1 &
pids+=($!)
patiently drawn || fail "xeyes drew nothing in $patience s"
check "xeyes"
xsetroot -solid '#2050d0'
check "a blue root behind it" --pixel 639,479,2050d0
# The X server restarts at 800x600 on the same file: the same browser session follows the
# new size (DesktopSize), in the right colours.
kill "$xvfb"
wait "$xvfb" 2>/dev/null || true
xvfb_start 800x600x24 xvfb2
xsetroot -solid '#c03010'
check "Xvfb restarted at 800x600, the same session" --pixel 799,599,c03010
# cohmem-vnc's X session (input, clipboard, cursor) follows the X server to its new display.
wait_for "$tmp/cohmem-vnc.log" "went away; looking for it again" $server
reconnected() {	# connected again, after the line that said it went away
	sed -n '/went away/,$p' "$tmp/cohmem-vnc.log" | grep -q "X display $DISPLAY: keyboard and pointer"
}
patiently reconnected || fail "cohmem-vnc did not connect to the new X server ($DISPLAY) in $patience s"
echo "cohmem-vnc's X session: on the new X server, $DISPLAY"

exec {CDP[1]}>&-
kill -TERM "$server"
wait "$server" || fail "cohmem-vnc did not exit 0"
cat "$tmp/cohmem-vnc.log"
echo "novnc-test: passed"
