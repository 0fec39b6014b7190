"""The examples users start from, run as users run them, with real peers."""
import asyncio
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
