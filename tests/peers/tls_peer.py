# python3's ssl module as an independent TLS peer for sockit's tls:// endpoints.
#   tls_peer.py client PORT HOST CAFILE [nosend]
#                                         verify with CAFILE (or "insecure"), send a line
#                                         (unless nosend), print every line that comes back
#                                         until EOF
#   tls_peer.py server CERT KEY           print the port, serve one client: read a line,
#                                         answer "python got: LINE", close
import socket, ssl, sys

mode = sys.argv[1]
if mode == 'client':
    port, host, cafile = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if cafile == 'insecure':
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(('127.0.0.1', port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            print('version', s.version(), flush=True)
            if sys.argv[5:] != ['nosend']:
                s.sendall('hello over tls, 你好\n'.encode())
            buf = b''
            while True:
                data = s.recv(65536)
                if not data:
                    break
                buf += data
                while b'\n' in buf:
                    line, buf = buf.split(b'\n', 1)
                    print(line.decode(), flush=True)
            if buf:
                print(buf.decode(), flush=True)
elif mode == 'server':
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    sk = socket.socket()
    sk.bind(('127.0.0.1', 0))
    sk.listen()
    print(sk.getsockname()[1], flush=True)
    conn, _ = sk.accept()
    with ctx.wrap_socket(conn, server_side=True) as s:
        line = b''
        while not line.endswith(b'\n'):
            data = s.recv(1024)
            if not data:
                break
            line += data
        s.sendall(b'python got: ' + line)
        # Take the client's close_notify before closing, so the close is not a reset.
        try:
            while s.recv(1024):
                pass
        except (ssl.SSLError, OSError):
            pass
