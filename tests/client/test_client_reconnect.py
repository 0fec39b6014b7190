"""Reconnecting with exponential backoff and jitter: against nothing, a
server that appears later, one that is killed and comes back, and servers
that keep failing the handshake."""

import re
import signal
import time

from rawpeer import t

from ..common.sockio import free_port

WS_ECONNECT, WS_EHANDSHAKE = -13, -14

RECONNECT_RX = r"^RECONNECT attempt=(\d+) delay=(\d+) error=(-?\d+)$"


def nominal(min_ms, max_ms, n):
    return min(max_ms, min_ms * 2 ** (n - 1))


def check_delay(min_ms, max_ms, n, delay):
    d = nominal(min_ms, max_ms, n)
    assert d / 2 <= delay <= d, "retry %d waited %d ms, outside [%g, %d]" % (n, delay, d / 2, d)


def reconnects(cl):
    out = []
    for line in cl.matching(r"^RECONNECT "):
        m = re.match(RECONNECT_RX, line)
        assert m, line
        out.append(tuple(int(x) for x in m.groups()))
    return out


def test_backoff_then_server_appears_then_killed_and_back(client, peer):
    port = free_port()
    cl = client("ws://127.0.0.1:%d/" % port, "--reconnect", "100:800:0",
                "--connect-timeout", 2000)
    # Nothing listens: retries 1..5 wait 100, 200, 400, 800, 800 (-jitter).
    times = []
    for n in range(1, 6):
        m, when = cl.expect(RECONNECT_RX, timeout=5, with_time=True)
        attempt, delay, error = (int(x) for x in m.groups())
        assert attempt == n, m.group(0)
        assert error == WS_ECONNECT, m.group(0)
        check_delay(100, 800, n, delay)
        times.append((when, delay))
    # Each retry really waited its delay before the next attempt failed.
    for (t0, d0), (t1, _) in zip(times, times[1:]):
        assert t1 - t0 >= d0 / 1000.0 - 0.02, (t1 - t0, d0)
        assert t1 - t0 <= d0 / 1000.0 + t(1.0), (t1 - t0, d0)
    assert cl.count(r"^(OPEN|GIVEUP|CLOSE) ") == 0

    # The server appears on that port: the next retry opens.
    p = peer("--port", port)
    cl.expect(r"^OPEN 127\.0\.0\.1:%d proto=$" % port, timeout=5)
    p.expect_event("open")
    # Retries scheduled before the peer was listening (a slow start on a
    # loaded machine) came before the OPEN: they are not the new count.
    for _ in range(cl.count(RECONNECT_RX) - 5):
        cl.expect(RECONNECT_RX, timeout=0.1)

    # Killed (no close frame): disconnect, and the count starts again at 1.
    p.kill()
    cl.expect(r"^CLOSE code=1006 cause=disconnect remote=0 reason=$", timeout=5)
    m = cl.expect(RECONNECT_RX, timeout=5)
    assert int(m.group(1)) == 1, m.group(0)
    assert int(m.group(3)) != 0, m.group(0)
    check_delay(100, 800, 1, int(m.group(2)))
    m = cl.expect(RECONNECT_RX, timeout=5)      # attempt 2: refused
    assert (int(m.group(1)), int(m.group(3))) == (2, WS_ECONNECT), m.group(0)

    # Back again: open again.
    p2 = peer("--port", port)
    cl.expect(r"^OPEN 127\.0\.0\.1:%d proto=$" % port, timeout=5)
    p2.expect_event("open")
    cl.signal(signal.SIGTERM)
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0 ")
    cl.expect(r"^GIVEUP ")
    cl.finish()
    assert cl.count(r"^RECONNECT ") >= 7
    assert p2.expect_event("closed")["code"] == 1000


