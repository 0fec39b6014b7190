"""The PROXY protocol in front of a TLS listener when the server runs worker
loops (ws_config_set_threads > 1): the header is read before the
ClientHello, and the address it carries must reach the connection it came
with, whichever loop that connection is dealt to.

wsc-test-server --threads 4 --proxy-protocol prints "OPEN <id> <remote>"
(ws_conn_remote_addr) and "LOOP <id> <thread>" per connection, and
"CLOSE <id> ... reason=<r>" when one closes. Every client closes with its
own fake source address as the close reason, so the server's id links what
the client sent (the reason) to what the server believed (the OPEN line):
each connection is checked against its own address, not merely the set.

Connections start together (a barrier), with v1 and v2 headers, some in the
same segment as the ClientHello and some before it; malformed headers among
them are closed without a byte and without disturbing the rest.
"""

import re
import socket
import ssl
import struct
import threading

import pytest

from wsutil import close_payload, frame, t

from .conftest import client_ctx, tls_args
from .tlsraw import TlsRaw

THREADS = 4
TRUSTED = "127.0.0.1/32"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1_header(src, sport):
    fam = "TCP6" if ":" in src else "TCP4"
    dst = "::1" if ":" in src else "127.0.0.1"
    return ("PROXY %s %s %s %d 443\r\n" % (fam, src, dst, sport)).encode()


def v2_header(src, sport, version_cmd=0x21):
    """PROXY v2, PROXY command, TCP over IPv4."""
    body = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", sport, 443)
    return V2_SIG + bytes([version_cmd, 0x11]) + struct.pack("!H", len(body)) + body


def remote(src, sport):
    return ("[%s]:%d" if ":" in src else "%s:%d") % (src, sport)


# Twelve good connections (more than enough for every loop to get some):
# (fake source, port, header kind, header and ClientHello in one segment).
GOOD = [("192.0.2.%d" % (10 + i), 40000 + i, "v2" if i % 4 == 1 else "v1", i % 2 == 0)
        for i in range(11)] + [("2001:db8::7", 40011, "v1", True)]
BAD = [
    ("malformed-v1", b"PROXY TCP4 192.0.2.300 127.0.0.1 1 443\r\n"),
    ("malformed-v2", v2_header("192.0.2.99", 99, version_cmd=0x31)),  # version 3
    ("not-proxy", b"PROXZ TCP4 192.0.2.98 127.0.0.1 98 443\r\n"),
]


@pytest.fixture
def proxied(server, pki):
    return server(*tls_args(pki), "--proxy-protocol", "--trusted-proxies", TRUSTED,
                  "--threads", str(THREADS))


def hello_after(raw, head, together):
    """Send the PROXY header and the ClientHello (in one send, or two)."""
    try:
        raw.obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = raw.pending_records()
    if together:
        raw.sock.sendall(head + hello)
    else:
        raw.sock.sendall(head)
        raw.sock.sendall(hello)


def open_good(port, pki, src, sport, kind, together, barrier):
    raw = TlsRaw(port, client_ctx(pki))
    head = (v1_header if kind == "v1" else v2_header)(src, sport)
    barrier.wait(t(10))
    hello_after(raw, head, together)
    raw.handshake()
    rest = raw.upgrade(port)
    assert rest == b"", rest
    return raw


def refused(port, pki, head, barrier):
    """The server closes without a byte (not even a TLS alert)."""
    raw = TlsRaw(port, client_ctx(pki))
    barrier.wait(t(10))
    hello_after(raw, head, True)
    return raw.read_until_eof()


def run_all(jobs):
    """Run the callables at once on threads; their results (or raise the
    first exception)."""
    results, errors = [None] * len(jobs), []

    def one(i, job):
        try:
            results[i] = job()
        except BaseException as e:  # noqa: B902 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i, j), daemon=True) for i, j in enumerate(jobs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(t(30))
        assert not th.is_alive(), "a client thread hung"
    if errors:
        raise errors[0]
    return results


