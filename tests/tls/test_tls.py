"""wss: libwsc's TLS server and client against real peers (Python
websockets and ssl, Node ws), verification failures, client certificates,
SNI, reload under load, and hostile input on a TLS port.

Certificates come from the `pki` fixture (conftest.py), made at test time.
"""

import asyncio
import ctypes
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest
import websockets
import websockets.exceptions

from wsutil import frame, close_payload, run, t, wait_for_eof

from .conftest import ECHO_BIN, TOP_BUILDDIR, client_ctx, run_client, sni_args, tls_args
from .tlsraw import TlsRaw, ws_text

SRC = os.environ.get("TOP_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))


async def echo_round(port, ctx, sizes=(0, 5, 125, 126, 16384, 70000, 300000), host="localhost",
                     compression=None):
    uri = "wss://%s:%d/" % (host, port)
    async with websockets.connect(uri, ssl=ctx, max_size=None, compression=compression,
                                  ping_interval=None, open_timeout=t(10)) as ws:
        for n in sizes:
            msg = os.urandom(n)
            await ws.send(msg)
            assert await ws.recv() == msg
            await ws.send("é" * n)
            assert await ws.recv() == "é" * n


def peer_serial(port, server_hostname, ca_path):
    ctx = ssl.create_default_context(cafile=ca_path)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=t(5)) as s:
        with ctx.wrap_socket(s, server_hostname=server_hostname) as ss:
            return int(ss.getpeercert()["serialNumber"], 16)


# ---- the server against Python websockets and Node ws ------------------------

def test_python_client_echo(server, pki):
    srv = server(*tls_args(pki))
    run(echo_round(srv.port, client_ctx(pki)))
    srv.expect(r"^TLS \d+ subject=-$")


def test_python_client_echo_compressed_tls12(server, pki):
    srv = server(*tls_args(pki))
    ctx = client_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    run(echo_round(srv.port, ctx, host="127.0.0.1", compression="deflate"))


def test_many_messages_in_one_burst(server, pki):
    """Replies corked into records: order and content survive pipelining."""
    srv = server(*tls_args(pki))

    async def go():
        async with websockets.connect("wss://localhost:%d/" % srv.port, ssl=client_ctx(pki),
                                      compression=None, max_size=None) as ws:
            msgs = ["m%d" % i * (i % 50) for i in range(2000)]
            for m in msgs:
                await ws.send(m)
            for m in msgs:
                assert await ws.recv() == m
    run(go())


def test_plain_and_tls_listeners_coexist(server, pki):
    srv = server(*tls_args(pki), "--plain-listen", "127.0.0.1:0")
    plain = int(srv.expect(r"^PLAIN (\d+)$").group(1))

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/" % plain) as ws:
            await ws.send("plain")
            assert await ws.recv() == "plain"
        await echo_round(srv.port, client_ctx(pki), sizes=(10,))
    run(go())
    assert srv.count(r"^TLS ") == 1  # only the wss connection


