"""Frame lengths an attacker picks (gorilla/websocket CVE-2020-27813: the
sum of fragment lengths overflowed a signed 64-bit counter).

- A 64-bit length with the top bit set is a protocol error (RFC 6455 5.2:
  "the most significant bit MUST be 0"): 1002, whatever the size limit and
  wherever the frame comes (a message's first frame, a continuation).
- A length that passes max_message_size when added to what the message
  already holds: 1009, from the header alone, with nothing allocated for
  it (2^63 - 1 after a fragment, after a compressed fragment, a 16-bit
  length after a message grown to near the limit).
- A header announcing a frame of nearly max_message_size (1 GiB here),
  followed by 70 KB, on 20 connections: the server reserves memory in step
  with the bytes received, not 1 GiB per connection (it did: 20 GiB of
  address space, all of it committed, for 1.4 MB of traffic).
- The edges: a message exactly at the limit completed by an empty
  continuation is delivered; one byte more is 1009.
"""
import struct
import zlib

import pytest

import wsutil
from attackutil import Bystander, Figures, expect_close, vmsize_kib
from wsutil import OP_BINARY, OP_CONT, OP_TEXT

MASK = b"\x11\x22\x33\x44"
MIB = 1 << 20
GIB = 1 << 30


def header64(opcode, length, fin=True, rsv=0):
    """A masked frame header announcing a 64-bit length (no payload)."""
    return struct.pack("!BBQ", (0x80 if fin else 0) | (rsv << 4) | opcode, 0xFF, length) + MASK


def header16(opcode, length, fin=True):
    return struct.pack("!BBH", (0x80 if fin else 0) | opcode, 0xFE, length) + MASK


def deflated(data):
    c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


TOP_BIT = (1 << 63, (1 << 64) - 1, (1 << 63) + 1000)

# (id, server options, [byte strings sent in order], expected close code).
CASES = []
for max_message in (MIB, GIB):
    for n in TOP_BIT:
        tag = "%#x-max%d" % (n, max_message)
        CASES.append(("top-bit-first-%s" % tag, ["--max-message", max_message],
                      [header64(OP_BINARY, n)], 1002))
        CASES.append(("top-bit-continuation-%s" % tag, ["--max-message", max_message],
                      [wsutil.frame(OP_TEXT, b"x" * 1000, fin=False), header64(OP_CONT, n)], 1002))
    CASES.append(("huge-after-fragment-max%d" % max_message, ["--max-message", max_message],
                  [wsutil.frame(OP_BINARY, b"y" * 70000, fin=False),
                   header64(OP_CONT, (1 << 63) - 1)], 1009))
CASES += [
    ("huge-first", [], [header64(OP_TEXT, (1 << 63) - 1)], 1009),
    ("max-plus-one-first", [], [header64(OP_BINARY, MIB + 1)], 1009),
    ("huge-after-compressed-fragment", [],
     [wsutil.frame(OP_TEXT, deflated(b"z" * 5000), fin=False, rsv=4),
      header64(OP_CONT, (1 << 63) - 1)], 1009),
    ("compressed-wire-over-limit", [],
     [header64(OP_BINARY, MIB + MIB // 64 + 65, rsv=4)], 1009),
    ("16bit-after-near-limit", [],
     [wsutil.frame(OP_BINARY, b"n" * (MIB - 100), fin=False), header16(OP_CONT, 65535)], 1009),
    ("limit-then-one-byte", [],
     [wsutil.frame(OP_BINARY, b"l" * MIB, fin=False), wsutil.frame(OP_CONT, b"!")], 1009),
]


PMD = (("Sec-WebSocket-Extensions", "permessage-deflate"),)


@pytest.mark.parametrize("opts,sends,code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_length(shared_server, opts, sends, code):
    srv = shared_server(*opts)
    by = Bystander(srv.port)
    fig = Figures(srv, "length")
    compressed = any(len(d) > 1 and d[0] & 0x40 for d in sends)
    conn, resp = wsutil.handshake(srv.port, extra=PMD if compressed else ())
    if compressed:
        assert "permessage-deflate" in (resp.header("sec-websocket-extensions") or ""), resp
    try:
        for data in sends:
            conn.send(data)
            by.echo()  # served while the hostile message is pending
        expect_close(conn, code)
    finally:
        conn.close()
    srv.expect(r"^CLOSE \d+ code=%d cause=protocol " % code)
    by.echo()
    fig.report(sent=sum(map(len, sends)), code=code)
    # Nothing is allocated for an announced length: the growth is at most
    # the bytes really sent (and the message buffer for them).
    fig.assert_growth_below(2 * 1024 + 2 * sum(map(len, sends)) // 1024)
    by.close()
    fig.wait_fds_back()


def test_exactly_at_limit_then_empty_continuation(server):
    srv = server("--max-message", 4096)
    fig = Figures(srv, "length-at-limit")
    conn, _ = wsutil.handshake(srv.port)
    try:
        conn.send(wsutil.frame(OP_BINARY, b"a" * 4096, fin=False))
        conn.send(wsutil.frame(OP_CONT, b"", fin=False) + wsutil.frame(OP_CONT, b""))
        op, data = conn.read_message()
        assert (op, data) == (OP_BINARY, b"a" * 4096)
        conn.send(wsutil.frame(OP_BINARY, b"b" * 4096, fin=False) + wsutil.frame(OP_CONT, b"c"))
        expect_close(conn, 1009)
    finally:
        conn.close()
    fig.report()
    fig.wait_fds_back()


def test_announced_length_reserves_nothing(server):
    srv = server("--max-message", GIB)
    by = Bystander(srv.port)
    fig = Figures(srv, "announced-1GiB")
    vm0 = vmsize_kib(srv.pid)
    conns = []
    try:
        for _ in range(20):
            c, _ = wsutil.handshake(srv.port)
            c.send(header64(OP_BINARY, GIB - 1) + b"x" * 70000)  # MASK is 11 22 33 44
            conns.append(c)
        by.echo()
        fig.sample()
        grown = vmsize_kib(srv.pid) - vm0
    finally:
        for c in conns:
            c.close()
    by.echo()
    fig.report(connections=20, announced=GIB - 1, sent_each=70000, vmsize_growth_kib=grown)
    assert grown < 256 * 1024, "address space grew by %d KiB for 20 x 70 KB" % grown
    by.close()
    fig.wait_fds_back()
