"""A raw SOCKS5 UDP ASSOCIATE client (RFC 1928 section 7), for tests.

Usage: socks_udp.py PROXY_PORT TARGET_PORT
Asks 127.0.0.1:PROXY_PORT for an association, sends b'ping' to 127.0.0.1:TARGET_PORT through
it, prints the answer's source and data, then checks that a stranger's datagram to the relay
is not relayed, closes the TCP connection and checks that the association is gone.
"""
import socket
import struct
import sys

proxy_port, target_port = int(sys.argv[1]), int(sys.argv[2])
tcp = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
tcp.sendall(b"\x05\x01\x00")
assert tcp.recv(2) == b"\x05\x00"
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
udp.settimeout(10)
# Name our own address and port, as a careful client does.
tcp.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", udp.getsockname()[1]))
reply = tcp.recv(10)
assert reply[:2] == b"\x05\x00", reply
relay = (socket.inet_ntoa(reply[4:8]), struct.unpack(">H", reply[8:10])[0])
header = b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", target_port)
udp.sendto(header + b"ping", relay)
data, _ = udp.recvfrom(65535)
src = (socket.inet_ntoa(data[4:8]), struct.unpack(">H", data[8:10])[0])
print(f"reply from {src[0]}:{src[1]} {data[10:].decode()}", flush=True)
# A stranger writing to the relay is not relayed: the target never answers it.
stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
stranger.bind(("127.0.0.1", 0))
stranger.settimeout(0.5)
stranger.sendto(header + b"stranger", relay)
try:
    stranger.recvfrom(65535)
    print("stranger relayed", flush=True)
except socket.timeout:
    print("stranger dropped", flush=True)
# The association ends with its TCP connection.
tcp.close()
udp.settimeout(0.5)
for _ in range(20):
    udp.sendto(header + b"after", relay)
    try:
        udp.recvfrom(65535)
    except (socket.timeout, ConnectionRefusedError):
        print("association closed", flush=True)
        break
