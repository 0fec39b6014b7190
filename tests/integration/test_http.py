"""The HTTP side: refused upgrades with their exact status lines, the HTTP
handler, request limits, the handshake timeout and max_connections."""

import asyncio
import socket
import time

import pytest
import websockets

import wsutil
from wsutil import run, t, upgrade_request, ws_connect


def exchange(srv, request):
    return wsutil.http_exchange(srv.port, request)


def assert_refused(srv, request, status_line):
    """request gets exactly status_line and the server then closes."""
    c = wsutil.Conn(wsutil.connect(srv.port))
    try:
        try:
            c.send(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = c.read_http_response()
        assert resp.status_line == status_line, resp
        wsutil.wait_for_eof(c.sock, t(3))
        return resp
    finally:
        c.close()


def sized_request(port, total, extra=()):
    """An otherwise valid upgrade request whose head is exactly total bytes
    (request line through the empty line), padded with an X-Pad header."""
    base = len(upgrade_request(port, key="dGhlIHNhbXBsZSBub25jZQ==",
                               extra=list(extra) + [("X-Pad", "")]))
    pad = total - base
    assert pad >= 0
    req = upgrade_request(port, extra=list(extra) + [("X-Pad", "p" * pad)])
    assert len(req) == total
    return req


def assert_upgrades(srv, request):
    c = wsutil.Conn(wsutil.connect(srv.port))
    try:
        c.send(request)
        resp = c.read_http_response(body=False)
        assert resp.status_line == "HTTP/1.1 101 Switching Protocols", resp
        c.send_frame(wsutil.OP_TEXT, b"ok?")
        assert c.read_frame() == (True, wsutil.OP_TEXT, b"ok?")
    finally:
        c.close()


# ---- refused upgrades ----------------------------------------------------------

@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"GET / FTP/1.1\r\nHost: x\r\n\r\n",
    b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
    b"\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n",
], ids=["garbage", "method-only", "no-version", "extra-token", "bad-protocol",
        "bad-method-char", "header-no-colon", "space-before-colon",
        "leading-whitespace", "binary"])
def test_malformed_request_400(server, request_bytes):
    srv = server()
    assert_refused(srv, request_bytes, "HTTP/1.1 400 Bad Request")
    assert srv.count(r"^OPEN ") == 0


def test_post_upgrade_405(server):
    srv = server()
    resp = assert_refused(srv, upgrade_request(srv.port, method="POST"),
                          "HTTP/1.1 405 Method Not Allowed")
    assert resp.header("allow") == "GET"


@pytest.mark.parametrize("version", [None, "8", "12", "14", ""],
                         ids=["missing", "v8", "v12", "v14", "empty"])
def test_bad_version_426(server, version):
    srv = server()
    req = upgrade_request(srv.port, version=version)
    if version is None:
        assert b"Sec-WebSocket-Version" not in req
    resp = assert_refused(srv, req, "HTTP/1.1 426 Upgrade Required")
    assert resp.header("sec-websocket-version") == "13"
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in resp.raw_head + b"\r\n"


@pytest.mark.parametrize("key", [
    "abc",
    "dGhlIHNhbXBsZSBub25jZQ",          # 22 chars, padding missing
    "dGhlIHNhbXBsZSBub25jZQ===",       # 25 chars
    "!!!!!!!!!!!!!!!!!!!!!!==",        # right length, not base64
    "dGhlIHNhbXBsZSBub25j",            # 15 bytes encoded
    "",
], ids=["short", "no-padding", "long", "not-base64", "15-bytes", "empty"])
def test_bad_key_400(server, key):
    srv = server()
    assert_refused(srv, upgrade_request(srv.port, key=key), "HTTP/1.1 400 Bad Request")


def test_missing_key_400(server):
    srv = server()
    assert_refused(srv, upgrade_request(srv.port, omit=("sec-websocket-key",)),
                   "HTTP/1.1 400 Bad Request")


def test_two_keys_400(server):
    srv = server()
    req = upgrade_request(srv.port, extra=[("Sec-WebSocket-Key", wsutil.new_key())])
    assert_refused(srv, req, "HTTP/1.1 400 Bad Request")


def test_missing_host_400(server):
    srv = server()
    req = upgrade_request(srv.port, host=False)
    assert b"Host:" not in req
    assert_refused(srv, req, "HTTP/1.1 400 Bad Request")


def test_connection_without_upgrade_token_400(server):
    srv = server()
    req = upgrade_request(srv.port).replace(b"Connection: Upgrade", b"Connection: keep-alive")
    assert_refused(srv, req, "HTTP/1.1 400 Bad Request")


