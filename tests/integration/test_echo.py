"""Echo of text and binary messages, and the max_message_size limit."""

import asyncio
import os
import random
import socket
import string
import struct

import pytest
import websockets

import wsutil
from wsutil import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, run, t, ws_connect

DEFAULT_MAX = 1048576
SIZES = [0, 1, 125, 126, 65535, 65536]
CASES = ([(None, n) for n in SIZES + [DEFAULT_MAX]]
         + [(100000, n) for n in SIZES + [100000]])


_LETTERS = (string.ascii_letters + string.digits + " .,;:!?").encode()
TEXT_TABLE = bytes(_LETTERS[i % len(_LETTERS)] for i in range(256))


def server_args(max_message):
    return [] if max_message is None else ["--max-message", max_message]


def payload(kind, n, seed):
    raw = random.Random(seed).randbytes(n)
    if kind == "text":
        return raw.translate(TEXT_TABLE).decode("ascii")
    return raw


@pytest.mark.parametrize("kind", ["text", "binary"])
@pytest.mark.parametrize("max_message,size", CASES,
                         ids=["max%s-%d" % (m or "default", n) for m, n in CASES])
def test_echo_sizes(server, kind, max_message, size):
    srv = server(*server_args(max_message))
    data = payload(kind, size, seed=size)

    async def main():
        async with ws_connect(srv.port) as ws:
            await ws.send(data)
            got = await asyncio.wait_for(ws.recv(), t(10))
            assert type(got) is type(data)
            assert len(got) == len(data)
            assert got == data
        assert ws.close_code == 1000

    run(main())
    srv.expect(r"^CLOSE \d+ code=1000 cause=clean remote=1 reason=$")
    assert srv.count(r"^SEND ERROR") == 0


def test_echo_raw_sizes_and_length_encodings(server):
    """Raw frames: 7-bit, 16-bit and 64-bit lengths, echoed with minimal
    length encodings (checked by read_frame) and identical bytes."""
    srv = server()
    c, _ = wsutil.handshake(srv.port)
    try:
        for n in [0, 1, 125, 126, 127, 65535, 65536, 70000]:
            data = os.urandom(n)
            c.send_frame(OP_BINARY, data)
            assert c.read_frame(10) == (True, OP_BINARY, data), n
        c.send_frame(OP_CLOSE, wsutil.close_payload(1000))
        assert c.read_frame()[1] == OP_CLOSE
    finally:
        c.close()
    srv.expect(r"^CLOSE \d+ code=1000 cause=clean remote=1 reason=$")


def test_echo_utf8_text(server):
    srv = server()
    text = "h\u00e9llo w\u00f6rld \u20ac \U0001d11e \u4e2d\u6587 " * 100

    async def main():
        async with ws_connect(srv.port) as ws:
            await ws.send(text)
            assert await asyncio.wait_for(ws.recv(), t(5)) == text

    run(main())


def test_echo_fragmented_with_interleaved_ping(server):
    """A text message in 3 fragments with a ping between them: the pong comes
    first (control frames may interleave) and the message is echoed whole."""
    srv = server()
    c, _ = wsutil.handshake(srv.port)
    try:
        c.send_frame(OP_TEXT, b"frag", fin=False)
        c.send_frame(OP_CONT, b"men", fin=False)
        c.send_frame(OP_PING, b"mid")
        c.send_frame(OP_CONT, b"ted", fin=True)
        assert c.read_frame() == (True, OP_PONG, b"mid")
        assert c.read_message() == (OP_TEXT, b"fragmented")
        # A UTF-8 sequence split across two fragments is still valid.
        euro = "\u20ac".encode()
        c.send_frame(OP_TEXT, b"x" + euro[:1], fin=False)
        c.send_frame(OP_CONT, euro[1:] + b"y", fin=True)
        assert c.read_message() == (OP_TEXT, b"x" + euro + b"y")
    finally:
        c.close()
    srv.expect(r"^PING \d+ 3$")


# ---- the limit -------------------------------------------------------------

@pytest.mark.parametrize("kind", ["text", "binary"])
@pytest.mark.parametrize("max_message", [None, 100000], ids=["default", "max100000"])
def test_message_one_byte_over_limit(server, kind, max_message):
    srv = server(*server_args(max_message))
    limit = max_message or DEFAULT_MAX

    async def main():
        async with ws_connect(srv.port) as ws:
            # Exactly at the limit: passes.
            ok = payload(kind, limit, seed=1)
            await ws.send(ok)
            assert await asyncio.wait_for(ws.recv(), t(10)) == ok
            # One byte over: the server fails the connection with 1009.
            try:
                await ws.send(payload(kind, limit + 1, seed=2))
            except websockets.ConnectionClosed:
                pass
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), t(10))
            await asyncio.wait_for(ws.wait_closed(), t(10))
            assert ws.close_code == 1009

    run(main())
    srv.expect(r"^CLOSE \d+ code=1009 cause=protocol remote=0 reason=")


@pytest.mark.parametrize("fragmented", [False, True], ids=["single", "fragmented"])
def test_message_limit_raw(server, fragmented):
    """Raw client, limit 1000: 1000 bytes pass, 1001 get close 1009 (also
    when the 1001 bytes come in two fragments of 500 and 501)."""
    srv = server("--max-message", 1000)
    c, _ = wsutil.handshake(srv.port)
    try:
        ok = os.urandom(1000)
        if fragmented:
            c.send_frame(OP_BINARY, ok[:500], fin=False)
            c.send_frame(OP_CONT, ok[500:], fin=True)
        else:
            c.send_frame(OP_BINARY, ok)
        assert c.read_message() == (OP_BINARY, ok)

        big = os.urandom(1001)
        try:
            if fragmented:
                c.send_frame(OP_BINARY, big[:500], fin=False)
                c.send_frame(OP_CONT, big[500:], fin=True)
            else:
                c.send_frame(OP_BINARY, big)
        except (BrokenPipeError, ConnectionResetError):
            pass
        fin, op, data = c.read_frame()
        assert op == OP_CLOSE
        assert wsutil.parse_close(data)[0] == 1009
        # Answer the close; the server then ends the TCP connection.
        try:
            c.send_frame(OP_CLOSE, wsutil.close_payload(1009))
        except (BrokenPipeError, ConnectionResetError):
            pass
        wsutil.wait_for_eof(c.sock, t(3))
    finally:
        c.close()
    srv.expect(r"^CLOSE \d+ code=1009 cause=protocol remote=0 reason=")


def test_message_limit_rejected_from_frame_header(server):
    """A frame header announcing 2^40 bytes is refused at once: the client
    gets close 1009 without sending any payload."""
    srv = server("--max-message", 1000)
    c, _ = wsutil.handshake(srv.port)
    try:
        c.send(struct.pack("!BBQ", 0x82, 0xFF, 1 << 40) + os.urandom(4) + b"abc")
        fin, op, data = c.read_frame(5)
        assert op == OP_CLOSE
        assert wsutil.parse_close(data)[0] == 1009
    except (socket.timeout, EOFError) as e:
        raise AssertionError("no close 1009 for an oversized frame header: %r" % e)
    finally:
        c.close()
    srv.expect(r"^CLOSE \d+ code=1009 cause=protocol remote=0 reason=")
