"""After the handshake: masking, ping/pong both ways, the close handshake
started by either side, heartbeat timeouts, and servers that break the
protocol."""

import struct
import threading
import time

from rawpeer import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, server_frame, t


def url(port, path="/"):
    return "ws://127.0.0.1:%d%s" % (port, path)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def parse_close(payload):
    if not payload:
        return None, b""
    return struct.unpack("!H", payload[:2])[0], payload[2:]


# ---- masking -------------------------------------------------------------------


def test_client_frames_masked_with_fresh_keys(client, raw_server):
    """Every client frame has the mask bit; no two frames share a key; the
    payloads unmask to what was sent."""
    frames = []

    def handler(peer):
        peer.accept()
        for _ in range(4):  # 3 texts + 1 binary
            frames.append(peer.read_frame())
        for f in frames:
            peer.send(server_frame(f.opcode, f.payload))
        frames.append(peer.read_frame())  # the close
        peer.send(server_frame(OP_CLOSE, frames[-1].payload))
        peer.wait_eof()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--no-deflate", "--send", "one", "--send", "two",
                "--send", "x" * 300, "--send-binary-size", 70000,
                "--expect", 4, "--close", "4000:bye")
    cl.expect(r"^CLOSE code=4000 cause=clean remote=0 reason=bye$")
    cl.finish()
    srv.wait_done()
    assert [f.opcode for f in frames] == [OP_TEXT, OP_TEXT, OP_TEXT, OP_BINARY, OP_CLOSE]
    assert all(f.masked for f in frames), frames
    keys = [f.mask_key for f in frames]
    assert len(set(keys)) == len(keys), keys
    assert frames[0].payload == b"one" and frames[1].payload == b"two"
    assert frames[2].payload == b"x" * 300
    assert frames[3].payload == (bytes(range(251)) * 300)[:70000]
    assert parse_close(frames[4].payload) == (4000, b"bye")
    assert all(f.rsv == 0 and f.fin for f in frames)


def test_masked_exchange_with_websockets(client, peer):
    """websockets fails connections on unmasked client frames (1002): a
    clean exchange of several messages proves the client masks."""
    p = peer()
    cl = client(url(p.port), "--send", "a", "--send", "b", "--send-binary-size", 1000,
                "--expect", 3, "--close", 1000)
    cl.wait_count(r"^DATA ", 3)
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0")
    cl.finish()
    assert p.expect_event("closed")["code"] == 1000


def test_masked_server_frame(client, raw_server):
    """A server frame with the mask bit: the client fails the connection
    with 1002 and does not deliver the message."""
    got = []

    def handler(peer):
        peer.accept()
        peer.send(server_frame(OP_TEXT, "sneaky", mask_key=b"\x01\x02\x03\x04"))
        got.append(peer.read_frame())
        peer.close()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--no-deflate")
    cl.expect(r"^CLOSE code=1002 cause=protocol remote=0 ")
    m = cl.expect(r"^GIVEUP error=(-?\d+) ")
    assert int(m.group(1)) != 0
    lines = cl.finish()
    srv.wait_done()
    assert not [ln for ln in lines if ln.startswith("DATA")], lines
    assert got[0].opcode == OP_CLOSE and got[0].masked
    assert parse_close(got[0].payload)[0] == 1002


def test_frames_right_behind_the_101(client, raw_server):
    """Frames in the same packet as the 101 are not lost."""
    def handler(peer):
        req = peer.read_request()
        from rawpeer import accept_for
        peer.send(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                   % accept_for(req.key)).encode()
                  + server_frame(OP_TEXT, "early") + server_frame(OP_PING, "pp")
                  + server_frame(OP_CLOSE, close_payload(4002, b"early-close")))
        f = peer.read_frame()
        assert f.opcode == OP_PONG and f.payload == b"pp", f
        f = peer.read_frame()
        assert f.opcode == OP_CLOSE and parse_close(f.payload)[0] == 4002, f
        peer.close()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--no-deflate")
    cl.expect(r"^DATA text 5 early$")
    cl.expect(r"^PING 2$")
    cl.expect(r"^CLOSE code=4002 cause=clean remote=1 reason=early-close$")
    cl.expect(r"^GIVEUP error=0 ")
    cl.finish()
    srv.wait_done()
    srv.check()


