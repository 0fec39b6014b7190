"""Timers that must not kill well-behaved peers (issue 10, defect 6).

  - an HTTP keep-alive connection stays up while it is active (before the
    fix it was closed at handshake_timeout however active), and an idle one
    is closed after keepalive_timeout;
  - a Connection: close response read slowly (small receive buffer, small
    reads with pauses, longer than the old 2 s linger in total) arrives
    whole;
  - the heartbeat counts payload bytes as life: one 1 MB frame trickling in
    over ~2 s with ping-interval 300 / pong-timeout 300 is not dropped (it
    used to count only frame headers).
"""

import os
import socket
import time

import pytest

from hardutil import t
from wsutil import OP_BINARY, OP_PING, HOST, Conn, connect, frame, handshake, wait_for_eof

HELLO = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.mark.parametrize("extra", [(), ("--keepalive-timeout", 800)],
                         ids=["default-keepalive", "keepalive-800"])
def test_active_keepalive_connection_outlives_the_handshake_timeout(server, extra):
    srv = server("--http", "--handshake-timeout", 1000, *extra)
    c = Conn(connect(srv.port))
    start = time.monotonic()
    served = 0
    try:
        while time.monotonic() - start < 4.0:
            c.send(HELLO)
            resp = c.read_http_response(timeout=2)
            assert (resp.status, resp.body) == (200, b"hello"), resp
            served += 1
            time.sleep(0.5)
    except (EOFError, ConnectionError, socket.timeout) as e:
        pytest.fail("keep-alive connection lost after %.1f s and %d requests (GET every "
                    "500 ms, handshake timeout 1 s): %r" % (time.monotonic() - start, served, e))
    finally:
        c.close()
    print("one keep-alive connection: %d GETs over 4 s" % served)
    assert served >= 7


def test_idle_keepalive_connection_is_closed_after_keepalive_timeout(server):
    srv = server("--http", "--handshake-timeout", 5000, "--keepalive-timeout", 800)
    c = Conn(connect(srv.port))
    try:
        c.send(HELLO)
        assert c.read_http_response().status == 200
        idle = wait_for_eof(c.sock, t(5))
    finally:
        c.close()
    print("idle keep-alive connection closed after %.2f s (keepalive-timeout 0.8 s)" % idle)
    assert 0.6 <= idle <= 0.8 + t(1.0)


def _echo_read_slowly(port, size, headers, read_size, pause):
    """POST size bytes to /echo from a socket with a small receive window,
    then read the response read_size bytes at a time with a pause between
    reads, until the body is whole or the server ends the connection.
    Returns (response head, body bytes, the sent body, seconds taken)."""
    body = bytes(range(256)) * (size // 256)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # before connect: small window
    s.connect((HOST, port))
    data = b""
    start = time.monotonic()
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers +
                  b"Content-Length: %d\r\n\r\n" % size + body)
        s.settimeout(t(10))
        for _ in range(100000):
            head, sep, got = data.partition(b"\r\n\r\n")
            if sep and len(got) >= size:
                break
            chunk = s.recv(read_size)
            if not chunk:
                break
            data += chunk
            time.sleep(pause)
    except ConnectionResetError:
        pass
    finally:
        s.close()
    head, _, got = data.partition(b"\r\n\r\n")
    return head, got, body, time.monotonic() - start


def test_connection_close_response_read_slowly_arrives_whole(server):
    size = 1536 * 1024
    srv = server("--http", "--max-body", 4 * 1024 * 1024)
    # each pause far below close_timeout
    head, got, body, took = _echo_read_slowly(srv.port, size, b"Connection: close\r\n",
                                              16384, 0.025)
    print("Connection: close response of %d bytes read slowly over %.1f s: got %d"
          % (size, took, len(got)))
    assert head.startswith(b"HTTP/1.1 200 "), head[:200]
    assert took > 2.0, "read too fast to prove anything"
    assert len(got) == size and got == body


