"""The Redis bridge: topics across three libwsc processes over a real
redis-server (Debian's), started by the test on a temporary port with no
persistence. Clients are Python websockets.

Checked: a publish on each backend reaches every subscriber on all three
exactly once and in the publisher's order; one Redis subscription per topic
per process; a publisher ignores its own message coming back; with Redis
killed, publishes fail with WS_EREDIS and reach nobody; after a restart the
backends reconnect and re-subscribe, delivery resumes, and each backend's
gap counter equals the holes its subscribers saw. And deterministically: a
backend whose subscription link Redis kills (CLIENT KILL) misses what is
published meanwhile, and counts exactly those as lost.
"""

import asyncio
import re
import signal
import socket

import pytest
import websockets

from scaleutil import HOST, SERVER_BIN, Proc, start_redis, start_server, stop_all, t

WS_EREDIS = -18
TOPIC = "news"
N = 15           # publishes per backend per round
SUBS = 2         # subscribers per backend


def start_backend(redis_port, threads=1):
    return start_server([SERVER_BIN, "--listen", "127.0.0.1:0", "--redis",
                         "127.0.0.1:%d" % redis_port, "--threads", str(threads)],
                        r"^LISTENING (\d+)$")


def redis_command(port, *args, lines):
    """One command to Redis itself (RESP by hand); the reply's first lines."""
    cmd = [a.encode() for a in args]
    req = b"*%d\r\n" % len(cmd) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in cmd)
    with socket.create_connection(("127.0.0.1", port), timeout=t(5)) as s:
        s.sendall(req)
        buf = b""
        while buf.count(b"\r\n") < lines:
            chunk = s.recv(65536)
            assert chunk, buf
            buf += chunk
    return buf.split(b"\r\n")


def redis_numsub(port, channel):
    """PUBSUB NUMSUB channel: *2 $len channel :count"""
    return int(redis_command(port, "PUBSUB", "NUMSUB", channel, lines=4)[3][1:])


def redis_client_list(port):
    """CLIENT LIST as {name: id}: one bulk string, clients separated by LF."""
    text = redis_command(port, "CLIENT", "LIST", lines=2)[1]
    out = {}
    for line in text.decode().splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if f.get("name"):
            out[f["name"]] = f["id"]
    return out


class Client:
    """One connection: replies to commands and topic messages kept apart."""

    def __init__(self, ws):
        self.ws = ws
        self.replies = asyncio.Queue()
        self.messages = []
        self.task = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, port):
        return cls(await websockets.connect("ws://127.0.0.1:%d/" % port, compression=None))

    async def _read(self):
        try:
            async for msg in self.ws:
                if re.match(r"^(RSUB|RPUB|RSTATS) ", msg):
                    await self.replies.put(msg)
                else:
                    self.messages.append(msg)
        except websockets.ConnectionClosed:
            pass

    async def call(self, text):
        await self.ws.send(text)
        return await asyncio.wait_for(self.replies.get(), t(10))

    async def rc(self, text):
        reply = await self.call(text)
        m = re.match(r"^\w+ rc=(-?\d+)$", reply)
        assert m, reply
        return int(m.group(1))

    async def stats(self):
        reply = await self.call("rstats")
        return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", reply)}

    async def close(self):
        await self.ws.close()
        await asyncio.wait_for(self.task, t(10))


async def wait_stats(client, pred, what, timeout=15):
    deadline = asyncio.get_event_loop().time() + t(timeout)
    while True:
        st = await client.stats()
        if pred(st):
            return st
        assert asyncio.get_event_loop().time() < deadline, "%s: %r" % (what, st)
        await asyncio.sleep(0.05)


async def wait_messages(clients, count, timeout=15):
    deadline = asyncio.get_event_loop().time() + t(timeout)
    while any(len(c.messages) < count for c in clients):
        assert asyncio.get_event_loop().time() < deadline, \
            [len(c.messages) for c in clients]
        await asyncio.sleep(0.05)


def by_publisher(messages):
    """{backend: [k, ...]} from "B<i>-<k>" payloads, in arrival order."""
    out = {}
    for msg in messages:
        m = re.match(r"^B(\d+)-(\d+)$", msg)
        assert m, msg
        out.setdefault(int(m.group(1)), []).append(int(m.group(2)))
    return out