def test_http10_upgrade_400(server):
    srv = server()
    req = upgrade_request(srv.port).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    assert_refused(srv, req, "HTTP/1.1 400 Bad Request")


def test_header_tokens_are_case_insensitive(server):
    srv = server()
    req = upgrade_request(srv.port).replace(b"Upgrade: websocket", b"upgrade: WebSocket")
    req = req.replace(b"Connection: Upgrade", b"CONNECTION: keep-alive, UPGRADE")
    assert_upgrades(srv, req)


def test_plain_get_without_handler_426(server):
    srv = server()
    resp = assert_refused(srv, b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                          "HTTP/1.1 426 Upgrade Required")
    assert resp.header("sec-websocket-version") == "13"


# ---- head size and header count ---------------------------------------------

@pytest.mark.parametrize("max_head", [None, 1024], ids=["default8192", "max1024"])
def test_head_size_limit(server, max_head):
    srv = server(*([] if max_head is None else ["--max-head", max_head]))
    limit = max_head or 8192
    # Exactly at the limit: accepted; one byte more: 431.
    assert_upgrades(srv, sized_request(srv.port, limit))
    assert_upgrades(srv, sized_request(srv.port, limit - 1))
    assert_refused(srv, sized_request(srv.port, limit + 1),
                   "HTTP/1.1 431 Request Header Fields Too Large")
    assert_refused(srv, sized_request(srv.port, 4 * limit),
                   "HTTP/1.1 431 Request Header Fields Too Large")


def test_head_size_limit_without_end(server):
    """A head that never ends is refused once it passes the limit."""
    srv = server()
    c = wsutil.Conn(wsutil.connect(srv.port))
    try:
        c.send(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 9000)
        resp = c.read_http_response()
        assert resp.status_line == "HTTP/1.1 431 Request Header Fields Too Large"
    finally:
        c.close()


@pytest.mark.parametrize("max_headers", [None, 10], ids=["default100", "max10"])
def test_header_count_limit(server, max_headers):
    srv = server(*([] if max_headers is None else ["--max-headers", max_headers]))
    limit = max_headers or 100
    base = 5  # Host, Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version

    def req(n):
        extra = [("X-H%d" % i, "v") for i in range(n - base)]
        r = upgrade_request(srv.port, extra=extra)
        assert r.count(b"\r\n") == n + 2
        return r

    assert_upgrades(srv, req(limit))
    assert_refused(srv, req(limit + 1), "HTTP/1.1 431 Request Header Fields Too Large")


# ---- the HTTP handler -----------------------------------------------------------

