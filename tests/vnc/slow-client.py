#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A VNC client that stalls: it asks for the whole frame in Raw, then stops
reading for PAUSE seconds with a 4 KiB receive buffer, so that the server's
send blocks in the middle of the update. Then it reads the RFB stream
strictly: every rectangle must lie inside the frame the client was last
told of, a DesktopSize makes it ask for the new frame, and it ends once
one update brought a whole frame in Raw.

    slow-client.py HOST PORT PAUSE

Exit 0 with "a whole WxH frame after N resizes", 1 with the reason. It
waits for the server as long as the connection lasts: the caller bounds it
(timeout(1)). Standard library only (Debian's /usr/bin/python3).
"""
import socket
import struct
import sys
import time

RAW, DESKTOP_SIZE = 0, -223


def main():
    host, port, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))

    def recv(n):
        b = bytearray()
        while len(b) < n:
            c = s.recv(min(n - len(b), 1 << 20))
            if not c:
                sys.exit("slow client: the server closed the connection")
            b += c
        return bytes(b)

    def request(w, h):
        s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))

    if not recv(12).startswith(b"RFB 003."):
        sys.exit("slow client: not an RFB server")
    s.sendall(b"RFB 003.008\n")
    types = recv(recv(1)[0])
    if 1 not in types:
        sys.exit("slow client: the server wants authentication")
    s.sendall(b"\x01")
    if struct.unpack(">I", recv(4))[0] != 0:
        sys.exit("slow client: security handshake failed")
    s.sendall(b"\x01")  # shared
    w, h = struct.unpack(">HH", recv(4))
    recv(16)  # the server's pixel format: ours is set below
    recv(struct.unpack(">I", recv(4))[0])
    # 32 bits a pixel, little-endian true colour, 8 bits a channel.
    s.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
    s.sendall(struct.pack(">BxHii", 2, 2, RAW, DESKTOP_SIZE))
    request(w, h)
    time.sleep(pause)

    resizes = 0
    while True:
        kind = recv(1)[0]
        if kind == 0:  # FramebufferUpdate
            (n,) = struct.unpack(">xH", recv(3))
            pixels = 0
            for _ in range(n):
                x, y, rw, rh, enc = struct.unpack(">HHHHi", recv(12))
                if enc == DESKTOP_SIZE:
                    w, h, resizes = rw, rh, resizes + 1
                    continue
                if enc != RAW:
                    sys.exit(f"slow client: encoding {enc}, asked for Raw only")
                if x + rw > w or y + rh > h:
                    sys.exit(f"slow client: a {rw}x{rh} rectangle at {x},{y} outside the {w}x{h} frame")
                recv(rw * rh * 4)
                pixels += rw * rh
            if pixels >= w * h:
                print(f"slow client: a whole {w}x{h} frame after {resizes} resizes")
                return 0
            request(w, h)
        elif kind == 1:  # SetColourMapEntries
            _, count = struct.unpack(">xHH", recv(5))
            recv(count * 6)
        elif kind == 2:  # Bell
            pass
        elif kind == 3:  # ServerCutText
            recv(struct.unpack(">xxxI", recv(7))[0])
        else:
            sys.exit(f"slow client: server message {kind}")


if __name__ == "__main__":
    sys.exit(main())
