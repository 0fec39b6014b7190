"""permessage-deflate (RFC 7692) from the client's side, against raw servers
that choose the parameters: what the client offers, which answers it must
refuse (RFC 7692 7: unknown parameter, invalid value, duplicate), and that
what it sends decompresses under the negotiated window and context rules."""

import zlib

import pytest

from rawpeer import OP_CLOSE, OP_TEXT, server_frame

WS_EHANDSHAKE = -14
TAIL = b"\x00\x00\xff\xff"


def url(port):
    return "ws://127.0.0.1:%d/" % port


def offer_of(req):
    return req.header("sec-websocket-extensions")


def answer(ext, frames_wanted=0, reply=None, got=None, reqs=None):
    """Handler: accept with Sec-WebSocket-Extensions ext (None: no header),
    read frames_wanted frames into got, optionally send reply bytes, then
    wait for the client's close and answer it."""
    def handler(peer):
        extra = [("Sec-WebSocket-Extensions", ext)] if ext is not None else []
        req = peer.accept(extra=extra)
        if reqs is not None:
            reqs.append(req)
        for _ in range(frames_wanted):
            got.append(peer.read_frame())
        if reply:
            peer.send(reply)
        f = peer.read_frame()
        assert f.opcode == OP_CLOSE, f
        peer.send(server_frame(OP_CLOSE, f.payload[:2]))
        peer.wait_eof()
    return handler


def test_default_offer(client, raw_server):
    reqs = []
    srv = raw_server(answer(None, reqs=reqs))
    cl = client(url(srv.port), "--close", 1000)
    cl.expect(r"^OPEN ")
    cl.finish()
    offer = [p.strip() for p in offer_of(reqs[0]).split(";")]
    assert offer[0] == "permessage-deflate"
    assert "client_max_window_bits" in offer
    assert "client_no_context_takeover" in offer
    assert "server_no_context_takeover" in offer


def test_no_deflate_offers_nothing(client, raw_server):
    reqs = []
    srv = raw_server(answer(None, reqs=reqs))
    cl = client(url(srv.port), "--no-deflate", "--close", 1000)
    cl.expect(r"^OPEN ")
    cl.finish()
    assert offer_of(reqs[0]) is None


def test_declined_offer_sends_uncompressed(client, raw_server):
    """The server answers without the extension: plain frames, RSV1 clear."""
    got = []
    srv = raw_server(answer(None, frames_wanted=1, got=got))
    cl = client(url(srv.port), "--send", "a" * 1000, "--close", 1000)
    cl.expect(r"^OPEN ")
    cl.finish()
    srv.wait_done()
    srv.check()
    assert got[0].rsv == 0 and got[0].payload == b"a" * 1000


@pytest.mark.parametrize("bits", [9, 10, 12, 15])
def test_client_window_bits_honoured(client, raw_server, bits):
    """client_max_window_bits=N: every message inflates with an N-bit window
    (and, with client_no_context_takeover, on its own)."""
    got = []
    texts = [("%d:" % i + "the quick brown fox jumps over the lazy dog " * 60) for i in range(3)]
    ext = "permessage-deflate; client_no_context_takeover; client_max_window_bits=%d" % bits
    srv = raw_server(answer(ext, frames_wanted=len(texts), got=got))
    args = []
    for s in texts:
        args += ["--send", s]
    cl = client(url(srv.port), *args, "--close", 1000)
    cl.expect(r"^OPEN ")
    cl.finish()
    srv.wait_done()
    srv.check()
    for s, f in zip(texts, got):
        assert f.opcode == OP_TEXT and f.rsv == 4, f      # RSV1: compressed
        d = zlib.decompressobj(-bits)
        assert d.decompress(f.payload + TAIL) == s.encode()
        assert len(f.payload) < len(s) // 4


