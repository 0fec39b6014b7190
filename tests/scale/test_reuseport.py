"""WS_LISTEN_REUSEPORT: two examples/echo processes on one port (--reuseport)
both listen, and the kernel gives each a share of 40 connections; without
the option the second process cannot bind.
"""

import asyncio
import collections
import re
import signal

import websockets

from scaleutil import ECHO_BIN, Proc, free_port, t


def start(port, tag, *flags):
    return Proc([ECHO_BIN, "--tag", tag] + list(flags) + ["127.0.0.1:%d" % port])


async def tags(port, n):
    out = []
    for i in range(n):
        async with websockets.connect("ws://127.0.0.1:%d/" % port, compression=None) as ws:
            await ws.send("x%d" % i)
            m = re.match(r"^\[(r\d)\] x%d$" % i, await asyncio.wait_for(ws.recv(), t(10)))
            assert m
            out.append(m.group(1))
    return out


def test_two_processes_share_a_port():
    port = free_port()
    a = start(port, "r1", "--reuseport")
    b = None
    try:
        a.expect(r"^listening on ", timeout=10)
        b = start(port, "r2", "--reuseport")
        b.expect(r"^listening on ", timeout=10)
        # The kernel hashes each connection's addresses: with 40 different
        # source ports, both get some (all on one: probability 2^-39).
        share = collections.Counter(asyncio.run(asyncio.wait_for(tags(port, 40), t(60))))
        assert share["r1"] > 0 and share["r2"] > 0, share
    finally:
        for p in (a, b):
            if p is not None:
                assert p.stop(signal.SIGTERM) == 0
                assert p.sanitizer_report() is None


def test_without_reuseport_the_port_is_taken():
    port = free_port()
    a = start(port, "r1", "--reuseport")
    try:
        a.expect(r"^listening on ", timeout=10)
        b = start(port, "r2")
        assert b.wait(10) == 1
        assert any("cannot listen" in line for line in b.err), b.err
    finally:
        assert a.stop(signal.SIGTERM) == 0
