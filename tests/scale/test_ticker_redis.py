"""examples/ticker with --redis: two ticker-servers share one feed through
a real redis-server. The one with --no-feed simulates nothing, yet its
client gets the other's ticks, once each and in order; the feeding one's
client gets the same sequence.
"""

import asyncio
import json
import os

import pytest
import websockets

from scaleutil import TOP_BUILDDIR, start_server, stop_all, t

TICKER = os.path.join(TOP_BUILDDIR, "examples", "ticker", "ticker-server")


def start_ticker(redis_port, *extra):
    p = start_server([TICKER, "127.0.0.1:0", "--redis", "127.0.0.1:%d" % redis_port,
                      "--symbols", "AAPL,SPY", "--tick-ms", "20"] + list(extra),
                     r"^listening on ws://[^:]+:(\d+)/$")
    p.expect(r"^redis up$", timeout=10)
    return p


async def ticks(port, count):
    """The seq numbers of the first count AAPL ticks after subscribing."""
    async with websockets.connect("ws://127.0.0.1:%d/" % port, compression=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "symbols": ["AAPL"]}))
        seqs = []
        while len(seqs) < count:
            msg = json.loads(await asyncio.wait_for(ws.recv(), t(10)))
            if msg["type"] == "ping":
                await ws.send(json.dumps({"type": "pong", "id": msg["id"], "ts": msg["ts"]}))
            elif msg["type"] == "tick":
                assert msg["symbol"] == "AAPL"
                seqs.append(msg["seq"])
        return seqs


def test_ticker_feed_shared_over_redis(redis):
    if not os.path.exists(TICKER):
        pytest.skip("examples/ticker not built (jansson missing)")
    procs = []
    try:
        feed = start_ticker(redis.port)
        procs.append(feed)
        relay = start_ticker(redis.port, "--no-feed")
        procs.append(relay)

        async def both():
            return await asyncio.gather(ticks(relay.port, 30), ticks(feed.port, 30))
        at_relay, at_feed = asyncio.run(asyncio.wait_for(both(), t(60)))
        # The relay's first message is its own snapshot (seq 0: it never
        # moved); after that, the feed's ticks, strictly increasing.
        moving = [s for s in at_relay if s > 0]
        assert len(moving) >= 25 and moving == sorted(set(moving)), at_relay
        assert at_feed[1:] == sorted(set(at_feed[1:])), at_feed
        # the two clients saw the same ticks where they overlap
        common = set(moving) & set(at_feed)
        assert len(common) >= 10, (moving, at_feed)
    finally:
        stop_all(procs, checked=procs)
