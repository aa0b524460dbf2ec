#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Sets the root window's cursor to a SIDExSIDE square (its hot spot in the
middle) and keeps it: an X client that stays connected owns its cursor, as a
program's window does (X refuses XFixesGetCursorImage for a cursor whose
client is gone: xsetroot's). Through libX11 (ctypes): no python3-xlib.

    hold-cursor.py SIDE

Says "defined" once X has it; runs until killed.
"""
import ctypes
import signal
import sys

side = int(sys.argv[1])
x = ctypes.CDLL("libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XOpenDisplay.argtypes = [ctypes.c_char_p]
x.XDefaultRootWindow.restype = ctypes.c_ulong
x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
x.XCreateBitmapFromData.restype = ctypes.c_ulong
x.XCreateBitmapFromData.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint]


class XColor(ctypes.Structure):
    _fields_ = [("pixel", ctypes.c_ulong), ("red", ctypes.c_ushort), ("green", ctypes.c_ushort),
                ("blue", ctypes.c_ushort), ("flags", ctypes.c_char), ("pad", ctypes.c_char)]


x.XCreatePixmapCursor.restype = ctypes.c_ulong
x.XCreatePixmapCursor.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.POINTER(XColor),
                                  ctypes.POINTER(XColor), ctypes.c_uint, ctypes.c_uint]
x.XDefineCursor.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
d = x.XOpenDisplay(None)
if not d:
    sys.exit("hold-cursor: no display")
root = x.XDefaultRootWindow(d)
row = (side + 7) // 8
source = x.XCreateBitmapFromData(d, root, b"\x55" * (row * side), side, side)
mask = x.XCreateBitmapFromData(d, root, b"\xff" * (row * side), side, side)
black, white = XColor(0, 0, 0, 0), XColor(0, 0xffff, 0xffff, 0xffff)
cursor = x.XCreatePixmapCursor(d, source, mask, ctypes.byref(black), ctypes.byref(white), side // 2, side // 2)
x.XDefineCursor(d, root, cursor)
x.XSync(d, 0)
print("defined", flush=True)
signal.pause()
