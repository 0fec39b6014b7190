"""Our client checks every copy of a header that must appear once (issue
10, item 7): a 101 with two Sec-WebSocket-Accept headers (one right, one
wrong, in either order) or two Sec-WebSocket-Extensions headers fails the
handshake with WS_EHANDSHAKE (before, only the first copy was checked).
The server is a raw Python socket server (tests/client/rawpeer.py); the
client is tests/servers/wsc-test-client.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "client"))

from hardutil import helper_binary, t  # noqa: E402
from rawpeer import RawServer, accept_for  # noqa: E402

WS_EHANDSHAKE = -14


def answer(headers):
    """A handler answering 101 with the given (name, value) headers; a
    value of None is the correct Sec-WebSocket-Accept for the request."""
    def handler(peer):
        req = peer.read_request()
        lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket",
                 "Connection: Upgrade"]
        for name, value in headers:
            lines.append("%s: %s" % (name, accept_for(req.key) if value is None else value))
        peer.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            peer.wait_eof(timeout=10)
        except Exception:  # noqa: BLE001 - the client may reset; either is fine
            pass
    return handler


WRONG = "dGhpcyBpcyBub3QgdGhlIGFjY2VwdD0="


@pytest.mark.parametrize("headers", [
    [("Sec-WebSocket-Accept", None), ("Sec-WebSocket-Accept", WRONG)],
    [("Sec-WebSocket-Accept", WRONG), ("Sec-WebSocket-Accept", None)],
    [("Sec-WebSocket-Accept", None), ("Sec-WebSocket-Extensions", "permessage-deflate"),
     ("Sec-WebSocket-Extensions", "permessage-deflate")],
], ids=["accept-right-then-wrong", "accept-wrong-then-right", "two-extensions"])
def test_repeated_handshake_header_fails_the_handshake(proc, headers):
    srv = RawServer(answer(headers))
    cl = None
    try:
        cl = proc([helper_binary("wsc-test-client"), "ws://127.0.0.1:%d/" % srv.port,
                   "--close-timeout", 500])
        m = cl.expect(r"^(GIVEUP error=(-?\d+)|OPEN )", timeout=10)
        assert m.group(2) is not None and int(m.group(2)) == WS_EHANDSHAKE, \
            "client: %r (wanted GIVEUP error=%d)" % (m.group(0), WS_EHANDSHAKE)
        assert cl.wait(t(10)) == 0
    finally:
        if cl is not None:
            cl.stop()  # the raw server's handler waits for the client's EOF
        srv.close()
    assert not srv.errors, srv.errors


def test_single_headers_still_open(proc):
    """The other side of the check: one of each is a normal handshake."""
    srv = RawServer(answer([("Sec-WebSocket-Accept", None)]))
    cl = None
    try:
        cl = proc([helper_binary("wsc-test-client"), "ws://127.0.0.1:%d/" % srv.port,
                   "--close-timeout", 500])
        cl.expect(r"^OPEN ", timeout=10)
    finally:
        if cl is not None:
            cl.stop()  # the raw server's handler waits for the client's EOF
        srv.close()
    assert not srv.errors, srv.errors
