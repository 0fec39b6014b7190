"""Many connections (no fd or memory growth), sends from several threads,
and the graceful stop."""

import asyncio
import os
import re
import signal
import socket
import time

import pytest

import wsutil
from wsutil import (OP_CLOSE, OP_TEXT, fd_count, rss_kib, run, t, upgrade_request,
                    ws_connect)

SANITIZER = os.environ.get("SANITIZER", "")


def recv_until(s, buf, pred, what):
    for _ in range(10000):
        if pred(buf):
            return buf
        data = s.recv(65536)
        if not data:
            raise AssertionError("EOF while waiting for %s; got %r" % (what, buf))
        buf += data
    raise AssertionError("too many reads waiting for %s" % what)


def one_connection(port, request, msg_frame, echo, close_frame):
    """Open, one message, clean close, wait for the server's TCP close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=t(5))
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(request)
        buf = recv_until(s, b"", lambda b: b"\r\n\r\n" in b, "the 101")
        head, buf = buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101 "):
            raise AssertionError("handshake failed: %r" % head)
        s.sendall(msg_frame)
        buf = recv_until(s, buf, lambda b: len(b) >= len(echo), "the echo")
        if buf[:len(echo)] != echo:
            raise AssertionError("bad echo %r" % buf)
        buf = buf[len(echo):]
        s.sendall(close_frame)
        buf = recv_until(s, buf, lambda b: len(b) >= 4, "the close frame")
        if buf[0] != 0x88 or buf[2:4] != b"\x03\xe8":
            raise AssertionError("bad close frame %r" % buf)
        # The server ends the TCP connection after the close handshake.
        for _ in range(100):
            try:
                if not s.recv(65536):
                    break
            except ConnectionResetError:
                break
        else:
            raise AssertionError("server never closed the TCP connection")
    finally:
        s.close()


def test_10000_sequential_connections_no_growth(server):
    total = 10000
    warmup = 500
    srv = server()
    pid = srv.pid
    request = upgrade_request(srv.port, key="dGhlIHNhbXBsZSBub25jZQ==")
    msg = wsutil.frame(OP_TEXT, b"hello")
    echo = b"\x81\x05hello"
    close = wsutil.frame(OP_CLOSE, wsutil.close_payload(1000))
    deadline = time.monotonic() + t(60)

    for _ in range(warmup):
        one_connection(srv.port, request, msg, echo, close)
    srv.wait_count(r"^CLOSE \d+ code=1000 cause=clean remote=1", warmup, timeout=10)
    time.sleep(0.1)
    fds0, rss0 = fd_count(pid), rss_kib(pid)

    for i in range(total - warmup):
        one_connection(srv.port, request, msg, echo, close)
        if i % 500 == 0:
            assert time.monotonic() < deadline, "too slow: %d connections done" % (warmup + i)
    srv.wait_count(r"^CLOSE \d+ code=1000 cause=clean remote=1", total, timeout=10)
    time.sleep(0.1)
    fds1, rss1 = fd_count(pid), rss_kib(pid)

    assert srv.count(r"^OPEN ") == total
    assert srv.count(r"^CLOSE ") == total
    assert srv.count(r"^CLOSE \d+ code=1000 cause=clean remote=1 reason=$") == total
    assert abs(fds1 - fds0) <= 2, "fd count %d after warm-up, %d at the end" % (fds0, fds1)
    if "address" in SANITIZER or "thread" in SANITIZER:
        return  # sanitizer allocators keep freed memory (quarantine)
    assert rss1 - rss0 < 2048, "RSS grew from %d KiB to %d KiB" % (rss0, rss1)


def test_many_concurrent_connections(server):
    """200 raw connections open at once, each echoes, then all vanish."""
    n = 200
    srv = server()
    conns = []
    try:
        for _ in range(n):
            c, _ = wsutil.handshake(srv.port)
            conns.append(c)
        srv.wait_count(r"^OPEN ", n)
        for i, c in enumerate(conns):
            c.send_frame(OP_TEXT, b"m%d" % i)
        for i, c in enumerate(conns):
            assert c.read_frame() == (True, OP_TEXT, b"m%d" % i)
    finally:
        for c in conns:
            c.close()
    srv.wait_count(r"^CLOSE \d+ code=1006 cause=disconnect", n, timeout=10)


# ---- thread-safe sending ---------------------------------------------------------

def test_thread_safe_send(server):
    threads, nconns, count = 4, 8, 500
    srv = server("--send-threads", threads, "--send-conns", nconns, "--send-count", count)
    rx = re.compile(r"^t(\d+):(\d+)$")

    async def client(ws):
        got = []
        for _ in range(threads * count):
            got.append(await asyncio.wait_for(ws.recv(), t(20)))
        # Nothing more may follow.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)
        return got

    async def main():
        clients = []
        try:
            for _ in range(nconns):
                clients.append(await ws_connect(srv.port))
            results = await asyncio.gather(*(client(ws) for ws in clients))
        finally:
            for ws in clients:
                await ws.close()
        return results

    results = run(main(), timeout=60)
    assert len(results) == nconns
    for ci, got in enumerate(results):
        assert len(got) == threads * count, "client %d got %d messages" % (ci, len(got))
        per_thread = {i: [] for i in range(threads)}
        for m in got:
            mt = rx.match(m)
            assert mt, "unexpected message %r" % m
            per_thread[int(mt.group(1))].append(int(mt.group(2)))
        for ti, seqs in per_thread.items():
            assert seqs == list(range(count)), \
                "client %d thread %d: %d messages, out of order or missing" % (ci, ti, len(seqs))
    srv.expect(r"^SENDERS DONE$", timeout=10)
    assert srv.count(r"^SEND ERROR") == 0, srv.matching(r"^SEND ERROR")[:5]
    srv.wait_count(r"^CLOSE \d+ code=1000 cause=clean remote=1", nconns)


# ---- graceful stop -------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_stop(server, sig):
    close_timeout = 2.0
    srv = server("--close-timeout", int(close_timeout * 1000))

    async def main():
        clients = [await ws_connect(srv.port) for _ in range(3)]
        await srv.await_count(r"^OPEN ", 3)
        for i, ws in enumerate(clients):
            await ws.send("m%d" % i)
            assert await asyncio.wait_for(ws.recv(), t(5)) == "m%d" % i
        start = time.monotonic()
        srv.signal(sig)
        for ws in clients:
            await asyncio.wait_for(ws.wait_closed(), t(close_timeout + 2))
        codes = [ws.close_code for ws in clients]
        rc = await asyncio.get_running_loop().run_in_executor(
            None, srv.wait, t(close_timeout + 2))
        return codes, rc, time.monotonic() - start

    codes, rc, elapsed = run(main())
    assert codes == [1001, 1001, 1001]
    assert rc == 0
    assert elapsed < t(close_timeout + 2)
    assert srv.count(r"^CLOSE \d+ code=1001 cause=clean remote=0 reason=") == 3, srv.output()
    assert srv.lines[-1] == "STOPPED"


def test_graceful_stop_unanswering_client(server):
    """A client that never answers the 1001: dropped after close_timeout with
    cause=shutdown; the server still exits 0 in time."""
    srv = server("--close-timeout", 500)
    c, _ = wsutil.handshake(srv.port)
    try:
        srv.expect(r"^OPEN ")
        start = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.wait(t(0.5 + 2))
        elapsed = time.monotonic() - start
        assert rc == 0
        assert elapsed >= 0.4, "exited after %.3f s, before close_timeout" % elapsed
        assert srv.count(r"^CLOSE \d+ code=1001 cause=shutdown remote=0 reason=") == 1, \
            srv.output()
        fin, op, payload = c.read_frame(2)
        assert op == OP_CLOSE
        assert wsutil.parse_close(payload)[0] == 1001
        wsutil.wait_for_eof(c.sock, t(2))
    finally:
        c.close()


def test_stop_refuses_new_connections(server):
    """While draining, the listener is closed: new connects are refused or
    get 503; the existing client still finishes its close handshake."""
    srv = server("--close-timeout", 1500)
    c, _ = wsutil.handshake(srv.port)
    try:
        srv.expect(r"^OPEN ")
        srv.signal(signal.SIGTERM)
        fin, op, payload = c.read_frame(3)
        assert op == OP_CLOSE and wsutil.parse_close(payload)[0] == 1001
        # The server is now draining (our close is unanswered).
        try:
            s = wsutil.connect(srv.port, timeout=1)
        except ConnectionRefusedError:
            pass
        else:
            try:
                s.sendall(upgrade_request(srv.port))
                s.settimeout(t(2))
                data = b""
                for _ in range(100):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                assert data == b"" or data.startswith(b"HTTP/1.1 503 "), data
            except ConnectionResetError:
                pass
            finally:
                s.close()
        c.send_frame(OP_CLOSE, wsutil.close_payload(1001))
        wsutil.wait_for_eof(c.sock, t(3))
        assert srv.wait(t(3)) == 0
    finally:
        c.close()
    assert srv.count(r"^CLOSE \d+ code=1001 cause=clean remote=0") == 1


@pytest.mark.parametrize("threads", [1, 3])
def test_stop_drops_half_open_sockets_at_once(server, threads):
    """Sockets still in their handshake (on the pending list) are dropped by
    a stop on every loop: the server exits without waiting for their
    handshake timeout (10 s here), and each gets EOF."""
    srv = server("--handshake-timeout", 10000, "--threads", threads)
    socks = [wsutil.connect(srv.port) for _ in range(6)]
    try:
        for s in socks:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # a partial head
        time.sleep(0.3)
        start = time.monotonic()
        srv.signal(signal.SIGTERM)
        assert srv.wait(t(5)) == 0
        elapsed = time.monotonic() - start
        assert elapsed < 5, "stop waited %.1f s for half-open sockets" % elapsed
        for s in socks:
            wsutil.wait_for_eof(s, t(2))
    finally:
        for s in socks:
            s.close()