def test_client_window_bits_8_never_compresses(client, raw_server):
    """zlib cannot deflate with an 8-bit window: the client then sends
    uncompressed (allowed: RSV1 is per message)."""
    got = []
    ext = "permessage-deflate; client_max_window_bits=8"
    srv = raw_server(answer(ext, frames_wanted=1, got=got))
    cl = client(url(srv.port), "--send", "z" * 2000, "--close", 1000)
    cl.expect(r"^OPEN ")
    cl.finish()
    srv.wait_done()
    srv.check()
    f = got[0]
    if f.rsv == 4:
        assert zlib.decompressobj(-8).decompress(f.payload + TAIL) == b"z" * 2000
    else:
        assert f.payload == b"z" * 2000


def test_client_context_takeover(client, raw_server):
    """--deflate-context-takeover and a server that allows it: messages are
    compressed against the previous ones (one continuous stream)."""
    got, reqs = [], []
    texts = ["message %d " % i + "same words again and again " * 50 for i in range(4)]
    srv = raw_server(answer("permessage-deflate; client_max_window_bits=15",
                            frames_wanted=len(texts), got=got, reqs=reqs))
    args = []
    for s in texts:
        args += ["--send", s]
    cl = client(url(srv.port), *args, "--deflate-context-takeover", "--close", 1000)
    cl.expect(r"^OPEN ")
    cl.finish()
    srv.wait_done()
    srv.check()
    assert "no_context_takeover" not in offer_of(reqs[0])
    d = zlib.decompressobj(-15)
    for s, f in zip(texts, got):
        assert f.rsv == 4, f
        assert d.decompress(f.payload + TAIL) == s.encode()


def test_receives_compressed_with_server_context(client, raw_server):
    """Server messages compressed on one continuous stream (no
    server_no_context_takeover in the answer) inflate correctly."""
    texts = ["server says %d " % i + "hello hello hello " * 40 for i in range(3)]
    c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    reply = b""
    for s in texts:
        data = c.compress(s.encode()) + c.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(TAIL)
        reply += bytes([0xC1]) + server_frame(OP_TEXT, data[:-4])[1:]
    srv = raw_server(answer("permessage-deflate; client_max_window_bits=15",
                            reply=reply))
    cl = client(url(srv.port), "--deflate-context-takeover", "--expect", 3, "--close", 1000)
    for s in texts:
        m = cl.expect(r"^DATA text (\d+) (.*)$")
        assert (int(m.group(1)), m.group(2)) == (len(s), s[:40])
    cl.finish()
    srv.wait_done()
    srv.check()


@pytest.mark.parametrize("ext", [
    "permessage-deflate; client_max_window_bits=\"10\"",
    "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10",
    "permessage-deflate;client_no_context_takeover;server_no_context_takeover",
    "Permessage-Deflate; Client_Max_Window_Bits=12",
    "permessage-deflate",
])
def test_valid_answers(client, raw_server, ext):
    def handler(peer):
        peer.accept(extra=[("Sec-WebSocket-Extensions", ext)])
        try:
            f = peer.read_frame()
        except EOFError:
            return  # refused: the assertion below reports it
        peer.send(server_frame(OP_CLOSE, f.payload[:2]))
        peer.wait_eof()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--close", 1000)
    m = cl.expect(r"^(OPEN|GIVEUP) ")
    assert m.group(1) == "OPEN", cl.output()
    cl.finish()


@pytest.mark.parametrize("ext", [
    "permessage-deflatex",
    "permessage-deflate-v2; client_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=99",
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; server_max_window_bits=abc",
    "permessage-deflate; client_max_window_bits=10abc",
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; client_no_context_takeover=yes",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_max_window_bits=10; client_max_window_bits=11",
    "permessage-deflate; client_max_window_bits=16",
    "permessage-deflate; mystery_param",
])
def test_invalid_answers(client, raw_server, ext):
    """RFC 7692 7: a response with an unknown parameter, an invalid value or
    a duplicate parameter fails the connection."""
    def handler(peer):
        peer.accept(extra=[("Sec-WebSocket-Extensions", ext)])
        peer.wait_eof()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--close", 1000, "--close-timeout", 300)
    m = cl.expect(r"^(OPEN|GIVEUP error=(-?\d+)) ")
    assert m.group(1).startswith("GIVEUP") and int(m.group(2)) == WS_EHANDSHAKE, \
        "accepted %r:\n%s" % (ext, cl.output())
    cl.finish()