def test_keepalive_response_read_slowly_arrives_whole(server):
    """A keep-alive response larger than the kernel's socket buffers (so
    the library holds the rest) read more slowly than keepalive_timeout in
    total, never pausing that long, arrives whole: the idle wait starts
    once the response has left the library's buffers (it used to start at
    the response and drop the held rest at 0.8 s). The kernel may still
    hold megabytes then, so the connection may close after the body, as
    nginx's would."""
    size = 8 << 20
    srv = server("--http", "--max-body", 16 << 20, "--keepalive-timeout", 800)
    # each pause far below keepalive_timeout
    head, got, body, took = _echo_read_slowly(srv.port, size, b"", 65536, 0.01)
    print("keep-alive response of %d bytes read slowly over %.1f s: got %d"
          % (size, took, len(got)))
    assert head.startswith(b"HTTP/1.1 200 "), head[:200]
    assert took > 1.6, "read too fast to prove anything (keepalive-timeout 0.8 s)"
    assert len(got) == size and got == body


def test_heartbeat_counts_payload_bytes_of_a_slow_frame(server):
    srv = server("--ping-interval", 300, "--pong-timeout", 300)
    size = 1000 * 1000
    payload = os.urandom(size)
    wire = frame(OP_BINARY, payload)
    c, _ = handshake(srv.port)
    try:
        # ~2 s: 100 pieces every 20 ms; never a whole frame header in between.
        piece = len(wire) // 100 + 1
        for i in range(0, len(wire), piece):
            c.send(wire[i:i + piece])
            time.sleep(0.02)
        for _ in range(100):
            op, data = c.read_message(timeout=5)
            if op != OP_PING:  # pings are not answered: the bytes are the life
                break
        assert op == OP_BINARY, "got opcode %#x (%r) instead of the echo" % (op, data[:40])
        assert data == payload
        assert srv.count(r"^CLOSE ") == 0, srv.matching(r"^CLOSE ")
    finally:
        c.close()


def test_many_deadlines_fire_each_on_time_in_connect_order(server):
    """One loop timer and a heap of deadlines (timers.c): 4 waves of 40
    silent connections, 150 ms apart, each closed at its own handshake
    timeout (600 ms after its connect, not its wave's or the first one's);
    10 of each wave closed by us first (removals from inside the heap) take
    no other connection with them, and an upgraded connection pinged at its
    own interval meanwhile gets its ping."""
    import selectors
    srv = server("--handshake-timeout", 600, "--ping-interval", 250, "--pong-timeout", 5000)
    live, _ = handshake(srv.port)
    opened, early = {}, []
    for wave in range(4):
        for i in range(40):
            s = connect(srv.port)
            s.setblocking(False)
            opened[s] = time.monotonic()
            if i % 4 == 0:
                early.append(s)
        time.sleep(0.15)
    for s in early:  # later waves still before their deadline: removals inside the heap
        del opened[s]
        s.close()
    sel = selectors.DefaultSelector()
    for s in opened:
        sel.register(s, selectors.EVENT_READ)
    closed_after = {}
    deadline = time.monotonic() + t(6)
    while len(closed_after) < len(opened) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except ConnectionError:
                data = b""
            if data == b"":
                closed_after[s] = time.monotonic() - opened[s]
                sel.unregister(s)
    pings = 0
    try:
        while True:
            _, op, _ = live.read_frame(timeout=0.3)
            pings += op == OP_PING
    except (socket.timeout, BlockingIOError):
        pass
    for s in opened:
        s.close()
    live.close()
    waits = sorted(closed_after.values())
    print("%d silent connections closed after %.3f..%.3f s (timeout 0.6 s); "
          "%d pings on the open one" % (len(waits), waits[0], waits[-1], pings))
    assert len(closed_after) == len(opened) == 120, "some deadlines never fired"
    assert waits[0] >= 0.55, "a connection closed before its own deadline"
    assert waits[-1] <= 0.6 + t(0.8), "a deadline fired late"
    assert pings == 1, "the upgraded connection's heartbeat (one unanswered ping) misfired"
