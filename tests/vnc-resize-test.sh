#!/usr/bin/env bash
# cohmem-vnc against a producer that keeps resizing and clients that stall.
# A 2560x1600 XWD file of noise on a cohmemd mount has its header rewritten
# between 2560x1600 and 2048x1536 every 30 ms (tests/vnc/xwd-flip.py) while
# four clients ask for the whole frame in Raw and stop reading for a second
# with a 4 KiB receive buffer (tests/vnc/slow-client.py): the server's sends
# block mid-update across many resizes. Every client must then get a whole
# frame, each rectangle inside the frame it was told of; once the flipping
# stops a new client (tests/vnc-capture.c) must see the file's picture; and
# cohmem-vnc must exit 0. Under AddressSanitizer this caught cohmem-vnc's
# client threads reading a copy of the frame freed two resizes before.
#
#   tests/vnc-resize-test.sh BUILD_DIR
# Exit 0: passed; 1: failed; 77: skipped.
set -euo pipefail

build=$(cd "${1:?usage: vnc-resize-test.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$build/tools/cohmem-vnc" ] && [ -x "$build/tests/vnc-capture" ] ||
	{ echo "SKIP: no cohmem-vnc or vnc-capture in $build"; exit 77; }
[ -r /dev/fuse ] && [ -w /dev/fuse ] || { echo "SKIP: cannot open /dev/fuse"; exit 77; }

session_name=vnc-resize-test
# shellcheck source=tests/xvfb-session.sh
. "$here/xvfb-session.sh"	# tmp, pids, fail, patience, wait_for, server_counts (no X server: no session_start)
mkdir "$tmp/mnt" "$tmp/state"
"$build/daemon/cohmemd" --mount "$tmp/mnt" --state-dir "$tmp/state" --interval 30 >"$tmp/cohmemd.log" 2>&1 &
pids+=($!)
wait_for "$tmp/cohmemd.log" serving $!

big=2560x1600 small=2048x1536
/usr/bin/python3 "$here/vnc/xwd-flip.py" create "$tmp/mnt/frame" $big $small
"$build/tools/cohmem-vnc" --xwd "$tmp/mnt/frame" --port 0 >"$tmp/cohmem-vnc.log" 2>&1 &
server=$!
pids+=($server)
wait_for "$tmp/cohmem-vnc.log" "listening on" $server
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/cohmem-vnc.log")

# 80 flips, 30 ms apart: the clients stall for the first second of them.
/usr/bin/python3 "$here/vnc/xwd-flip.py" flip "$tmp/mnt/frame" $big $small 80 0.03 &
flipper=$!
pids+=($flipper)
clients=()
for i in 1 2 3 4; do
	timeout "$patience" /usr/bin/python3 "$here/vnc/slow-client.py" 127.0.0.1 "$port" 1 >"$tmp/client$i.log" 2>&1 &
	clients+=($!)
	pids+=($!)
done
for i in 1 2 3 4; do
	st=0
	wait "${clients[$((i - 1))]}" || st=$?
	[ $st = 124 ] && fail "slow client $i: no whole frame in $patience s: $(tail -n 1 "$tmp/client$i.log")"
	[ $st = 0 ] || fail "slow client $i: $(tail -n 1 "$tmp/client$i.log")"
	echo "client $i: $(tail -n 1 "$tmp/client$i.log")"
done
wait "$flipper" || fail "the producer failed"
kill -0 "$server" 2>/dev/null || fail "cohmem-vnc died"

# The file rests at $big: a new client sees its picture (the server may be passes behind).
end=$((SECONDS + patience))
for (( ; ; )); do
	timeout "$(left $end)" "$build/tests/vnc-capture" 127.0.0.1 "$port" "$tmp/client.png" >"$tmp/capture.log" 2>&1 ||
		fail "vnc-capture: $(cat "$tmp/capture.log")"
	out=$("$build/tests/picture-compare" "$tmp/client.png" "$tmp/mnt/frame") && break
	[ "$SECONDS" -lt "$end" ] || fail "after the flipping, the client's picture and the file's: $out"
	sleep 0.5
done
echo "after the flipping: the client's picture and the file's: $out"

# How many of the 80 flips the server saw depends on when it ran: a loaded machine may run it
# rarely enough to see few, or an even number between each of its passes. Then the header is
# rewritten once more each way, and the server must follow each (it serves $big now: the
# picture above).
count_resizes() {
	server_counts
	resizes=$(sed -n 's/.* \([0-9]*\) resizes.*/\1/p' <<<"$counts")
}
count_resizes
if [ "$resizes" -lt 2 ]; then
	echo "the server followed $resizes of the 80 flips: one more each way, each followed"
	for to in "$big $small" "$small $big"; do
		seen=$resizes
		# shellcheck disable=SC2086 # the two sizes, the second one written
		/usr/bin/python3 "$here/vnc/xwd-flip.py" flip "$tmp/mnt/frame" $to 1 0
		resized_again() {
			count_resizes
			[ "$resizes" -gt "$seen" ]
		}
		patiently resized_again || fail "cohmem-vnc did not follow the header rewritten (${to#* }) in $patience s"
	done
fi

kill -TERM "$server"
wait "$server" || fail "cohmem-vnc did not exit 0"
tail -n 1 "$tmp/cohmem-vnc.log"
resizes=$(tail -n 1 "$tmp/cohmem-vnc.log" | sed -n 's/.* \([0-9]*\) resizes.*/\1/p')
[ "${resizes:-0}" -ge 2 ] || fail "cohmem-vnc followed ${resizes:-no} resizes"
echo "vnc-resize-test: passed"