def echo(raw, text):
    raw.send(frame(0x1, text))
    got = b""
    for _ in range(50):
        got += raw.recv_some()
        if len(got) >= 2 + len(text):
            break
    assert got == bytes([0x81, len(text)]) + text.encode(), got


def close_with_reason(raw, reason):
    raw.send(frame(0x8, close_payload(1000, reason)))
    raw.read_until_eof()
    raw.close()


def test_each_connection_sees_its_own_address(proxied, pki):
    srv = proxied
    barrier = threading.Barrier(len(GOOD) + len(BAD))
    jobs = [lambda g=g: open_good(srv.port, pki, *g, barrier) for g in GOOD]
    jobs += [lambda h=h: refused(srv.port, pki, h, barrier) for _, h in BAD]
    results = run_all(jobs)
    conns, refusals = results[:len(GOOD)], results[len(GOOD):]
    for (name, _), got in zip(BAD, refusals):
        assert got == b"", "%s: the server answered %r" % (name, got[:32])

    srv.wait_count(r"^LOOP \d+ ", len(GOOD))
    opened = {int(m.group(1)): m.group(2) for m in
              (re.match(r"^OPEN (\d+) (\S+)$", line) for line in srv.matching(r"^OPEN "))}
    loops = {int(m.group(1)): m.group(2) for m in
             (re.match(r"^LOOP (\d+) (\d+)$", line) for line in srv.matching(r"^LOOP "))}
    # only the good ones opened, each with an address it was given
    assert sorted(opened.values()) == sorted(remote(src, sp) for src, sp, _, _ in GOOD)
    # worker 0 deals sockets out in turn: every loop has some of them
    assert len(set(loops.values())) == THREADS, loops

    # the refusals disturbed nobody: every connection echoes on its loop
    for (src, sport, _, _), raw in zip(GOOD, conns):
        echo(raw, "from " + remote(src, sport))
    # each connection names itself in its close reason: the server's id for
    # that connection must carry that very address
    for (src, sport, _, _), raw in zip(GOOD, conns):
        close_with_reason(raw, remote(src, sport))
    srv.wait_count(r"^CLOSE \d+ ", len(GOOD))
    closed = {int(m.group(1)): m.group(2) for m in
              (re.match(r"^CLOSE (\d+) code=1000 .* reason=(\S+)$", line)
               for line in srv.matching(r"^CLOSE ")) if m is not None}
    assert len(closed) == len(GOOD), srv.matching(r"^CLOSE ")
    for cid, reason in closed.items():
        assert opened.get(cid) == reason, "connection %d: sent %s, server saw %s" % (
            cid, reason, opened.get(cid))


@pytest.mark.parametrize("name,head", BAD, ids=[b[0] for b in BAD])
def test_malformed_header_among_open_connections(proxied, pki, name, head):
    """Connections already open on every loop keep working while a malformed
    header is refused; a good one opens after it."""
    srv = proxied
    solo = threading.Barrier(1)
    conns = [open_good(srv.port, pki, "198.51.100.%d" % i, 1000 + i, "v1" if i % 2 else "v2",
                       bool(i % 3), solo) for i in range(1, 9)]
    for i in range(1, 9):
        srv.expect(r"^OPEN \d+ 198\.51\.100\.%d:%d$" % (i, 1000 + i))
    assert refused(srv.port, pki, head, solo) == b"", name
    for i, raw in enumerate(conns, 1):
        echo(raw, "still %d" % i)
    late = open_good(srv.port, pki, "198.51.100.200", 2000, "v2", True, solo)
    srv.expect(r"^OPEN \d+ 198\.51\.100\.200:2000$")
    echo(late, "late")
    assert len(set(m.split()[2] for m in srv.matching(r"^LOOP "))) == THREADS
    assert srv.count(r"^OPEN ") == 9
    for raw in conns + [late]:
        raw.close()
