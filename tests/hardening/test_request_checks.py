"""Smaller request checks (issue 10, item 7), over raw sockets.

An upgrade request may not carry a body: with Content-Length (non-zero)
or Transfer-Encoding it is refused with 400 instead of getting a 101 and
having its body parsed as frames; Content-Length: 0 is harmless. An
HTTP/1.1 request needs exactly one Host (RFC 9112 3.2): none or two -> 400;
HTTP/1.0 needs none. (Content-Length: 0, one Host and HTTP/1.0 without
Host are the other side of each limit: they passed before the fix too.)
"""

import pytest

from wsutil import OP_TEXT, Conn, connect, handshake, http_exchange, upgrade_request


def upgrade_status(port, extra=(), body=b"", host=True):
    resp = http_exchange(port, upgrade_request(port, extra=extra, host=host) + body)
    return resp


@pytest.mark.parametrize("extra,body", [
    ((("Content-Length", "5"),), b"hello"),
    ((("Transfer-Encoding", "chunked"),), b"5\r\nhello\r\n0\r\n\r\n"),
], ids=["content-length-5", "transfer-encoding"])
def test_upgrade_with_a_body_is_refused(server, extra, body):
    srv = server()
    resp = upgrade_status(srv.port, extra, body)
    assert resp.status == 400, resp
    assert srv.count(r"^OPEN ") == 0


def test_upgrade_with_content_length_0_is_accepted(server):
    srv = server()
    c, resp = handshake(srv.port, extra=(("Content-Length", "0"),))
    try:
        c.send_frame(OP_TEXT, "after CL 0")
        assert c.read_message() == (OP_TEXT, b"after CL 0")
    finally:
        c.close()


def test_upgrade_with_two_hosts_is_400(server):
    srv = server()
    resp = upgrade_status(srv.port, extra=(("Host", "evil.example"),))
    assert resp.status == 400, resp
    assert srv.count(r"^OPEN ") == 0


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /hello HTTP/1.1\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 200),
    (b"GET /hello HTTP/1.0\r\n\r\n", 200),
], ids=["1.1-no-host", "1.1-two-hosts", "1.1-one-host", "1.0-no-host"])
def test_host_rules_for_plain_requests(server, request_bytes, status):
    srv = server("--http")
    resp = http_exchange(srv.port, request_bytes)
    assert resp.status == status, resp
    if status == 200:
        assert resp.body == b"hello"
