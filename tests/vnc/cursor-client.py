#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A VNC client that says what it is told about the cursor: "cursor WxH"
for each cursor-shape update (0x0: an empty one: draw none), "pos X Y"
for each pointer-position update, "frame" after each framebuffer update.
Raw pixels only, 32 bits; no password.

    cursor-client.py PORT shape|plain

shape: it asks for RichCursor and PointerPos, so it draws the cursor
itself; plain: it does not, so the server's pixels must carry it. Runs
until the connection ends or it is killed.
"""
import socket
import struct
import sys

port, kind = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
buf = b""


def need(n):
    global buf
    while len(buf) < n:
        d = s.recv(1 << 16)
        if not d:
            sys.exit(0)
        buf += d
    r, buf = buf[:n], buf[n:]
    return r


def say(line):
    print(line, flush=True)


need(12)
s.sendall(b"RFB 003.008\n")
types = need(need(1)[0])
if 1 not in types:
    sys.exit(f"cursor-client: the server asks for a password ({list(types)})")
s.sendall(b"\x01")
if need(4) != b"\0\0\0\0":
    sys.exit("cursor-client: refused")
s.sendall(b"\x01")
w, h = struct.unpack(">HH", need(4))
need(16)
need(struct.unpack(">I", need(4))[0])
# 32 bits a pixel, little-endian, red at 16
s.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
encodings = [0, -223] + ([-239, -232] if kind == "shape" else [])
s.sendall(struct.pack(">BxH", 2, len(encodings)) + b"".join(struct.pack(">i", e) for e in encodings))
s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
say(f"connected {w}x{h}")
while True:
    kind_ = need(1)[0]
    if kind_ == 0:
        need(1)
        for _ in range(struct.unpack(">H", need(2))[0]):
            x, y, rw, rh, e = struct.unpack(">HHHHi", need(12))
            if e == 0:
                need(rw * rh * 4)
            elif e == -239:
                need(rw * rh * 4 + (rw + 7) // 8 * rh)
                say(f"cursor {rw}x{rh}")
            elif e == -232:
                say(f"pos {x} {y}")
            elif e == -223:
                w, h = rw, rh
            else:
                sys.exit(f"cursor-client: encoding {e} not asked for")
        say("frame")
        s.sendall(struct.pack(">BBHHHH", 3, 1, 0, 0, w, h))
    elif kind_ == 2:
        pass
    elif kind_ == 3:
        need(3)
        length = struct.unpack(">i", need(4))[0]
        need(abs(length))
    else:
        sys.exit(f"cursor-client: message {kind_}")
