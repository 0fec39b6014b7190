"""Opening handshake: websockets as the peer, then a raw socket."""

import asyncio

import wsutil
from wsutil import OP_TEXT, run, t, ws_connect


def test_handshake_websockets_client(server):
    srv = server()

    async def main():
        async with ws_connect(srv.port) as ws:
            # websockets itself checks 101 and Sec-WebSocket-Accept.
            h = ws.response_headers
            assert h["Upgrade"].lower() == "websocket"
            assert "upgrade" in [v.strip().lower() for v in h["Connection"].split(",")]
            assert "Sec-WebSocket-Extensions" not in h
            assert "Sec-WebSocket-Protocol" not in h
            local = ws.local_address
            m = await srv.aexpect(r"^OPEN (\d+) (\S+)$")
            assert int(m.group(1)) > 0
            assert m.group(2) == "%s:%d" % (local[0], local[1])
            await ws.send("x")
            assert await asyncio.wait_for(ws.recv(), t(5)) == "x"
        await srv.aexpect(r"^CLOSE %s code=1000 cause=clean remote=1 reason=$" % m.group(1))

    run(main())


def test_handshake_raw_accept_key(server):
    srv = server()
    # The example of RFC 6455 section 1.3.
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    c, resp = wsutil.handshake(srv.port, key=key)
    try:
        assert resp.status_line == "HTTP/1.1 101 Switching Protocols"
        assert resp.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert resp.header("upgrade").lower() == "websocket"
        assert "upgrade" in [v.strip().lower() for v in resp.header("connection").split(",")]
        assert resp.header("sec-websocket-extensions") is None
        assert resp.header("sec-websocket-protocol") is None
        local = c.sock.getsockname()
        srv.expect(r"^OPEN \d+ %s:%d$" % (local[0], local[1]))
        assert c.buf == b"", "bytes after the 101 head: %r" % c.buf
    finally:
        c.close()
    srv.expect(r"^CLOSE \d+ code=1006 cause=disconnect")


def test_handshake_random_keys_and_unique_ids(server):
    srv = server()
    conns = []
    try:
        for _ in range(5):
            key = wsutil.new_key()
            c, resp = wsutil.handshake(srv.port, key=key)
            assert resp.header("sec-websocket-accept") == wsutil.accept_for(key)
            conns.append(c)
        ids = [int(srv.expect(r"^OPEN (\d+) ").group(1)) for _ in range(5)]
        assert len(set(ids)) == 5 and 0 not in ids
    finally:
        for c in conns:
            c.close()
    srv.wait_count(r"^CLOSE \d+ code=1006 cause=disconnect", 5)


def test_pipelined_first_frame(server):
    """The upgrade request and a first masked text frame in one send()."""
    srv = server()
    first = wsutil.frame(OP_TEXT, b"early bird")
    c, resp = wsutil.handshake(srv.port, data_after=first)
    try:
        srv.expect(r"^OPEN \d+ ")
        assert c.read_frame() == (True, OP_TEXT, b"early bird")
        # And the connection goes on normally afterwards.
        c.send_frame(OP_TEXT, b"second")
        assert c.read_frame() == (True, OP_TEXT, b"second")
        c.send_frame(wsutil.OP_CLOSE, wsutil.close_payload(1000, "done"))
        fin, op, payload = c.read_frame()
        assert (fin, op) == (True, wsutil.OP_CLOSE)
        assert wsutil.parse_close(payload)[0] == 1000
        wsutil.wait_for_eof(c.sock, t(3))
    finally:
        c.close()
    srv.expect(r"^CLOSE \d+ code=1000 cause=clean remote=1 reason=done$")


def test_pipelined_two_frames_and_close(server):
    """Request, two frames and a close frame all in one send()."""
    srv = server()
    data = (wsutil.frame(OP_TEXT, b"one") + wsutil.frame(wsutil.OP_BINARY, b"\x00two")
            + wsutil.frame(wsutil.OP_CLOSE, wsutil.close_payload(4002, "eot")))
    c, resp = wsutil.handshake(srv.port, data_after=data)
    try:
        assert c.read_frame() == (True, OP_TEXT, b"one")
        assert c.read_frame() == (True, wsutil.OP_BINARY, b"\x00two")
        fin, op, payload = c.read_frame()
        assert op == wsutil.OP_CLOSE
        assert wsutil.parse_close(payload)[0] == 4002
        wsutil.wait_for_eof(c.sock, t(3))
    finally:
        c.close()
    srv.expect(r"^CLOSE \d+ code=4002 cause=clean remote=1 reason=eot$")
