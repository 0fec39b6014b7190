"""Echo through a WebSocket server written by others (Python `websockets`):
text and binary messages of many sizes, with permessage-deflate negotiated
(the websockets default) and without it (--no-deflate)."""

import hashlib

import pytest

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 100000, 1 << 20]


def pattern_bytes(n):
    """Payload of --send-binary-size n: byte i = i % 251."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def sha1(data):
    return hashlib.sha1(data).hexdigest()


def url(p, path="/"):
    return "ws://127.0.0.1:%d%s" % (p.port, path)


@pytest.fixture(params=["deflate", "no-deflate"])
def compression(request):
    return request.param


def client_opts(compression):
    return ["--no-deflate"] if compression == "no-deflate" else []


def check_negotiated(ev, compression):
    """The server's Sec-WebSocket-Extensions answer, from its open event."""
    if compression == "deflate":
        assert ev["extensions"] is not None and \
            ev["extensions"].startswith("permessage-deflate"), ev
    else:
        assert ev["extensions"] is None, ev
        offered = [v for k, v in ev["headers"] if k.lower() == "sec-websocket-extensions"]
        assert offered == [], "--no-deflate still offered %r" % offered


def test_text_echo(client, peer, compression):
    p = peer()
    texts = ["hello", "", "x" * 200, "snowman \u2603 and \U0001F600", "a b  c"]
    args = []
    for s in texts:
        args += ["--send", s]
    cl = client(url(p), *args, "--expect", len(texts), "--close", "1000:done",
                *client_opts(compression))
    cl.expect(r"^OPEN 127\.0\.0\.1:%d proto=$" % p.port)
    for s in texts:
        n = len(s.encode())
        m = cl.expect(r"^DATA text (\d+) ?(.*)$")
        assert int(m.group(1)) == n
        assert m.group(2) == s.encode()[:40].decode("utf-8", "replace")
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0 reason=done$")
    cl.expect(r"^GIVEUP error=0 ")
    cl.finish()
    ev = p.expect_event("open")
    check_negotiated(ev, compression)
    got = [e["text"] for e in p.wait_events("msg", len(texts))]
    assert got == [s[:200] for s in texts]
    closed = p.expect_event("closed")
    assert (closed["code"], closed["reason"]) == (1000, "done")


@pytest.mark.parametrize("size", SIZES)
def test_binary_echo(client, peer, compression, size):
    p = peer()
    cl = client(url(p), "--send-binary-size", size, "--expect", 1, "--close", 1000,
                *client_opts(compression))
    m = cl.expect(r"^DATA binary (\d+) ([0-9a-f]{40})$", timeout=15)
    data = pattern_bytes(size)
    assert int(m.group(1)) == size
    assert m.group(2) == sha1(data)
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0 reason=$")
    cl.finish()
    check_negotiated(p.expect_event("open"), compression)
    msg = p.expect_event("msg")
    assert (msg["type"], msg["len"], msg["sha1"]) == ("binary", size, sha1(data))


def test_compressible_text_is_sent_compressed(client, peer):
    """A large repetitive text goes through deflate both ways (the server
    reports the negotiation; the echo must come back intact)."""
    p = peer()
    text = "abcdefgh" * 4000
    cl = client(url(p), "--send", text, "--expect", 1, "--close", 1000)
    m = cl.expect(r"^DATA text (\d+) (.*)$", timeout=10)
    assert int(m.group(1)) == len(text)
    assert m.group(2) == text[:40]
    cl.finish()
    ev = p.expect_event("open")
    assert "permessage-deflate" in ev["extensions"]
    assert p.expect_event("msg")["len"] == len(text)


def test_deflate_context_takeover(client, peer):
    """--deflate-context-takeover: no *_no_context_takeover offered; several
    similar messages in a row (each depending on the previous window) must
    survive both ways."""
    p = peer()
    texts = ["message number %d: %s" % (i, "lorem ipsum dolor sit amet " * 20)
             for i in range(6)]
    args = []
    for s in texts:
        args += ["--send", s]
    cl = client(url(p), *args, "--send-binary-size", 70000, "--deflate-context-takeover",
                "--expect", len(texts) + 1, "--close", 1000)
    for s in texts:
        m = cl.expect(r"^DATA text (\d+) (.*)$", timeout=10)
        assert (int(m.group(1)), m.group(2)) == (len(s), s[:40])
    m = cl.expect(r"^DATA binary (\d+) ([0-9a-f]{40})$", timeout=10)
    assert m.group(2) == sha1(pattern_bytes(70000))
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0")
    cl.finish()
    ev = p.expect_event("open")
    offered = [v for k, v in ev["headers"] if k.lower() == "sec-websocket-extensions"]
    assert len(offered) == 1 and offered[0].startswith("permessage-deflate"), offered
    assert "no_context_takeover" not in offered[0], offered
    assert ev["extensions"].startswith("permessage-deflate")
    assert [e["text"] for e in p.wait_events("msg", len(texts) + 1) if e["type"] == "text"] == \
        [s[:200] for s in texts]


def test_message_over_client_limit(client, peer):
    """--max-message 1000: the server's 2000-byte echo makes the client fail
    the connection with 1009."""
    p = peer("--no-compression")
    cl = client(url(p), "--max-message", 1000, "--send-binary-size", 2000, "--no-deflate")
    cl.expect(r"^CLOSE code=1009 cause=protocol remote=0 ")
    m = cl.expect(r"^GIVEUP error=(-?\d+) ")
    assert int(m.group(1)) != 0
    cl.finish()
    assert cl.count(r"^DATA ") == 0
    assert p.expect_event("closed", timeout=10)["code"] == 1009
