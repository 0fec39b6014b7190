"""examples/ticker: the protocol (with a Python client) and fault handling
with real processes: a stopped server, a stopped client, a killed and
restarted server. Everything on 127.0.0.1, short intervals, each test well
under 40 s (x3 under ThreadSanitizer)."""
import asyncio
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import websockets

BUILD = os.environ.get("TOP_BUILDDIR", "/work/main")
SLOW = 3 if "thread" in os.environ.get("SANITIZER", "") else 1
SERVER = os.path.join(BUILD, "examples", "ticker", "ticker-server")
CLIENT = os.path.join(BUILD, "examples", "ticker", "ticker-client")

# Short application-level liveness settings, shared by both programs.
INTERVAL = 0.3 * SLOW
TIMEOUT = 1.0 * SLOW
LIVENESS = ["--ping-interval", str(INTERVAL), "--ping-timeout", str(TIMEOUT)]
# Noticing a silent peer takes at most an interval plus the timeout; a
# closing side then waits up to the close timeout (= TIMEOUT) for an answer.
DETECT = INTERVAL + TIMEOUT
SANITIZER_REPORTS = ("AddressSanitizer", "runtime error:", "ThreadSanitizer",
                     "LeakSanitizer")

pytestmark = pytest.mark.skipif(not os.path.exists(SERVER),
                                reason="ticker not built (no jansson)")


class Proc:
    """A program whose stdout lines a thread collects as they come."""

    def __init__(self, *args):
        self.args = args
        self.p = subprocess.Popen(list(args), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def expect(self, pattern, timeout=5, start=0):
        """The first line from index start on matching pattern, as
        (match, index); fails after timeout seconds (x SLOW)."""
        deadline = time.monotonic() + timeout * SLOW
        rx = re.compile(pattern)
        while True:
            lines = list(self.lines)
            for i in range(start, len(lines)):
                m = rx.search(lines[i])
                if m:
                    return m, i
            if time.monotonic() > deadline:
                raise AssertionError(f"{os.path.basename(self.args[0])}: no line "
                                     f"matching {pattern!r} after line {start}; "
                                     f"got {lines[start:][-40:]}")
            time.sleep(0.02)

    def count(self, pattern, start=0):
        rx = re.compile(pattern)
        return sum(1 for line in list(self.lines)[start:] if rx.search(line))

    def send(self, sig):
        self.p.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal, wait for the exit status, check stderr for sanitizers."""
        if sig is not None and self.p.poll() is None:
            self.p.send_signal(sig)
        rc = self.p.wait(timeout=timeout * SLOW)
        self.reader.join(5)
        err = self.p.stderr.read()
        for bad in SANITIZER_REPORTS:
            assert bad not in err, err
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


@pytest.fixture
def procs():
    """Started programs; whatever a failed test leaves running is killed."""
    started = []

    def start(*args):
        proc = Proc(*args)
        started.append(proc)
        return proc
    yield start
    for proc in started:
        if proc.p.poll() is None:
            proc.p.send_signal(signal.SIGCONT)
            proc.kill()


def launch_server(procs, port=0, *extra):
    return procs(SERVER, f"127.0.0.1:{port}", "--tick-ms", "100", *LIVENESS, *extra)


def server_port(srv):
    return int(srv.expect(r"^listening on ws://127\.0\.0\.1:(\d+)/$")[0].group(1))


def start_server(procs, port=0, *extra):
    srv = launch_server(procs, port, *extra)
    return srv, server_port(srv)


def start_client(procs, port, *symbols):
    return procs(CLIENT, f"ws://127.0.0.1:{port}/", *symbols, *LIVENESS,
                 "--reconnect-min-ms", "100", "--reconnect-max-ms", "400")


# ---- a Python client for protocol checks ---------------------------------------


class Peer:
    """A websockets connection speaking the ticker's JSON; answers the
    server's application pings unless told not to."""

    def __init__(self, ws, answer_pings=True):
        self.ws = ws
        self.answer_pings = answer_pings

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def recv(self, timeout=3):
        """The next message other than a server ping, within timeout."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            left = max(deadline - time.monotonic(), 0.001)
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            if msg.get("type") != "ping":
                return msg
            assert isinstance(msg["id"], int) and isinstance(msg["ts"], int), msg
            if self.answer_pings:
                await self.send({"type": "pong", "id": msg["id"], "ts": msg["ts"]})

    async def recv_type(self, type_, timeout=3):
        """Skips ticks until a message of type_ arrives."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            msg = await self.recv(max(deadline - time.monotonic(), 0.01) / SLOW)
            if msg["type"] == type_:
                return msg
            assert msg["type"] == "tick", msg

    async def ticks(self, duration):
        """Every tick within duration seconds."""
        out = []
        deadline = time.monotonic() + duration
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await self.recv(left / SLOW)
            except asyncio.TimeoutError:
                break
            assert msg["type"] == "tick", msg
            out.append(msg)
        return out

    async def ping(self, id_):
        """Sends a ping; returns the ticks before its pong, which the server
        sends after everything it queued before reading the ping."""
        await self.send({"type": "ping", "id": id_, "ts": 12345})
        before = []
        while True:
            msg = await self.recv()
            if msg["type"] == "pong":
                assert msg == {"type": "pong", "id": id_, "ts": 12345}
                return before
            assert msg["type"] == "tick", msg
            before.append(msg)


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout * SLOW))