def _start_echo(*args):
    proc = subprocess.Popen([ECHO_BIN] + list(args) + ["127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.match(r"listening on wss://127\.0\.0\.1:(\d+)/", line)
    if m is None:
        proc.kill()
        pytest.fail("echo did not start: %r %s" % (line, proc.stderr.read()))
    return proc, int(m.group(1))


def _stop_echo(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=t(10))
    assert proc.returncode == 0, err
    for marker in ("AddressSanitizer", "runtime error:", "ThreadSanitizer", "LeakSanitizer"):
        assert marker not in err, err
    return out


def test_echo_example_wss_and_sighup_reload(pki, tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "c.key"
    shutil.copy(pki.path("server.pem"), cert)
    shutil.copy(pki.path("server.key"), key)
    proc, port = _start_echo("--cert", str(cert), "--key", str(key))
    try:
        run(echo_round(port, client_ctx(pki), sizes=(1, 20000)))
        assert peer_serial(port, "localhost", pki.path("ca.pem")) == 0x1001
        shutil.copy(pki.path("server2.pem"), cert)
        shutil.copy(pki.path("server2.key"), key)
        proc.send_signal(signal.SIGHUP)
        assert proc.stdout.readline().strip() == "reload: ok"
        assert peer_serial(port, "localhost", pki.path("ca.pem")) == 0x2002
    finally:
        _stop_echo(proc)


def test_echo_example_rejects_half_tls_options(pki):
    r = subprocess.run([ECHO_BIN, "--cert", pki.path("server.pem"), "127.0.0.1:0"],
                       capture_output=True, timeout=t(10))
    assert r.returncode == 2


def test_echo_example_bad_key_fails_with_reason(pki):
    r = subprocess.run([ECHO_BIN, "--cert", pki.path("server.pem"), "--key",
                        pki.path("alpha.key"), "127.0.0.1:0"], capture_output=True, text=True,
                       timeout=t(10))
    assert r.returncode == 1
    assert "TLS failed" in r.stderr and "mismatch" in r.stderr, r.stderr


NODE_CLIENT = r"""
const WebSocket = require('ws');
const fs = require('fs');
const [port, ca] = process.argv.slice(2);
const ws = new WebSocket('wss://localhost:' + port + '/', { ca: fs.readFileSync(ca),
                         perMessageDeflate: true });
const sizes = [0, 7, 126, 65536, 200000];
let i = 0;
ws.on('open', () => ws.send(Buffer.alloc(sizes[0], 'a')));
ws.on('message', (data) => {
  if (data.length !== sizes[i]) { console.log('BAD ' + data.length); process.exit(1); }
  if (++i === sizes.length) { console.log('NODE OK'); ws.close(1000); return; }
  ws.send(Buffer.alloc(sizes[i], 'a'));
});
ws.on('error', (e) => { console.log('ERROR ' + e.message); process.exit(1); });
"""


def test_node_ws_client(server, pki, tmp_path):
    setup = subprocess.run(["bash", os.path.join(SRC, "tests", "conformance", "npm-setup.sh")],
                           capture_output=True, text=True, timeout=400)
    if setup.returncode != 0:
        pytest.skip("Node ws unavailable: " + setup.stderr.strip())
    srv = server(*tls_args(pki))
    script = tmp_path / "client.js"
    script.write_text(NODE_CLIENT)
    env = dict(os.environ, NODE_PATH=setup.stdout.strip())
    r = subprocess.run(["node", str(script), str(srv.port), pki.path("ca.pem")],
                       capture_output=True, text=True, timeout=t(30), env=env)
    assert "NODE OK" in r.stdout, (r.stdout, r.stderr)
    srv.expect(r"^CLOSE \d+ code=1000 cause=clean")


# ---- our client against a Python websockets wss server ----------------------

class PyServer:
    """websockets.serve over TLS in a thread: echoes every message."""

    def __init__(self, pki, cert="server", require_client_cert=False):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.path(cert + ".pem"), pki.path(cert + ".key"))
        if require_client_cert:
            self.ctx.load_verify_locations(pki.path("ca.pem"))
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ready = threading.Event()
        self.port = None
        self.loop = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()
        assert self.ready.wait(t(10)), "python server did not start"

    async def _echo(self, ws, path=None):
        async for msg in ws:
            await ws.send(msg)

    def _main(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.stop_fut = self.loop.create_future()

        async def serve():
            async with websockets.serve(self._echo, "127.0.0.1", 0, ssl=self.ctx) as s:
                self.port = s.sockets[0].getsockname()[1]
                self.ready.set()
                await self.stop_fut
        self.loop.run_until_complete(serve())
        self.loop.close()

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_fut.set_result, None)
        self.thread.join(t(10))


@pytest.fixture
def pyserver(pki):
    started = []

    def start(**kw):
        s = PyServer(pki, **kw)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def test_our_client_against_python_server(pyserver, pki):
    s = pyserver()
    out = run_client("--tls-ca", pki.path("ca.pem"), "--send", "hello", "--send-binary-size",
                     "100000", "--expect", "2", "--close", "1000", "wss://localhost:%d/x" % s.port)
    assert "CONNECT rc=0" in out
    assert any(line.startswith("OPEN ") for line in out), out
    assert "DATA text 5 hello" in out, out
    assert any(line.startswith("DATA binary 100000 ") for line in out), out
    assert out[-1] == "GIVEUP error=0 success", out


def test_our_client_by_ip_address(pyserver, pki):
    s = pyserver()
    out = run_client("--tls-ca", pki.path("ca.pem"), "--send", "ip", "--expect", "1", "--close", "1000",
                     "wss://127.0.0.1:%d/" % s.port)
    assert "DATA text 2 ip" in out, out


@pytest.mark.parametrize("cert,url_host,reason", [
    ("wronghost", "localhost", "hostname mismatch"),
    ("expired", "localhost", "certificate has expired"),
    ("stranger", "localhost", "unable to get local issuer certificate"),
])
def test_our_client_refuses_bad_certificates(pyserver, pki, cert, url_host, reason):
    if cert == "expired" and getattr(pki, "expired_error", None):
        pytest.skip("openssl could not make an expired certificate: " + pki.expired_error)
    s = pyserver(cert=cert)
    out = run_client("--tls-ca", pki.path("ca.pem"), "--send", "x", "--expect", "1", "--close", "1000",
                     "wss://%s:%d/" % (url_host, s.port))
    assert not any(line.startswith("OPEN ") for line in out), out
    assert "GIVEUP error=-19 TLS failed (handshake, certificate or key)" in out, out
    assert any(line.startswith("TLSERR ") and reason in line for line in out), out


def test_system_trust_store_does_not_know_the_test_ca(pyserver, pki):
    s = pyserver()
    out = run_client("--send", "x", "--expect", "1", "--close", "1000", "wss://localhost:%d/" % s.port)
    assert "GIVEUP error=-19 TLS failed (handshake, certificate or key)" in out, out


def test_insecure_skip_verify_connects_anyway(pyserver, pki):
    s = pyserver(cert="stranger")
    out = run_client("--tls-insecure", "--send", "x", "--expect", "1", "--close", "1000",
                     "wss://localhost:%d/" % s.port)
    assert "DATA text 1 x" in out, out


def test_tls_failure_is_retried_like_any_failed_attempt(pyserver, pki):
    s = pyserver(cert="wronghost")
    out = run_client("--tls-ca", pki.path("ca.pem"), "--reconnect", "20:40:2",
                     "wss://localhost:%d/" % s.port)
    retries = [line for line in out if line.startswith("RECONNECT")]
    assert len(retries) == 2, out
    for n, line in enumerate(retries, 1):
        assert re.fullmatch(r"RECONNECT attempt=%d delay=\d+ error=-19" % n, line), out
    assert "GIVEUP error=-19 TLS failed (handshake, certificate or key)" in out, out


def test_bad_client_ca_file_fails_connect(pki):
    out = run_client("--tls-ca", "/nonexistent/ca.pem", "wss://localhost:1/")
    assert "CONNECT rc=-19" in out, out


# ---- client certificates ---------------------------------------------------------

def test_client_certificate_required(server, pki):
    srv = server(*tls_args(pki), "--tls-ca", pki.path("ca.pem"))
    url = "wss://localhost:%d/" % srv.port
    out = run_client("--tls-ca", pki.path("ca.pem"), "--tls-cert",
                     pki.path("alice.pem") + ":" + pki.path("alice.key"), "--send", "hi",
                     "--expect", "1", "--close", "1000", url)
    assert "DATA text 2 hi" in out, out
    srv.expect(r"^TLS \d+ subject=CN=alice$")
    # Without a certificate: refused, by our client and by Python's.
    out = run_client("--tls-ca", pki.path("ca.pem"), "--send", "hi", "--expect", "1", "--close", "1000", url)
    assert "GIVEUP error=-19 TLS failed (handshake, certificate or key)" in out, out

    async def py_without_cert():
        async with websockets.connect(url, ssl=client_ctx(pki), open_timeout=t(10)) as ws:
            await ws.send("x")
            await ws.recv()
    with pytest.raises((ssl.SSLError, websockets.exceptions.WebSocketException, OSError,
                        asyncio.TimeoutError)):
        run(py_without_cert())
    # A certificate from another CA is refused too.
    ctx = client_ctx(pki)
    ctx.load_cert_chain(pki.path("stranger.pem"), pki.path("stranger.key"))

    async def py_stranger():
        async with websockets.connect(url, ssl=ctx, open_timeout=t(10)) as ws:
            await ws.send("x")
            await ws.recv()
    with pytest.raises((ssl.SSLError, websockets.exceptions.WebSocketException, OSError,
                        asyncio.TimeoutError)):
        run(py_stranger())
    assert srv.count(r"^OPEN ") == 1


# ---- SNI ------------------------------------------------------------------------

def _sni_server(server, pki, *extra):
    return server(*tls_args(pki), *sni_args(pki), *extra)


def test_sni_picks_the_certificate_per_name(server, pki):
    srv = _sni_server(server, pki)
    ca = pki.path("ca.pem")
    assert peer_serial(srv.port, "alpha.test", ca) == 0xA1
    assert peer_serial(srv.port, "BETA.test", ca) == 0xB2
    assert peer_serial(srv.port, "unknown.test", ca) == 0x1001
    assert peer_serial(srv.port, None, ca) == 0x1001
    # And the verified name works end to end with our client (SNI sent).
    out = run_client("--tls-ca", ca, "--send", "a", "--expect", "1", "--close", "1000",
                     "wss://localhost:%d/" % srv.port)
    assert "DATA text 1 a" in out, out


# SNI's own limit (RFC 6066: a host name of at most 255 bytes); the name is
# four 63-byte labels cut to 255, so that Python's ssl sends it too.
LONGEST_SNI = ".".join(["a" * 63] * 4)[:255]


def test_sni_name_of_255_bytes_is_served(server, pki):
    assert len(LONGEST_SNI) == 255
    srv = server(*tls_args(pki), "--tls-sni",
                 "%s:%s:%s" % (LONGEST_SNI, pki.path("alpha.pem"), pki.path("alpha.key")))
    assert peer_serial(srv.port, LONGEST_SNI, pki.path("ca.pem")) == 0xA1
    assert peer_serial(srv.port, "alpha.test", pki.path("ca.pem")) == 0x1001


def test_sni_name_limit_in_ws_tls_add_sni():
    """1 and 255 bytes are taken, 0 and 256 are WS_EINVAL: called directly,
    since wsc-test-server's --tls-sni parser stops at 255 bytes itself."""
    if os.environ.get("SANITIZER", "none") != "none":
        pytest.skip("a sanitized libwsc.so cannot be loaded into Python (ctypes)")
    lib = ctypes.CDLL(os.path.join(TOP_BUILDDIR, ".libs", "libwsc.so"))
    lib.ws_tls_new.restype = ctypes.c_void_p
    lib.ws_tls_add_sni.argtypes = [ctypes.c_void_p] + [ctypes.c_char_p] * 3
    lib.ws_tls_free.argtypes = [ctypes.c_void_p]
    lib.ws_strerror.restype = ctypes.c_char_p
    tls = lib.ws_tls_new()
    assert tls
    try:
        def add(name):
            rc = lib.ws_tls_add_sni(tls, name.encode(), b"chain.pem", b"key.pem")
            return rc if rc == 0 else lib.ws_strerror(rc).decode()
        assert add("a") == 0
        assert add(LONGEST_SNI) == 0
        assert add("b" + LONGEST_SNI) == "invalid argument"
        assert add("") == "invalid argument"
    finally:
        lib.ws_tls_free(tls)


def test_sni_strict_refuses_unknown_names(server, pki):
    srv = _sni_server(server, pki, "--tls-sni-strict")
    ca = pki.path("ca.pem")
    assert peer_serial(srv.port, "alpha.test", ca) == 0xA1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        peer_serial(srv.port, "unknown.test", ca)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        peer_serial(srv.port, None, ca)


# ---- reload ---------------------------------------------------------------------

def test_reload_with_100_open_connections(server, pki, tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "c.key"
    shutil.copy(pki.path("server.pem"), cert)
    shutil.copy(pki.path("server.key"), key)
    srv = server("--tls-cert", str(cert), "--tls-key", str(key), "--threads", "2")
    ca = pki.path("ca.pem")
    url = "wss://localhost:%d/" % srv.port

    async def go():
        conns = [await websockets.connect(url, ssl=client_ctx(pki), compression=None,
                                          ping_interval=None, open_timeout=t(10))
                 for _ in range(100)]
        try:
            for i, ws in enumerate(conns):
                await ws.send("before %d" % i)
                assert await ws.recv() == "before %d" % i
            loop = asyncio.get_running_loop()
            shutil.copy(pki.path("server2.pem"), cert)
            shutil.copy(pki.path("server2.key"), key)
            srv.signal(signal.SIGHUP)
            await srv.aexpect(r"^RELOAD rc=0 ok$")
            serial = await loop.run_in_executor(None, peer_serial, srv.port, "localhost", ca)
            assert serial == 0x2002
            # A reload that cannot work keeps the current certificate.
            key.write_text("not a key\n")
            srv.signal(signal.SIGHUP)
            m = await srv.aexpect(r"^RELOAD rc=(-?\d+) (.*)$")
            assert m.group(1) == "-19" and "private key" in m.group(2), m.group(0)
            serial = await loop.run_in_executor(None, peer_serial, srv.port, "localhost", ca)
            assert serial == 0x2002
            for i, ws in enumerate(conns):
                await ws.send("after %d" % i)
                assert await ws.recv() == "after %d" % i
        finally:
            for ws in conns:
                await ws.close()
    run(go(), timeout=60)
    srv.wait_count(r"^CLOSE \d+ code=1000 cause=clean", 100)
    assert srv.count(r"^CLOSE ") == 100  # the serial probes never opened: no callback


# ---- hostile and broken peers ---------------------------------------------------

async def _alive(port, pki, tag):
    await echo_round(port, client_ctx(pki), sizes=(len(tag),))


def test_plain_http_to_tls_port(server, pki):
    srv = server(*tls_args(pki))
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=t(5))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
    wait_for_eof(s, t(5))
    s.close()
    run(_alive(srv.port, pki, "after http"))
    assert srv.count(r"^OPEN ") == 1


def test_silent_tcp_connection_dropped_at_handshake_timeout(server, pki):
    srv = server(*tls_args(pki), "--handshake-timeout", "300")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=t(5))
    took = wait_for_eof(s, t(5))
    s.close()
    assert took >= 0.25
    run(_alive(srv.port, pki, "x"))


def test_stalled_handshake_dropped_at_handshake_timeout(server, pki):
    srv = server(*tls_args(pki), "--handshake-timeout", "300")
    start = time.monotonic()
    raw = TlsRaw(srv.port)
    raw.client_hello()  # and never the rest
    wait_for_eof(raw.sock, t(5))
    raw.close()
    assert time.monotonic() - start >= 0.29  # the timer starts at accept


def test_random_bytes_after_client_hello(server, pki):
    srv = server(*tls_args(pki))
    raw = TlsRaw(srv.port)
    raw.client_hello()
    raw.sock.sendall(os.urandom(3000))
    wait_for_eof(raw.sock, t(5))
    raw.close()
    run(_alive(srv.port, pki, "after garbage"))


def _raw_open(srv):
    """A raw TLS client through the upgrade: (TlsRaw, the server's conn id)."""
    raw = TlsRaw(srv.port)
    raw.handshake()
    raw.upgrade(srv.port)
    return raw, srv.expect(r"^OPEN (\d+) ").group(1)


def _dropped_once(srv, pki, cid, tag):
    """The broken connection ended once, as a disconnect; the server lives on."""
    srv.expect(r"^CLOSE %s code=1006 cause=disconnect" % cid)
    run(_alive(srv.port, pki, tag))
    time.sleep(0.2)
    assert srv.count(r"^CLOSE %s " % cid) == 1


def test_garbage_record_on_open_connection(server, pki):
    srv = server(*tls_args(pki))
    raw, cid = _raw_open(srv)
    raw.sock.sendall(b"\x17\x03\x03\x00\x20" + os.urandom(32))  # bad MAC
    wait_for_eof(raw.sock, t(5))
    raw.close()
    _dropped_once(srv, pki, cid, "after bad record")


def test_reset_mid_record(server, pki):
    srv = server(*tls_args(pki))
    raw, cid = _raw_open(srv)
    raw.obj.write(ws_text(b"z" * 5000))
    record = raw.pending_records()
    raw.sock.sendall(record[: len(record) // 2])
    time.sleep(0.1)
    raw.reset()
    _dropped_once(srv, pki, cid, "after reset")


def test_close_notify_before_fin(server, pki):
    srv = server(*tls_args(pki))
    raw, _ = _raw_open(srv)
    raw.send(frame(0x8, close_payload(1000, "bye")))
    wire = raw.read_until_eof()
    raw.inc.write(wire)
    raw.inc.write_eof()
    got = b""
    # b"" after close_notify; a bare FIN would raise SSLEOFError instead.
    for _ in range(1000):
        chunk = raw.obj.read(65536)
        if not chunk:
            break
        got += chunk
    assert raw.obj.get_channel_binding() is not None
    raw.close()
    assert got[:4] == b"\x88\x02\x03\xe8", got  # the server's close frame, then close_notify
    srv.expect(r"^CLOSE \d+ code=1000 cause=clean remote=1")


# ---- rtt-measure over wss ------------------------------------------------------

RTT_BIN = os.path.join(TOP_BUILDDIR, "examples", "rtt-measure", "rtt-measure")


def test_rtt_measure_demo_clients_speak_wss(pki):
    r = subprocess.run([RTT_BIN, "127.0.0.1:0", "--interval", "0.05", "--demo", "2",
                        "--count", "4", "--cert", pki.path("server.pem"), "--key",
                        pki.path("server.key"), "--ca", pki.path("ca.pem")],
                       capture_output=True, text=True, timeout=t(30))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.startswith("listening on wss://127.0.0.1:"), r.stdout
    assert len(re.findall(r"^RTT with 127\.0\.0\.1:\d+ is ", r.stdout, re.M)) >= 4, r.stdout


def test_rtt_measure_demo_clients_verify_the_server(pki):
    """Trusting another CA, the demo clients refuse the server."""
    proc = subprocess.Popen([RTT_BIN, "127.0.0.1:0", "--interval", "0.05", "--demo", "1",
                             "--count", "1", "--cert", pki.path("server.pem"), "--key",
                             pki.path("server.key"), "--ca", pki.path("otherca.pem")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        err = proc.stderr.readline()
        assert "demo client 1: TLS failed" in err, err
    finally:
        proc.send_signal(signal.SIGTERM)
        out, rest = proc.communicate(timeout=t(10))
    assert "RTT with" not in out


@pytest.mark.parametrize("args", [["--cert", "x"], ["--key", "y"], ["--ca", "z"],
                                  ["--demo", "-1"], ["--interval", "0"]])
def test_rtt_measure_rejects_bad_options(args):
    r = subprocess.run([RTT_BIN] + args, capture_output=True, timeout=t(10))
    assert r.returncode == 2
