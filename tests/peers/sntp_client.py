# A minimal SNTP client (RFC 4330): prints "mode stratum origin_ok offset_seconds".
import socket, struct, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
now = time.time() + 2208988800
tx = (int(now) << 32) | int((now % 1) * (1 << 32))
req = bytes([(4 << 3) | 3]) + bytes(39) + struct.pack('!Q', tx)
s.sendto(req, ('127.0.0.1', port))
data, _ = s.recvfrom(1024)
mode = data[0] & 7
stratum = data[1]
origin = struct.unpack('!Q', data[24:32])[0]
transmit = struct.unpack('!Q', data[40:48])[0] / (1 << 32)
print(mode, stratum, origin == tx, round(transmit - (time.time() + 2208988800), 3), flush=True)
