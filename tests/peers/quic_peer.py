"""aioquic as an independent QUIC peer for sockit's quic:// endpoints.

    quic_peer.py server CERT KEY ALPN    print the port, then echo every stream back (each
                                         chunk as it arrives, the end with the end); with
                                         ALPN the only protocol accepted
    quic_peer.py reset CERT KEY ALPN     as server, but reset every stream at its first bytes
    quic_peer.py client PORT ALPN FILE   send FILE on one stream, end it, read the answer to
                                         its end; print "got N SHA256" (or the error), exit 0
    quic_peer.py client PORT ALPN FILE keylog=PATH
                                         the same, writing the TLS secrets to PATH
"""

import asyncio
import hashlib
import socket
import ssl
import sys

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamDataReceived


class Echo(QuicConnectionProtocol):
    def quic_event_received(self, event):
        if isinstance(event, StreamDataReceived):
            self._quic.send_stream_data(event.stream_id, event.data, event.end_stream)
            self.transmit()


class Reset(QuicConnectionProtocol):
    def quic_event_received(self, event):
        if isinstance(event, StreamDataReceived):
            self._quic.reset_stream(event.stream_id, 7)
            self.transmit()


async def server(cert, key, alpn, protocol=Echo):
    config = QuicConfiguration(is_client=False, alpn_protocols=[alpn])
    config.load_cert_chain(cert, key)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    await serve("127.0.0.1", port, configuration=config, create_protocol=protocol)
    print(port, flush=True)
    await asyncio.Event().wait()


async def client(port, alpn, path, opts):
    config = QuicConfiguration(is_client=True, alpn_protocols=[alpn])
    config.verify_mode = ssl.CERT_NONE
    if "keylog" in opts:
        config.secrets_log_file = open(opts["keylog"], "a")
    data = open(path, "rb").read()
    try:
        async with connect("127.0.0.1", port, configuration=config) as conn:
            reader, writer = await conn.create_stream()
            writer.write(data)
            writer.write_eof()
            got = await asyncio.wait_for(reader.read(), 20)
            print("got", len(got), hashlib.sha256(got).hexdigest(), flush=True)
    except Exception as e:  # the test reads the line, whatever it is
        print("error", type(e).__name__, e, flush=True)


def main():
    mode = sys.argv[1]
    if mode in ("server", "reset"):
        protocol = Echo if mode == "server" else Reset
        asyncio.run(server(sys.argv[2], sys.argv[3], sys.argv[4], protocol))
    else:
        opts = dict(a.split("=", 1) for a in sys.argv[5:])
        asyncio.run(client(int(sys.argv[2]), sys.argv[3], sys.argv[4], opts))


if __name__ == "__main__":
    main()
