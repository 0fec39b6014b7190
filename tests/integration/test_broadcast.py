"""ws_server_broadcast: one message to every open connection, framed once,
compressed once for connections on the shared compressor, correct for
clients with and without compression and with their own contexts."""

import asyncio
import struct
import zlib

import wsutil
from wsutil import check_sender_threads, run, t, ws_connect

PMD = ("Sec-WebSocket-Extensions", "permessage-deflate")


def read_raw_frame(c, timeout=5.0):
    """(rsv1, opcode, payload) of one unmasked server frame."""
    b0, b1 = c.read_exact(2, timeout)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", c.read_exact(2, timeout))[0]
    elif n == 127:
        n = struct.unpack("!Q", c.read_exact(8, timeout))[0]
    assert not b1 & 0x80, "server frames are never masked"
    return bool(b0 & 0x40), b0 & 0x0F, c.read_exact(n, timeout)


def inflate(payload):
    return zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff")


MESSAGES = [
    (wsutil.OP_TEXT, b"small text"),                        # copied, uncompressed
    (wsutil.OP_TEXT, b"compressible " * 20),                # copied, compressed
    (wsutil.OP_BINARY, bytes(range(256)) * 40),             # by reference, compressed
    (wsutil.OP_BINARY, bytes(i * 7919 % 251 for i in range(3000))),  # by reference
]


def test_broadcast_reaches_plain_and_compressed_clients(server):
    srv = server("--broadcast-on-message")
    plain, _ = wsutil.handshake(srv.port)
    packed, resp = wsutil.handshake(srv.port, extra=[PMD])
    assert "permessage-deflate" in resp.header("sec-websocket-extensions")
    srv.wait_count(r"^OPEN ", 2)

    for op, payload in MESSAGES:
        plain.send_frame(op, b"bcast:" + payload)
        srv.expect(r"^CMD bcast rc=0$")
        rsv1, got_op, got = read_raw_frame(plain)
        assert (rsv1, got_op, got) == (False, op, payload)
        rsv1, got_op, got = read_raw_frame(packed)
        assert got_op == op
        assert (inflate(got) if rsv1 else got) == payload
        if len(payload) >= 128 and payload.startswith(b"compressible"):
            assert rsv1 and len(got) < len(payload) // 4, "shared compression was used"
    plain.close()
    packed.close()


def test_broadcast_with_context_takeover_clients(server):
    """Connections that keep their compression context get frames compressed
    for them, in order, decodable by one inflater across messages."""
    srv = server("--broadcast-on-message", "--deflate-context-takeover")

    async def go():
        async with ws_connect(srv.port, compression="deflate") as a, \
                ws_connect(srv.port, compression="deflate") as b, \
                ws_connect(srv.port) as c:
            ext = a.response_headers.get("Sec-WebSocket-Extensions", "")
            assert "permessage-deflate" in ext and "no_context_takeover" not in ext, ext
            sent = []
            for i in range(20):
                payload = ("message %d " % i) * (5 + i * 30)
                sent.append(payload)
                await a.send("bcast:" + payload)
            for ws in (a, b, c):
                got = [await asyncio.wait_for(ws.recv(), t(10)) for _ in sent]
                assert got == sent
    run(go())


def test_broadcast_from_threads_keeps_each_threads_order(server):
    threads, conns, count = 3, 5, 300
    srv = server("--send-threads", threads, "--send-conns", conns, "--send-count", count,
                 "--send-broadcast")
    check_sender_threads(srv, conns, threads, count, deflate=True)
    assert srv.count(r"^SEND ERROR") == 0


def test_broadcast_skips_closing_connections(server):
    srv = server("--broadcast-on-message", "--close-on-message", "--close-timeout", "2000")
    a, _ = wsutil.handshake(srv.port)
    b, _ = wsutil.handshake(srv.port)
    srv.wait_count(r"^OPEN ", 2)
    b.send_frame(wsutil.OP_TEXT, b"close:4000:leaving")  # server sends b its close
    srv.expect(r"^CMD close \d+ rc=0$")
    a.send_frame(wsutil.OP_TEXT, b"bcast:after")
    srv.expect(r"^CMD bcast rc=0$")
    assert read_raw_frame(a)[1:] == (wsutil.OP_TEXT, b"after")
    rsv1, op, payload = read_raw_frame(b)
    assert op == wsutil.OP_CLOSE and payload[:2] == struct.pack("!H", 4000)
    b.send_frame(wsutil.OP_CLOSE, payload[:2])
    assert b.read_until_eof(timeout=5) == b"", "no data after the close frame"
    a.close()
    b.close()
