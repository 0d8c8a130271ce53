# One request to a service: PROTO (tcp|udp) PORT PAYLOAD [MAXBYTES]. Over TCP it sends the
# payload, half-closes, and reads to the end (or MAXBYTES); over UDP it sends one datagram
# and reads one. Prints the answer's length and its bytes as hex.
import socket, sys
proto, port, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
limit = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 20
if proto == 'tcp':
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    if payload:
        s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    data = b''
    while len(data) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    data = data[:limit]
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    s.sendto(payload, ('127.0.0.1', port))
    data, _ = s.recvfrom(65536)
print(len(data), data.hex(), flush=True)
