# The tutorial's tcp_client.py; the port comes from argv.
import socket, sys
sk = socket.socket()
sk.connect(('127.0.0.1', int(sys.argv[1])))
sk.send(b'hello!')
ret = sk.recv(1024)
print(ret)
sk.close()
