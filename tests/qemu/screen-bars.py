#!/usr/bin/env python3
"""Whether a QEMU screendump (binary PPM) shows the eight colour bars that
tests/pfn-scan.c draws into a DRM dumb buffer: red, green, blue, white, black,
yellow, cyan and magenta, left to right, each 1/8 of the width.

    screen-bars.py SCREEN.ppm "PFN-SCAN-DRM-READY WIDTH HEIGHT"

Exit 0 when every bar's middle pixel has its colour, else 1 with what was seen.
"""
import sys

BARS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255),
        (0, 0, 0), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    fields, at = [], 0
    while len(fields) < 4:
        while data[at:at + 1].isspace():
            at += 1
        if data[at:at + 1] == b"#":
            at = data.index(b"\n", at) + 1
            continue
        end = at
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[at:end])
        at = end
    if fields[0] != b"P6" or int(fields[3]) != 255:
        raise ValueError("not an 8-bit binary PPM")
    return int(fields[1]), int(fields[2]), data[at + 1:]


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip())
        return 2
    ready = sys.argv[2].split()
    if len(ready) != 3:
        print("screen-bars: the guest never said its picture was up")
        return 1
    try:
        width, height, pixels = read_ppm(sys.argv[1])
    except (OSError, ValueError) as e:
        print(f"screen-bars: no screendump: {e}")
        return 1
    want_w, want_h = int(ready[1]), int(ready[2])
    if (width, height) != (want_w, want_h):
        print(f"screen-bars: the display is {width}x{height}, the guest's mode {want_w}x{want_h}")
        return 1
    wrong = 0
    for i, colour in enumerate(BARS):
        x, y = (2 * i + 1) * width // 16, height // 2
        at = 3 * (y * width + x)
        seen = tuple(pixels[at:at + 3])
        if seen != colour:
            print(f"screen-bars: bar {i} at ({x}, {y}) is {seen}, not {colour}")
            wrong += 1
    if not wrong:
        print(f"screen-bars: the display shows the guest's 8 bars ({width}x{height})")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
