"""Client certificates (ws_tls_set_ca_file) under SNI: every context of a
listener asks for a certificate chaining to the one CA file, which is read
once per generation of contexts (so a file replaced during a reload cannot
leave two of them, or one context's CA list and trust store, disagreeing).
"""

import asyncio
import os
import ssl
import subprocess
import threading

import pytest
import websockets
import websockets.exceptions

from wsutil import run, t

from ..integration.conftest import SERVER_BIN
from .conftest import client_ctx, sni_args, tls_args

REFUSED = (ssl.SSLError, websockets.exceptions.WebSocketException, OSError, asyncio.TimeoutError)


def echo(port, ctx, name):
    """One text message there and back over wss, with `name` as SNI and as
    the name the server's certificate must carry."""
    async def go():
        async with websockets.connect("wss://127.0.0.1:%d/" % port, ssl=ctx,
                                      server_hostname=name, open_timeout=t(10)) as ws:
            await ws.send("ca " + name)
            return await asyncio.wait_for(ws.recv(), t(10))
    return run(go())


def test_client_certificate_required_under_every_sni_name(server, pki):
    srv = server(*tls_args(pki), *sni_args(pki), "--tls-ca", pki.path("ca.pem"))
    names = ("localhost", "alpha.test", "beta.test")
    for name in names:
        assert echo(srv.port, client_ctx(pki, "alice"), name) == "ca " + name
        with pytest.raises(REFUSED):
            echo(srv.port, client_ctx(pki), name)  # no certificate
        with pytest.raises(REFUSED):
            echo(srv.port, client_ctx(pki, "stranger"), name)  # another CA's
    assert srv.count(r"^OPEN ") == len(names)
    assert srv.count(r"^TLS \d+ subject=CN=alice$") == len(names)


def test_without_ca_file_no_certificate_is_asked(server, pki):
    """The other side: no CA file, no client certificate needed on any name."""
    srv = server(*tls_args(pki), *sni_args(pki))
    for name in ("localhost", "alpha.test"):
        assert echo(srv.port, client_ctx(pki), name) == "ca " + name
    assert srv.count(r"^TLS \d+ subject=-$") == 2


def test_ca_file_is_read_once_for_all_contexts(server, pki, tmp_path):
    """The CA file is a FIFO the test feeds exactly once: a listener with two
    SNI names (three contexts) must start from that one read. Reading it per
    context (as before) would block in a second open() that no writer
    answers, and the server would never listen."""
    fifo = str(tmp_path / "ca-fifo.pem")
    os.mkfifo(fifo)
    with open(pki.path("ca.pem"), "rb") as f:
        pem = f.read()
    fed = threading.Event()

    def feed_once():
        with open(fifo, "wb") as w:  # blocks until the server opens it
            w.write(pem)
        fed.set()

    writer = threading.Thread(target=feed_once, daemon=True)
    writer.start()
    try:
        srv = server(*tls_args(pki), *sni_args(pki), "--tls-ca", fifo)
        assert fed.wait(t(10)), "the server never read the CA file"
        assert echo(srv.port, client_ctx(pki, "alice"), "alpha.test") == "ca alpha.test"
        with pytest.raises(REFUSED):
            echo(srv.port, client_ctx(pki), "beta.test")
    finally:
        if not fed.is_set():  # let a writer still waiting in open() go
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            writer.join(t(5))
            os.close(fd)


def listen_fails(pki, ca):
    """wsc-test-server with ca as its CA file: must refuse to listen; its stderr."""
    r = subprocess.run([SERVER_BIN, "--listen", "127.0.0.1:0", *tls_args(pki), *sni_args(pki),
                        "--tls-ca", ca], capture_output=True, text=True, timeout=t(10),
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "LISTENING" not in r.stdout
    return r.stderr


@pytest.mark.parametrize("content", ["", "not a certificate\n",
                                     "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_ca_file_without_a_certificate_is_refused(pki, tmp_path, content):
    """Empty, no PEM block, or a broken one: the listener fails, and the
    reason names the file."""
    bad = tmp_path / "bad-ca.pem"
    bad.write_text(content)
    err = listen_fails(pki, str(bad))
    assert "CA file " + str(bad) in err, err


def test_ca_file_with_a_broken_certificate_after_a_good_one_is_refused(pki, tmp_path):
    bad = tmp_path / "half-ca.pem"
    with open(pki.path("ca.pem")) as f:
        bad.write_text(f.read() + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    err = listen_fails(pki, str(bad))
    assert "CA file " + str(bad) in err, err


def test_ca_file_with_two_cas_trusts_both(server, pki, tmp_path):
    """Both sides of the one-read parse: a file holding two CAs (and one of
    them twice) trusts a client certificate from either."""
    both = tmp_path / "both-ca.pem"
    with open(pki.path("otherca.pem")) as a, open(pki.path("ca.pem")) as b:
        other, ours = a.read(), b.read()
    both.write_text(other + ours + other)
    if not os.path.exists(pki.path("bob.pem")):  # a client certificate from the other CA
        pki.leaf("bob", "bob", None, ca="otherca", serial=0x77, client=True)
    srv = server(*tls_args(pki), *sni_args(pki), "--tls-ca", str(both))
    assert echo(srv.port, client_ctx(pki, "alice"), "alpha.test") == "ca alpha.test"
    assert echo(srv.port, client_ctx(pki, "bob"), "localhost") == "ca localhost"
    assert srv.count(r"^TLS \d+ subject=CN=bob$") == 1
    # With our CA alone, bob is refused: the second CA is what let him in.
    srv2 = server(*tls_args(pki), "--tls-ca", pki.path("ca.pem"))
    with pytest.raises(REFUSED):
        echo(srv2.port, client_ctx(pki, "bob"), "localhost")