def test_http_hello(server):
    srv = server("--http")
    resp = exchange(srv, b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert resp.status_line == "HTTP/1.1 200 OK"
    assert resp.body == b"hello"
    assert resp.header("content-length") == "5"
    assert resp.header("content-type") == "text/plain"


@pytest.mark.parametrize("query,value", [
    ("name=a%20b", b"a b"),
    ("x=1&name=caf%C3%A9&y=2", "caf\u00e9".encode()),
    ("name=a+b", b"a b"),
    ("name=", b""),
])
def test_http_query_param(server, query, value):
    srv = server("--http")
    resp = exchange(srv, b"GET /query?%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % query.encode())
    assert resp.status_line == "HTTP/1.1 200 OK"
    assert resp.body == value


def test_http_post_echo(server):
    srv = server("--http")
    body = bytes(range(256)) * 40
    resp = exchange(srv, b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
                    % len(body) + body)
    assert resp.status_line == "HTTP/1.1 200 OK"
    assert resp.body == body


def test_http_post_echo_body_in_pieces(server):
    srv = server("--http")
    body = b"0123456789" * 1000
    c = wsutil.Conn(wsutil.connect(srv.port))
    try:
        c.send(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
               % len(body) + body[:10])
        time.sleep(0.05)
        c.send(body[10:5000])
        time.sleep(0.05)
        c.send(body[5000:])
        resp = c.read_http_response()
        assert resp.status_line == "HTTP/1.1 200 OK"
        assert resp.body == body
    finally:
        c.close()


def test_http_unknown_path_404(server):
    srv = server("--http")
    resp = exchange(srv, b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert resp.status_line == "HTTP/1.1 404 Not Found"
    resp = exchange(srv, b"POST /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
    assert resp.status_line == "HTTP/1.1 404 Not Found"


def test_http_keepalive_pipelined(server):
    srv = server("--http")
    c = wsutil.Conn(wsutil.connect(srv.port))
    try:
        c.send(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
               b"GET /query?name=two HTTP/1.1\r\nHost: a\r\n\r\n"
               b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz")
        r1 = c.read_http_response()
        r2 = c.read_http_response()
        r3 = c.read_http_response()
        assert (r1.status_line, r1.body) == ("HTTP/1.1 200 OK", b"hello")
        assert (r2.status_line, r2.body) == ("HTTP/1.1 200 OK", b"two")
        assert (r3.status_line, r3.body) == ("HTTP/1.1 200 OK", b"xyz")
        # Then an upgrade on the same connection.
        key = wsutil.new_key()
        c.send(upgrade_request(srv.port, key=key))
        r4 = c.read_http_response(body=False)
        assert r4.status_line == "HTTP/1.1 101 Switching Protocols"
        assert r4.header("sec-websocket-accept") == wsutil.accept_for(key)
        c.send_frame(wsutil.OP_TEXT, b"upgraded")
        assert c.read_frame() == (True, wsutil.OP_TEXT, b"upgraded")
    finally:
        c.close()


def test_http_body_limit_413(server):
    srv = server("--http", "--max-body", 1000)
    ok = b"b" * 1000
    resp = exchange(srv, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + ok)
    assert resp.status_line == "HTTP/1.1 200 OK"
    assert resp.body == ok
    assert_refused(srv, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n"
                   + b"b" * 1001, "HTTP/1.1 413 Content Too Large")
    # Refused from the Content-Length alone, before any body byte arrives.
    assert_refused(srv, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n",
                   "HTTP/1.1 413 Content Too Large")


def test_http_upgrade_with_handler_still_works(server):
    srv = server("--http")

    async def main():
        async with ws_connect(srv.port, path="/hello") as ws:
            await ws.send("ws")
            assert await asyncio.wait_for(ws.recv(), t(5)) == "ws"

    run(main())


# ---- handshake timeout ------------------------------------------------------------

@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"],
                         ids=["nothing", "half-request"])
def test_handshake_timeout(server, sent):
    srv = server("--handshake-timeout", 300)
    s = wsutil.connect(srv.port)
    try:
        if sent:
            s.sendall(sent)
        start = time.monotonic()
        try:
            elapsed = wsutil.wait_for_eof(s, t(1.5))
        except socket.timeout:
            raise AssertionError("socket still open 1.5 s after connect with "
                                 "--handshake-timeout 300")
        assert elapsed >= 0.2, "closed after %.3f s, before the timeout" % elapsed
        assert time.monotonic() - start <= t(1.5)
    finally:
        s.close()
    assert srv.count(r"^OPEN ") == 0


def test_handshake_timeout_dribbling_client(server):
    """Sending a byte every 100 ms does not extend the handshake timeout."""
    srv = server("--handshake-timeout", 300)
    s = wsutil.connect(srv.port)
    req = upgrade_request(srv.port)
    start = time.monotonic()
    closed = False
    try:
        for i in range(30):
            try:
                s.sendall(req[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            s.settimeout(0.1)
            try:
                if s.recv(4096) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
        elapsed = time.monotonic() - start
        assert closed, "still open after %.2f s of dribbling" % elapsed
        assert elapsed <= t(1.5)
    finally:
        s.close()


def test_handshake_timeout_not_applied_after_upgrade(server):
    srv = server("--handshake-timeout", 300)
    c, _ = wsutil.handshake(srv.port)
    try:
        time.sleep(0.8)
        c.send_frame(wsutil.OP_TEXT, b"late")
        assert c.read_frame() == (True, wsutil.OP_TEXT, b"late")
    finally:
        c.close()
    assert srv.count(r"cause=timeout") == 0


# ---- max connections ---------------------------------------------------------------

def test_max_connections_503(server):
    srv = server("--max-connections", 2)

    async def main():
        a = await ws_connect(srv.port)
        b = await ws_connect(srv.port)
        try:
            await srv.await_count(r"^OPEN ", 2)
            with pytest.raises(websockets.InvalidStatusCode) as e:
                await ws_connect(srv.port)
            assert e.value.status_code == 503
            # The same, raw, for the exact status line.
            resp = await asyncio.get_running_loop().run_in_executor(
                None, assert_refused, srv, upgrade_request(srv.port),
                "HTTP/1.1 503 Service Unavailable")
            assert resp.status == 503
            assert resp.header("retry-after") == "1", resp
            assert srv.count(r"^OPEN ") == 2
            # After one closes, a new one gets in.
            await a.close()
            await srv.aexpect(r"^CLOSE \d+ code=1000 cause=clean remote=1")
            c = await ws_connect(srv.port)
            await c.send("third")
            assert await asyncio.wait_for(c.recv(), t(5)) == "third"
            await c.close()
        finally:
            await a.close()
            await b.close()

    run(main())
    assert srv.count(r"^OPEN ") == 3
