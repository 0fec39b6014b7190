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

import socket
import struct
import threading
import time

import pytest

from hardutil import SANITIZED, example, helper_binary, listening_port, t
from wsutil import OP_BINARY, handshake

SIZE = 64 * 1024


def test_two_libwsc_endpoints_over_max_buffered_do_not_deadlock(proc):
    echo = proc([example("echo"), "--max-message", SIZE, "--max-buffered", 4 * SIZE,
                 "--no-deflate", "127.0.0.1:0"])
    port = listening_port(echo)
    count = 300 if SANITIZED else 400
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
    client.expect(r"^CLOSE code=1000 ", 10)
    assert client.wait(t(10)) == 0


def message(i):
    return struct.pack("!I", i) + bytes([i % 251]) * (SIZE - 4)


def test_echo_loses_nothing_to_a_slow_reader(proc):
    """Raw socket client (a zero mask key keeps Python fast): one thread
    writes 1000 x 64 KiB as fast as TCP takes them, another reads them
    back a little slower (1 ms pause per message)."""
    echo = proc([example("echo"), "127.0.0.1:0"])
    port = listening_port(echo)
    count = 300 if SANITIZED else 1000
    c, _ = handshake(port)
    got, errors = [], []
    head = struct.pack("!BBQ", 0x82, 0x80 | 127, SIZE) + b"\0\0\0\0"

    def writer():
        try:
            for i in range(count):
                c.sock.sendall(head + message(i))
        except OSError as e:
            errors.append("write: %r" % e)

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    try:
        for i in range(count):
            op, data = c.read_message(timeout=10)
            got.append(op == OP_BINARY and data == message(i))
            if not got[-1]:
                break
            time.sleep(0.001)
    except (socket.timeout, EOFError) as e:
        errors.append("read: %r" % e)
    th.join(t(10))
    c.close()
    print("%d of %d echoes came back, %d exact and in order" % (len(got), count, sum(got)))
    assert len(got) == count and all(got), \
        "%d of %d echoes back (%d lost); %s" % (sum(got), count, count - sum(got), errors)
