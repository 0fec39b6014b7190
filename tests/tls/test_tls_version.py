"""ws_tls_set_min_version on the wire, through examples/echo
--tls-min-version, with Python's ssl as the peer: both sides of each limit.

- minimum 1.3: a client capped at TLS 1.2 gets a protocol_version alert, a
  TLS 1.3 client upgrades and echoes (negotiated version checked), and the
  refused handshake does not disturb a connection already open;
- minimum 1.2 (the default): a TLS 1.2-only client succeeds, a client
  capped at TLS 1.1 is refused (SKIP when this machine's OpenSSL cannot
  even produce a TLS 1.1 ClientHello).

The argument checks (WS_EINVAL) are in tests/unit/test_tls_options.c.
"""

import asyncio
import re
import signal
import socket
import ssl
import subprocess
import warnings

import pytest
import websockets

from wsutil import HOST, run, t

from ..common.sockio import recv_until_eof
from .conftest import ECHO_BIN

SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "ThreadSanitizer", "LeakSanitizer")

# A TLS alert record: content type 21, then after the version and length,
# level 2 (fatal) and 70 (protocol_version).
ALERT_RECORD = 0x15
PROTOCOL_VERSION_ALERT = 70


class Echo:
    """examples/echo with a TLS listener on a free port."""

    def __init__(self, pki, *extra):
        self.proc = subprocess.Popen(
            [ECHO_BIN, "--cert", pki.path("server.pem"), "--key", pki.path("server.key")] +
            list(extra) + ["127.0.0.1:0"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"listening on wss://127\.0\.0\.1:(\d+)/", line)
        if m is None:
            self.proc.kill()
            pytest.fail("echo did not start: %r %s" % (line, self.proc.stderr.read()))
        self.port = int(m.group(1))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=t(10))
        for marker in SANITIZER_MARKERS:
            assert marker not in err, err[-8000:]
        assert self.proc.returncode == 0, err[-4000:]


@pytest.fixture
def echo_server(pki):
    started = []

    def start(*extra):
        e = Echo(pki, *extra)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


def ctx_between(pki, lo, hi, seclevel0=False):
    ctx = ssl.create_default_context(cafile=pki.path("ca.pem"))
    if seclevel0:  # OpenSSL 3 allows TLS 1.0/1.1 only at security level 0
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLSv1_1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = lo
        ctx.maximum_version = hi
    return ctx


async def wss_echo(port, ctx, text="hello"):
    """Upgrade, one echo; the negotiated TLS version."""
    async with websockets.connect("wss://localhost:%d/" % port, ssl=ctx, compression=None,
                                  ping_interval=None, open_timeout=t(10)) as ws:
        await ws.send(text)
        assert await asyncio.wait_for(ws.recv(), t(10)) == text
        return ws.transport.get_extra_info("ssl_object").version()


