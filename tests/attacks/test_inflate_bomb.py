"""A compressed message that inflates past max_message_size within one
inflate() call: a single ~100 KiB frame of raw deflate holding 100 MiB of
zeros (permessage-deflate, RFC 7692). The server must stop inflating at the
limit and close with 1009, its memory bounded by the limit, not by the
bomb; and serve a correct client meanwhile. Whole in one frame (the shared
inflater), split over two frames (a per-connection inflater), with context
takeover, as text and as binary; five bombs in a row (two under sanitizers) so that nothing
accumulates."""
import functools
import zlib

import pytest

import wsutil
from attackutil import SANITIZER, Bystander, Figures, expect_close
from wsutil import OP_BINARY, OP_CONT, OP_TEXT

PMD = (("Sec-WebSocket-Extensions", "permessage-deflate"),)
BOMB_BYTES = 100 << 20
BOMBS = 5 if SANITIZER == "none" else 2


@functools.lru_cache(maxsize=1)
def bomb():
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = bytearray()
    chunk = bytes(1 << 20)
    for _ in range(BOMB_BYTES >> 20):
        out += c.compress(chunk)
    out += c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return bytes(out[:-4])


@pytest.mark.parametrize("split", [False, True], ids=["one-frame", "two-frames"])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("takeover", [False, True], ids=["no-takeover", "takeover"])
def test_inflate_bomb(shared_server, split, opcode, takeover):
    z = bomb()
    srv = shared_server(*(["--deflate-context-takeover"] if takeover else []))
    by = Bystander(srv.port)
    fig = Figures(srv, "inflate-bomb")
    for _ in range(BOMBS):
        conn, resp = wsutil.handshake(srv.port, extra=PMD)
        try:
            assert "permessage-deflate" in (resp.header("sec-websocket-extensions") or "")
            if split:
                half = len(z) // 2
                conn.send(wsutil.frame(opcode, z[:half], fin=False, rsv=4))
                by.echo()
                conn.send(wsutil.frame(OP_CONT, z[half:]))
            else:
                conn.send(wsutil.frame(opcode, z, rsv=4))
            by.echo()
            fig.sample()
            expect_close(conn, 1009, timeout=10)
        finally:
            conn.close()
        srv.expect(r"^CLOSE \d+ code=1009 cause=protocol ")
    by.echo()
    fig.report(bomb_wire=len(z), bomb_inflated=BOMB_BYTES, bombs=BOMBS)
    # The default limit is 1 MiB: the output buffer stops at limit + 1,
    # plus zlib's state and the frame as read (100 KiB).
    fig.assert_growth_below(8 * 1024)
    by.close()
    fig.wait_fds_back()
