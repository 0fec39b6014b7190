"""The opening handshake from the client's side: what the request carries
(headers, path and query, subprotocols, Host), host names and IPv6, URL
errors, and servers that answer wrongly (raw sockets): each ends in a clear
GIVEUP and exit status 0."""

import base64
import socket
import time

import pytest

from rawpeer import accept_for, t

from ..common.sockio import free_port

WS_EADDR, WS_ECONNECT, WS_EHANDSHAKE = -6, -13, -14
WS_ETIMEDOUT, WS_EDNS, WS_EUNSUPPORTED = -15, -16, -17


def url(port, path="/", host="127.0.0.1"):
    return "ws://%s:%d%s" % (host, port, path)


def headers_of(ev):
    return [(k.lower(), v) for k, v in ev["headers"]]


def header(ev, name):
    vals = [v for k, v in headers_of(ev) if k == name.lower()]
    assert len(vals) <= 1, "header %s repeated: %r" % (name, vals)
    return vals[0] if vals else None


def expect_giveup(cl, error, timeout=5.0):
    m = cl.expect(r"^GIVEUP error=(-?\d+) (.*)$", timeout=timeout)
    assert int(m.group(1)) == error, "GIVEUP %s, wanted %d\n%s" % (m.group(0), error,
                                                                   cl.output())
    assert m.group(2) and m.group(2) != "unknown error", m.group(0)
    return m


# ---- the request -------------------------------------------------------------


def test_request_headers(client, peer):
    p = peer()
    cl = client(url(p.port, "/chat"), "--header", "X-Test:hello",
                "--header", "Authorization:Bearer abc.def", "--header", "X-Empty:",
                "--close", 1000)
    cl.expect(r"^OPEN ")
    cl.finish()
    ev = p.expect_event("open")
    assert header(ev, "x-test") == "hello"
    assert header(ev, "authorization") == "Bearer abc.def"
    assert header(ev, "x-empty") == ""
    assert header(ev, "host") == "127.0.0.1:%d" % p.port
    assert header(ev, "upgrade").lower() == "websocket"
    assert "upgrade" in header(ev, "connection").lower()
    assert header(ev, "sec-websocket-version") == "13"
    key = header(ev, "sec-websocket-key")
    assert len(base64.b64decode(key, validate=True)) == 16


def test_keys_differ_between_connections(client, peer):
    p = peer()
    for _ in range(2):
        client(url(p.port), "--close", 1000).finish()
    keys = [header(p.expect_event("open"), "sec-websocket-key") for _ in range(2)]
    assert keys[0] != keys[1]


@pytest.mark.parametrize("path", ["/", "/a/b/c", "/path?x=1&y=two", "/p?q=%20%2F&e=",
                                  "/%7Euser/index.html"])
def test_path_and_query(client, peer, path):
    p = peer()
    cl = client(url(p.port, path), "--close", 1000)
    cl.expect(r"^OPEN ")
    cl.finish()
    assert p.expect_event("open")["path"] == path


def test_no_path_means_slash(client, peer):
    p = peer()
    cl = client("ws://127.0.0.1:%d" % p.port, "--close", 1000)
    cl.expect(r"^OPEN ")
    cl.finish()
    assert p.expect_event("open")["path"] == "/"


def test_query_without_path(client, peer):
    """RFC 6455 3 / RFC 3986: "ws://host:port?x=1" is a valid ws URI (empty
    path); its resource name is "/?x=1"."""
    p = peer()
    cl = client("ws://127.0.0.1:%d?x=1" % p.port, "--close", 1000)
    m = cl.expect(r"^CONNECT rc=(-?\d+)$")
    assert int(m.group(1)) == 0, cl.output()
    cl.expect(r"^OPEN ")
    cl.finish()
    assert p.expect_event("open")["path"] == "/?x=1"


# ---- subprotocols ------------------------------------------------------------


def test_subprotocol_chosen(client, peer):
    p = peer("--subprotocols", "superchat,chat")
    cl = client(url(p.port), "--subprotocols", "chat, superchat", "--close", 1000)
    m = cl.expect(r"^OPEN \S+ proto=(\S*)$")
    assert m.group(1) in ("chat", "superchat")
    cl.finish()
    ev = p.expect_event("open")
    assert header(ev, "sec-websocket-protocol") == "chat, superchat"
    assert ev["subprotocol"] == m.group(1)


def test_subprotocol_single(client, peer):
    p = peer("--subprotocols", "v2.json,other")
    cl = client(url(p.port), "--subprotocols", "v1.json, v2.json", "--close", 1000)
    cl.expect(r"^OPEN \S+ proto=v2\.json$")
    cl.finish()


