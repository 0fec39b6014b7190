"""Python `websockets` (Debian's 10.x) as the client of examples/echo,
with compression="deflate" and compression=None, against each echo mode
(deflate, takeover, off; see conftest.py)."""

import asyncio
import os
import random

import pytest
import websockets

SLOW = 3 if "thread" in os.environ.get("SANITIZER", "") else 1
SIZES = [0, 1, 125, 126, 127, 1000, 65535, 65536, 100_000, 1 << 20]
COMPRESSION = pytest.mark.parametrize("compression", ["deflate", None], ids=["client-deflate", "client-plain"])


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout * SLOW))


def connect(srv, compression):
    return websockets.connect(srv.url, compression=compression, max_size=2 ** 21,
                              open_timeout=10 * SLOW, close_timeout=10 * SLOW,
                              ping_interval=None)


def negotiated(srv, compression):
    return compression == "deflate" and srv.mode != "off"


def text_of(nbytes, seed):
    """About nbytes of UTF-8 text: words, some multibyte characters."""
    r = random.Random(seed)
    words = ["alpha", "beta", "gamma", "κόσμε", "日本語", "naïve", "😀", "echo", "libwsc"]
    out, n = [], 0
    while n < nbytes:
        w = r.choice(words) + " "
        out.append(w)
        n += len(w.encode())
    s = "".join(out)
    while len(s.encode()) > nbytes:
        s = s[:-1]
    return s


def bytes_of(n, seed, compressible):
    r = random.Random(seed)
    if compressible:
        block = bytes(r.randrange(16) for _ in range(512))
        return (block * (n // 512 + 1))[:n]
    return r.randbytes(n)


@COMPRESSION
def test_negotiation(echo_server, compression):
    async def go():
        async with connect(echo_server, compression) as ws:
            hdr = ws.response_headers.get("Sec-WebSocket-Extensions")
            if negotiated(echo_server, compression):
                assert hdr is not None and hdr.split(";")[0].strip() == "permessage-deflate", hdr
                assert len(ws.extensions) == 1 and ws.extensions[0].name == "permessage-deflate"
                if echo_server.mode == "deflate":
                    # libwsc's default: no context takeover in either direction
                    assert "server_no_context_takeover" in hdr and "client_no_context_takeover" in hdr, hdr
                else:
                    # websockets allows both kinds of takeover, so none is forced
                    assert "no_context_takeover" not in hdr, hdr
            else:
                assert hdr is None, hdr
                assert ws.extensions == []
            await ws.send("negotiated?")
            assert await ws.recv() == "negotiated?"
    run(go())


@COMPRESSION
def test_text_messages(echo_server, compression):
    async def go():
        async with connect(echo_server, compression) as ws:
            for i, n in enumerate(SIZES):
                msg = text_of(n, i)
                await ws.send(msg)
                got = await ws.recv()
                assert isinstance(got, str) and got == msg, f"text of {n} bytes"
    run(go())


@COMPRESSION
def test_binary_messages(echo_server, compression):
    async def go():
        async with connect(echo_server, compression) as ws:
            for i, n in enumerate(SIZES):
                for compressible in (True, False):
                    msg = bytes_of(n, i, compressible)
                    await ws.send(msg)
                    got = await ws.recv()
                    assert isinstance(got, bytes) and got == msg, f"binary of {n} bytes"
    run(go())


@COMPRESSION
def test_fragmented_text(echo_server, compression):
    async def go():
        async with connect(echo_server, compression) as ws:
            for parts in (["κό", "σμε"], ["", "a", "", "b", ""],
                          [text_of(1000, k) for k in range(100)],
                          [text_of(60000, 7), text_of(5, 8), text_of(300000, 9)]):
                await ws.send(parts)  # an iterable: one fragmented message
                assert await ws.recv() == "".join(parts)
    run(go())


@COMPRESSION
def test_fragmented_binary(echo_server, compression):
    async def go():
        async with connect(echo_server, compression) as ws:
            for parts in ([b"\x00", b"\xff"], [b"", b"", b"x"],
                          [bytes_of(4096, k, k % 2 == 0) for k in range(64)],
                          [bytes_of(500000, 1, True), bytes_of(500000, 2, False)]):
                await ws.send(parts)
                assert await ws.recv() == b"".join(parts)
    run(go())


@COMPRESSION
def test_many_pipelined_messages(echo_server, compression):
    async def go():
        async with connect(echo_server, compression) as ws:
            r = random.Random(99)
            msgs = []
            for i in range(500):
                n = r.choice((0, 10, 200, 3000, 20000))
                msgs.append(text_of(n, i) if i % 2 else bytes_of(n, i, i % 3 != 0))
            for m in msgs:
                await ws.send(m)
            for m in msgs:
                assert await ws.recv() == m
    run(go())


@COMPRESSION
def test_ping_and_close(echo_server, compression):
    async def go():
        async with connect(echo_server, compression) as ws:
            pong = await ws.ping(b"compat ping")
            await asyncio.wait_for(pong, 10 * SLOW)
            await ws.send("before close")
            assert await ws.recv() == "before close"
            await ws.close(code=4001, reason="compat bye")
            assert ws.close_code == 4001
    run(go())
