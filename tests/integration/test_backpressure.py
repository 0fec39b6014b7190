"""Backpressure: a client that stops reading costs bounded memory, never
slows the others, and loses nothing silently (WS_EAGAIN + drain), or is
closed by policy (1008, cause=slow)."""

import asyncio
import re
import socket
import struct
import time

import wsutil
from wsutil import cpu_seconds, rss_kib, run, t, ws_connect

CAP = 262144


def settled_eagains(srv):
    """While the kernel's send buffer grows (loopback autotuning), drains and
    EAGAINs alternate; wait until the count stops moving, then return it."""
    last, stable_since = -1, time.monotonic()
    deadline = time.monotonic() + t(20)
    while time.monotonic() < deadline:
        n = srv.count(r"^EAGAIN ")
        if n != last:
            last, stable_since = n, time.monotonic()
        elif time.monotonic() - stable_since > 1.0:
            return n
        time.sleep(0.05)
    raise AssertionError("backpressure never settled: %d EAGAINs" % last)


def stalled_client(port):
    """A raw WebSocket client with a tiny receive buffer that reads nothing."""
    key = wsutil.new_key()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(t(5))
    s.connect(("127.0.0.1", port))
    c = wsutil.Conn(s)
    c.send(wsutil.upgrade_request(port, key=key))
    resp = c.read_http_response(t(5), body=False)
    assert resp.status_line.startswith("HTTP/1.1 101"), resp
    return c


def echo_round_trips(port, n=200):
    async def go():
        async with ws_connect(port) as ws:
            for i in range(n):
                await ws.send("ping %d" % i)
                assert await asyncio.wait_for(ws.recv(), t(5)) == "ping %d" % i
    run(go(), timeout=30)


def test_eagain_bounds_memory_keeps_others_fast_and_loses_nothing(server):
    srv = server("--max-buffered", CAP)
    slow = stalled_client(srv.port)
    slow.send_frame(wsutil.OP_TEXT, b"flood:16384")
    srv.expect(r"^EAGAIN (\d+) buffered=(\d+)$", timeout=20)
    eagains = settled_eagains(srv)
    for line in srv.lines:
        m = re.match(r"^EAGAIN \d+ buffered=(\d+)$", line)
        if m:
            assert int(m.group(1)) <= CAP, "a send was admitted past the cap: " + line
    rss_before, cpu_before = rss_kib(srv.pid), cpu_seconds(srv.pid)
    echo_round_trips(srv.port)          # others are served while it stalls
    time.sleep(t(1.0))
    assert rss_kib(srv.pid) - rss_before < 4096, "memory grew while the client stalled"
    assert srv.count(r"^EAGAIN ") == eagains, "sends went on while blocked"
    assert cpu_seconds(srv.pid) - cpu_before < 0.5, "busy while blocked"

    # Now read: a drain callback fires, the flood resumes, and the messages
    # arrive numbered 0, 1, 2, ... with no gap.
    expected = 0
    deadline = time.monotonic() + t(20)
    while expected < 400 and time.monotonic() < deadline:
        fin, op, payload = slow.read_frame(timeout=5)
        assert op == wsutil.OP_BINARY and len(payload) == 16384
        assert struct.unpack("!Q", payload[:8])[0] == expected
        expected += 1
    assert expected == 400
    srv.expect(r"^DRAIN \d+ buffered=\d+$", timeout=10)
    slow.close()
    m = srv.expect(r"^FLOOD \d+ sent=(\d+)$", timeout=10)
    assert int(m.group(1)) >= 400


def test_cap_both_sides_for_a_single_message(server):
    """A message of exactly the cap fits an empty buffer; one byte more can
    never fit (WS_ETOOBIG: retrying would be pointless)."""
    srv = server("--max-buffered", 4096)
    c, _ = wsutil.handshake(srv.port)
    c.send_frame(wsutil.OP_BINARY, b"x" * (4096 - 4))   # echo frame = 4 + 4092 bytes
    fin, op, payload = c.read_frame()
    assert len(payload) == 4092
    # One byte more: 4 + 4093 = 4097 with its header, which can never fit.
    c.send_frame(wsutil.OP_BINARY, b"x" * 4093)
    srv.expect(r"^SEND ERROR -5$")                        # WS_ETOOBIG
    c.close()


def test_close_slow_consumer_policy(server):
    srv = server("--max-buffered", CAP, "--close-slow")
    slow = stalled_client(srv.port)
    slow.send_frame(wsutil.OP_TEXT, b"flood:16384")
    srv.expect(r"^CLOSE \d+ code=1008 cause=slow remote=0 reason=slow consumer$", timeout=20)
    echo_round_trips(srv.port, 50)
    slow.close()


def test_broadcast_skips_slow_consumer_without_holding_up_others(server):
    srv = server("--broadcast-on-message", "--max-buffered", 65536)
    slow = stalled_client(srv.port)
    payload = "b" * 32768

    async def go():
        async with ws_connect(srv.port) as fast:
            for i in range(300):
                await fast.send("bcast:%d:%s" % (i, payload))
                got = await asyncio.wait_for(fast.recv(), t(5))
                assert got.startswith("%d:" % i)
    run(go(), timeout=60)
    skipped = srv.count(r"^CMD bcast rc=1$")
    assert skipped > 0, "the stalled client was never skipped"
    assert srv.count(r"^CMD bcast rc=0$") + skipped == 300
    slow.close()
