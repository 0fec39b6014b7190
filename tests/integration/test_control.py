"""Ping/pong, the close handshake both ways, disconnects and keepalive."""

import asyncio
import socket
import struct
import time

import pytest
import websockets

import wsutil
from wsutil import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, run, t, ws_connect


# ---- ping / pong -------------------------------------------------------------

def test_client_ping_gets_identical_pong(server):
    srv = server()

    async def main():
        async with ws_connect(srv.port) as ws:
            oid = (await srv.aexpect(r"^OPEN (\d+) ")).group(1)
            # websockets resolves the waiter only for a pong whose payload
            # equals the ping's.
            for data in [b"hello-ping", b"", bytes(range(125))]:
                waiter = await ws.ping(data)
                await asyncio.wait_for(waiter, t(5))
                await srv.aexpect(r"^PING %s %d$" % (oid, len(data)))

    run(main())


def test_client_ping_raw_pong_payload(server):
    srv = server()
    c, _ = wsutil.handshake(srv.port)
    try:
        oid = srv.expect(r"^OPEN (\d+) ").group(1)
        for data in [b"\x00\x01\xfe\xff", b"", b"p" * 125]:
            c.send_frame(OP_PING, data)
            assert c.read_frame() == (True, OP_PONG, data)
            srv.expect(r"^PING %s %d$" % (oid, len(data)))
        # Control frame payloads over 125 bytes are a protocol error (1002).
        c.send_frame(OP_PING, b"p" * 126)
        fin, op, payload = c.read_frame()
        assert op == OP_CLOSE
        assert wsutil.parse_close(payload)[0] == 1002
    finally:
        c.close()
    srv.expect(r"^CLOSE %s code=1002 cause=protocol remote=0 reason=" % oid)


def test_server_ping_reaches_client_and_pong_reported(server):
    """--ping-on-message: the client's automatic pong (websockets answers
    pings by itself) is reported with its payload in hex."""
    srv = server("--ping-on-message")

    async def main():
        async with ws_connect(srv.port) as ws:
            oid = (await srv.aexpect(r"^OPEN (\d+) ")).group(1)
            await ws.send("ping:hello")
            await srv.aexpect(r"^CMD ping %s rc=0$" % oid)
            await srv.aexpect(r"^PONG %s 5 68656c6c6f$" % oid, timeout=5)
            # An empty ping, then an ordinary echo still works.
            await ws.send("ping:")
            await srv.aexpect(r"^CMD ping %s rc=0$" % oid)
            await srv.aexpect(r"^PONG %s 0 $" % oid, timeout=5)
            await ws.send("after")
            assert await asyncio.wait_for(ws.recv(), t(5)) == "after"

    run(main())


def test_server_ping_raw_client_sees_payload(server):
    srv = server("--ping-on-message")
    c, _ = wsutil.handshake(srv.port)
    try:
        oid = srv.expect(r"^OPEN (\d+) ").group(1)
        c.send_frame(OP_TEXT, b"ping:abc\x01")
        assert c.read_frame() == (True, OP_PING, b"abc\x01")
        c.send_frame(OP_PONG, b"abc\x01")
        srv.expect(r"^PONG %s 4 61626301$" % oid)
        # A ping payload over 125 bytes is refused by ws_conn_ping.
        c.send_frame(OP_TEXT, b"ping:" + b"x" * 126)
        srv.expect(r"^CMD ping %s rc=-5$" % oid)
    finally:
        c.close()


# ---- close handshake -------------------------------------------------------

def test_client_close_with_code_and_reason(server):
    srv = server()

    async def main():
        async with ws_connect(srv.port) as ws:
            oid = (await srv.aexpect(r"^OPEN (\d+) ")).group(1)
            await ws.close(code=4000, reason="bye")
            assert ws.close_code == 4000
        return oid

    oid = run(main())
    srv.expect(r"^CLOSE %s code=4000 cause=clean remote=1 reason=bye$" % oid)
    srv.expect_none(r"^CLOSE %s " % oid, 0.3)


def test_client_close_raw_echo(server):
    """Raw: the server answers a close frame with the same code, then ends
    the TCP connection itself."""
    srv = server()
    c, _ = wsutil.handshake(srv.port)
    try:
        c.send_frame(OP_CLOSE, wsutil.close_payload(4000, "bye"))
        fin, op, payload = c.read_frame()
        assert (fin, op) == (True, OP_CLOSE)
        assert wsutil.parse_close(payload)[0] == 4000
        wsutil.wait_for_eof(c.sock, t(3))
    finally:
        c.close()
    srv.expect(r"^CLOSE \d+ code=4000 cause=clean remote=1 reason=bye$")


