"""A use-after-free hunt on every handshake error path (libwebsockets
CVE-2025-11677: a connection freed on an error path was used again).

Every refusal the server can give (400, 405, 426, 431, 413, 501, 503, bad
key or version, missing Upgrade or Connection), a disconnect in the middle
of a head, right after a head, and requests pipelined behind an upgrade,
each triggered on many sockets at once, while the client ends each socket
differently: reading the answer, resetting (SO_LINGER 0) before or after
the answer or in the middle of its request, half-closing, closing without
reading. The server must answer each as expected, release every socket
(fds back to the baseline), keep serving a correct client, and exit
cleanly with no sanitizer report: the value of this test is in the ASan
and TSan builds, where the fixture fails the test on any report.
"""
import socket
import struct

import pytest

import wsutil
from attackutil import Bystander, Figures, scaled

SOCKETS = scaled(12, 6)      # per trigger, the modes below in turn


def upg(port, **kw):
    return wsutil.upgrade_request(port, **kw)


def http(method, path, headers=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# (id, server kind, request(port) -> bytes, expected status; None: no answer
# is due (the request is incomplete).
TRIGGERS = [
    ("400-malformed", "plain", lambda p: b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    ("400-bad-request-line", "plain", lambda p: b"GET\r\n\r\n", 400),
    ("405-method", "plain", lambda p: upg(p, method="POST"), 405),
    ("426-version", "plain", lambda p: upg(p, version="8"), 426),
    ("426-no-version", "plain", lambda p: upg(p, version=None), 426),
    ("426-not-upgrade-no-handler", "plain", lambda p: http("GET", "/"), 426),
    ("431-head-too-big", "plain",
     lambda p: upg(p, extra=(("X-Big", "b" * 9000),)), 431),
    ("431-too-many-headers", "plain",
     lambda p: upg(p, extra=[("X-H%d" % i, "v") for i in range(120)]), 431),
    ("413-body-too-big", "http",
     lambda p: http("POST", "/echo", ["Content-Length: %d" % (2 << 20)], b"x" * 1000), 413),
    ("426-body-no-handler", "plain",
     lambda p: http("POST", "/echo", ["Content-Length: %d" % (2 << 20)], b"x" * 1000), 426),
    ("400-upgrade-with-body", "plain",
     lambda p: upg(p, extra=(("Content-Length", "5"),)) + b"hello", 400),
    ("400-two-hosts", "http", lambda p: http("GET", "/hello", ["Host: again"]), 400),
    ("400-no-host-http", "http", lambda p: b"GET /hello HTTP/1.1\r\n\r\n", 400),
    ("501-chunked", "http",
     lambda p: http("POST", "/echo", ["Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\r\n\r\n"),
     501),
    ("400-two-lengths", "http",
     lambda p: http("POST", "/echo", ["Content-Length: 1", "Content-Length: 2"], b"ab"), 400),
    ("503-max-connections", "full", lambda p: upg(p), 503),
    ("400-bad-key", "plain", lambda p: upg(p, key="short=="), 400),
    ("400-two-keys", "plain",
     lambda p: upg(p, extra=(("Sec-WebSocket-Key", wsutil.new_key()),)), 400),
    ("400-http10-upgrade", "plain",
     lambda p: upg(p).replace(b"HTTP/1.1", b"HTTP/1.0", 1), 400),
    ("missing-upgrade", "plain", lambda p: upg(p, omit=("upgrade",)), 426),
    ("missing-connection", "plain", lambda p: upg(p, omit=("connection",)), 400),
    ("missing-host", "plain", lambda p: upg(p, host=False), 400),
    ("mid-head", "plain", lambda p: upg(p)[:40], None),
    ("mid-body", "http",
     lambda p: http("POST", "/echo", ["Content-Length: 100"], b"partial"), None),
    ("after-head-upgrade", "plain", lambda p: upg(p), 101),
    ("after-head-http", "http", lambda p: http("GET", "/hello"), 200),
    ("pipelined-get-behind-upgrade", "plain",
     lambda p: upg(p) + http("GET", "/hello"), 101),
    ("pipelined-upgrade-behind-upgrade", "plain", lambda p: upg(p) + upg(p), 101),
    ("upgrade-then-frames", "plain",
     lambda p: upg(p) + wsutil.frame(wsutil.OP_TEXT, b"x" * 3000) + wsutil.frame(wsutil.OP_PING)
     + wsutil.frame(wsutil.OP_CLOSE, struct.pack("!H", 1000)), 101),
    ("http-pipelined-then-upgrade", "http",
     lambda p: http("GET", "/hello") * 20 + upg(p), 200),
    ("http-body-then-bad", "http",
     lambda p: http("POST", "/echo", ["Content-Length: 5"], b"hello") + b"BAD\r\n\r\n", 200),
]

# How the client ends each socket.
MODES = ["read", "rst-now", "rst-partial", "half-close", "rst-after-answer", "close-now"]

SERVER_OPTS = {"plain": [], "http": ["--http"], "full": ["--max-connections", 2]}


def linger0(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def send_quietly(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may have answered and closed already


def finish(c, mode, req, expected):
    """End one socket as mode says; returns the status read (or None)."""
    s = c.sock
    status = None
    try:
        if mode in ("read", "rst-after-answer") and expected is not None:
            status = c.read_http_response(body=False).status
        elif mode == "half-close":
            s.shutdown(socket.SHUT_WR)
            data = c.read_until_eof(timeout=5)
            if expected is not None:
                status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else -1
        if mode.startswith("rst"):
            linger0(s)
    except OSError:
        status = -2
    finally:
        c.close()
    return status


@pytest.mark.parametrize("kind,request_of,expected", [t[1:] for t in TRIGGERS],
                         ids=[t[0] for t in TRIGGERS])
def test_handshake_error_path(shared_server, kind, request_of, expected):
    srv = shared_server(*SERVER_OPTS[kind])
    by = Bystander(srv.port)
    holders = []
    if kind == "full":  # the bystander and one more fill max_connections
        holders.append(wsutil.handshake(srv.port)[0])
    fig = Figures(srv, "handshake-error")
    req = request_of(srv.port)
    conns = [wsutil.Conn(wsutil.connect(srv.port)) for _ in range(SOCKETS)]
    statuses = {}
    try:
        for i, c in enumerate(conns):
            mode = MODES[i % len(MODES)]
            if mode == "rst-partial":
                send_quietly(c.sock, req[:max(1, len(req) // 2)])
                linger0(c.sock)
                c.close()
            else:
                send_quietly(c.sock, req)
                if mode in ("rst-now", "close-now"):
                    if mode == "rst-now":
                        linger0(c.sock)
                    c.close()
        by.echo(fresh=kind != "full")  # served while the others are refused
        for i, c in enumerate(conns):
            mode = MODES[i % len(MODES)]
            if mode in ("rst-partial", "rst-now", "close-now"):
                continue
            statuses.setdefault(mode, []).append(finish(c, mode, req, expected))
    finally:
        for c in conns:
            c.close()
    for mode in ("read", "rst-after-answer", "half-close"):
        got = statuses.get(mode, [])
        assert got and all(st == expected for st in got), (mode, got, expected)
    by.echo(fresh=kind != "full")
    for h in holders:
        h.close()
    by.close()
    fig.report(sockets=SOCKETS, expected=expected, modes=len(MODES))
    fig.wait_fds_back()
    fig.assert_growth_below(4 * 1024)