async def scenario(tmp_path, redis):
    backends = []
    procs = [redis]
    try:
        for i in range(3):
            # the third runs three worker loops: the bridge lives on loop 0
            backends.append(start_backend(redis.port, threads=3 if i == 2 else 1))
            procs.append(backends[-1])
        for b in backends:
            b.expect(r"^REDIS UP$", timeout=10)
        subs = {i: [await Client.open(b.port) for _ in range(SUBS)]
                for i, b in enumerate(backends)}
        pubs = [await Client.open(b.port) for b in backends]
        for cs in subs.values():
            for c in cs:
                assert await c.rc("rsub:" + TOPIC) == 0
        # One Redis subscription per process, however many subscribers.
        for p in pubs:
            await wait_stats(p, lambda s: s["subscriptions"] == 1, "subscribed")
        assert redis_numsub(redis.port, "wsc:" + TOPIC) == 3

        # Round 1: Redis up. Publishers take turns so order is per publisher.
        next_k = [1, 1, 1]
        for k in range(N):
            for i, p in enumerate(pubs):
                assert await p.rc("rpub:%s:B%d-%d" % (TOPIC, i, next_k[i])) >= 0
                next_k[i] += 1
        everyone = [c for cs in subs.values() for c in cs]
        await wait_messages(everyone, 3 * N)
        await asyncio.sleep(0.2)   # a duplicate would arrive by now
        for c in everyone:
            assert len(c.messages) == 3 * N
            got = by_publisher(c.messages)
            for i in range(3):
                assert got[i] == list(range(1, N + 1)), (i, got[i])
        for p in pubs:
            st = await p.stats()
            assert st["up"] == 1 and st["published"] == N
            assert st["own_ignored"] == N, st
            assert st["received"] == 2 * N and st["lost"] == 0 and st["stale"] == 0, st

        # Redis dies: every backend says so, publishes fail and reach nobody.
        redis.stop(signal.SIGKILL)
        for b in backends:
            b.expect(r"^REDIS DOWN$", timeout=10)
        before = [len(c.messages) for c in everyone]
        for i, p in enumerate(pubs):
            for _ in range(3):
                assert await p.rc("rpub:%s:B%d-x" % (TOPIC, i)) == WS_EREDIS
        await asyncio.sleep(0.2)
        assert [len(c.messages) for c in everyone] == before

        # Redis is back on the same port: reconnect, re-subscribe, resume.
        redis2, why = start_redis(tmp_path, port=redis.port)
        assert redis2 is not None, why
        procs.append(redis2)
        # Publish as soon as each backend is up: a backend that has not
        # re-subscribed yet misses those, and must count them as lost.
        for i, (b, p) in enumerate(zip(backends, pubs)):
            b.expect(r"^REDIS UP$", timeout=20)
            for _ in range(3):
                assert await p.rc("rpub:%s:B%d-%d" % (TOPIC, i, next_k[i])) >= 0
                next_k[i] += 1
        for p in pubs:
            await wait_stats(p, lambda s: s["up"] == 1 and s["subscriptions"] == 1,
                             "re-subscribed")
        for k in range(N):
            for i, p in enumerate(pubs):
                assert await p.rc("rpub:%s:B%d-%d" % (TOPIC, i, next_k[i])) >= 0
                next_k[i] += 1
        # The last message of every publisher reaches everybody.
        deadline = asyncio.get_event_loop().time() + t(15)
        while any(by_publisher(c.messages).get(i, [0])[-1] != next_k[i] - 1
                  for c in everyone for i in range(3)):
            assert asyncio.get_event_loop().time() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        for i, cs in subs.items():
            st = await pubs[i].stats()
            assert st["reconnects"] >= 1 and st["publish_errors"] >= 3, st
            holes = None
            for c in cs:
                got = by_publisher(c.messages)
                missing = 0
                for j in range(3):
                    seq = got[j]
                    # exactly once, in order; local ones never go missing
                    assert seq == sorted(set(seq)), (i, j, seq)
                    missing += (next_k[j] - 1) - len(seq)
                    if j == i:
                        assert seq == list(range(1, next_k[j])), (i, seq)
                assert holes is None or holes == missing  # same for each subscriber
                holes = missing
            assert st["lost"] == holes, (i, st, holes)
        # The last subscriber of a process leaving ends its subscription.
        for c in everyone:
            await c.close()
        for p in pubs:
            await wait_stats(p, lambda s: s["subscriptions"] == 0, "unsubscribed")
        assert redis_numsub(redis2.port, "wsc:" + TOPIC) == 0
        for c in pubs:
            await c.close()
    finally:
        stop_all(procs, checked=backends)


