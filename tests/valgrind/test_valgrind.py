"""The test server under valgrind through every path a connection can take:
zero memory errors and zero leaked bytes (definite, indirect or possible).
Skipped in sanitizer builds, where valgrind cannot run instrumented code."""
import os
import re
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import wsutil  # noqa: E402
from .memcheck import Memchecked  # noqa: E402

BUILD = os.environ.get("TOP_BUILDDIR", "/work/main")
SERVER = os.path.join(BUILD, "tests", "servers", "wsc-test-server")

pytestmark = pytest.mark.skipif(os.environ.get("SANITIZER", "none") != "none",
                                reason="valgrind cannot run sanitizer builds")


def Valgrinded(*opts):
    """The test server under memcheck: every leak kind is an error."""
    return Memchecked([SERVER, "--listen", "127.0.0.1:0", *opts], r"^LISTENING (\d+)$",
                      leak_kinds="definite,indirect,possible")


def exchange(port):
    """One of each kind of connection end the library handles."""
    # clean echo + close
    c, _ = wsutil.handshake(port, timeout=20)
    c.send_frame(0x1, b"fragmented ", fin=False)
    c.send_frame(0x9, b"ping")
    c.send_frame(0x0, b"message")
    c.send_frame(0x2, bytes(70000))
    c.send_frame(0x8, wsutil.close_payload(1000, b"done"))
    c.read_until_eof(timeout=20)
    c.close()
    # protocol error (reserved bits) and invalid UTF-8
    for bad in (wsutil.frame(0x1, b"x", rsv=4), wsutil.frame(0x1, b"\xff")):
        c, _ = wsutil.handshake(port, timeout=20)
        c.send(bad)
        c.read_until_eof(timeout=20)
        c.close()
    # message over the limit, mid-fragment
    c, _ = wsutil.handshake(port, timeout=20)
    c.send_frame(0x2, bytes(3000), fin=False)
    c.send_frame(0x0, bytes(3000))
    c.read_until_eof(timeout=20)
    c.close()
    # vanishing client, half a frame buffered
    c, _ = wsutil.handshake(port, timeout=20)
    c.send(wsutil.frame(0x2, bytes(500))[:100])
    time.sleep(0.2)
    c.close()
    # topics: subscribe, publish, unsubscribe, and end with subscriptions held
    c, _ = wsutil.handshake(port, timeout=20)
    for cmd in (b"sub:a", b"sub:b", b"pub:a:hello", b"unsub:a", b"pub:b:world"):
        c.send_frame(0x1, cmd)
    assert c.read_frame(timeout=20)[2] == b"hello"
    assert c.read_frame(timeout=20)[2] == b"world"
    c.close()
    # plain HTTP: handler response, bad request, head too large
    wsutil.http_exchange(port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", timeout=20)
    wsutil.http_exchange(port, b"BROKEN\r\n\r\n", timeout=20)
    wsutil.http_exchange(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", timeout=20)


def test_no_leaks_or_errors_under_valgrind():
    srv = Valgrinded("--http", "--max-message", "5000", "--ping-interval", "300",
                     "--pong-timeout", "300", "--send-threads", "2", "--send-conns", "2",
                     "--send-count", "50")
    # two clients for the cross-thread senders, read until SENDERS DONE
    senders = [wsutil.handshake(srv.port, timeout=20)[0] for _ in range(2)]
    srv.expect(r"^SENDERS DONE$", 60)
    for c in senders:
        got = 0
        while got < 100:
            op, _payload = c.read_message(timeout=20)
            if op == 0x1:
                got += 1
        c.send_frame(0x8, wsutil.close_payload(1000))
        c.read_until_eof(timeout=20)
        c.close()
    exchange(srv.port)
    # a client that never answers pings: closed by the heartbeat
    idle, _ = wsutil.handshake(srv.port, timeout=20)
    srv.expect(r"cause=timeout", 30)
    idle.close()
    # one left open: the graceful stop closes it
    wsutil.handshake(srv.port, timeout=20)
    rc, report = srv.finish()
    print(report[-1200:])
    assert "Memcheck" in report and "ERROR SUMMARY" in report, report  # it really ran
    assert rc == 0, report[-3000:]
    assert "ERROR SUMMARY: 0 errors" in report, report[-3000:]
    assert re.search(r"definitely lost: 0 bytes", report) or "All heap blocks were freed" in report, \
        report[-3000:]