def refused_handshake(port, ctx, client_version=None):
    """Send ctx's ClientHello over a plain socket; return the server's first
    record's bytes (b"" if it closed without a word). pytest.skip when the
    local OpenSSL cannot produce a ClientHello for ctx at all."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    except ssl.SSLError as e:
        pytest.skip("this OpenSSL will not offer the version asked for: %s" % e)
    hello = out.read()
    if not hello:
        pytest.skip("this OpenSSL produced no ClientHello for the version asked for")
    if client_version is not None:  # handshake record, ClientHello, its legacy_version
        assert hello[0] == 0x16 and hello[5] == 1, hello[:16]
        assert hello[9:11] == client_version, hello[:16]
    with socket.create_connection((HOST, port), timeout=t(5)) as s:
        s.sendall(hello)
        got = recv_until_eof(s, at_least=7)
    # the Python side agrees: its handshake fails on what the server sent
    inc.write(got)
    if not got:
        inc.write_eof()
    with pytest.raises(ssl.SSLError):
        obj.do_handshake()
    return got


def assert_protocol_version_alert(got):
    assert len(got) >= 7, got
    assert got[0] == ALERT_RECORD, "expected an alert record, got %r" % got[:16]
    assert got[5:7] == bytes([2, PROTOCOL_VERSION_ALERT]), got[:16]


# ---- minimum 1.3 ---------------------------------------------------------------

def test_min_13_refuses_tls12_client(echo_server, pki):
    srv = echo_server("--tls-min-version", "1.3")
    ctx = ctx_between(pki, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ssl.SSLError) as err:
        run(wss_echo(srv.port, ctx))
    assert "PROTOCOL_VERSION" in str(err.value).upper(), err.value  # the server's alert
    assert_protocol_version_alert(refused_handshake(srv.port, ctx))
    assert srv.alive()


def test_min_13_accepts_tls13_client(echo_server, pki):
    srv = echo_server("--tls-min-version", "1.3")
    ctx = ctx_between(pki, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)
    assert run(wss_echo(srv.port, ctx)) == "TLSv1.3"
    # a client that offers both gets 1.3 too
    ctx = ctx_between(pki, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.MAXIMUM_SUPPORTED)
    assert run(wss_echo(srv.port, ctx)) == "TLSv1.3"


def test_min_13_refusal_leaves_open_connection_alone(echo_server, pki):
    srv = echo_server("--tls-min-version", "1.3")
    ok = ctx_between(pki, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)
    old = ctx_between(pki, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)

    async def go():
        async with websockets.connect("wss://localhost:%d/" % srv.port, ssl=ok,
                                      compression=None, ping_interval=None,
                                      open_timeout=t(10)) as ws:
            await ws.send("before")
            assert await asyncio.wait_for(ws.recv(), t(10)) == "before"
            for _ in range(3):
                with pytest.raises(ssl.SSLError):
                    await wss_echo(srv.port, old)
            await ws.send("after")
            assert await asyncio.wait_for(ws.recv(), t(10)) == "after"
            assert ws.transport.get_extra_info("ssl_object").version() == "TLSv1.3"
        # and a new one still opens
        assert await wss_echo(srv.port, ok, "again") == "TLSv1.3"

    run(go())
    assert srv.alive()


# ---- minimum 1.2 (the default, and said explicitly) ---------------------------------

@pytest.mark.parametrize("flag", [[], ["--tls-min-version", "1.2"]], ids=["default", "explicit"])
def test_min_12_accepts_tls12_client(echo_server, pki, flag):
    srv = echo_server(*flag)
    ctx = ctx_between(pki, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    assert run(wss_echo(srv.port, ctx)) == "TLSv1.2"
    ctx = ctx_between(pki, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)
    assert run(wss_echo(srv.port, ctx)) == "TLSv1.3"


@pytest.mark.parametrize("flag", [[], ["--tls-min-version", "1.2"]], ids=["default", "explicit"])
def test_min_12_refuses_tls11_client(echo_server, pki, flag):
    srv = echo_server(*flag)
    ctx = ctx_between(pki, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1, seclevel0=True)
    # what goes out really is a TLS 1.1 ClientHello (legacy_version 3.2)
    assert_protocol_version_alert(refused_handshake(srv.port, ctx, client_version=b"\x03\x02"))
    # still serving
    ctx = ctx_between(pki, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    assert run(wss_echo(srv.port, ctx)) == "TLSv1.2"


# ---- the example's option -------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--tls-min-version", "1.1"], ["--tls-min-version", "1.4"], ["--tls-min-version", "13"],
    ["--tls-min-version", ""], ["--tls-min-version", "1.3"],   # the last one: without --cert
], ids=["1.1", "1.4", "13", "empty", "no-cert"])
def test_echo_rejects_bad_min_version(pki, args):
    extra = [] if args[-1] == "1.3" else ["--cert", pki.path("server.pem"), "--key",
                                           pki.path("server.key")]
    r = subprocess.run([ECHO_BIN] + extra + args + ["127.0.0.1:0"], capture_output=True,
                       text=True, timeout=t(10), stdin=subprocess.DEVNULL)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "listening" not in r.stdout