def test_subprotocol_none_agreed(client, peer):
    """The server supports none of the offered ones and answers without the
    header: allowed, proto is empty."""
    p = peer("--subprotocols", "zzz")
    cl = client(url(p.port), "--subprotocols", "chat", "--close", 1000)
    cl.expect(r"^OPEN \S+ proto=$")
    cl.finish()
    assert p.expect_event("open")["subprotocol"] is None


def test_subprotocol_not_offered(client, peer):
    p = peer("--force-subprotocol", "bogus")
    cl = client(url(p.port), "--subprotocols", "chat, superchat")
    expect_giveup(cl, WS_EHANDSHAKE)
    cl.finish()
    assert cl.count(r"^OPEN ") == 0
    assert cl.count(r"^CLOSE ") == 0


def test_subprotocol_prefix_of_offered(client, raw_server):
    """"cha" is a prefix of the offered "chat" but not one of them."""
    srv = raw_server(lambda peer: peer.accept(extra=[("Sec-WebSocket-Protocol", "cha")]))
    cl = client(url(srv.port), "--subprotocols", "chat")
    expect_giveup(cl, WS_EHANDSHAKE)
    cl.finish()


def test_subprotocol_when_none_offered(client, raw_server):
    srv = raw_server(lambda peer: peer.accept(extra=[("Sec-WebSocket-Protocol", "chat")]))
    cl = client(url(srv.port))
    expect_giveup(cl, WS_EHANDSHAKE)
    cl.finish()


# ---- host names --------------------------------------------------------------


def test_localhost(client, peer):
    p = peer()
    cl = client(url(p.port, host="localhost"), "--send", "hi", "--expect", 1,
                "--close", 1000, "--connect-timeout", 5000)
    cl.expect(r"^OPEN 127\.0\.0\.1:%d proto=$" % p.port)
    cl.expect(r"^DATA text 2 hi$")
    cl.finish()
    assert header(p.expect_event("open"), "host") == "localhost:%d" % p.port


def ipv6_available():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_literal(client, peer):
    p = peer("--host", "::1")
    cl = client("ws://[::1]:%d/v6?x=1" % p.port, "--send", "over v6", "--expect", 1,
                "--close", 1000)
    cl.expect(r"^OPEN \[::1\]:%d proto=$" % p.port)
    cl.expect(r"^DATA text 7 over v6$")
    cl.finish()
    ev = p.expect_event("open")
    assert header(ev, "host") == "[::1]:%d" % p.port
    assert ev["path"] == "/v6?x=1"
    assert ev["remote"].startswith("::1:")


# ---- URL errors ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    "http://127.0.0.1:80/", "127.0.0.1:80", "", "ws:/127.0.0.1/", "ws://", "ws:///path",
    "ws://:80/", "ws://127.0.0.1:/", "ws://127.0.0.1:0/", "ws://127.0.0.1:65536/",
    "ws://127.0.0.1:99999999999999999999/", "ws://127.0.0.1:8o/", "ws://127.0.0.1:80x/",
    "ws://[::1/", "ws://[]:80/", "ws://127.0.0.1/a b", "ws://127.0.0.1/#frag",
    "ws://127.0.0.1/x\r\nEvil: 1", "ws://" + "a" * 300 + "/",
])
def test_malformed_url(client, bad):
    cl = client(bad)
    cl.expect(r"^CONNECT rc=%d$" % WS_EADDR)
    lines = cl.finish(timeout=5)
    assert not [ln for ln in lines if ln.startswith(("OPEN", "RECONNECT", "CLOSE"))], lines


@pytest.mark.parametrize("bad", [
    "ws://127.0.0.1:+80/", "ws://127.0.0.1: 80/", "ws://127.0.0.1:-0/",
    "ws://[::1]x/", "ws://[::1]80/",
])
def test_malformed_url_strict(client, bad):
    """Port digits only, and nothing but ':', '/', '?' or the end after an
    IPv6 literal's ']' (RFC 3986 authority syntax)."""
    cl = client(bad)
    cl.expect(r"^CONNECT rc=%d$" % WS_EADDR)
    cl.finish(timeout=5)


# wss:// is supported (tests/tls); its scheme is case-insensitive like ws://.
# Nothing listens on port 1: the attempt fails at the TCP connect.
@pytest.mark.parametrize("u", ["wss://127.0.0.1:1/", "WSS://127.0.0.1:1/"])
def test_wss_accepted(client, u):
    cl = client(u)
    cl.expect(r"^CONNECT rc=0$")
    lines = cl.finish(timeout=5)
    assert not [ln for ln in lines if ln.startswith(("OPEN", "RECONNECT"))], lines
    assert [ln for ln in lines if ln.startswith("GIVEUP error=-13 ")], lines


def test_scheme_case_insensitive(client, peer):
    p = peer()
    cl = client("WS://127.0.0.1:%d/" % p.port, "--close", 1000)
    cl.expect(r"^CONNECT rc=0$")
    cl.expect(r"^OPEN ")
    cl.finish()


