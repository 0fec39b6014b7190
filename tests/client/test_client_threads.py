"""The client's connection used from other threads: ws_conn_send from
several threads at once (holding ws_conn_ref), and ws_client_stop from a
thread that is not the loop's."""

import re

import pytest


def url(p):
    return "ws://127.0.0.1:%d/" % p.port


@pytest.mark.parametrize("deflate", ["deflate", "no-deflate"])
def test_send_threads(client, peer, deflate):
    threads, count = 4, 500
    total = threads * count
    p = peer("--quiet")
    cl = client(url(p), "--send-threads", threads, "--send-count", count,
                "--expect", total, "--close", 1000,
                *(["--no-deflate"] if deflate == "no-deflate" else []))
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0 ", timeout=20)
    lines = cl.finish(timeout=10)
    assert cl.count(r"^ERROR ") == 0, cl.matching(r"^ERROR ")
    assert "SENDERS DONE" in lines
    rx = re.compile(r"^DATA text \d+ t(\d+):(\d+)$")
    seqs = {i: [] for i in range(threads)}
    for line in lines:
        if line.startswith("DATA "):
            m = rx.match(line)
            assert m, line
            seqs[int(m.group(1))].append(int(m.group(2)))
    for i in range(threads):
        assert seqs[i] == list(range(count)), \
            "thread %d: %d echoes, order broken at %s" % (
                i, len(seqs[i]),
                next((k for k, (a, b) in enumerate(zip(seqs[i], range(count))) if a != b),
                     len(seqs[i])))
    closed = p.expect_event("closed", timeout=10)
    assert (closed["code"], closed["msgs"]) == (1000, total)


def test_stop_after_open(client, peer):
    p = peer()
    cl = client(url(p), "--stop-after-open")
    cl.expect(r"^OPEN ")
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0 ")
    m = cl.expect(r"^GIVEUP error=(-?\d+) ")
    assert int(m.group(1)) == 0
    cl.finish()
    assert p.expect_event("closed", timeout=5)["code"] == 1000


def test_stop_after_open_with_reconnect(client, peer):
    """ws_client_stop also ends reconnecting: no RECONNECT after the close."""
    p = peer()
    cl = client(url(p), "--stop-after-open", "--reconnect", "20:40:0")
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0 ")
    cl.expect(r"^GIVEUP ")
    lines = cl.finish()
    assert cl.count(r"^RECONNECT ") == 0, lines
    assert cl.count(r"^OPEN ") == 1, lines


def test_stop_while_threads_send(client, peer):
    """Senders still running while the client stops: their sends fail with
    WS_ECLOSED (or are dropped) but nothing crashes or leaks, exit 0."""
    p = peer("--quiet")
    cl = client(url(p), "--send-threads", 3, "--send-count", 3000, "--stop-after-open")
    cl.expect(r"^GIVEUP ", timeout=20)
    cl.finish(timeout=20)
    for line in cl.matching(r"^ERROR "):
        assert line.endswith("rc=-3"), line
