"""A bare WebSocket server (python's stdlib only) that upgrades one client and reports the
first control frame it sends: `ping` when a ping arrives within 5 s, else `no ping`."""

import base64
import hashlib
import socket
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(f"listening on ws://127.0.0.1:{srv.getsockname()[1]}/", file=sys.stderr, flush=True)
conn, _ = srv.accept()
conn.settimeout(5)
head = b""
while b"\r\n\r\n" not in head:
    head += conn.recv(1)
key = next(l.split(b":", 1)[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key"))
accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
try:
    while True:
        b0, b1 = conn.recv(1)[0], conn.recv(1)[0]
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(conn.recv(2), "big")
        elif n == 127:
            n = int.from_bytes(conn.recv(8), "big")
        masked = n + (4 if b1 & 0x80 else 0)
        while masked > 0:
            masked -= len(conn.recv(masked))
        if b0 & 0x0F == 0x9:
            print("ping", flush=True)
            break
except (socket.timeout, IndexError):
    print("no ping", flush=True)
