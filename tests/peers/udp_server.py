# The tutorial's udp_server.py; port 0, printed first.
import socket
udp_sk = socket.socket(type=socket.SOCK_DGRAM)
udp_sk.bind(('127.0.0.1', 0))
print(udp_sk.getsockname()[1], flush=True)
msg, addr = udp_sk.recvfrom(1024)
print(msg, flush=True)
udp_sk.sendto(b'hi', addr)
udp_sk.close()