def connect(port):
    return websockets.connect(f"ws://127.0.0.1:{port}/", ping_interval=None)


def check_tick(msg):
    assert set(msg) == {"type", "symbol", "price", "seq"}, msg
    assert isinstance(msg["price"], (int, float)) and msg["price"] > 0, msg
    assert round(msg["price"], 2) == msg["price"], msg  # cents
    assert isinstance(msg["seq"], int) and msg["seq"] >= 0, msg


# ---- command line ----------------------------------------------------------------


def test_help_and_bad_options():
    for prog in (SERVER, CLIENT):
        r = subprocess.run([prog, "--help"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0 and "usage" in r.stdout.lower(), r
        r = subprocess.run([prog, "--no-such-option"], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2, r
    for args in ([CLIENT, "ws://127.0.0.1:1/"],  # no symbol
                 [SERVER, "--ping-timeout", "0"],
                 [SERVER, "--symbols", "AAPL,,SPY"],
                 [SERVER, "--tick-ms", "x"]):
        r = subprocess.run(args, capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (args, r)


# ---- protocol, with a Python client ------------------------------------------------


def test_clients_receive_only_their_symbols(procs):
    srv, port = start_server(procs)

    async def talk():
        async with connect(port) as a, connect(port) as b:
            pa, pb = Peer(a), Peer(b)
            await pa.send({"type": "subscribe", "symbols": ["AAPL", "SPY"]})
            await pb.send({"type": "subscribe", "symbols": ["MSFT"]})
            # Both at once: a peer that is not read does not answer pings.
            return await asyncio.gather(pa.ticks(1.5), pb.ticks(1.5))
    ta, tb = run(talk())
    for t in ta + tb:
        check_tick(t)
    assert {t["symbol"] for t in ta} == {"AAPL", "SPY"}, ta
    assert {t["symbol"] for t in tb} == {"MSFT"}, tb
    # Each symbol's seq only grows; the first tick is the current price.
    for sym in ("AAPL", "SPY"):
        seqs = [t["seq"] for t in ta if t["symbol"] == sym]
        assert seqs == sorted(set(seqs)) and len(seqs) >= 3, seqs
    srv.expect(r"^client 127\.0\.0\.1:\d+ subscribed to AAPL SPY$")
    srv.expect(r"^client 127\.0\.0\.1:\d+ subscribed to MSFT$")
    assert srv.stop() == 0


def test_subscribe_and_unsubscribe(procs):
    srv, port = start_server(procs)

    async def talk():
        async with connect(port) as ws:
            peer = Peer(ws)
            await peer.send({"type": "subscribe", "symbols": ["AAPL"]})
            first = await peer.recv_type("tick")
            assert first["symbol"] == "AAPL"  # the current price, at once
            await peer.send({"type": "subscribe", "symbols": ["MSFT", "AAPL"]})
            await peer.ping(1)
            both = await peer.ticks(1.0)
            assert {t["symbol"] for t in both} == {"AAPL", "MSFT"}, both
            await peer.send({"type": "unsubscribe", "symbols": ["AAPL"]})
            await peer.ping(2)  # after its pong no AAPL tick can come
            after = await peer.ticks(1.0)
            assert after and {t["symbol"] for t in after} == {"MSFT"}, after
            await peer.send({"type": "unsubscribe", "symbols": ["MSFT"]})
            await peer.ping(3)
            assert await peer.ticks(0.6) == []
    run(talk())
    srv.expect(r"unsubscribed from AAPL$")
    assert srv.stop() == 0


def test_malformed_and_unknown_messages_get_errors_and_keep_the_connection(procs):
    srv, port = start_server(procs)
    bad = [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "bad message"),
        ('{"type": 5}', "bad message"),
        ('{"type": "dance"}', "unknown message type"),
        ('{"type": "subscribe"}', "bad subscribe message"),
        ('{"type": "subscribe", "symbols": "AAPL"}', "not an array"),
        ('{"type": "subscribe", "symbols": [1]}', "not a string"),
        ('{"type": "subscribe", "symbols": ["NOPE"]}', 'unknown symbol "NOPE"'),
        ('{"type": "ping"}', "bad ping message"),
        ('{"type": "tick", "symbol": "AAPL", "price": 1, "seq": 1}', "clients may send"),
        ('{"type": "ping", "id": 1, "id": 2}', "malformed JSON"),  # duplicate key
        (b"\x01\x02", "binary"),
    ]

    async def talk():
        async with connect(port) as ws:
            peer = Peer(ws)
            for text, why in bad:
                await peer.send(text)
                msg = await peer.recv_type("error")
                assert set(msg) == {"type", "message"} and why in msg["message"], (text, msg)
            # Still connected and serving.
            await peer.ping(42)
            await peer.send({"type": "subscribe", "symbols": ["SPY"]})
            assert (await peer.recv_type("tick"))["symbol"] == "SPY"
    run(talk())
    srv.expect(r"subscribed to SPY$")
    assert srv.stop() == 0
    assert srv.count(r": error: ") == len(bad)  # all read once it exited


def test_server_pings_and_drops_a_silent_client(procs):
    srv, port = start_server(procs)

    async def talk():
        # websockets still answers protocol pings: only the application's
        # pings go unanswered, so the application's timeout is what fires.
        async with connect(port) as ws:
            peer = Peer(ws, answer_pings=False)
            await peer.send({"type": "subscribe", "symbols": ["AAPL"]})
            start = time.monotonic()
            try:
                while True:
                    await peer.recv(10)
            except websockets.ConnectionClosed as e:
                return e.rcvd.code, e.rcvd.reason, time.monotonic() - start
    code, reason, took = run(talk())
    assert (code, reason) == (4000, "ping timeout")
    assert took < DETECT + 1.5 * SLOW, took
    srv.expect(r"^client 127\.0\.0\.1:\d+ dropped: ping timeout")
    srv.expect(r'^client 127\.0\.0\.1:\d+ disconnected \(code 4000 "ping timeout", clean\)$')
    assert srv.stop() == 0


def test_feed_is_deterministic_per_seed(procs):
    # Started together, so that their seq numbers run (nearly) in step.
    servers = [launch_server(procs, 0, "--seed", seed) for seed in ("7", "7", "8")]
    p1, p2, p3 = (server_port(srv) for srv in servers)

    async def prices(port):
        async with connect(port) as ws:
            peer = Peer(ws)
            await peer.send({"type": "subscribe", "symbols": ["AAPL", "SPY"]})
            return {(t["symbol"], t["seq"]): t["price"] for t in await peer.ticks(1.5)}

    async def talk():
        return await asyncio.gather(prices(p1), prices(p2), prices(p3))
    a, b, c = run(talk())
    common = set(a) & set(b)
    assert len(common) >= 4, (a, b)
    assert all(a[k] == b[k] for k in common), (a, b)
    assert any(a[k] != c[k] for k in set(a) & set(c)), (a, c)


# ---- faults, with the real client --------------------------------------------------


def wait_ticking(client, symbol, start=0, n=3, timeout=5):
    """Index of the n-th tick of symbol from line start on."""
    i = start
    for _ in range(n):
        _, i = client.expect(rf"^tick {symbol} \d+\.\d\d \(seq \d+\)$", timeout, i)
        i += 1
    return i


def test_client_prints_ticks_and_pong_latency(procs):
    srv, port = start_server(procs)
    cli = start_client(procs, port, "AAPL", "NOPE")
    cli.expect(rf"^connected to ws://127\.0\.0\.1:{port}/$")
    cli.expect(r'^server error: unknown symbol "NOPE"$')
    wait_ticking(cli, "AAPL")
    cli.expect(r"^pong from server in \d+\.\d\dms$", DETECT + 2)
    assert cli.stop() == 0
    assert cli.count(r"^tick (?!AAPL )") == 0
    srv.expect(r'disconnected \(code 1000 "client stopping", clean\)$')
    assert srv.stop() == 0


def test_stopped_server_is_noticed_and_clients_resume_after_sigcont(procs):
    srv, port = start_server(procs)
    clients = [start_client(procs, port, "AAPL"), start_client(procs, port, "SPY")]
    for cli, sym in zip(clients, ("AAPL", "SPY")):
        wait_ticking(cli, sym)
    srv.send(signal.SIGSTOP)
    stopped = time.monotonic()
    marks = []
    for cli in clients:
        _, i = cli.expect(r"^server did not answer ping \d+ within \d+ ms: closing$",
                          DETECT + 1)
        # The close goes unanswered too: after the close timeout, reconnect.
        _, j = cli.expect(r"^reconnecting in \d+ ms \(attempt 1\): ping timeout$",
                          TIMEOUT + 2, i)
        marks.append(j)
    assert time.monotonic() - stopped < (DETECT + TIMEOUT + 3) * SLOW
    time.sleep(1.0 * SLOW)  # attempts time out against the stopped server
    srv.send(signal.SIGCONT)
    for cli, sym, j in zip(clients, ("AAPL", "SPY"), marks):
        _, k = cli.expect(rf"^connected to ws://127\.0\.0\.1:{port}/$", 8, j)
        wait_ticking(cli, sym, k)
    for cli in clients:
        assert cli.stop() == 0
    assert srv.stop() == 0


def test_stopped_client_is_dropped_others_continue_and_it_resumes(procs):
    srv, port = start_server(procs)
    frozen = start_client(procs, port, "AAPL")
    other = start_client(procs, port, "AAPL")
    wait_ticking(frozen, "AAPL")
    wait_ticking(other, "AAPL")
    frozen.send(signal.SIGSTOP)
    m, i = srv.expect(r"^client (127\.0\.0\.1:\d+) dropped: ping timeout", DETECT + 2)
    addr = m.group(1)
    # Its subscriptions went at once; the close timeout ends the connection.
    srv.expect(rf"^client {re.escape(addr)} disconnected \(code 4000 \"ping timeout\", "
               r"timeout\)$", TIMEOUT + 2, i)
    assert srv.count(r"dropped: ping timeout") == 1  # the other one is fine
    mark = len(other.lines)
    wait_ticking(other, "AAPL", mark, n=5)
    assert other.count(r"^(disconnected|reconnecting)") == 0
    frozen.send(signal.SIGCONT)
    mark = len(frozen.lines)
    # The server's close (or our own ping timeout) ends the old connection.
    _, j = frozen.expect(r"^reconnecting in \d+ ms \(attempt 1\): ", 5, mark)
    _, k = frozen.expect(rf"^connected to ws://127\.0\.0\.1:{port}/$", 5, j)
    wait_ticking(frozen, "AAPL", k)
    for proc in (frozen, other, srv):
        assert proc.stop() == 0
    # Two connections, then one more (counted once every line was read).
    assert srv.count(r"^client 127\.0\.0\.1:\d+ connected$") == 3


def test_killed_server_restarted_on_the_same_port(procs):
    srv, port = start_server(procs)
    clients = [start_client(procs, port, "AAPL"), start_client(procs, port, "MSFT")]
    for cli, sym in zip(clients, ("AAPL", "MSFT")):
        wait_ticking(cli, sym)
    srv.kill()
    marks = []
    for cli in clients:
        _, i = cli.expect(r"^reconnecting in \d+ ms \(attempt 1\): connection lost$", 3)
        marks.append(i)
    time.sleep(1.0)  # a few refused attempts
    for cli, i in zip(clients, marks):
        cli.expect(r"^reconnecting in \d+ ms \(attempt 2\): .*refused", 3, i)
    srv2, port2 = start_server(procs, port)
    assert port2 == port
    for cli, sym, i in zip(clients, ("AAPL", "MSFT"), marks):
        _, k = cli.expect(rf"^connected to ws://127\.0\.0\.1:{port}/$", 5, i)
        wait_ticking(cli, sym, k)
    srv2.expect(r"subscribed to AAPL$")
    srv2.expect(r"subscribed to MSFT$")
    for proc in clients + [srv2]:
        assert proc.stop() == 0


# ---- clean exits ---------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_both_exit_zero_on_signal(procs, sig):
    srv, port = start_server(procs)
    cli = start_client(procs, port, "AAPL")
    wait_ticking(cli, "AAPL")
    assert srv.stop(sig) == 0  # closes the client with 1001
    cli.expect(r'^disconnected \(code 1001 "server shutting down", clean\)$')
    cli.expect(r"^reconnecting in \d+ ms \(attempt 1\): closed by the server: 1001 ")
    cli.expect(r"^reconnecting in \d+ ms \(attempt 2\): ")
    assert cli.stop(sig) == 0  # while retrying: nothing to close


def test_client_exits_zero_on_sigterm_while_server_is_stopped(procs):
    srv, port = start_server(procs)
    cli = start_client(procs, port, "AAPL")
    wait_ticking(cli, "AAPL")
    srv.send(signal.SIGSTOP)
    start = time.monotonic()
    # Its close cannot be answered: the close timeout bounds the exit.
    assert cli.stop(timeout=TIMEOUT + 3) == 0
    assert time.monotonic() - start < (TIMEOUT + 3) * SLOW
    srv.send(signal.SIGCONT)
    assert srv.stop() == 0
