#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Drive a page in a headless Chromium over the DevTools protocol with real
browser input: keys through Input.dispatchKeyEvent, the mouse through
Input.dispatchMouseEvent, as a user at a US keyboard would. Opens URL, then
reads one command a line on stdin and answers each with one line on stdout;
stops at EOF.

    cdp-drive.py DEVTOOLS_PORT URL

    eval JS        the value of JS (a promise is awaited), as JSON; or "error ..."
    type TEXT      types TEXT (the rest of the line): per character keyDown, char,
                   keyUp, between Shift's keyDown and keyUp for shifted characters
    key NAME       presses and releases one named key (Enter, Tab, Escape, BackSpace)
    move X Y       moves the mouse to page coordinates X, Y
    click X Y      moves there, presses and releases the left button
    wheel X Y DY   turns the wheel there by DY pixels (positive: down)

The DevTools client is cdp-capture.py's, imported (its WebSocket and DevTools).
"""
import importlib.util
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
_spec = importlib.util.spec_from_file_location(
    "cdp_capture", os.path.join(os.path.dirname(os.path.abspath(__file__)), "cdp-capture.py"))
cdp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cdp)

SHIFT = 8  # Input.dispatchKeyEvent's modifiers: Alt 1, Ctrl 2, Meta 4, Shift 8

# A US keyboard: character -> (DOM code, Windows virtual key code, shifted).
KEYS = {" ": ("Space", 0x20, False)}
for c in "abcdefghijklmnopqrstuvwxyz":
    KEYS[c] = ("Key" + c.upper(), ord(c.upper()), False)
    KEYS[c.upper()] = ("Key" + c.upper(), ord(c.upper()), True)
for plain, shifted in zip("1234567890", "!@#$%^&*()"):
    KEYS[plain] = ("Digit" + plain, ord(plain), False)
    KEYS[shifted] = ("Digit" + plain, ord(plain), True)
for code, vk, plain, shifted in (("Minus", 0xBD, "-", "_"), ("Equal", 0xBB, "=", "+"),
                                  ("BracketLeft", 0xDB, "[", "{"), ("BracketRight", 0xDD, "]", "}"),
                                  ("Backslash", 0xDC, "\\", "|"), ("Semicolon", 0xBA, ";", ":"),
                                  ("Quote", 0xDE, "'", '"'), ("Comma", 0xBC, ",", "<"),
                                  ("Period", 0xBE, ".", ">"), ("Slash", 0xBF, "/", "?"),
                                  ("Backquote", 0xC0, "`", "~")):
    KEYS[plain] = (code, vk, False)
    KEYS[shifted] = (code, vk, True)

# Named keys: name -> (DOM key, DOM code, virtual key code, the text it types).
NAMED = {"Enter": ("Enter", "Enter", 13, "\r"), "Tab": ("Tab", "Tab", 9, "\t"),
         "Escape": ("Escape", "Escape", 27, ""), "BackSpace": ("Backspace", "Backspace", 8, "")}


class Driver:
    def __init__(self, dt):
        self.dt = dt

    def key_event(self, kind, key, code, vk, modifiers, location=0, text=""):
        params = {"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": vk,
                  "nativeVirtualKeyCode": vk, "modifiers": modifiers, "location": location}
        if text:
            params.update(text=text, unmodifiedText=text)
        self.dt.call("Input.dispatchKeyEvent", **params)

    def shift(self, down):
        # The left Shift key (location 1): noVNC sends Shift_L's keysym for it.
        self.key_event("rawKeyDown" if down else "keyUp", "Shift", "ShiftLeft", 0x10,
                       SHIFT if down else 0, location=1)

    def press(self, key, code, vk, text, modifiers=0):
        # What a keyboard does in Chromium: the key's keydown (rawKeyDown: noVNC reads key
        # and code there), the character it types (char: keypress and input), its keyup.
        self.key_event("rawKeyDown", key, code, vk, modifiers)
        if text:
            self.key_event("char", key, code, vk, modifiers, text=text)
        self.key_event("keyUp", key, code, vk, modifiers)

    def type(self, text):
        for c in text:
            if c not in KEYS:
                raise ValueError(f"no key types {c!r} on a US keyboard")
            code, vk, shifted = KEYS[c]
            if shifted:
                self.shift(True)
            self.press(c, code, vk, c, SHIFT if shifted else 0)
            if shifted:
                self.shift(False)
        return f"typed {len(text)}"

    def key(self, name):
        key, code, vk, text = NAMED[name]
        self.press(key, code, vk, text)
        return f"pressed {name}"

    def mouse(self, kind, x, y, **more):
        self.dt.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, **more)

    def move(self, x, y):
        self.mouse("mouseMoved", int(x), int(y))
        return "moved"

    def click(self, x, y):
        x, y = int(x), int(y)
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y, button="left", buttons=1, clickCount=1)
        self.mouse("mouseReleased", x, y, button="left", buttons=0, clickCount=1)
        return "clicked"

    def wheel(self, x, y, dy):
        self.mouse("mouseWheel", int(x), int(y), deltaX=0, deltaY=int(dy))
        return "wheeled"

    def eval(self, js):
        r = self.dt.call("Runtime.evaluate", expression=js, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            return f"error {d.get('text')} {d.get('exception', {}).get('description', '')}".replace("\n", " ")
        return json.dumps(r.get("result", {}).get("value"))


def main():
    port, url = sys.argv[1], sys.argv[2]
    dt = cdp.DevTools(cdp.page_target(port))
    dt.call("Page.enable")
    # The page at 1:1 whatever the window, and focused although no window is shown:
    # keys go to the focused canvas.
    dt.call("Emulation.setDeviceMetricsOverride", width=1024, height=768, deviceScaleFactor=1, mobile=False)
    dt.call("Emulation.setFocusEmulationEnabled", enabled=True)
    dt.call("Page.navigate", url=url)
    driver = Driver(dt)
    for line in sys.stdin:
        command, _, rest = line.rstrip("\n").partition(" ")
        if command == "eval":
            answer = driver.eval(rest)
        elif command == "type":
            answer = driver.type(rest)
        elif command in ("key", "move", "click", "wheel"):
            answer = getattr(driver, command)(*rest.split())
        else:
            sys.exit(f"cdp-drive: unknown command {line!r}")
        print(answer, flush=True)


if __name__ == "__main__":
    main()