def test_client_close_without_code(server):
    srv = server()
    c, _ = wsutil.handshake(srv.port)
    try:
        c.send_frame(OP_CLOSE, b"")
        fin, op, payload = c.read_frame()
        assert op == OP_CLOSE
        # RFC 6455 5.5.1: the answer typically echoes the status; there is
        # none to echo, so an empty close (or a plain 1000) is expected.
        assert payload == b"" or wsutil.parse_close(payload)[0] == 1000, payload
        wsutil.wait_for_eof(c.sock, t(3))
    finally:
        c.close()
    srv.expect(r"^CLOSE \d+ code=1005 cause=clean remote=1 reason=$")


def test_server_close_with_code_and_reason(server):
    srv = server("--close-on-message")

    async def main():
        async with ws_connect(srv.port) as ws:
            oid = (await srv.aexpect(r"^OPEN (\d+) ")).group(1)
            await ws.send("close:4001:srv")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), t(5))
            await asyncio.wait_for(ws.wait_closed(), t(5))
            assert ws.close_code == 4001
            assert ws.close_reason == "srv"
        return oid

    oid = run(main())
    srv.expect(r"^CMD close %s rc=0$" % oid)
    srv.expect(r"^CLOSE %s code=4001 cause=clean remote=0 reason=srv$" % oid)


def test_server_close_raw_and_bad_codes(server):
    srv = server("--close-on-message")
    c, _ = wsutil.handshake(srv.port)
    try:
        oid = srv.expect(r"^OPEN (\d+) ").group(1)
        # Codes ws_conn_close must refuse (WS_ECODE = -12), connection stays.
        for code in (999, 1004, 1005, 1006, 1015, 2999, 5000):
            c.send_frame(OP_TEXT, "close:%d:x" % code)
            srv.expect(r"^CMD close %s rc=-12$" % oid)
        # Reason over 123 bytes: WS_ETOOBIG (-5).
        c.send_frame(OP_TEXT, "close:4000:" + "r" * 124)
        srv.expect(r"^CMD close %s rc=-5$" % oid)
        c.send_frame(OP_TEXT, b"still open")
        assert c.read_frame() == (True, OP_TEXT, b"still open")

        c.send_frame(OP_TEXT, "close:4001:srv")
        fin, op, payload = c.read_frame()
        assert op == OP_CLOSE
        assert wsutil.parse_close(payload) == (4001, b"srv")
        srv.expect_none(r"^CLOSE %s " % oid, 0.2)  # waits for our answer
        c.send_frame(OP_CLOSE, wsutil.close_payload(4001, "srv"))
        wsutil.wait_for_eof(c.sock, t(3))
    finally:
        c.close()
    srv.expect(r"^CLOSE %s code=4001 cause=clean remote=0 reason=srv$" % oid)


def test_server_close_unanswered_times_out(server):
    """The peer never answers the server's close: after close_timeout the
    connection is dropped with cause=timeout."""
    srv = server("--close-on-message", "--close-timeout", 300)
    c, _ = wsutil.handshake(srv.port)
    try:
        oid = srv.expect(r"^OPEN (\d+) ").group(1)
        c.send_frame(OP_TEXT, "close:4003:gone")
        start = time.monotonic()
        srv.expect(r"^CLOSE %s code=4003 cause=timeout remote=0 reason=gone$" % oid,
                   timeout=3)
        assert time.monotonic() - start >= 0.25
        fin, op, payload = c.read_frame()
        assert op == OP_CLOSE
        wsutil.wait_for_eof(c.sock, t(2))
    finally:
        c.close()


# ---- disconnects -------------------------------------------------------------

@pytest.mark.parametrize("how", ["close", "shutdown", "after-message", "mid-frame", "reset"])
def test_client_vanishes_without_close(server, how):
    srv = server()
    c, _ = wsutil.handshake(srv.port)
    oid = srv.expect(r"^OPEN (\d+) ").group(1)
    if how == "after-message":
        c.send_frame(OP_TEXT, b"last words")
        assert c.read_frame() == (True, OP_TEXT, b"last words")
    elif how == "mid-frame":
        c.send(wsutil.frame(OP_TEXT, b"x" * 100)[:50])
    if how == "shutdown":
        c.sock.shutdown(socket.SHUT_RDWR)
    elif how == "reset":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    srv.expect(r"^CLOSE %s code=1006 cause=disconnect remote=0 reason=$" % oid)
    srv.expect_none(r"^CLOSE ", 0.3)
    assert srv.count(r"^CLOSE ") == 1


def test_half_close_without_close_frame(server):
    """The client shuts down only its sending side: the server sees EOF
    without a close frame -> 1006/disconnect, and ends the connection."""
    srv = server()
    c, _ = wsutil.handshake(srv.port)
    try:
        c.sock.shutdown(socket.SHUT_WR)
        srv.expect(r"^CLOSE \d+ code=1006 cause=disconnect remote=0 reason=$")
        wsutil.wait_for_eof(c.sock, t(3))
    finally:
        c.close()
    assert srv.count(r"^CLOSE ") == 1