async def lost_scenario(redis):
    """B's subscription link is killed (CLIENT KILL); what A publishes before
    B is subscribed again never reaches B, and B counts exactly that."""
    a = start_backend(redis.port)
    b = start_backend(redis.port)
    procs = [a, b]
    try:
        a.expect(r"^REDIS UP$")
        b.expect(r"^REDIS UP$")
        pub, sub, probe = (await Client.open(a.port), await Client.open(b.port),
                           await Client.open(b.port))
        assert await sub.rc("rsub:" + TOPIC) == 0
        await wait_stats(probe, lambda s: s["subscriptions"] == 1, "subscribed")
        for k in range(1, 4):
            assert await pub.rc("rpub:%s:B0-%d" % (TOPIC, k)) >= 0
        await wait_messages([sub], 3)
        node = (await probe.stats())["node"]
        links = redis_client_list(redis.port)
        name = "wsc-sub-%016x" % node
        assert name in links, links
        assert redis_command(redis.port, "CLIENT", "KILL", "ID", links[name], lines=1)[0] == b":1"
        # B reconnects no sooner than 100 ms later: these five are lost to it.
        for k in range(4, 9):
            assert await pub.rc("rpub:%s:B0-%d" % (TOPIC, k)) >= 0
        b.expect(r"^REDIS DOWN$")
        b.expect(r"^REDIS UP$")
        await wait_stats(probe, lambda s: s["subscriptions"] == 1, "re-subscribed")
        for k in range(9, 11):
            assert await pub.rc("rpub:%s:B0-%d" % (TOPIC, k)) >= 0
        await wait_messages([sub], 5)
        await asyncio.sleep(0.2)
        assert by_publisher(sub.messages)[0] == [1, 2, 3, 9, 10]
        st = await probe.stats()
        assert st["lost"] == 5 and st["received"] == 5 and st["stale"] == 0, st
        assert (await pub.stats())["publish_errors"] == 0
        for c in (pub, sub, probe):
            await c.close()
    finally:
        stop_all(procs, checked=procs)


@pytest.mark.parametrize("addr,ok", [
    # the port's limits, on both sides
    ("127.0.0.1:1", True), ("127.0.0.1:0", False),
    ("127.0.0.1:65535", True), ("127.0.0.1:65536", False),
    # brackets (for IPv6) around the host are taken off
    ("[127.0.0.1]:1", True), ("[127.0.0.1:1", False),
    ("127.0.0.1", False), ("127.0.0.1:", False), (":1", False), ("127.0.0.1:1x", False),
])
def test_redis_address(addr, ok):
    """ws_server_redis_attach() parses HOST:PORT itself (no Redis needed:
    an accepted address is only tried, in the background)."""
    argv = [SERVER_BIN, "--listen", "127.0.0.1:0", "--redis", addr]
    if ok:
        p = start_server(argv, r"^LISTENING (\d+)$")
        # LISTENING comes before ws_server_run() installs its SIGTERM handler:
        # an answered request shows the loop (and the handler) is up.
        with socket.create_connection((HOST, p.port), timeout=t(5)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(9) == b"HTTP/1.1 "
        stop_all([p], checked=[p])
        return
    p = Proc(argv)
    rc = p.wait(10)
    if any("not supported by this build" in line for line in p.err):
        pytest.skip("this build has no Redis bridge")
    assert rc == 1 and any("address cannot be parsed" in line for line in p.err), (rc, p.err)


def test_lost_messages_are_counted(redis):
    asyncio.run(asyncio.wait_for(lost_scenario(redis), t(60)))


def test_topics_across_three_backends(tmp_path, redis):
    asyncio.run(asyncio.wait_for(scenario(tmp_path, redis), t(90)))