def test_max_attempts(client):
    port = free_port()
    start = time.monotonic()
    cl = client("ws://127.0.0.1:%d/" % port, "--reconnect", "50:100:3")
    cl.expect(r"^GIVEUP error=%d " % WS_ECONNECT, timeout=5)
    lines = cl.finish()
    rs = reconnects(cl)
    assert [r[0] for r in rs] == [1, 2, 3], lines
    assert all(r[2] == WS_ECONNECT for r in rs), lines
    for n, delay, _ in rs:
        check_delay(50, 100, n, delay)
    # GIVEUP is the last event, after the third retry failed.
    events = [ln for ln in lines if not ln.startswith("CONNECT ")]
    assert events[-1].startswith("GIVEUP"), lines
    assert time.monotonic() - start >= sum(r[1] for r in rs) / 1000.0 - 0.05


def test_reconnect_after_bad_handshakes(client, raw_server):
    def forbidden(peer):
        peer.read_request()
        peer.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    srv = raw_server(forbidden)
    cl = client("ws://127.0.0.1:%d/" % srv.port, "--reconnect", "30:60:2")
    cl.expect(r"^GIVEUP error=%d " % WS_EHANDSHAKE, timeout=8)
    cl.finish()
    rs = reconnects(cl)
    assert [(r[0], r[2]) for r in rs] == [(1, WS_EHANDSHAKE), (2, WS_EHANDSHAKE)]
    assert srv.accepted == 3


def test_reconnect_after_server_close(client, peer):
    """A clean close by the server is followed by a retry (error 0) when
    reconnecting is on; data flows again on the new connection."""
    p = peer("--subprotocols", "chat")
    cl = client("ws://127.0.0.1:%d/r?n=1" % p.port, "--reconnect", "50:100:0",
                "--send", "close:4001:again", "--header", "X-Retry:yes",
                "--subprotocols", "chat")
    cl.expect(r"^OPEN \S+ proto=chat$")
    cl.expect(r"^CLOSE code=4001 cause=clean remote=1 reason=again$")
    m = cl.expect(RECONNECT_RX)
    assert (int(m.group(1)), int(m.group(3))) == (1, 0), m.group(0)
    cl.expect(r"^OPEN \S+ proto=chat$", timeout=5)
    cl.expect(r"^CLOSE code=4001 cause=clean remote=1 reason=again$")
    cl.signal(signal.SIGTERM)
    cl.expect(r"^GIVEUP ", timeout=5)
    cl.finish()
    # Every attempt carries the same request (path, extra headers,
    # subprotocols) with a fresh key.
    opens = p.all_events("open")
    assert len(opens) >= 2
    keys = set()
    for ev in opens:
        hdrs = {k.lower(): v for k, v in ev["headers"]}
        assert ev["path"] == "/r?n=1"
        assert hdrs.get("x-retry") == "yes", ev
        assert hdrs.get("sec-websocket-protocol") == "chat", ev
        assert ev["subprotocol"] == "chat"
        keys.add(hdrs["sec-websocket-key"])
    assert len(keys) == len(opens)


def test_stop_while_waiting_to_retry(client):
    port = free_port()
    cl = client("ws://127.0.0.1:%d/" % port, "--reconnect", "5000:5000:0")
    cl.expect(RECONNECT_RX)
    cl.signal(signal.SIGTERM)
    cl.expect(r"^GIVEUP ", timeout=2)
    cl.finish(timeout=3)
    assert cl.count(r"^RECONNECT ") == 1


def test_stop_while_connecting(client, raw_server):
    """SIGTERM during a handshake the server never answers: the attempt is
    abandoned, GIVEUP, exit 0, well before the handshake timeout."""
    import threading
    release = threading.Event()

    def silent(peer):
        peer.read_request()
        release.wait(t(10))

    srv = raw_server(silent)
    cl = client("ws://127.0.0.1:%d/" % srv.port, "--reconnect", "50:100:0",
                "--handshake-timeout", 10000)
    deadline = time.monotonic() + t(5)
    while srv.accepted == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    cl.signal(signal.SIGTERM)
    cl.expect(r"^GIVEUP ", timeout=2)
    cl.finish(timeout=3)
    release.set()
    assert cl.count(r"^(OPEN|RECONNECT) ") == 0
