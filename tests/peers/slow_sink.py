"""A slow reader, for drain tests: listens on 127.0.0.1 port 0, prints `listening on PORT`,
takes one connection, reads 256 KiB every 20 ms (about 12 MiB/s) and prints the total at EOF."""
import socket
import time

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(f"listening on {srv.getsockname()[1]}", flush=True)
conn, _ = srv.accept()
conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
total = 0
while True:
    data = conn.recv(262144)
    if not data:
        break
    total += len(data)
    time.sleep(0.02)
print(total, flush=True)
