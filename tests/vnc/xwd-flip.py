#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A producer that keeps changing its frame's size: an XWD file (true
colour, 32 bits a pixel) of noise, whose header is rewritten in place
between two sizes. The file is as long as the larger frame; the pixels
stay where they are and are read with the other width.

    xwd-flip.py create FILE WxH WxH
    xwd-flip.py flip FILE WxH WxH FLIPS INTERVAL_S

create writes FILE at the first size; flip rewrites its header FLIPS
times (second size, first size, ...) every INTERVAL_S seconds with
pwrite(2): FLIPS even leaves it at the first size. Standard library only.
"""
import os
import struct
import sys
import time

NAME = b"cohmem-test\0"


def header(w, h):
    fields = [100 + len(NAME), 7, 2, 24, w, h, 0, 0, 32, 0, 32, 32, w * 4, 4,
              0xFF0000, 0xFF00, 0xFF, 8, 256, 0, w, h, 0, 0, 0]
    return struct.pack(">25I", *fields) + NAME


def main():
    what, path = sys.argv[1], sys.argv[2]
    sizes = [tuple(int(v) for v in a.split("x")) for a in sys.argv[3:5]]
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if what == "create":
        frame, at = max(w * h * 4 for w, h in sizes), len(header(*sizes[0]))
        os.pwrite(fd, header(*sizes[0]), 0)
        while frame > 0:
            n = min(frame, 1 << 20)
            os.pwrite(fd, os.urandom(n), at)
            at, frame = at + n, frame - n
    else:
        for i in range(int(sys.argv[5])):
            time.sleep(float(sys.argv[6]))
            os.pwrite(fd, header(*sizes[(i + 1) % 2]), 0)
    os.close(fd)


if __name__ == "__main__":
    main()
