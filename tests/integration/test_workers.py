"""threads = N: connections dealt to N loops in turn, each connection's
callbacks on its own loop, and broadcast, publish, cross-thread sends,
limits and the graceful stop spanning every loop."""

import collections
import re
import signal

import wsutil
from wsutil import check_sender_threads

THREADS = 3


def loops_of(srv):
    """conn id -> loop thread, from the LOOP lines of open callbacks."""
    out = {}
    for line in srv.lines:
        m = re.match(r"^LOOP (\d+) (\d+)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_connections_spread_evenly_and_callbacks_stay_on_their_loop(server):
    srv = server("--threads", THREADS)
    conns = [wsutil.handshake(srv.port)[0] for _ in range(3 * THREADS)]
    srv.wait_count(r"^LOOP ", 3 * THREADS)
    loops = loops_of(srv)
    per_loop = collections.Counter(loops.values())
    assert len(per_loop) == THREADS and set(per_loop.values()) == {3}, per_loop
    for i, c in enumerate(conns):
        c.send_frame(wsutil.OP_TEXT, b"hello %d" % i)
        assert c.read_frame()[2] == b"hello %d" % i
    srv.wait_count(r"^DATALOOP ", len(conns))
    for line in srv.lines:
        m = re.match(r"^DATALOOP (\d+) (\d+)$", line)
        if m:
            assert loops[m.group(1)] == m.group(2), "data callback ran on another loop"
    for c in conns:
        c.close()


def test_broadcast_and_publish_reach_every_loop(server):
    srv = server("--threads", THREADS, "--broadcast-on-message")
    conns = [wsutil.handshake(srv.port)[0] for _ in range(2 * THREADS)]
    srv.wait_count(r"^LOOP ", 2 * THREADS)
    for c in conns:
        c.send_frame(wsutil.OP_TEXT, b"sub:all")
        srv.expect(r"^CMD sub rc=0$")
    conns[0].send_frame(wsutil.OP_TEXT, b"bcast:to everyone")
    for c in conns:
        assert c.read_frame()[2] == b"to everyone"
    conns[1].send_frame(wsutil.OP_TEXT, b"pub:all:to subscribers")
    for c in conns:
        assert c.read_frame()[2] == b"to subscribers"
    for c in conns:
        c.close()


def test_cross_thread_sends_to_connections_on_every_loop(server):
    threads, conns, count = 3, 6, 300
    srv = server("--threads", THREADS, "--send-threads", threads, "--send-conns", conns,
                 "--send-count", count)
    check_sender_threads(srv, conns, threads, count)
    assert srv.count(r"^SEND ERROR") == 0
    assert len(set(loops_of(srv).values())) == THREADS


def test_max_connections_counts_all_loops(server):
    srv = server("--threads", THREADS, "--max-connections", 4)
    conns = [wsutil.handshake(srv.port)[0] for _ in range(4)]
    resp = wsutil.http_exchange(srv.port, wsutil.upgrade_request(srv.port))
    assert resp.status_line.startswith("HTTP/1.1 503"), resp.status_line
    for c in conns:
        c.close()


def test_graceful_stop_closes_connections_on_every_loop(server):
    srv = server("--threads", THREADS)
    conns = [wsutil.handshake(srv.port)[0] for _ in range(2 * THREADS)]
    srv.wait_count(r"^LOOP ", 2 * THREADS)
    srv.proc.send_signal(signal.SIGTERM)
    for c in conns:
        fin, op, payload = c.read_frame(timeout=5)
        assert op == wsutil.OP_CLOSE and payload[:2] == b"\x03\xe9"  # 1001
        c.send_frame(wsutil.OP_CLOSE, payload[:2])
    assert srv.stop() == 0
    assert srv.count(r"^CLOSE \d+ code=1001 cause=clean") == 2 * THREADS
