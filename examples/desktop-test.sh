#!/usr/bin/env bash
# cohmem-desktop gives a usable desktop and takes it all down again. Two runs,
# each on a display and ports of its own choosing (tests run side by side):
#   1. the default session, noVNC when installed: a window manager runs, an
#      xterm is mapped and has the focus, the VNC port answers RFB and offers
#      no password, noVNC's page and its WebSocket bridge to the VNC server
#      answer; then a signal (SIGINT, Ctrl-C's, or SIGTERM, a service
#      manager's) stops it, and the same again while it stops does not cut
#      that short.
#   2. a command as the session, --rfbauth, --view-only, --no-web: the
#      command's window is mapped, the VNC port asks for the password (VNC
#      authentication only); the session's end ends the desktop.
# After each: exit status 0, no process of it left, no mount, no temporary
# directory. (Not its display's socket: another test's X server may take the
# display as soon as it is free.)
#
#   examples/desktop-test.sh BUILD_DIR [SERVER [SIGNAL]]
# SERVER: cohmem-vnc (default) or x11vnc; SIGNAL: INT (default) or TERM.
# Exit 0: passed; 1: failed; 77: skipped (a program missing, no /dev/fuse).
set -euo pipefail

build=$(cd "${1:?usage: desktop-test.sh BUILD_DIR [SERVER [SIGNAL]]}" && pwd)
server=${2:-cohmem-vnc}
signal=${3:-INT}
here=$(cd "$(dirname "$0")" && pwd)
desktop=$here/cohmem-desktop

skip() {
	echo "SKIP: $*"
	exit 77
}
for p in Xvfb xauth openbox xterm xprop xdotool setsid; do
	command -v "$p" >/dev/null || skip "$p is not installed (Debian: xvfb xauth openbox xterm x11-utils xdotool)"
