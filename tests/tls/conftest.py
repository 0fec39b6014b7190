"""Fixtures for the wss tests.

`pki` makes a throwaway PKI with the openssl CLI at test time (nothing
secret is committed): a CA, server certificates for localhost/127.0.0.1
(two, with different serials, for reload), alpha.test and beta.test (SNI),
an expired one, one for the wrong host, one from an unknown CA, and a
client certificate (CN=alice).

`server` is tests/integration's wsc-test-server factory, imported from the
tests.integration package, which also puts wsutil on sys.path (TLS options
are passed as arguments); `tls_client` runs tests/servers/wsc-test-client.
"""

import os
import shutil
import ssl
import subprocess
import tempfile

import pytest

from ..integration import conftest as _integ

server = _integ.server
watchdog = _integ.watchdog
Server = _integ.Server
TOP_BUILDDIR = _integ.TOP_BUILDDIR
CLIENT_BIN = os.path.join(TOP_BUILDDIR, "tests", "servers", "wsc-test-client")
ECHO_BIN = os.path.join(TOP_BUILDDIR, "examples", "echo", "echo")


class Pki:
    def __init__(self, d):
        self.dir = d

    def path(self, name):
        return os.path.join(self.dir, name)

    def run(self, *args):
        r = subprocess.run(["openssl"] + list(args), cwd=self.dir, capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr[-2000:]))

    def ca(self, name, cn):
        self.run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
                 "-out", name + ".pem", "-days", "2", "-subj", "/CN=" + cn,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def leaf(self, name, cn, san, ca="ca", serial=1, days="2", client=False):
        self.run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
                 "-out", name + ".csr", "-subj", "/CN=" + cn)
        with open(self.path(name + ".ext"), "w") as f:
            if san:
                f.write("subjectAltName=%s\n" % san)
            f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
        self.run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey",
                 ca + ".key", "-set_serial", str(serial), "-days", days, "-extfile",
                 name + ".ext", "-out", name + ".pem")


@pytest.fixture(scope="session")
def pki():
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tempfile.mkdtemp(prefix="wsc-tls-")
    p = Pki(d)
    local = "DNS:localhost,IP:127.0.0.1"
    p.ca("ca", "wsc test CA")
    p.ca("otherca", "unknown CA")
    p.leaf("server", "localhost", local, serial=0x1001)
    p.leaf("server2", "localhost", local, serial=0x2002)
    p.leaf("alpha", "alpha.test", "DNS:alpha.test", serial=0xA1)
    p.leaf("beta", "beta.test", "DNS:beta.test", serial=0xB2)
    p.leaf("wronghost", "wrong.example", "DNS:wrong.example", serial=0x33)
    p.leaf("stranger", "localhost", local, ca="otherca", serial=0x44)
    p.leaf("alice", "alice", None, serial=0x55, client=True)
    try:
        p.leaf("expired", "localhost", local, serial=0x66, days="-1")
    except RuntimeError as e:  # an OpenSSL that refuses negative -days
        p.expired_error = str(e)
    yield p
    shutil.rmtree(d, ignore_errors=True)


def tls_args(pki, name="server"):
    return ["--tls-cert", pki.path(name + ".pem"), "--tls-key", pki.path(name + ".key")]


def sni_args(pki):
    """wsc-test-server options for the SNI names alpha.test and beta.test."""
    return ["--tls-sni", "alpha.test:%s:%s" % (pki.path("alpha.pem"), pki.path("alpha.key")),
            "--tls-sni", "beta.test:%s:%s" % (pki.path("beta.pem"), pki.path("beta.key"))]


def client_ctx(pki, cert=None, ca="ca"):
    """A client context trusting the CA `ca`, presenting `cert` if given."""
    ctx = ssl.create_default_context(cafile=pki.path(ca + ".pem"))
    if cert is not None:
        ctx.load_cert_chain(pki.path(cert + ".pem"), pki.path(cert + ".key"))
    return ctx


def run_client(*args, timeout=20):
    """Run wsc-test-client to completion; its stdout lines."""
    if not os.access(CLIENT_BIN, os.X_OK):
        pytest.fail("client binary not built: %s" % CLIENT_BIN)
    r = subprocess.run([CLIENT_BIN] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=_integ.t(timeout), stdin=subprocess.DEVNULL)
    for marker in _integ.SANITIZER_MARKERS:
        assert marker not in r.stderr, r.stderr[-8000:]
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-4000:])
    return r.stdout.splitlines()