# ---- connection failures ------------------------------------------------------


def test_connection_refused(client):
    cl = client(url(free_port()))
    expect_giveup(cl, WS_ECONNECT)
    lines = cl.finish()
    assert not [ln for ln in lines if ln.startswith(("OPEN", "CLOSE", "RECONNECT"))], lines


def test_unresolvable_host(client):
    """Resolution fails (WS_EDNS); if this machine's resolver does not
    answer at all, the connect timeout bounds it (WS_ETIMEDOUT)."""
    start = time.monotonic()
    cl = client("ws://no-such-host.invalid:%d/" % 8080, "--connect-timeout", 3000)
    m = cl.expect(r"^GIVEUP error=(-?\d+) ", timeout=8)
    assert int(m.group(1)) in (WS_EDNS, WS_ETIMEDOUT), m.group(0)
    assert time.monotonic() - start < t(3.0) + t(4.0)
    cl.finish()


def test_server_never_answers(client, raw_server):
    """A server that accepts the TCP connection and never answers: GIVEUP
    WS_ETIMEDOUT after the handshake timeout."""
    def silent(peer):
        peer.read_request()
        peer.wait_eof(timeout=10)

    srv = raw_server(silent)
    cl = client(url(srv.port), "--handshake-timeout", 700)
    m, when = cl.expect(r"^GIVEUP error=(-?\d+) ", timeout=6, with_time=True)
    assert int(m.group(1)) == WS_ETIMEDOUT
    elapsed = when - cl.started
    assert 0.6 <= elapsed <= 0.7 + t(2.0), elapsed
    cl.finish()
    srv.wait_done()


def test_silent_before_reading_request(client, raw_server):
    """Accepts, never reads, never answers."""
    def mute(peer):
        peer.wait_eof(timeout=10)

    srv = raw_server(mute)
    cl = client(url(srv.port), "--handshake-timeout", 500)
    expect_giveup(cl, WS_ETIMEDOUT, timeout=5)
    cl.finish()


