"""examples/chat with --redis: two chat processes on one real redis-server
are one chat. A message sent on one reaches the same room on the other
exactly once; another room on the other does not see it; with Redis gone
the sender gets an error event instead of silence.
"""

import asyncio
import json
import os
import signal
import urllib.request

import pytest
import websockets

from scaleutil import TOP_BUILDDIR, start_server, stop_all, t

CHAT = os.path.join(TOP_BUILDDIR, "examples", "chat", "chat")


def start_chat(redis_port):
    p = start_server([CHAT, "--listen", "127.0.0.1:0", "--user", "alice:secret",
                      "--user", "bob:hunter2", "--redis", "127.0.0.1:%d" % redis_port],
                     r"^LISTENING (\d+)$")
    p.expect(r"^REDIS up$", timeout=10)
    return p


def login(port, user, password):
    req = urllib.request.Request("http://127.0.0.1:%d/login" % port, data=json.dumps(
        {"username": user, "password": password}).encode())
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())["otp"]


async def join(port, user, password):
    ws = await websockets.connect("ws://127.0.0.1:%d/ws?otp=%s"
                                  % (port, login(port, user, password)))
    assert json.loads(await ws.recv())["type"] == "hello"
    return ws


async def next_event(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), t(timeout)))


def test_rooms_span_two_chat_processes(redis):
    if not os.path.exists(CHAT):
        pytest.skip("examples/chat not built (jansson missing)")
    procs = []
    try:
        a_srv = start_chat(redis.port)
        procs.append(a_srv)
        b_srv = start_chat(redis.port)
        procs.append(b_srv)

        async def go():
            alice = await join(a_srv.port, "alice", "secret")
            bob = await join(b_srv.port, "bob", "hunter2")
            carol = await join(b_srv.port, "alice", "secret")  # same user, other room
            await carol.send(json.dumps({"type": "change_room", "payload": {"name": "dev"}}))
            assert (await next_event(carol))["type"] == "room_changed"
            await asyncio.sleep(0.3)  # the subscriptions reach Redis
            await alice.send(json.dumps({"type": "send_message",
                                         "payload": {"message": "across nodes"}}))
            for ws in (alice, bob):
                e = await next_event(ws)
                assert e["type"] == "new_message", e
                assert (e["payload"]["from"], e["payload"]["message"]) == \
                    ("alice", "across nodes")
            # exactly once, and not in another room
            for ws in (bob, carol):
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.5)
            # Redis gone: the sender hears about it
            redis.stop(signal.SIGTERM)
            a_srv.expect(r"^REDIS down$", timeout=10)
            await alice.send(json.dumps({"type": "send_message",
                                         "payload": {"message": "lost?"}}))
            e = await next_event(alice)
            assert e["type"] == "error", e
            for ws in (alice, bob, carol):
                await ws.close()
        asyncio.run(asyncio.wait_for(go(), t(60)))
    finally:
        stop_all(procs, checked=procs)
