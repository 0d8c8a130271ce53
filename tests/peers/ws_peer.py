"""A WebSocket peer built on python's `websockets`, for sockit's tests.

    ws_peer.py client URL CHECK   runs one check against a sockit server, prints `ok ...`
    ws_peer.py server MODE        serves on a free port, prints `listening on ws://...`

Client checks: `echo` (text, a 2 MiB binary, a fragmented message, ping/pong under a short
ping timeout, a clean close), `toolong` (expects close code 1009), `fragtoolong` (20 MB in
20,000 fragments, expects the Close 1009 to arrive), `badutf8` (expects 1007),
`relay` (binary subprotocol offered, 3 MiB binary through a relay to a TCP echo).
Server modes: `echo` (messages back as they came, pings every 0.2 s with a 0.5 s timeout)
and `hello` (sends `hello`, then echoes).
"""

import asyncio
import os
import sys

import websockets
from websockets.frames import Frame, Opcode


async def check_echo(url):
    async with websockets.connect(url, max_size=None, ping_interval=0.2, ping_timeout=0.5) as ws:
        await ws.send("text line")
        assert await ws.recv() == "text line"
        data = os.urandom(2 * 1024 * 1024)
        await ws.send(data)
        got = await ws.recv()
        assert isinstance(got, bytes) and got == data, "binary"

        async def parts():
            for p in ("frag", "ment", "ed"):
                yield p

        await ws.send(parts())
        assert await ws.recv() == "fragmented"
        pong = await ws.ping(b"p")
        await asyncio.wait_for(pong, 2)
        # Idle longer than the ping timeout: the server must answer our pings.
        await asyncio.sleep(1.2)
        await ws.send("still here")
        assert await ws.recv() == "still here"
    print("ok echo", ws.close_code, flush=True)


async def check_close_code(url, expect, send):
    async with websockets.connect(url, max_size=None) as ws:
        await send(ws)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
            assert code == expect, f"closed with {code}, wanted {expect}"
    print("ok close", expect, flush=True)


async def too_long(ws):
    await ws.send("x" * 100)


async def fragments_too_long(ws):
    # 20 MB in 20,000 fragments: over the server's 16 MiB, refused while it still comes.
    async def parts():
        for _ in range(20000):
            yield b"x" * 1000

    try:
        await ws.send(parts())
    except websockets.ConnectionClosed:
        pass


async def bad_utf8(ws):
    ws.protocol.send_frame(Frame(Opcode.TEXT, b"caf\xc3"))
    ws.send_data()


async def check_relay(url):
    async with websockets.connect(url, subprotocols=["binary"], max_size=None) as ws:
        assert ws.subprotocol == "binary", ws.subprotocol
        data = os.urandom(3 * 1024 * 1024)
        await ws.send(data)
        got = b""
        while len(got) < len(data):
            m = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(m, bytes)
            got += m
        assert got == data
    print("ok relay", flush=True)


async def serve(mode):
    async def handler(ws):
        if mode == "hello":
            await ws.send("hello")
        async for m in ws:
            await ws.send(m)

    async with websockets.serve(handler, "127.0.0.1", 0, ping_interval=0.2, ping_timeout=0.5, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}/", file=sys.stderr, flush=True)
        await asyncio.sleep(60)


def main():
    role = sys.argv[1]
    if role == "server":
        asyncio.run(serve(sys.argv[2]))
        return
    url, check = sys.argv[2], sys.argv[3]
    if check == "echo":
        asyncio.run(check_echo(url))
    elif check == "toolong":
        asyncio.run(check_close_code(url, 1009, too_long))
    elif check == "fragtoolong":
        asyncio.run(check_close_code(url, 1009, fragments_too_long))
    elif check == "badutf8":
        asyncio.run(check_close_code(url, 1007, bad_utf8))
    elif check == "relay":
        asyncio.run(check_relay(url))
    else:
        sys.exit(f"unknown check {check}")


if __name__ == "__main__":
    main()