def test_protocol_errors_close_1002(server):
    """Unmasked client frame, RSV bit, unknown opcode, fragmented control
    frame, continuation without start: each gets close 1002."""
    cases = [
        wsutil.frame(OP_TEXT, b"unmasked", mask=False),
        wsutil.frame(OP_TEXT, b"rsv", rsv=4),
        wsutil.frame(0x3, b"op3"),
        wsutil.frame(0xB, b"opB"),
        wsutil.frame(OP_PING, b"frag", fin=False),
        wsutil.frame(0x0, b"cont"),
        wsutil.frame(OP_TEXT, b"a", fin=False) + wsutil.frame(OP_TEXT, b"b"),
        wsutil.frame(OP_CLOSE, b"\x03"),             # 1-byte close payload
        wsutil.frame(OP_CLOSE, struct.pack("!H", 1005)),
        wsutil.frame(OP_CLOSE, struct.pack("!H", 999)),
    ]
    srv = server()
    for i, data in enumerate(cases):
        c, _ = wsutil.handshake(srv.port)
        try:
            oid = srv.expect(r"^OPEN (\d+) ").group(1)
            c.send(data)
            fin, op, payload = c.read_frame()
            assert op == OP_CLOSE, "case %d" % i
            assert wsutil.parse_close(payload)[0] == 1002, "case %d" % i
        finally:
            c.close()
        srv.expect(r"^CLOSE %s code=1002 cause=protocol remote=0 reason=" % oid)


def test_invalid_utf8_close_1007(server):
    srv = server()
    for data in [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"ok\xf4\x90\x80\x80"]:
        c, _ = wsutil.handshake(srv.port)
        try:
            oid = srv.expect(r"^OPEN (\d+) ").group(1)
            c.send_frame(OP_TEXT, data)
            fin, op, payload = c.read_frame()
            assert op == OP_CLOSE
            assert wsutil.parse_close(payload)[0] == 1007, data
        finally:
            c.close()
        srv.expect(r"^CLOSE %s code=1007 cause=protocol remote=0 reason=" % oid)


# ---- keepalive -----------------------------------------------------------------

def test_unresponsive_client_times_out(server):
    """--ping-interval 200 --pong-timeout 300: a client that never reads nor
    answers is closed with cause=timeout within ~2 s."""
    srv = server("--ping-interval", 200, "--pong-timeout", 300)
    c, _ = wsutil.handshake(srv.port)
    start = time.monotonic()
    try:
        oid = srv.expect(r"^OPEN (\d+) ").group(1)
        srv.expect(r"^CLOSE %s code=\d+ cause=timeout remote=0 reason=" % oid, timeout=2)
        elapsed = time.monotonic() - start
        assert elapsed >= 0.45, "closed after %.3f s, before ping interval + pong timeout" % elapsed
        # The server did ping before giving up.
        fin, op, payload = c.read_frame(2)
        assert op == OP_PING
        wsutil.wait_for_eof(c.sock, t(3))
    finally:
        c.close()
    assert srv.count(r"^CLOSE ") == 1


def test_responsive_client_stays_connected(server):
    """Same settings: a websockets client (which answers pings by itself)
    is still connected after 1.5 s, on both sides."""
    srv = server("--ping-interval", 200, "--pong-timeout", 300)

    async def main():
        async with ws_connect(srv.port) as ws:
            oid = (await srv.aexpect(r"^OPEN (\d+) ")).group(1)
            await asyncio.sleep(1.5)
            assert ws.open
            await ws.send("still here")
            assert await asyncio.wait_for(ws.recv(), t(5)) == "still here"
            assert srv.count(r"^CLOSE ") == 0, srv.output()
            # The server pinged meanwhile; websockets' pongs were seen.
            assert srv.count(r"^PONG %s " % oid) >= 2, srv.output()
        return oid

    oid = run(main())
    srv.expect(r"^CLOSE %s code=1000 cause=clean remote=1 reason=$" % oid)


def test_raw_client_answering_pings_stays_connected(server):
    """A raw client that answers each ping with a pong of the same payload
    stays connected for 1.5 s."""
    srv = server("--ping-interval", 200, "--pong-timeout", 300)
    c, _ = wsutil.handshake(srv.port)
    try:
        oid = srv.expect(r"^OPEN (\d+) ").group(1)
        deadline = time.monotonic() + 1.5
        pings = 0
        while time.monotonic() < deadline:
            try:
                fin, op, payload = c.read_frame(max(0.05, deadline - time.monotonic()))
            except socket.timeout:
                break
            assert op == OP_PING, (op, payload)
            pings += 1
            c.send_frame(OP_PONG, payload)
        assert pings >= 2
        assert srv.count(r"^CLOSE ") == 0, srv.output()
        c.send_frame(OP_TEXT, b"alive")
        for _ in range(20):
            op, payload = c.read_message()
            if op != OP_PING:
                break
            c.send_frame(OP_PONG, payload)
        assert (op, payload) == (OP_TEXT, b"alive")
    finally:
        c.close()
    srv.expect(r"^CLOSE %s code=1006 cause=disconnect" % oid)