done
[ "$server" != x11vnc ] || command -v x11vnc >/dev/null || skip "x11vnc is not installed"
[ "$server" != cohmem-vnc ] || [ -x "$build/tools/cohmem-vnc" ] || skip "no cohmem-vnc in $build (libvncserver-dev missing?)"
[ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "cannot open /dev/fuse"

session_name="desktop-test"
# shellcheck source=tests/xvfb-session.sh
. "$here/../tests/xvfb-session.sh"

# desktop_start NAME ARGS...: starts cohmem-desktop (its output in NAME.log, its parts' logs
# beside it, where fail() finds them) and waits for its banner; sets desktop_pid, display, XAUTHORITY, mnt, vnc_port and web (the noVNC URL, or
# empty). Job control (set -m) for this one start: a background job of a script ignores
# SIGINT otherwise, and so would the desktop.
desktop_start() {
	log=$tmp/$1.log
	shift
	set -m
	COHMEM_VNC_SERVER=$server "$desktop" --build "$build" --port 0 --web-port 0 --log-dir "$tmp" "$@" >"$log" 2>&1 &
	desktop_pid=$!
	set +m
	pids+=("$desktop_pid")
	wait_for "$log" "Ctrl-C stops it all" "$desktop_pid"
	cat "$log"
	display=$(sed -n 's/^cohmem-desktop: ready: display \(:[0-9]*\) .*/\1/p' "$log")
	export DISPLAY=$display
	XAUTHORITY=$(sed -n 's/^  X clients: .* XAUTHORITY=\([^ ]*\) .*/\1/p' "$log")
	export XAUTHORITY
	mnt=$(sed -n 's|^  screen: \(.*\)/Xvfb_screen0 on cohmemd.*|\1|p' "$log")
	vnc_port=$(sed -n 's/^  VNC: *127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log")
	web=$(sed -n 's/^  noVNC: *\(http:[^ ]*\) .*/\1/p' "$log")
	[ -n "$display" ] && [ -n "$XAUTHORITY" ] && [ -n "$mnt" ] && [ -n "$vnc_port" ] ||
		fail "the banner lacks the display, XAUTHORITY, the screen's mount or the VNC port"
	grep -q " $mnt fuse" /proc/mounts || fail "$mnt is not a FUSE mount"
}

# descendants PID: every process below PID (each part runs in a session of its own, but
# stays the desktop's child).
descendants() {
	local child children
	read -r -a children < <(cat /proc/"$1"/task/*/children 2>/dev/null)
	for child in ${children[@]+"${children[@]}"}; do
		echo "$child"
		descendants "$child"
	done
}

# rfb_security_types: the security types the VNC server offers an RFB 3.8 client.
rfb_security_types() {
	local banner n end=$((SECONDS + patience))
	exec 3<>"/dev/tcp/127.0.0.1/$vnc_port"
	read -r -t "$(left $end)" banner <&3 || fail "no RFB banner on port $vnc_port"
	[[ $banner == "RFB 003.00"[378] ]] || fail "port $vnc_port said '$banner', not an RFB banner"
	printf 'RFB 003.008\n' >&3
	n=$(timeout "$(left $end)" dd bs=1 count=1 <&3 2>/dev/null | od -An -tu1 | tr -d ' ')
	[ -n "$n" ] && [ "$n" -gt 0 ] || fail "the VNC server offered no security type"
	timeout "$(left $end)" dd bs=1 count="$n" <&3 2>/dev/null | od -An -tu1 | xargs
	exec 3>&-
}

# window_mapped CLASS: a viewable window of that class.
window_mapped() {
	xdotool search --onlyvisible --class "$1" >/dev/null 2>&1
}
wm_running() {
	xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q 'window id'
}
xterm_focused() {
	local active
	active=$(xprop -root _NET_ACTIVE_WINDOW 2>/dev/null | sed -n 's/.*window id # \(0x[0-9a-f]*\).*/\1/p')
	[ -n "$active" ] && xdotool search --onlyvisible --class xterm | grep -qx "$((active))"
}

# http_get URL: the reply (headers and body) to a GET, by bash alone.
http_get() {
	local rest=${1#http://} end=$((SECONDS + patience))
	local hostport=${rest%%/*} path=/${rest#*/}
	exec 4<>"/dev/tcp/${hostport%:*}/${hostport#*:}"
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&4
	timeout "$(left $end)" cat <&4
	exec 4>&-
}

# websocket_rfb URL: through websockify's WebSocket bridge (noVNC's way in), the VNC
# server's first bytes: a binary frame of 2 header bytes and "RFB 003.00x\n".
websocket_rfb() {
	local rest=${1#http://} line end=$((SECONDS + patience))
	local hostport=${rest%%/*}
	exec 4<>"/dev/tcp/${hostport%:*}/${hostport#*:}"
	printf '%s\r\n' "GET /websockify HTTP/1.1" "Host: $hostport" "Upgrade: websocket" \
		"Connection: Upgrade" "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" \
		"Sec-WebSocket-Version: 13" "Sec-WebSocket-Protocol: binary" "" >&4
	read -r -t "$(left $end)" line <&4 || fail "websockify did not answer the upgrade"
	[[ $line == "HTTP/1.1 101"* ]] || fail "websockify answered the upgrade with '$line'"
	while read -r -t "$(left $end)" line <&4 && [ "${line%$'\r'}" != '' ]; do :; done
	timeout "$(left $end)" dd bs=1 count=14 <&4 2>/dev/null | tail -c 12
	exec 4>&-
}

# desktop_stop HOW...: notes every process of the desktop, then runs HOW to stop it.
desktop_stop() {
	family=$(descendants "$desktop_pid")
	"$@"
}

# fail_left MESSAGE: fails, after stopping what the desktop left running (cohmemd last: it
# unmounts), so that a broken desktop does not leave the machine an X server and a mount.
fail_left() {
	local p
	for p in $family; do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = cohmemd ] || kill -TERM "$p" 2>/dev/null || true
	done
	for p in $family; do
		kill -TERM "$p" 2>/dev/null || true
	done
	fail "$@"
}

# desktop_gone STATUS: the desktop exited with STATUS and left nothing behind.
desktop_gone() {
	local want=$1 status=0 p
	exited() { ! kill -0 "$desktop_pid" 2>/dev/null; }
	patiently exited || fail "cohmem-desktop still runs $patience s later"
	wait "$desktop_pid" || status=$?
	for p in "${!pids[@]}"; do
		[ "${pids[p]}" != "$desktop_pid" ] || unset 'pids[p]'
	done
	tail -n 2 "$log"
	[ "$status" = "$want" ] || fail_left "cohmem-desktop exited with $status, not $want"
	none_left() {
		for p in $family; do
			! kill -0 "$p" 2>/dev/null || return 1
		done
	}
	patiently none_left || fail_left "left running: $(for p in $family; do
		[ -e "/proc/$p" ] && tr '\0' ' ' <"/proc/$p/cmdline"; done)"
	! grep -q " $mnt " /proc/mounts || fail_left "$mnt is still mounted"
	[ ! -e "$(dirname "$mnt")" ] || fail "$(dirname "$mnt") is still there"
	echo "desktop-test: stopped with status $status: nothing left running, nothing mounted"
	# a sanitized build's reports, for CTest to see (x11vnc's long log is no build's)
	for p in cohmemd $([ "$server" != cohmem-vnc ] || echo vnc); do
		echo "--- $p.log"
		cat "$tmp/$p.log"
	done
}

# 1. The default session.
desktop_start desktop
patiently wm_running || fail "no window manager on $display in $patience s"
echo "desktop-test: a window manager runs: $(xprop -root _NET_SUPPORTING_WM_CHECK)"
patiently window_mapped xterm || fail "no xterm mapped on $display in $patience s"
patiently xterm_focused || fail "the xterm did not get the focus in $patience s"
echo "desktop-test: an xterm is mapped and has the focus"
types=$(rfb_security_types)
[ "$types" = 1 ] || fail "without --rfbauth the server offered security types '$types', not None (1)"
echo "desktop-test: port $vnc_port answers RFB, security types: $types (None)"
if command -v websockify >/dev/null && [ -e /usr/share/novnc/vnc.html ]; then
	[ -n "$web" ] || fail "websockify and noVNC are installed, but no noVNC URL"
	page=$(http_get "${web%%\?*}")
	[[ $page == HTTP/1.[01]" 200"* && $page == *"<title>noVNC</title>"* ]] ||
		fail "$web did not answer with noVNC's page: $(head -c 300 <<<"$page")"
	rfb=$(websocket_rfb "$web")
	[[ $rfb == "RFB 003.00"[378] ]] || fail "the WebSocket bridge gave '$rfb', not an RFB banner"
	echo "desktop-test: $web answers with noVNC's page; its WebSocket reaches the VNC server: $rfb"
else
	echo "desktop-test: no websockify or noVNC: no web client to check"
fi
# the signal twice: a second Ctrl-C while it stops must not cut the stop short
second_signal() {
	kill -"$signal" "$desktop_pid"
	wait_for "$log" "cohmem-desktop: stopping" "$desktop_pid"
	kill -"$signal" "$desktop_pid" 2>/dev/null || true
}
desktop_stop second_signal
desktop_gone 0

# 2. A command as the session, with a password.
printf 'secret\n' | vncpasswd -f >"$tmp/passwd" 2>/dev/null ||
	x11vnc -storepasswd secret "$tmp/passwd" >/dev/null 2>&1 ||
	skip "no vncpasswd (tigervnc-tools) or x11vnc to make a password file"
desktop_start own --rfbauth "$tmp/passwd" --view-only --no-web -- xterm -class DesktopTestSession
patiently window_mapped DesktopTestSession || fail "the session's xterm was not mapped in $patience s"
[ -z "$web" ] || fail "--no-web, but a noVNC URL: $web"
types=$(rfb_security_types)
[ "$types" = 2 ] || fail "with --rfbauth the server offered security types '$types', not VNC authentication (2)"
echo "desktop-test: the session's window is mapped; port $vnc_port asks for the password (types: $types)"
session_pid=$(xdotool search --onlyvisible --class DesktopTestSession getwindowpid)
desktop_stop kill -TERM "$session_pid"
desktop_gone 0
grep -q "the session ended" "$log" || fail "cohmem-desktop did not say the session ended"
echo "desktop-test: OK"
