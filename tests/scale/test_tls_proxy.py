"""The PROXY protocol on TLS listeners (ws_server_listen_tls_opts with
WS_LISTEN_PROXY_PROTOCOL): the header comes in plaintext before the
ClientHello, as HAProxy in TCP mode sends it in front of a wss backend.

A real HAProxy (Debian's, started here with its config in a temporary
directory) with send-proxy and send-proxy-v2 in front of examples/echo
--cert/--key --proxy-protocol: Python websockets over wss through it, and
the backend logs each client's own address. Raw sockets (TLS from Python's
ssl memory BIOs, so that the header and the ClientHello can share one
segment) check what is refused: an untrusted peer, a malformed, truncated or
oversized header, TLS without a header; and that the header is bounded by
the handshake timeout and counts as a pending socket (wsc-test-server).
"""

import asyncio
import os
import shutil
import socket
import ssl
import struct
import subprocess
import time

import pytest
import websockets

from scaleutil import (ECHO_BIN, HOST, SERVER_BIN, free_port, start_peer, start_server,
                       stop_all, t)

from ..common.sockio import recv_until_eof

TRUSTED = "127.0.0.1/32"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("tlsproxy")
    crt, key = str(d / "server.pem"), str(d / "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def client_ctx(cert):
    ctx = ssl.create_default_context(cafile=cert[0])
    return ctx


def start_echo(cert, *extra):
    return start_server([ECHO_BIN, "--log", "--trusted-proxies", TRUSTED, "--proxy-protocol",
                         "--cert", cert[0], "--key", cert[1]] + list(extra) + ["127.0.0.1:0"],
                        r"^listening on wss://[^:]+:(\d+)/$")


@pytest.fixture
def echo(cert):
    p = start_echo(cert)
    yield p
    assert p.stop() == 0 and p.sanitizer_report() is None


def v1_header(src, sport):
    return ("PROXY TCP4 %s 127.0.0.1 %d 443\r\n" % (src, sport)).encode()


def v2_header(src, sport, cmd=0x21, tlv=b""):
    body = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", sport, 443)
    body += tlv
    return V2_SIG + bytes([cmd, 0x11]) + struct.pack("!H", len(body)) + body


def padded_v2(src, sport, total):
    """A v2 header of exactly total bytes (a NOOP TLV pads it)."""
    pad = total - len(v2_header(src, sport)) - 3
    return v2_header(src, sport, tlv=b"\x04" + struct.pack("!H", pad) + b"\0" * pad)


class Tls:
    """A TLS client over a plain socket through memory BIOs: we choose what
    goes into each send (the PROXY header and the ClientHello together)."""

    def __init__(self, sock, cert):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = client_ctx(cert).wrap_bio(self.inc, self.out, server_hostname="localhost")

    def client_hello(self):
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.out.read()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("closed by the server")
        self.inc.write(data)

    def finish_handshake(self):
        for _ in range(50):
            try:
                self.obj.do_handshake()
                self.sock.sendall(self.out.read())
                return
            except ssl.SSLWantReadError:
                self.sock.sendall(self.out.read())
                self._fill()
        raise AssertionError("handshake did not finish")

    def send(self, data):
        self.obj.write(data)
        self.sock.sendall(self.out.read())

    def recv_until(self, marker):
        buf = b""
        for _ in range(200):
            try:
                buf += self.obj.read(65536)
            except ssl.SSLWantReadError:
                self._fill()
                continue
            if marker in buf:
                return buf
        raise AssertionError("no %r in %r" % (marker, buf))


def connect_from(src, port):
    s = socket.socket()
    s.settimeout(t(5))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind((src, 0))
    s.connect((HOST, port))
    return s


UPGRADE = (b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")


def masked_text(payload):
    mask = b"\x01\x02\x03\x04"
    return (bytes([0x81, 0x80 | len(payload)]) + mask +
            bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def open_wss(port, src, head, cert, together=True, step=0):
    """PROXY header head (in step-byte pieces if step), the TLS handshake,
    the upgrade: the open Tls, its socket's own address."""
    s = connect_from(src, port)
    tls = Tls(s, cert)
    hello = tls.client_hello()
    if step:
        for i in range(0, len(head), step):
            s.sendall(head[i:i + step])
            time.sleep(0.01)
        s.sendall(hello)
    elif together:
        s.sendall(head + hello)          # one segment: header and ClientHello
    else:
        s.sendall(head)
        time.sleep(0.05)
        s.sendall(hello)
    tls.finish_handshake()
    tls.send(UPGRADE)
    assert tls.recv_until(b"\r\n\r\n").startswith(b"HTTP/1.1 101")
    return tls, "%s:%d" % s.getsockname()


def echo_works(tls, text):
    tls.send(masked_text(text))
    assert text in tls.recv_until(text)


def assert_refused(s):
    """The server closes without sending a byte (not even a TLS alert)."""
    got = recv_until_eof(s)
    assert got == b""
    s.close()


# ---- accepted ------------------------------------------------------------------

@pytest.mark.parametrize("kind,together,step", [
    ("v1", True, 0), ("v2", True, 0), ("v1", False, 0), ("v2", False, 7), ("v1", False, 5)])
def test_header_then_tls(echo, cert, kind, together, step):
    head = (v1_header if kind == "v1" else v2_header)("192.0.2.7", 40001)
    tls, _ = open_wss(echo.port, "127.0.0.1", head, cert, together, step)
    assert echo.expect(r"^open (\S+)$").group(1) == "192.0.2.7:40001"
    echo_works(tls, b"over tls")
    tls.sock.close()


def test_v2_local_keeps_the_peer(echo, cert):
    tls, own = open_wss(echo.port, "127.0.0.1", V2_SIG + b"\x20\x00\x00\x00", cert)
    assert echo.expect(r"^open (\S+)$").group(1) == own
    tls.sock.close()


def test_largest_v2_header_accepted(echo, cert):
    # 1024 bytes is the limit; the ClientHello behind it is in the same send
    tls, _ = open_wss(echo.port, "127.0.0.1", padded_v2("192.0.2.9", 9, 1024), cert)
    assert echo.expect(r"^open (\S+)$").group(1) == "192.0.2.9:9"
    tls.sock.close()


# ---- refused ---------------------------------------------------------------------

@pytest.mark.parametrize("src,head", [
    ("127.0.0.9", v2_header("192.0.2.7", 1)),            # untrusted peer, v2
    ("127.0.0.9", v1_header("192.0.2.7", 1)),            # untrusted peer, v1
    ("127.0.0.1", b"PROXY TCP4 192.0.2.300 127.0.0.1 1 443\r\n"),   # malformed v1
    ("127.0.0.1", v2_header("192.0.2.7", 1, cmd=0x31)),  # malformed v2 (version 3)
    ("127.0.0.1", padded_v2("192.0.2.7", 1, 1025)),      # one byte over the limit
    ("127.0.0.1", b""),                                  # TLS without a header
], ids=["untrusted-v2", "untrusted-v1", "malformed-v1", "malformed-v2", "v2-1025-bytes",
        "no-header"])
def test_refused_others_unaffected(echo, cert, src, head):
    good, _ = open_wss(echo.port, "127.0.0.1", v1_header("192.0.2.1", 1), cert)
    assert echo.expect(r"^open (\S+)$").group(1) == "192.0.2.1:1"
    s = connect_from(src, echo.port)
    s.sendall(head + Tls(s, cert).client_hello())
    assert_refused(s)
    echo_works(good, b"still here")
    # a new connection is fine too, and the refused one never opened
    again, _ = open_wss(echo.port, "127.0.0.1", v2_header("192.0.2.2", 2), cert)
    assert echo.expect(r"^open (\S+)$").group(1) == "192.0.2.2:2"
    good.sock.close()
    again.sock.close()


@pytest.mark.parametrize("head", [v1_header("192.0.2.7", 56324)[:20],
                                  v2_header("192.0.2.7", 1)[:20]], ids=["v1", "v2"])
def test_truncated_header_refused(echo, cert, head):
    s = connect_from("127.0.0.1", echo.port)
    s.sendall(head)
    s.shutdown(socket.SHUT_WR)
    assert_refused(s)


# ---- bounded: handshake timeout, pending sockets -----------------------------------

def start_test_server(cert, *extra):
    return start_server([SERVER_BIN, "--listen", "127.0.0.1:0", "--tls-cert", cert[0],
                         "--tls-key", cert[1], "--proxy-protocol", "--trusted-proxies",
                         TRUSTED] + list(extra), r"^LISTENING (\d+)$")


def test_partial_header_bounded_by_handshake_timeout(cert):
    srv = start_test_server(cert, "--handshake-timeout", "300")
    try:
        s = connect_from("127.0.0.1", srv.port)
        s.sendall(v2_header("192.0.2.7", 1)[:14])   # and then nothing
        assert_refused(s)                          # closed by the timer, not by us
        # one that completes within it opens
        tls, _ = open_wss(srv.port, "127.0.0.1", v2_header("192.0.2.3", 3), cert)
        assert srv.expect(r"^OPEN \d+ (\S+)$").group(1) == "192.0.2.3:3"
        tls.sock.close()
    finally:
        stop_all([srv], checked=[srv])


def test_partial_header_counts_as_pending(cert):
    # max_pending 1: the stalled header is the oldest pending socket and is
    # shed when the next one arrives, which then opens.
    srv = start_test_server(cert, "--max-pending", "1")
    try:
        s = connect_from("127.0.0.1", srv.port)
        s.sendall(b"PROXY TCP4 192.0.2.7")
        time.sleep(0.2)
        tls, _ = open_wss(srv.port, "127.0.0.1", v1_header("192.0.2.4", 4), cert)
        assert_refused(s)
        assert srv.expect(r"^OPEN \d+ (\S+)$").group(1) == "192.0.2.4:4"
        tls.sock.close()
    finally:
        stop_all([srv], checked=[srv])


# ---- through a real HAProxy in TCP mode ------------------------------------------------

HAPROXY_CFG = """
global
    maxconn 1024
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend wss
    bind 127.0.0.1:{port}
    default_backend echo
backend echo
    server b1 127.0.0.1:{backend} {send_proxy}
"""


@pytest.mark.parametrize("send_proxy", ["send-proxy-v2", "send-proxy"])
def test_haproxy_tcp_mode_in_front_of_wss(tmp_path, cert, send_proxy):
    backend = start_echo(cert)
    proxy = None
    try:
        port = free_port()
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(port=port, backend=backend.port, send_proxy=send_proxy))
        proxy, why = start_peer("haproxy", "/usr/sbin/haproxy", "haproxy",
                                ["-f", str(cfg), "-db"], port)
        if proxy is None:
            pytest.skip(why)

        async def one(i):
            src = "127.0.0.%d" % (2 + i)
            async with websockets.connect("wss://127.0.0.1:%d/" % port, ssl=client_ctx(cert),
                                          local_addr=(src, 0), open_timeout=t(10),
                                          ping_interval=None, compression=None) as ws:
                own = "%s:%d" % ws.transport.get_extra_info("sockname")[:2]
                await ws.send("hello %d" % i)
                assert await asyncio.wait_for(ws.recv(), t(10)) == "hello %d" % i
                return own

        async def all_of_them():
            return await asyncio.gather(*(one(i) for i in range(20)))

        owns = asyncio.run(asyncio.wait_for(all_of_them(), t(60)))
        seen = [backend.expect(r"^open (\S+)$").group(1) for _ in owns]
        # the backend saw each client's own address and port, not HAProxy's
        assert sorted(seen) == sorted(owns)
    finally:
        # (a backend stopped right after its start, when HAProxy is missing,
        # may not have its SIGTERM handler yet: checked only after traffic)
        stop_all([backend] + ([proxy] if proxy is not None else []),
                 checked=[backend] if proxy is not None else [])
