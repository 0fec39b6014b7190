"""The real client address, straight against examples/echo (no proxy in
between): X-Forwarded-For believed only from trusted proxies, the PROXY
protocol v1/v2 accepted only from them and only when well-formed.

Clients bind to other loopback addresses (127.0.0.0/8) so that "the proxy"
(127.0.0.1, trusted) and "a client" (127.0.0.x, untrusted) differ.
"""

import base64
import os
import socket
import struct

import pytest

from scaleutil import ECHO_BIN, HOST, start_server, t

TRUSTED = "127.0.0.1/32"


def start_echo(*extra):
    return start_server([ECHO_BIN, "--log", "--trusted-proxies", TRUSTED] + list(extra) +
                        ["127.0.0.1:0"], r"^listening on ws://[^:]+:(\d+)/$")


@pytest.fixture
def echo_plain():
    p = start_echo()
    yield p
    assert p.stop() == 0 and p.sanitizer_report() is None


@pytest.fixture
def echo_proxy():
    p = start_echo("--proxy-protocol")
    yield p
    assert p.stop() == 0 and p.sanitizer_report() is None


def upgrade(port, extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n%s\r\n" % (port, key, extra)).encode()


def connect_from(src, port):
    s = socket.socket()
    s.settimeout(t(5))
    s.bind((src, 0))
    s.connect((HOST, port))
    return s


def read_all(s):
    """Everything until the peer closes (bounded by the socket timeout)."""
    buf = b""
    while True:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            return buf
        if not chunk:
            return buf
        buf += chunk
        if b"\r\n\r\n" in buf and buf.startswith(b"HTTP/1.1 101"):
            return buf


def v2_header(src, sport, dst="127.0.0.1", dport=80, cmd=0x21):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([cmd, 0x11]) + struct.pack("!H", len(body)) +
            body)


def open_through(echo, src, head=b"", headers="", step=0):
    """Connect from src and upgrade, after head (a PROXY header) and with
    extra headers, step bytes at a time if step. Returns the address echo
    logged for the connection, and our own."""
    s = connect_from(src, echo.port)
    own = "%s:%d" % s.getsockname()
    data = head + upgrade(echo.port, headers)
    step = step or len(data)
    try:
        for i in range(0, len(data), step):
            s.sendall(data[i:i + step])
        assert read_all(s).startswith(b"HTTP/1.1 101")
        return echo.expect(r"^open (\S+)$", timeout=5).group(1), own
    finally:
        s.close()


# ---- X-Forwarded-For ---------------------------------------------------------

@pytest.mark.parametrize("src,xff,want", [
    # the right-most untrusted entry: 6.6.6.6 could be forged by the client
    ("127.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9:0"),
    # from a peer that is not a trusted proxy: ignored (None: the peer)
    ("127.0.0.7", "203.0.113.9", None),
    # malformed: ignored as a whole
    ("127.0.0.1", "203.0.113.9, bogus", None),
])
def test_xff(echo_plain, src, xff, want):
    got, own = open_through(echo_plain, src, headers="X-Forwarded-For: %s\r\n" % xff)
    assert got == (want or own)


@pytest.mark.parametrize("forged", [15, 16])
def test_xff_nearest_header_line_counts(echo_plain, forged):
    # A proxy that adds its own X-Forwarded-For line (HAProxy's forwardfor)
    # after the client's: libwsc reads at most 16 lines, and they must be
    # the last ones, or a client sending 16 forged lines names itself.
    lines = "".join("X-Forwarded-For: 6.6.6.%d\r\n" % i for i in range(forged))
    got, _ = open_through(echo_plain, "127.0.0.1",
                          headers=lines + "X-Forwarded-For: 203.0.113.9\r\n")
    assert got == "203.0.113.9:0"


# ---- PROXY protocol ------------------------------------------------------------

@pytest.mark.parametrize("head,step,want", [
    (b"PROXY TCP4 192.0.2.7 127.0.0.1 56324 80\r\n", 0, "192.0.2.7:56324"),
    # v2, the header arriving a few bytes at a time
    (v2_header("198.51.100.4", 40001), 7, "198.51.100.4:40001"),
    # v2 LOCAL (the proxy's health check) keeps the peer (None)
    (b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00", 0, None),
])
def test_proxy_header_from_trusted_peer(echo_proxy, head, step, want):
    got, own = open_through(echo_proxy, "127.0.0.1", head=head, step=step)
    assert got == (want or own)


@pytest.mark.parametrize("src,data", [
    # a valid header, but from a peer that is not a trusted proxy
    ("127.0.0.9", b"PROXY TCP4 192.0.2.7 127.0.0.1 56324 80\r\n"),
    ("127.0.0.9", v2_header("192.0.2.7", 1)),
    # trusted peer, malformed headers
    ("127.0.0.1", b"PROXY TCP4 192.0.2.300 127.0.0.1 56324 80\r\n"),
    ("127.0.0.1", b"PROXY TCP4 192.0.2.7 127.0.0.1 56324\r\n"),
    ("127.0.0.1", v2_header("192.0.2.7", 1, cmd=0x31)),
    # no header at all on a PROXY listener
    ("127.0.0.1", b""),
])
def test_proxy_header_refused(echo_proxy, src, data):
    s = connect_from(src, echo_proxy.port)
    s.sendall(data + upgrade(echo_proxy.port))
    assert read_all(s) == b""                # closed without an answer
    s.close()
    # the server is fine and the refused one never opened
    got, _ = open_through(echo_proxy, "127.0.0.1",
                          head=b"PROXY TCP4 192.0.2.8 127.0.0.1 1 80\r\n")
    assert got == "192.0.2.8:1"


@pytest.mark.parametrize("data", [
    b"PROXY TCP4 192.0.2.7 127.0.0.1 56",     # v1 cut short
    v2_header("192.0.2.7", 1)[:20],           # v2 cut short
])
def test_truncated_proxy_header_refused(echo_proxy, data):
    s = connect_from("127.0.0.1", echo_proxy.port)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)               # and nothing more will come
    assert read_all(s) == b""
    s.close()
