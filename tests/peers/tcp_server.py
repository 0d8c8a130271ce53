# The tutorial's tcp_server.py; only the port comes from argv (first line printed: the port).
import socket, sys
from socket import SOL_SOCKET, SO_REUSEADDR
sk = socket.socket()
sk.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
sk.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 0))
sk.listen()
print(sk.getsockname()[1], flush=True)
conn, addr = sk.accept()
ret = conn.recv(1024)
print(ret, flush=True)
conn.send(b'hi')
conn.close()
sk.close()
