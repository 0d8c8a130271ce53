# A backend that answers only after the client's EOF: proves a half-close went through.
# Prints its port first, serves one client: reads to EOF, then sends "got N bytes".
import socket
sk = socket.socket()
sk.bind(('127.0.0.1', 0))
sk.listen()
print(sk.getsockname()[1], flush=True)
conn, _ = sk.accept()
n = 0
while True:
    data = conn.recv(65536)
    if not data:
        break
    n += len(data)
conn.sendall(b'got %d bytes' % n)
conn.close()