def test_fragmented_and_control_interleaved(client, raw_server):
    """A fragmented text with a ping between its fragments: delivered whole;
    the ping answered with a masked pong of the same payload."""
    def handler(peer):
        peer.accept()
        peer.send(server_frame(OP_TEXT, "frag", fin=False))
        peer.send(server_frame(OP_PING, "mid"))
        peer.send(server_frame(OP_CONT, "men", fin=False))
        peer.send(server_frame(OP_CONT, "ted"))
        f = peer.read_frame()
        assert f.opcode == OP_PONG and f.masked and f.payload == b"mid", f
        f = peer.read_frame()
        assert f.opcode == OP_CLOSE and parse_close(f.payload) == (1000, b""), f
        peer.send(server_frame(OP_CLOSE, f.payload))
        peer.wait_eof()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--no-deflate", "--expect", 1, "--close", 1000)
    cl.expect(r"^PING 3$")
    cl.expect(r"^DATA text 10 fragmented$")
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0")
    cl.finish()
    srv.wait_done()
    srv.check()


def test_server_sends_invalid_utf8(client, raw_server):
    closes = []

    def handler(peer):
        peer.accept()
        peer.send(server_frame(OP_TEXT, b"\xff\xfe"))
        closes.append(peer.read_frame())
        peer.close()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--no-deflate")
    cl.expect(r"^CLOSE code=1007 cause=protocol remote=0 ")
    cl.finish()
    srv.wait_done()
    assert closes[0].opcode == OP_CLOSE and parse_close(closes[0].payload)[0] == 1007


def test_server_sets_rsv1_without_deflate(client, raw_server):
    def handler(peer):
        peer.accept()
        peer.send(bytes([0xC1, 0x01]) + b"x")  # FIN|RSV1, text, 1 byte
        f = peer.read_frame()
        assert f.opcode == OP_CLOSE and parse_close(f.payload)[0] == 1002, f
        peer.close()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--no-deflate")
    cl.expect(r"^CLOSE code=1002 cause=protocol remote=0 ")
    cl.finish()
    srv.wait_done()
    srv.check()


# ---- ping / pong ---------------------------------------------------------------


def test_client_ping_answered(client, peer):
    p = peer()
    cl = client(url(p.port), "--ping", "are-you-there", "--send", "after",
                "--expect", 1, "--close", 1000)
    cl.expect(r"^PONG 13 are-you-there$")
    cl.expect(r"^DATA text 5 after$")
    cl.finish()


def test_server_ping_answered(client, peer):
    p = peer()
    cl = client(url(p.port), "--send", "ping:from-server", "--send", "silent:x")
    cl.expect(r"^PING 11$")
    assert p.expect_event("pong")["payload"] == "from-server"
    cl.signal(15)
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0 ")
    cl.finish()


def test_empty_ping(client, raw_server):
    def handler(peer):
        peer.accept()
        f = peer.read_frame()
        assert f.opcode == OP_PING and f.payload == b"" and f.masked, f
        peer.send(server_frame(OP_PONG, b""))
        peer.send(server_frame(OP_PING, b""))
        f = peer.read_frame()
        assert f.opcode == OP_PONG and f.payload == b"", f
        peer.send(server_frame(OP_CLOSE, close_payload(1000)))
        f = peer.read_frame()
        assert f.opcode == OP_CLOSE, f
        peer.close()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--ping", "")
    cl.expect(r"^PONG 0 ?$")
    cl.expect(r"^PING 0$")
    cl.expect(r"^CLOSE code=1000 cause=clean remote=1")
    cl.finish()
    srv.wait_done()
    srv.check()


# ---- close ----------------------------------------------------------------------


def test_client_initiated_close(client, peer):
    p = peer()
    cl = client(url(p.port), "--close", "4000:bye")
    cl.expect(r"^OPEN ")
    cl.expect(r"^CLOSE code=4000 cause=clean remote=0 reason=bye$")
    cl.expect(r"^GIVEUP error=0 ")
    cl.finish()
    ev = p.expect_event("closed")
    assert (ev["code"], ev["reason"]) == (4000, "bye")


def test_server_initiated_close(client, peer):
    p = peer()
    cl = client(url(p.port), "--send", "close:4001:server says bye")
    cl.expect(r"^CLOSE code=4001 cause=clean remote=1 reason=server says bye$")
    cl.expect(r"^GIVEUP error=0 ")
    cl.finish()
    # The client echoed the code (RFC 6455 5.5.1).
    assert p.expect_event("closed")["code"] == 4001


