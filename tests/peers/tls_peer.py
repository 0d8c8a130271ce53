# python3's ssl module as an independent TLS peer for sockit's tls:// endpoints.
#   tls_peer.py client PORT HOST CAFILE [nosend]
#                                         verify with CAFILE (or "insecure"), send a line
#                                         (unless nosend), print every line that comes back
#                                         until EOF
#   tls_peer.py server CERT KEY [CLIENT_CA]
#                                         print the port, serve one client: read a line,
#                                         answer "python got: LINE", close; with CLIENT_CA the
#                                         client must present a certificate from that CA and
#                                         the answer ends with " from CN"
#   tls_peer.py names CERT KEY PROTO...
#                                         print the port, serve one client with ALPN PROTO...
#                                         and answer "sni=NAME alpn=PROTO" (what it sent), close
# Client options after the positional ones: "nosend", "cert=PEM", "key=PEM" (mutual TLS).
import socket, ssl, sys

mode = sys.argv[1]
if mode == 'client':
    port, host, cafile = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    opts = dict(a.split('=', 1) if '=' in a else (a, True) for a in sys.argv[5:])
    if cafile == 'insecure':
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=cafile)
    if 'cert' in opts:
        ctx.load_cert_chain(opts['cert'], opts['key'])
    with socket.create_connection(('127.0.0.1', port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            print('version', s.version(), flush=True)
            if 'nosend' not in opts:
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
elif mode == 'names':
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    ctx.set_alpn_protocols(sys.argv[4:])
    seen = {}
    ctx.sni_callback = lambda sock, name, _ctx: seen.__setitem__('sni', name)
    sk = socket.socket()
    sk.bind(('127.0.0.1', 0))
    sk.listen()
    print(sk.getsockname()[1], flush=True)
    conn, _ = sk.accept()
    with ctx.wrap_socket(conn, server_side=True) as s:
        s.sendall(f"sni={seen.get('sni')} alpn={s.selected_alpn_protocol()}\n".encode())
        try:
            while s.recv(1024):
                pass
        except (ssl.SSLError, OSError):
            pass
elif mode == 'server':
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    if len(sys.argv) > 4:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=sys.argv[4])
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
        if len(sys.argv) > 4:
            subject = dict(x[0] for x in s.getpeercert()['subject'])
            line = line.rstrip(b'\n') + b' from ' + subject['commonName'].encode() + b'\n'
        s.sendall(b'python got: ' + line)
        # Take the client's close_notify before closing, so the close is not a reset.
        try:
            while s.recv(1024):
                pass
        except (ssl.SSLError, OSError):
            pass
