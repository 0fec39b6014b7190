"""The examples users start from, run as users run them, with real peers."""
import asyncio
import http.client
import os
import re
import signal
import subprocess
import threading
import time

import websockets

BUILD = os.environ.get("TOP_BUILDDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SLOW = 3 if "thread" in os.environ.get("SANITIZER", "") else 1


def binary(name):
    return os.path.join(BUILD, "examples", name, name)


class Proc:
    """An example program; a thread collects its stdout lines as they come
    (select() on the pipe would miss lines already in Python's buffer)."""

    def __init__(self, *args):
        self.p = subprocess.Popen(list(args), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def expect(self, pattern, timeout=5):
        deadline = time.monotonic() + timeout * SLOW
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = rx.search(line)
                if m:
                    return m
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r}; got {self.lines}")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if sig is not None and self.p.poll() is None:
            self.p.send_signal(sig)
        rc = self.p.wait(timeout=timeout * SLOW)
        err = self.p.stderr.read()
        for bad in ("AddressSanitizer", "runtime error:", "ThreadSanitizer", "LeakSanitizer"):
            assert bad not in err, err
        return rc


def listening_port(proc):
    return int(proc.expect(r"listening on ws://127\.0\.0\.1:(\d+)/").group(1))


def test_echo_help():
    r = subprocess.run([binary("echo"), "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    assert "usage" in r.stdout.lower()
    bad = subprocess.run([binary("echo"), "--no-such-option"], capture_output=True, text=True,
                         timeout=10)
    assert bad.returncode == 2


def test_echo_serves_text_and_binary_then_stops_on_sigterm():
    srv = Proc(binary("echo"), "127.0.0.1:0")
    port = listening_port(srv)

    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            await ws.send("hello, libwsc")
            assert await ws.recv() == "hello, libwsc"
            await ws.send(bytes(range(256)))
            assert await ws.recv() == bytes(range(256))
    asyncio.run(asyncio.wait_for(talk(), 10))
    assert srv.stop(signal.SIGTERM) == 0


def test_echo_exits_zero_on_sigint_with_client_connected():
    srv = Proc(binary("echo"), "127.0.0.1:0")
    port = listening_port(srv)

    async def hold():
        async with websockets.connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            srv.p.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                pass
            return ws.close_code
    assert asyncio.run(hold()) == 1001  # graceful stop: Going Away
    assert srv.stop(sig=None) == 0  # one SIGINT is enough: no second signal


def test_rtt_measure_demo_prints_real_rtt_lines_and_exits():
    r = subprocess.run([binary("rtt-measure"), "127.0.0.1:0", "--demo", "3",
                        "--interval", "0.2", "--count", "6"],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r.stderr
    rtt = re.findall(r"^RTT with (127\.0\.0\.1:\d+) is \d+(\.\d+)?(ns|µs|us|ms|s)$",
                     r.stdout, re.M)
    assert len(rtt) >= 6, r.stdout
    assert len({addr for addr, _, _ in rtt}) >= 2, r.stdout  # several clients answered
    assert len(re.findall(r"client 127\.0\.0\.1:\d+ connected", r.stdout)) == 3, r.stdout


def test_rtt_measure_with_python_client():
    srv = Proc(binary("rtt-measure"), "127.0.0.1:0", "--interval", "0.2")
    port = listening_port(srv)

    async def answer_pings():
        # websockets answers pings by itself; we only have to keep reading.
        async with websockets.connect(f"ws://127.0.0.1:{port}/", compression=None,
                                      ping_interval=None) as ws:
            local = "%s:%d" % ws.local_address[:2]
            try:
                await asyncio.wait_for(ws.recv(), 1.5 * SLOW)
            except asyncio.TimeoutError:
                pass
            return local
    local = asyncio.run(answer_pings())
    srv.expect(r"RTT with " + re.escape(local) + r" is ")
    assert srv.stop() == 0


# ---- examples/broadcast ------------------------------------------------------

TICK = re.compile(r"^tick (\d+) \d\d:\d\d:\d\d\.\d{3} to (\d+) clients?$")


def post(port, path, body, method="POST"):
    """One plain HTTP request; returns (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5 * SLOW)
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Type": "text/plain; charset=utf-8"})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


async def read_until(ws, pred, timeout=3):
    """Messages from ws up to and including the first that pred accepts."""
    got = []
    deadline = time.monotonic() + timeout * SLOW
    while not got or not pred(got[-1]):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no awaited message; got {got}")
        try:
            got.append(await asyncio.wait_for(ws.recv(), left))
        except asyncio.TimeoutError:
            raise AssertionError(f"no awaited message; got {got}") from None
    return got


def not_ticks(msgs):
    return [m for m in msgs if not TICK.match(m)]


async def ticks_after(ws, n):
    """Read until n more ticks came; returns every message read."""
    seen = []

    def nth_tick(m):
        if TICK.match(m):
            seen.append(m)
        return len(seen) == n
    return await read_until(ws, nth_tick, timeout=1 + 0.2 * n)


class Broadcast:
    """examples/broadcast with 3 websockets clients, and each client's
    connection id as the server printed it."""

    def __init__(self, *extra):
        self.srv = Proc(binary("broadcast"), "--interval", "200", *extra, "127.0.0.1:0")
        self.port = listening_port(self.srv)

    async def connect(self, n=3):
        self.ws, self.ids = [], []
        for _ in range(n):
            ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/", open_timeout=5)
            local = "%s:%d" % ws.local_address[:2]
            m = self.srv.expect(r"^client (\d+) at " + re.escape(local) + r" connected")
            self.ws.append(ws)
            self.ids.append(int(m.group(1)))
        return self.ws

    async def close(self):
        await asyncio.gather(*(ws.close() for ws in self.ws))


def run_broadcast(scenario, *extra, clients=3):
    """Run scenario(b) against a fresh server, then SIGTERM it: exit 0."""
    b = Broadcast(*extra)

    async def main():
        await b.connect(clients)
        try:
            await scenario(b)
        finally:
            await b.close()
    try:
        asyncio.run(asyncio.wait_for(main(), 20 * SLOW))
    finally:
        rc = b.srv.stop()
    assert rc == 0
    return b


def test_broadcast_help():
    r = subprocess.run([binary("broadcast"), "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0
    assert "usage" in r.stdout.lower() and "--interval" in r.stdout
    for bad in (["--no-such-option"], ["--interval", "0"], ["--interval", "x"],
                ["--max-connections", "-1"], ["a:1", "b:2"]):
        r = subprocess.run([binary("broadcast"), *bad], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2, bad


def test_broadcast_ticks_are_consecutive_for_every_client():
    async def scenario(b):
        for ws in b.ws:
            nums = []
            for m in await ticks_after(ws, 4):
                t = TICK.match(m)
                assert t, m  # nothing but ticks was sent
                nums.append(int(t.group(1)))
            assert nums == list(range(nums[0], nums[0] + 4)), nums
            assert nums[0] >= 1
            assert TICK.match(m).group(2) == "3", m  # the last one: all connected
    run_broadcast(scenario)


def test_broadcast_client_message_reaches_everyone_once_with_sender_id():
    async def scenario(b):
        await b.ws[1].send("hello, everyone ✓")
        want = f"from {b.ids[1]}: hello, everyone ✓"
        for ws in b.ws:
            before = await read_until(ws, lambda m: m == want)
            assert not_ticks(before) == [want]
            # Later broadcasts follow it in order: a duplicate would come
            # before the next two ticks.
            assert not_ticks(await ticks_after(ws, 2)) == []
    run_broadcast(scenario)


def test_broadcast_http_post_reaches_everyone():
    async def scenario(b):
        status, _, body = await asyncio.to_thread(post, b.port, "/broadcast",
                                                  "news for all".encode())
        assert (status, body) == (200, b"sent to 3 clients\n")
        for ws in b.ws:
            assert not_ticks(await read_until(ws, lambda m: m == "news for all")) == \
                ["news for all"]
            assert not_ticks(await ticks_after(ws, 2)) == []
    run_broadcast(scenario)


def test_broadcast_http_post_invalid_utf8_is_400_and_sends_nothing():
    async def scenario(b):
        status, _, _ = await asyncio.to_thread(post, b.port, "/broadcast", b"bad \xff\xfe")
        assert status == 400
        # A good one after it: whatever came before it would be the bad one.
        status, _, _ = await asyncio.to_thread(post, b.port, "/broadcast", b"marker")
        assert status == 200
        for ws in b.ws:
            assert not_ticks(await read_until(ws, lambda m: m == "marker")) == ["marker"]
    run_broadcast(scenario)


def test_broadcast_http_other_paths_404_other_methods_405():
    async def scenario(b):
        status, _, _ = await asyncio.to_thread(post, b.port, "/other", None, "GET")
        assert status == 404
        status, _, _ = await asyncio.to_thread(post, b.port, "/other", b"x")
        assert status == 404
        status, headers, _ = await asyncio.to_thread(post, b.port, "/broadcast", None, "GET")
        assert status == 405 and headers.get("Allow") == "POST"
        for ws in b.ws:  # none of these broadcast anything
            assert not_ticks(await ticks_after(ws, 2)) == []
    run_broadcast(scenario)


def test_broadcast_max_connections_refuses_one_more_with_503():
    async def scenario(b):
        try:
            extra = await websockets.connect(f"ws://127.0.0.1:{b.port}/", open_timeout=5)
        except websockets.InvalidStatusCode as e:
            assert e.status_code == 503
        else:
            await extra.close()
            raise AssertionError("a connection over --max-connections was accepted")
        last = (await ticks_after(b.ws[0], 2))[-1]
        assert TICK.match(last).group(2) == "2", last
    run_broadcast(scenario, "--max-connections", "2", clients=2)


def test_broadcast_sigterm_closes_clients_with_1001_and_exits_zero():
    b = Broadcast()

    async def main():
        clients = await b.connect()
        b.srv.p.send_signal(signal.SIGTERM)
        for ws in clients:
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 5 * SLOW)
            except websockets.ConnectionClosed:
                pass
        return [ws.close_code for ws in clients]
    assert asyncio.run(asyncio.wait_for(main(), 20 * SLOW)) == [1001] * 3
    assert b.srv.stop(sig=None) == 0
    for cid in b.ids:
        assert any(re.match(rf"client {cid} at 127\.0\.0\.1:\d+ disconnected, code 1001", line)
                   for line in b.srv.lines), b.srv.lines
