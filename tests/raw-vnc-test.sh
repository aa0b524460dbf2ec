#!/usr/bin/env bash
# cohmem-vnc --raw, every format it takes: a file on a cohmemd mount holds
# four quadrants (red, green, blue, white) in that format, with padded rows
# and pixel (0, 0) off the file's start; a libvncclient client
# (tests/vnc-capture.c) must see those colours. Then the file changes
# through write(2) — no mapping at all — and the client sees that too; and
# (xrgb8888) the file is cut to nothing and written again.
#
#   tests/raw-vnc-test.sh BUILD_DIR
# Exit 0: passed; 1: failed; 77: skipped.
set -euo pipefail

build=$(cd "${1:?usage: raw-vnc-test.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$build/tools/cohmem-vnc" ] && [ -x "$build/tests/vnc-capture" ] ||
	{ echo "SKIP: no cohmem-vnc or vnc-capture in $build"; exit 77; }
[ -r /dev/fuse ] && [ -w /dev/fuse ] || { echo "SKIP: cannot open /dev/fuse"; exit 77; }

session_name=raw-vnc-test
# shellcheck source=tests/xvfb-session.sh
. "$here/xvfb-session.sh"	# tmp, pids, fail, patience, left, wait_for (no X server: no session_start)
mkdir "$tmp/mnt" "$tmp/state"
"$build/daemon/cohmemd" --mount "$tmp/mnt" --state-dir "$tmp/state" --interval 30 >"$tmp/cohmemd.log" 2>&1 &
pids+=($!)
wait_for "$tmp/cohmemd.log" serving $!

W=96 H=64 OFFSET=100 PAD=12
# write_frame FILE FORMAT [COLOUR]: the quadrants, or the whole frame in COLOUR (RRGGBB).
write_frame() {
	/usr/bin/python3 - "$@" <<'PY'
import struct, sys
path, fmt = sys.argv[1], sys.argv[2]
whole = int(sys.argv[3], 16) if len(sys.argv) > 3 else None
W, H, OFFSET, PAD = 96, 64, 100, 12
def pack(rgb):
    r, g, b = rgb >> 16, rgb >> 8 & 0xff, rgb & 0xff
    v = {"xrgb8888": r << 16 | g << 8 | b, "argb8888": 0xff << 24 | r << 16 | g << 8 | b,
         "xbgr8888": b << 16 | g << 8 | r, "abgr8888": 0xff << 24 | b << 16 | g << 8 | r,
         "rgbx8888": r << 24 | g << 16 | b << 8, "bgrx8888": b << 24 | g << 16 | r << 8,
         "rgb565": (r >> 3) << 11 | (g >> 2) << 5 | b >> 3, "bgr565": (b >> 3) << 11 | (g >> 2) << 5 | r >> 3}[fmt]
    return struct.pack("<H" if fmt.endswith("565") else "<I", v)
bpp = 2 if fmt.endswith("565") else 4
quadrant = lambda x, y: whole if whole is not None else [[0xff0000, 0x00ff00], [0x0000ff, 0xffffff]][y * 2 // H][x * 2 // W]
rows = b"".join(b"".join(pack(quadrant(x, y)) for x in range(W)) + b"\xaa" * PAD for y in range(H))
with open(path, "r+b" if whole is not None else "wb") as f:
    f.seek(0)
    f.write(b"\x55" * OFFSET + rows)
PY
}

# capture END: the client's picture in c.png, waiting until END (a $SECONDS) at most.
capture() {
	timeout "$(left "$1")" "$build/tests/vnc-capture" 127.0.0.1 "$port" "$tmp/c.png" >"$tmp/capture.log" 2>&1 ||
		fail "$fmt: vnc-capture: $(cat "$tmp/capture.log")"
}
# until_served END PICTURE-COMPARE-ARGS...: captures until the picture holds (the server
# may be passes behind), up to END; out says what the last capture showed.
until_served() {
	local end=$1
	shift
	for (( ; ; )); do
		capture "$end"
		out=$("$build/tests/picture-compare" "$@" "$tmp/c.png") && return 0
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.25
	done
}

status=0
for fmt in xrgb8888 argb8888 xbgr8888 abgr8888 rgbx8888 bgrx8888 rgb565 bgr565; do
	bpp=4
	case $fmt in *565) bpp=2 ;; esac
	file=$tmp/mnt/raw-$fmt
	write_frame "$file" $fmt
	"$build/tools/cohmem-vnc" --raw "$file" --geometry ${W}x$H --format $fmt --stride $((W * bpp + PAD)) \
		--offset $OFFSET --port 0 >"$tmp/server-$fmt.log" 2>&1 &
	server=$!
	pids+=($server)
	# A log of its own: a background command's redirection happens in its own process, maybe
	# after the wait below began; a shared log could still show the last server's line.
	wait_for "$tmp/server-$fmt.log" "listening on" $server
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server-$fmt.log")
	[ -n "$port" ] || fail "$fmt: no port in server-$fmt.log"
	# A raw file has no X display: its clients only look, and the server says so.
	grep -q "view-only: a --raw file has no X display" "$tmp/server-$fmt.log" ||
		fail "$fmt: the server did not say it is view-only"
	# The first picture is the file's as it was when the server started: no waiting for it.
	capture $((SECONDS + patience))
	if out=$("$build/tests/picture-compare" --bits 5 --pixel 0,0,ff0000 --pixel $((W - 1)),0,00ff00 \
		--pixel 0,$((H - 1)),0000ff --pixel $((W - 1)),$((H - 1)),ffffff "$tmp/c.png"); then
		write_frame "$file" $fmt 808000	# olive, through write(2)
		until_served $((SECONDS + patience)) --bits 5 --pixel 50,30,808000 || true
	fi
	if [ -z "$out" ] && [ $fmt = xrgb8888 ]; then
		# Cut to nothing under the server's mapping, then written again: it maps it again.
		# The sleep lets the server's look for a changed size (every 500 ms) see the cut; on a
		# slow machine the frame may be written again first, and is then served as pages
		# written: served either way, only the path differs.
		truncate -s 0 "$file"
		sleep 1
		write_frame "$file" $fmt 008080
		until_served $((SECONDS + patience)) --pixel 10,60,008080 || true
		[ -n "$out" ] || echo "$fmt: cut to nothing and written again: served again"
	fi
	if [ -z "$out" ]; then
		echo "$fmt: the quadrants, then a frame written with write(2): right"
	else
		echo "$fmt: FAILED: $out"
		status=1
	fi
	kill -TERM $server
	wait $server || status=1
done
exit $status
