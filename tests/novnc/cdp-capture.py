#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Drive a headless Chromium over the DevTools protocol: open URL, and write
the PNG that the page's window.frame() returns to OUT, each time the line
"capture" arrives on stdin (answering "captured WxH" on stdout); stop at EOF.

    cdp-capture.py DEVTOOLS_PORT URL OUT

Python's standard library only: the WebSocket client (RFC 6455, text
frames, no extensions) is the few lines below; websockify's own client
masks with bytes + int and fails in Python 3.
"""
import base64
import json
import os
import socket
import struct
import sys
import time
import urllib.parse
import urllib.request


class WebSocket:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                sys.exit("cdp-capture: the DevTools socket closed during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            sys.exit(f"cdp-capture: no WebSocket: {head.decode(errors='replace')}")

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                sys.exit("cdp-capture: the DevTools socket closed")
            data += chunk
        return data

    def send_text(self, text):
        payload, mask = text.encode(), os.urandom(4)
        n = len(payload)
        head = struct.pack("!B", 0x81)  # FIN, text
        if n < 126:
            head += struct.pack("!B", 0x80 | n)
        elif n < 1 << 16:
            head += struct.pack("!BH", 0x80 | 126, n)
        else:
            head += struct.pack("!BQ", 0x80 | 127, n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv_text(self):
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._exact(8))[0]
            payload = self._exact(n)  # a server does not mask
            if b0 & 0x0F in (0x9, 0xA):  # ping, pong: not part of a message
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()


class DevTools:
    def __init__(self, url):
        self.ws = WebSocket(url)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send_text(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv_text())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]


def page_target(port):
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
                pages = [t for t in json.load(r) if t["type"] == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("cdp-capture: no page in Chromium")


def main():
    port, url, out = sys.argv[1], sys.argv[2], sys.argv[3]
    dt = DevTools(page_target(port))
    dt.call("Page.enable")
    dt.call("Page.navigate", url=url)
    for line in sys.stdin:
        if line.strip() != "capture":
            continue
        for _ in range(100):  # the module may still be loading
            r = dt.call("Runtime.evaluate", expression="window.frame ? window.frame() : null",
                        awaitPromise=True, returnByValue=True, timeout=20000)
            value = r.get("result", {}).get("value")
            if value:
                break
            if "exceptionDetails" in r:
                sys.exit(f"cdp-capture: {r['exceptionDetails'].get('text')} "
                         f"{r['exceptionDetails'].get('exception', {}).get('description', '')}")
            time.sleep(0.1)
        else:
            sys.exit("cdp-capture: the page never had a frame")
        size, data = value.split(" ", 1)
        with open(out, "wb") as f:
            f.write(base64.b64decode(data.split(",", 1)[1]))
        print(f"captured {size}", flush=True)


if __name__ == "__main__":
    main()