def test_server_close_echoed_raw(client, raw_server):
    """The client answers a close with a masked close carrying the same code,
    then waits for the server to end TCP."""
    got = []

    def handler(peer):
        peer.accept()
        peer.send(server_frame(OP_CLOSE, close_payload(4001, b"raw bye")))
        got.append(peer.read_frame())
        time.sleep(0.2)
        peer.close()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--no-deflate")
    cl.expect(r"^CLOSE code=4001 cause=clean remote=1 reason=raw bye$")
    cl.finish()
    srv.wait_done()
    assert got[0].opcode == OP_CLOSE and got[0].masked
    assert parse_close(got[0].payload)[0] == 4001


def test_server_close_without_code(client, raw_server):
    got = []

    def handler(peer):
        peer.accept()
        peer.send(server_frame(OP_CLOSE, b""))
        got.append(peer.read_frame())
        peer.close()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--no-deflate")
    cl.expect(r"^CLOSE code=1005 cause=clean remote=1 reason=$")
    cl.finish()
    srv.wait_done()
    assert got[0].opcode == OP_CLOSE and got[0].payload == b""


def test_close_unanswered(client, raw_server):
    """The server never answers our close: close timeout, cause=timeout,
    our own code reported."""
    def handler(peer):
        peer.accept()
        f = peer.read_frame()
        assert f.opcode == OP_CLOSE, f
        peer.wait_eof(timeout=10)

    srv = raw_server(handler)
    cl = client(url(srv.port), "--close", "4000:bye", "--close-timeout", 400)
    m, when = cl.expect(r"^CLOSE code=4000 cause=timeout remote=0 reason=bye$",
                        timeout=5, with_time=True)
    cl.expect(r"^GIVEUP error=-15 ")
    cl.finish()
    srv.wait_done()
    srv.check()


def test_server_drops_tcp(client, raw_server):
    def handler(peer):
        peer.accept()
        time.sleep(0.1)
        peer.close()

    srv = raw_server(handler)
    cl = client(url(srv.port))
    cl.expect(r"^OPEN ")
    cl.expect(r"^CLOSE code=1006 cause=disconnect remote=0 reason=$")
    m = cl.expect(r"^GIVEUP error=(-?\d+) ")
    assert int(m.group(1)) != 0
    cl.finish()


def test_sigterm_closes_gracefully(client, peer):
    p = peer()
    cl = client(url(p.port))
    cl.expect(r"^OPEN ")
    cl.signal(15)
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0 ")
    cl.expect(r"^GIVEUP ")
    cl.finish()
    assert p.expect_event("closed")["code"] == 1000


# ---- heartbeat ------------------------------------------------------------------


def test_heartbeat_timeout(client, raw_server):
    """A server that completes the handshake, then never reads or answers:
    ping after 200 ms, no pong within 300 ms -> closed, cause=timeout."""
    released = threading.Event()

    def handler(peer):
        peer.accept()
        # Never read again: the client's ping sits in our receive buffer.
        released.wait(t(10))

    srv = raw_server(handler)
    cl = client(url(srv.port), "--ping-interval", 200, "--pong-timeout", 300)
    _, opened = cl.expect(r"^OPEN ", with_time=True)
    _, closed = cl.expect(r"^CLOSE code=\d+ cause=timeout remote=0 ", timeout=5,
                          with_time=True)
    assert 0.45 <= closed - opened <= 0.5 + t(1.0), closed - opened
    released.set()
    cl.expect(r"^GIVEUP error=-15 ")
    cl.finish()


def test_heartbeat_kept_alive(client, peer):
    """websockets answers the pings: nothing happens for 1.2 s."""
    p = peer()
    cl = client(url(p.port), "--ping-interval", 100, "--pong-timeout", 200)
    cl.expect(r"^OPEN ")
    time.sleep(1.2)
    assert cl.count(r"^CLOSE ") == 0, cl.output()
    cl.signal(15)
    cl.expect(r"^CLOSE code=1000 cause=clean remote=0")
    cl.finish()


def test_heartbeat_pings_are_masked(client, raw_server):
    pings = []

    def handler(peer):
        peer.accept()
        for _ in range(2):
            f = peer.read_frame()
            pings.append(f)
            peer.send(server_frame(OP_PONG, f.payload))
        peer.send(server_frame(OP_CLOSE, close_payload(1000)))
        peer.read_frame()
        peer.close()

    srv = raw_server(handler)
    cl = client(url(srv.port), "--ping-interval", 150, "--pong-timeout", 1000)
    cl.expect(r"^CLOSE code=1000 cause=clean remote=1", timeout=5)
    cl.finish()
    srv.wait_done()
    srv.check()
    assert [f.opcode for f in pings] == [OP_PING, OP_PING]
    assert all(f.masked for f in pings)
