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

from scaleutil import ECHO_BIN, HOST, Proc, t

TRUSTED = "127.0.0.1/32"


def start_echo(*extra):
    p = Proc([ECHO_BIN, "--log", "--trusted-proxies", TRUSTED] + list(extra) +
             ["127.0.0.1:0"])
    m = p.expect(r"^listening on ws://[^:]+:(\d+)/$", timeout=10)
    p.port = int(m.group(1))
    return p


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


# ---- X-Forwarded-For ---------------------------------------------------------

def test_xff_from_trusted_proxy_names_the_client(echo_plain):
    s = connect_from("127.0.0.1", echo_plain.port)
    s.sendall(upgrade(echo_plain.port, "X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\n"))
    assert read_all(s).startswith(b"HTTP/1.1 101")
    # the right-most untrusted entry: 6.6.6.6 could be forged by the client
    echo_plain.expect(r"^open 203\.0\.113\.9:0$", timeout=5)
    s.close()


def test_xff_from_untrusted_peer_is_ignored(echo_plain):
    s = connect_from("127.0.0.7", echo_plain.port)
    port = s.getsockname()[1]
    s.sendall(upgrade(echo_plain.port, "X-Forwarded-For: 203.0.113.9\r\n"))
    assert read_all(s).startswith(b"HTTP/1.1 101")
    echo_plain.expect(r"^open 127\.0\.0\.7:%d$" % port, timeout=5)
    s.close()


def test_malformed_xff_is_ignored(echo_plain):
    s = connect_from("127.0.0.1", echo_plain.port)
    port = s.getsockname()[1]
    s.sendall(upgrade(echo_plain.port, "X-Forwarded-For: 203.0.113.9, bogus\r\n"))
    assert read_all(s).startswith(b"HTTP/1.1 101")
    echo_plain.expect(r"^open 127\.0\.0\.1:%d$" % port, timeout=5)
    s.close()


@pytest.mark.parametrize("forged", [15, 16])
def test_xff_nearest_header_line_counts(echo_plain, forged):
    # A proxy that adds its own X-Forwarded-For line (HAProxy's forwardfor)
    # after the client's: libwsc reads at most 16 lines, and they must be
    # the last ones, or a client sending 16 forged lines names itself.
    s = connect_from("127.0.0.1", echo_plain.port)
    lines = "".join("X-Forwarded-For: 6.6.6.%d\r\n" % i for i in range(forged))
    s.sendall(upgrade(echo_plain.port, lines + "X-Forwarded-For: 203.0.113.9\r\n"))
    assert read_all(s).startswith(b"HTTP/1.1 101")
    echo_plain.expect(r"^open 203\.0\.113\.9:0$", timeout=5)
    s.close()


# ---- PROXY protocol ------------------------------------------------------------

def test_proxy_v1_from_trusted_peer(echo_proxy):
    s = connect_from("127.0.0.1", echo_proxy.port)
    s.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 56324 80\r\n" + upgrade(echo_proxy.port))
    assert read_all(s).startswith(b"HTTP/1.1 101")
    echo_proxy.expect(r"^open 192\.0\.2\.7:56324$", timeout=5)
    s.close()


def test_proxy_v2_in_pieces_from_trusted_peer(echo_proxy):
    s = connect_from("127.0.0.1", echo_proxy.port)
    data = v2_header("198.51.100.4", 40001) + upgrade(echo_proxy.port)
    for i in range(0, len(data), 7):        # the header arrives a few bytes at a time
        s.sendall(data[i:i + 7])
    assert read_all(s).startswith(b"HTTP/1.1 101")
    echo_proxy.expect(r"^open 198\.51\.100\.4:40001$", timeout=5)
    s.close()


def test_proxy_v2_local_keeps_peer(echo_proxy):
    s = connect_from("127.0.0.1", echo_proxy.port)
    port = s.getsockname()[1]
    s.sendall(b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00" + upgrade(echo_proxy.port))
    assert read_all(s).startswith(b"HTTP/1.1 101")
    echo_proxy.expect(r"^open 127\.0\.0\.1:%d$" % port, timeout=5)
    s.close()


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
    ok = connect_from("127.0.0.1", echo_proxy.port)
    ok.sendall(b"PROXY TCP4 192.0.2.8 127.0.0.1 1 80\r\n" + upgrade(echo_proxy.port))
    assert read_all(ok).startswith(b"HTTP/1.1 101")
    m = echo_proxy.expect(r"^open ", timeout=5)
    assert m.string == "open 192.0.2.8:1"
    ok.close()


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
