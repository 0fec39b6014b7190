"""Topics: publish reaches exactly the subscribers, subscriptions end with
their connection, and publishing from other threads keeps each thread's
order."""

import wsutil
from wsutil import check_sender_threads


def text(c):
    fin, op, payload = c.read_frame()
    assert op == wsutil.OP_TEXT, (op, payload)
    return payload


def nothing_pending(c, seconds=0.3):
    c.sock.settimeout(seconds)
    try:
        data = c.sock.recv(1)
    except (TimeoutError, OSError):
        return True
    return data == b""


def cmd(srv, c, command, expect_rc="0"):
    c.send_frame(wsutil.OP_TEXT, command.encode())
    verb = command.split(":", 1)[0]
    srv.expect(r"^CMD %s rc=%s$" % (verb, expect_rc))


def test_publish_reaches_exactly_the_subscribers(server):
    srv = server()
    a, _ = wsutil.handshake(srv.port)
    b, _ = wsutil.handshake(srv.port)
    c, _ = wsutil.handshake(srv.port)
    cmd(srv, a, "sub:news")
    cmd(srv, b, "sub:news")
    cmd(srv, b, "sub:sport")
    cmd(srv, b, "sub:sport")                  # twice is harmless: one copy
    cmd(srv, c, "pub:news:headline")
    assert text(a) == b"headline" and text(b) == b"headline"
    cmd(srv, c, "pub:sport:goal")
    assert text(b) == b"goal"
    cmd(srv, b, "unsub:news")
    cmd(srv, b, "unsub:news", expect_rc="-11")  # WS_ENOTFOUND
    cmd(srv, c, "pub:news:second")
    assert text(a) == b"second"
    cmd(srv, c, "pub:nobody:x")               # no such topic: nothing, rc 0
    assert nothing_pending(b) and nothing_pending(c)
    for x in (a, b, c):
        x.close()


def test_subscription_ends_with_connection(server):
    srv = server()
    a, _ = wsutil.handshake(srv.port)
    b, _ = wsutil.handshake(srv.port)
    cmd(srv, a, "sub:room")
    cmd(srv, b, "sub:room")
    a.send_frame(wsutil.OP_CLOSE, wsutil.close_payload(1000))
    srv.expect(r"^CLOSE \d+ code=1000 cause=clean")
    a.close()
    cmd(srv, b, "pub:room:still here")
    assert text(b) == b"still here"
    b.close()


def test_publish_from_threads_keeps_each_threads_order(server):
    threads, conns, count = 3, 4, 300
    srv = server("--send-threads", threads, "--send-conns", conns, "--send-count", count,
                 "--send-topic", "feed")
    check_sender_threads(srv, conns, threads, count, deflate=True)
    assert srv.count(r"^SEND ERROR|^SUBSCRIBE ERROR") == 0
