"""examples/echo under backpressure (issue 10, defects 3 and 5).

Two libwsc endpoints that both honour WS_EAGAIN must not deadlock: the
test client pushes 64 KiB messages at the echo with a small max_buffered
on both sides, waits for its drain callback on WS_EAGAIN, and checks every
echo in order (before the fix both sides stopped reading each other until
the heartbeat killed them). And a Python websockets client that reads
slightly slower than it writes gets all of 1000 x 64 KiB back, exact and
in order (before the fix the echo dropped every message that met
WS_EAGAIN: 681 of 1000).
"""

import asyncio
import struct

import pytest
import websockets

from hardutil import SANITIZED, example, listening_port, t, helper_binary

SIZE = 64 * 1024


def test_two_libwsc_endpoints_over_max_buffered_do_not_deadlock(proc):
    echo = proc([example("echo"), "--max-message", SIZE, "--max-buffered", 4 * SIZE,
                 "--no-deflate", "127.0.0.1:0"])
    port = listening_port(echo)
    count = 150 if SANITIZED else 400
    client = proc([helper_binary("wsc-test-client"), "ws://127.0.0.1:%d/" % port,
                   "--no-deflate", "--max-buffered", 4 * SIZE, "--push", "%d:%d" % (count, SIZE)])
    # A deadlock shows as this generous deadline passing.
    try:
        m = client.expect(r"^PUSH DONE sent=(\d+) echoed=(\d+) bad=(\d+) eagain=(\d+)", 20)
    except AssertionError:
        client.stop()
        state = [line for line in client.lines if line.startswith(("PUSH", "CLOSE"))]
        pytest.fail("no PUSH DONE within %.0f s (deadlock?): %s" % (t(20), state))
    sent, echoed, bad, eagain = map(int, m.groups())
    print("pushed %d x 64 KiB: echoed %d, bad %d, WS_EAGAIN %d times" % (sent, echoed, bad, eagain))
    assert (sent, echoed, bad) == (count, count, 0)
    assert eagain > 0, "the test never met backpressure: it proves nothing"
    client.expect(r"^CLOSE code=1000 ", 10)
    assert client.wait(t(10)) == 0


def message(i):
    return struct.pack("!I", i) + bytes([i % 251]) * (SIZE - 4)


def test_echo_loses_nothing_to_a_slow_reader(proc):
    echo = proc([example("echo"), "127.0.0.1:0"])
    port = listening_port(echo)
    count = 300 if SANITIZED else 1000
    got = []

    async def run():
        async with websockets.connect("ws://127.0.0.1:%d/" % port, max_size=None,
                                      compression=None, ping_interval=None,
                                      max_queue=4) as ws:
            async def writer():
                for i in range(count):
                    await ws.send(message(i))

            async def reader():
                # Slightly slower than the writer: the echo's backlog grows
                # past max_buffered and it must wait, not drop.
                for i in range(count):
                    data = await asyncio.wait_for(ws.recv(), t(10))
                    got.append(data == message(i))
                    if not got[-1]:
                        break
                    await asyncio.sleep(0.001)

            await asyncio.gather(writer(), reader())

    try:
        asyncio.run(asyncio.wait_for(run(), t(60)))
    except asyncio.TimeoutError:
        pass
    print("%d of %d echoes came back, %d exact and in order" % (len(got), count, sum(got)))
    assert len(got) == count and all(got), \
        "%d of %d echoes back (%d lost)" % (sum(got), count, count - sum(got))