def test_connect_timeout(client):
    """A listener whose accept queue is full drops our SYN: the TCP connect
    never completes and the connect timeout (not the handshake timeout)
    ends the attempt."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        time.sleep(0.1)
        cl = client(url(port), "--connect-timeout", 700, "--handshake-timeout", 8000)
        m, when = cl.expect(r"^GIVEUP error=(-?\d+) ", timeout=6, with_time=True)
        assert int(m.group(1)) == WS_ETIMEDOUT, m.group(0)
        elapsed = when - cl.started
        assert 0.6 <= elapsed <= 0.7 + t(2.0), elapsed
        cl.finish()
    finally:
        for s in fillers:
            s.close()
        lsock.close()


def test_stop_during_name_resolution(client):
    """SIGTERM right after ws_client_connect, while the name may still be
    resolving: GIVEUP, exit 0, nothing leaks (sanitizers)."""
    cl = client("ws://no-such-host.invalid:80/", "--connect-timeout", 5000)
    cl.expect(r"^CONNECT rc=0$")
    time.sleep(0.05)  # ws_client_run takes over SIGTERM right after CONNECT
    cl.signal(15)
    cl.expect(r"^GIVEUP ", timeout=6)
    cl.finish()


def test_default_port_80(client, raw_server):
    """No port in the URL: TCP port 80 and a Host header without a port."""
    seen = []

    def handler(peer):
        seen.append(peer.accept())
        f = peer.read_frame()
        peer.send(b"\x88\x02" + f.payload[:2])
        peer.wait_eof()

    try:
        srv = raw_server(handler, port=80)
    except OSError as e:
        pytest.skip("cannot listen on 127.0.0.1:80: %s" % e)
    cl = client("ws://127.0.0.1/x", "--close", 1000)
    cl.expect(r"^OPEN 127\.0\.0\.1:80 ")
    cl.finish()
    srv.wait_done()
    assert seen[0].header("host") == "127.0.0.1"
    assert seen[0].request_line == "GET /x HTTP/1.1"


def test_ping_too_big(client, peer):
    p = peer()
    cl = client(url(p.port), "--ping", "p" * 126, "--close", 1000)
    cl.expect(r"^ERROR ws_conn_ping rc=-5$")
    cl.finish()


# ---- bad servers ----------------------------------------------------------------


def respond(head, close=True, body=b""):
    """A handler: read the request, send head (str, \\r\\n added), close."""
    def handler(peer):
        peer.read_request()
        peer.send(head.encode("latin-1") + body)
        if close:
            peer.close()
        else:
            peer.wait_eof(timeout=10)
    return handler


def accept_with(**kw):
    keep_open = kw.pop("keep_open", True)

    def handler(peer):
        peer.accept(**kw)
        if keep_open:
            peer.wait_eof(timeout=10)
    return handler


BAD_RESPONSES = {
    "wrong-accept": accept_with(accept=accept_for("dGhlIHNhbXBsZSBub25jZQ==")),
    "empty-accept": accept_with(accept=""),
    "no-accept": accept_with(omit=("sec-websocket-accept",)),
    "status-403": respond("HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\n",
                          body=b"forbidden"),
    "status-403-kept-open": respond("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
                                    close=False),
    "status-200": respond("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                          "Content-Length: 5\r\n\r\n", body=b"hello"),
    "status-200-upgrade-headers": accept_with(status="200 OK"),
    "http-1.0-101": accept_with(version="HTTP/1.0"),
    "status-302": respond("HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\n\r\n"),
    "no-upgrade": accept_with(omit=("upgrade",)),
    "upgrade-h2c": accept_with(omit=("upgrade",), extra=[("Upgrade", "h2c")]),
    "no-connection": accept_with(omit=("connection",)),
    "connection-close": accept_with(omit=("connection",), extra=[("Connection", "close")]),
    "extension-x-foo": accept_with(extra=[("Sec-WebSocket-Extensions", "x-foo")]),
    "extension-deflate-unknown-param": accept_with(
        extra=[("Sec-WebSocket-Extensions", "permessage-deflate; x_param")]),
    "extension-deflate-bad-bits": accept_with(
        extra=[("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=99")]),
    "extension-deflate-twice": accept_with(
        extra=[("Sec-WebSocket-Extensions", "permessage-deflate, permessage-deflate")]),
    "garbage-then-close": respond("\x00\xff\x13garbage\x7f\x80 not http at all"),
    "garbage-head": respond("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                            close=False),
    "status-line-junk": respond("HTTP/1.1 1O1 Switching\r\n\r\n", close=False),
    "no-http-version": respond("101 Switching Protocols\r\n\r\n", close=False),
    "huge-head": respond("HTTP/1.1 101 Switching Protocols\r\n"
                         + "X-Pad: %s\r\n" % ("p" * 1000) * 20, close=False),
    "close-after-request": respond(""),
}


@pytest.mark.parametrize("name", sorted(BAD_RESPONSES))
def test_bad_server(client, raw_server, name):
    srv = raw_server(BAD_RESPONSES[name])
    start = time.monotonic()
    cl = client(url(srv.port), "--send", "never", "--handshake-timeout", 5000)
    expect_giveup(cl, WS_EHANDSHAKE, timeout=4)
    assert time.monotonic() - start < t(4)
    lines = cl.finish()
    assert not [ln for ln in lines if ln.startswith(("OPEN", "DATA", "CLOSE"))], lines


def test_deflate_answer_when_not_offered(client, raw_server):
    """--no-deflate: a server that still answers permessage-deflate."""
    srv = raw_server(accept_with(extra=[("Sec-WebSocket-Extensions", "permessage-deflate")]))
    cl = client(url(srv.port), "--no-deflate")
    expect_giveup(cl, WS_EHANDSHAKE)
    cl.finish()


def test_garbage_without_end_times_out(client, raw_server):
    """Garbage with no blank line, connection kept open: the client cannot
    tell it from a slow head before max_head_size or the handshake timeout."""
    srv = raw_server(respond("this is not HTTP and it never ends", close=False))
    cl = client(url(srv.port), "--handshake-timeout", 800)
    m = cl.expect(r"^GIVEUP error=(-?\d+) ", timeout=5)
    assert int(m.group(1)) in (WS_EHANDSHAKE, WS_ETIMEDOUT)
    cl.finish()


def test_valid_variants_accepted(client, raw_server):
    """Header names and token values in other cases, extra headers, a
    Connection list: all valid (RFC 6455 4.1, RFC 7230)."""
    def handler(peer):
        req = peer.read_request()
        peer.send("HTTP/1.1 101 Web Socket Protocol Handshake\r\n"
                  "upgrade: WebSocket\r\n"
                  "CONNECTION: keep-alive, Upgrade\r\n"
                  "sec-websocket-accept: %s\r\n"
                  "Server: raw\r\n\r\n" % accept_for(req.key))
        peer.wait_eof(timeout=10)

    srv = raw_server(handler)
    cl = client(url(srv.port), "--no-deflate", "--close", 1000, "--close-timeout", 300)
    cl.expect(r"^OPEN ")
    cl.finish()


def test_server_answers_deflate_params(client, peer):
    """websockets' answer carries server_max_window_bits=12 and
    client_max_window_bits=12: accepted, and messages flow both ways."""
    p = peer()
    cl = client(url(p.port), "--send", "z" * 5000, "--expect", 1, "--close", 1000)
    cl.expect(r"^DATA text 5000 z{40}$")
    cl.finish()
    assert "client_max_window_bits=12" in p.expect_event("open")["extensions"]
