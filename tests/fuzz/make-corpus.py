#!/usr/bin/python3
"""make-corpus.py [DIR] - seed inputs for fuzz_conn (default DIR:
tests/fuzz/corpus next to this script). Standard library only; the output
is deterministic, so rerunning it changes nothing.

Every seed is three control bytes (see fuzz_conn.c: flags, split, extras)
followed by what a peer sends: an upgrade request and masked frames, or
plain HTTP.
"""
import base64
import random
import struct
import zlib

from seedlib import (ACTIONS, BINARY, CLOSE, CONT, HALF_CLOSE, LARGE, NO_READ, PING, PMD, PONG,
                     READ_OUT, RSV1, RSV2, SMALL, SMALL_SNDBUF, TEXT, TIMERS, TINY, WHOLE,
                     Seeds, deflate, mask)
from seedlib import frame as _frame

rng = random.Random(6455)

# flags (byte 0) bits 0-1: which server (the other bits: seedlib.py).
SRV_DEFAULT, SRV_TAKEOVER, SRV_PLAIN, SRV_NOTIMEOUT = 0, 1, 2, 3
# extras (byte 2): bystander, its deflate, it never reads, the application
# acts between pieces, as another thread, ws_server_stop(), references.
# amplify: the last piece is sent again until about 160 KiB more went out.
BY, BY_DEFLATE, BY_NO_READ, APP, FOREIGN, STOP, REF, AMPLIFY = 1, 2, 4, 8, 16, 32, 64, 128
CLASS_MAX = {WHOLE: 0, TINY: 16, SMALL: 256, LARGE: 2048}
M32 = 0xFFFFFFFF


def xorshift(x):
    x ^= (x << 13) & M32
    x ^= x >> 17
    x ^= (x << 5) & M32
    return x


def pieces(flags, split, size):
    """fuzz_conn.c's schedule: [(end offset of the piece, timer fired)]."""
    x = ((split & 0x3F) * 2654435761 + 1) & M32
    cm = CLASS_MAX[split & 0xC0]
    off, piece, out = 0, 0, []
    while off < size:
        n = size - off
        if cm > 0 and piece < 63:
            x = xorshift(x)
            n = min(n, 1 + x % cm)
        off += n
        fired = False
        if flags & TIMERS:
            x = xorshift(x)
            fired = (x & 3) == 0
        out.append((off, fired))
        piece += 1
    return out


def pick_split(cls, flags, size, want):
    """The first split seed of class cls whose schedule satisfies want."""
    for s in range(64):
        if want(pieces(flags, cls | s, size)):
            return cls | s
    raise ValueError("no split seed fits")

KEY = base64.b64encode(b"fuzz-conn-key-16").decode()
assert len(KEY) == 24


def upgrade(extensions=None, extra="", path="/chat", version="13", method="GET",
            key=KEY, http="1.1"):
    lines = [f"{method} {path} HTTP/{http}", "Host: example.com",
             "Upgrade: websocket", "Connection: keep-alive, Upgrade",
             f"Sec-WebSocket-Key: {key}", f"Sec-WebSocket-Version: {version}"]
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    head = "\r\n".join(lines) + "\r\n" + extra + "\r\n"
    return head.encode()


def frame(opcode, payload=b"", fin=True, rsv=0, masked=True, length=None, mask=None):
    """One client frame, masked with mask or a key from rng (unless
    masked=False, a protocol error)."""
    key = None
    if masked:
        key = mask if mask is not None else bytes(rng.randrange(256) for _ in range(4))
    return _frame(opcode, payload, fin, rsv, length, key)


def frame_len16(opcode, payload):
    """A 16-bit length even below 126 (non-minimal: a protocol error)."""
    key = b"\x01\x02\x03\x04"
    return struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, len(payload)) + key + mask(payload, key)


def deflate_final(data):
    """A message that ends with a final (BFINAL) block: RFC 7692 7.2.3.4."""
    c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH)


def close(code=1000, reason=b""):
    return frame(0x8, struct.pack("!H", code) + reason if code is not None else b"")


def http(method, target, headers=(), body=b"", version="1.1"):
    lines = [f"{method} {target} HTTP/{version}", "Host: example.com"]
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


SEEDS = Seeds()
seed = SEEDS.add


# ---- WebSocket sessions ----------------------------------------------------
seed("ws-text-close", SRV_DEFAULT, WHOLE,
     upgrade() + frame(TEXT, b"hello, world") + close(1000, b"done"))
seed("ws-text-split-tiny", SRV_DEFAULT, TINY | 7,
     upgrade() + frame(TEXT, b"hello, world") + frame(BINARY, bytes(range(200))) + close())
seed("ws-binary-126", SRV_DEFAULT, SMALL | 3,
     upgrade() + frame(BINARY, bytes(rng.randrange(256) for _ in range(300))) + close())
seed("ws-binary-127-too-big", SRV_DEFAULT, LARGE | 1,
     upgrade() + frame(BINARY, b"\xab" * 5000, length=70000))
seed("ws-binary-4096-limit", SRV_DEFAULT, LARGE | 9,
     upgrade() + frame(BINARY, b"\x55" * 4096) + frame(BINARY, b"\x55" * 3000, length=4097))
seed("ws-fragmented-text-ping", SRV_DEFAULT, TINY | 2,
     upgrade() + frame(TEXT, "héllo ".encode(), fin=False) + frame(PING, b"mid")
     + frame(CONT, " wörld ".encode(), fin=False) + frame(CONT, "€!".encode()) + close())
seed("ws-utf8-split-across-fragments", SRV_DEFAULT, WHOLE,
     upgrade() + frame(TEXT, b"ab\xe2\x82", fin=False) + frame(CONT, b"\xac cd") + close())
seed("ws-control", SRV_DEFAULT, SMALL | 5,
     upgrade() + frame(PING, b"ping!") + frame(PONG, b"unsolicited") + frame(PING)
     + close(3000, "réason".encode()))
seed("ws-invalid-utf8", SRV_DEFAULT, WHOLE,
     upgrade() + frame(TEXT, b"ok \xc3\x28 bad"))
seed("ws-invalid-utf8-streamed", SRV_DEFAULT, TINY | 11,
     upgrade() + frame(TEXT, b"x" * 100 + b"\xed\xa0\x80" + b"y" * 100))
seed("ws-bad-opcode", SRV_DEFAULT, WHOLE, upgrade() + frame(0x3, b"??"))
seed("ws-bad-opcode-control", SRV_DEFAULT, WHOLE, upgrade() + frame(0xB, b"??"))
seed("ws-rsv-bits", SRV_PLAIN, WHOLE, upgrade() + frame(TEXT, b"rsv", rsv=RSV2))
seed("ws-unmasked", SRV_DEFAULT, WHOLE, upgrade() + frame(TEXT, b"plain", masked=False))
seed("ws-control-too-long", SRV_DEFAULT, WHOLE, upgrade() + frame(PING, b"p" * 126))
seed("ws-control-fragmented", SRV_DEFAULT, WHOLE, upgrade() + frame(PING, b"p", fin=False))
seed("ws-close-one-byte", SRV_DEFAULT, WHOLE, upgrade() + frame(CLOSE, b"\x03"))
seed("ws-close-bad-code", SRV_DEFAULT, WHOLE, upgrade() + close(1005) + close(999))
seed("ws-close-bad-reason", SRV_DEFAULT, WHOLE, upgrade() + close(1000, b"\xff\xfe"))
seed("ws-close-empty-then-data", SRV_DEFAULT, SMALL | 1,
     upgrade() + frame(CLOSE) + frame(TEXT, b"after close"))
seed("ws-continuation-alone", SRV_DEFAULT, WHOLE, upgrade() + frame(CONT, b"orphan"))
seed("ws-nonminimal-length", SRV_DEFAULT, WHOLE, upgrade() + frame_len16(BINARY, b"short"))
# Actions (fuzz_conn.c on_data): first byte & 7 = 0 broadcast, 1 close,
# 2 ping, 3 fill the backlog, 4 publish, 5 resubscribe, 6 close + send,
# 7 broadcast a large message.
seed("ws-actions", SRV_DEFAULT | ACTIONS, SMALL | 13,
     upgrade() + b"".join(frame(BINARY, bytes([i]) + b"action payload " * 3)
                          for i in (0, 2, 3, 4, 5, 7, 6, 1)) + close())
seed("ws-actions-takeover", SRV_TAKEOVER | ACTIONS | READ_OUT, SMALL | 14,
     upgrade(PMD) + b"".join(frame(BINARY, bytes([i]) + b"action payload " * 3)
                             for i in (0, 2, 4, 5, 7, 3, 1)) + close())
seed("ws-actions-no-read", SRV_DEFAULT | ACTIONS | NO_READ | SMALL_SNDBUF, SMALL | 17,
     upgrade(PMD) + b"".join(frame(TEXT, str(i).encode() + b" fill the backlog " * 20)
                             for i in (3, 3, 0, 4, 7, 5, 3)) + close())
seed("ws-many-small-frames", SRV_DEFAULT | ACTIONS, TINY | 21,
     upgrade() + b"".join(frame(TEXT, b"%d" % i) for i in range(150)))

# ---- permessage-deflate ------------------------------------------------------
msg = ("The quick brown fox jumps over the lazy dog. " * 20).encode()
seed("pmd-text", SRV_DEFAULT, WHOLE,
     upgrade(PMD) + frame(TEXT, deflate(msg), rsv=RSV1) + close())
seed("pmd-params-fragmented", SRV_DEFAULT, SMALL | 23,
     upgrade(f"{PMD}; client_max_window_bits; server_max_window_bits=10; "
             "client_no_context_takeover, x-unknown; a=1, " + PMD)
     + (lambda z: frame(TEXT, z[:len(z) // 2], fin=False, rsv=RSV1)
        + frame(PING, b"between") + frame(CONT, z[len(z) // 2:]))(deflate(msg))
     + close())
takeover = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
seed("pmd-context-takeover", SRV_TAKEOVER, SMALL | 29,
     upgrade(f"{PMD}; client_max_window_bits=15")
     + frame(BINARY, deflate(msg, stream=takeover), rsv=RSV1)
     + frame(BINARY, deflate(msg, stream=takeover), rsv=RSV1)
     + frame(TEXT, deflate(b"short", stream=takeover), rsv=RSV1)
     + frame(TEXT, b"uncompressed too") + close())
seed("pmd-bomb", SRV_DEFAULT, WHOLE,
     upgrade(PMD) + frame(BINARY, deflate(b"\0" * 200000), rsv=RSV1))
seed("pmd-final-block", SRV_DEFAULT, WHOLE,
     upgrade(PMD) + frame(TEXT, deflate_final(msg), rsv=RSV1)
     + frame(TEXT, deflate_final(b"a") + deflate(b"b"), rsv=RSV1) + close())
seed("pmd-corrupt", SRV_DEFAULT, WHOLE,
     upgrade(PMD) + frame(BINARY, b"\xff\xff\xff\xff" + deflate(msg), rsv=RSV1))
seed("pmd-rsv1-on-continuation", SRV_DEFAULT, WHOLE,
     upgrade(PMD) + frame(TEXT, b"a", fin=False) + frame(CONT, deflate(b"b"), rsv=RSV1))
seed("pmd-declined-rsv1", SRV_PLAIN, WHOLE,
     upgrade(PMD) + frame(TEXT, deflate(b"not negotiated"), rsv=RSV1))
seed("pmd-invalid-utf8", SRV_TAKEOVER, TINY | 31,
     upgrade(f"{PMD}; server_no_context_takeover")
     + frame(TEXT, deflate(b"abc\xc0\xafdef" * 30), rsv=RSV1))
seed("pmd-timers", SRV_NOTIMEOUT | TIMERS | ACTIONS, SMALL | 33,
     upgrade(f"{PMD}; server_max_window_bits=9")
     + frame(TEXT, deflate(msg), rsv=RSV1) + frame(PONG, b"Pong"))
seed("ws-timers-half-open", SRV_DEFAULT | TIMERS | HALF_CLOSE, WHOLE,
     upgrade() + frame(TEXT, b"then silence"))
# The timer fires (a ping goes out) after the piece that ends between the
# first message and the pong: the pong then answers it.
_pp_up = len(upgrade())
_pp_head = upgrade() + frame(TEXT, b"a" * 60)
_pp = _pp_head + frame(PONG, b"P") + frame(TEXT, b"b") + frame(PONG, b"") + frame(TEXT, b"c")


def _pp_fits(ps):
    """No timeout before the upgrade is in; one between it and the pong."""
    return (not any(f for end, f in ps if end <= _pp_up)
            and any(f for end, f in ps if _pp_up < end <= len(_pp_head)))


seed("ws-timers-ping-pong", SRV_DEFAULT | TIMERS | READ_OUT,
     pick_split(SMALL, TIMERS, len(_pp), _pp_fits), _pp)
seed("ws-timers-ping-pong-notimeout", SRV_NOTIMEOUT | TIMERS | READ_OUT,
     pick_split(SMALL, TIMERS, len(_pp), _pp_fits), _pp)
seed("ws-timers-close-unanswered", SRV_TAKEOVER | TIMERS | ACTIONS, SMALL | 45,
     upgrade() + frame(TEXT, b"\x01 server closes, peer never answers"))
seed("http-timers-handshake", SRV_DEFAULT | TIMERS, TINY | 47,
     b"GET /slow HTTP/1.1\r\nHost: a\r\n")
seed("http-timers-linger", SRV_DEFAULT | TIMERS | NO_READ | SMALL_SNDBUF, WHOLE,
     http("GET", "/x3?b=" + "y" * 400, ["Connection: close"]) + b"ignored")

# ---- the upgrade refused -----------------------------------------------------------
seed("up-bad-version", SRV_DEFAULT, WHOLE, upgrade(version="8"))
seed("up-post", SRV_DEFAULT, WHOLE, upgrade(method="POST"))
seed("up-bad-key", SRV_DEFAULT, WHOLE, upgrade(key="short=="))
seed("up-http10", SRV_DEFAULT, WHOLE, upgrade(http="1.0"))
seed("up-too-many-headers", SRV_PLAIN, WHOLE,
     upgrade(extra="".join(f"X-H{i}: {i}\r\n" for i in range(20))))
seed("up-head-too-large", SRV_DEFAULT, LARGE | 3,
     upgrade(extra="X-Big: " + "b" * 1100 + "\r\n"))
seed("up-then-frames-same-write", SRV_DEFAULT | READ_OUT, WHOLE,
     upgrade(PMD + "; server_no_context_takeover; client_max_window_bits=9")
     + frame(TEXT, b"right behind") + close())

# ---- plain HTTP -------------------------------------------------------------------
seed("http-get-pipelined", SRV_DEFAULT, SMALL | 35,
     http("GET", "/a?b=hello%20world+x&a=123456789") + http("GET", "/b")
     + http("HEAD", "/c") + http("GET", "/d", ["Connection: close"]))
seed("http-post-body", SRV_DEFAULT, TINY | 37,
     http("POST", "/echo1", ["Content-Length: 11"], b"hello world")
     + http("PUT", "/x", ["Content-Length: 0"]))
seed("http-post-too-big", SRV_DEFAULT, WHOLE,
     http("POST", "/big", ["Content-Length: 5000"], b"z" * 100))
seed("http-chunked", SRV_DEFAULT, WHOLE,
     http("POST", "/c", ["Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\r\n\r\n"))
seed("http-two-lengths", SRV_DEFAULT, WHOLE,
     http("POST", "/c", ["Content-Length: 1", "Content-Length: 1"], b"a"))
seed("http-10-keepalive", SRV_DEFAULT, WHOLE,
     http("GET", "/k1", ["Connection: keep-alive"], version="1.0")
     + http("GET", "/k2", version="1.0"))
seed("http-absolute-form", SRV_DEFAULT, WHOLE,
     http("GET", "http://example.com/abs3?b=%41%42") + http("OPTIONS", "*"))
seed("http-no-handler", SRV_PLAIN, WHOLE, http("GET", "/"))
seed("http-bad", SRV_DEFAULT, WHOLE,
     b"GET /x HTTP/1.1\r\nHost : a\r\n\r\n")
seed("http-obs-fold", SRV_DEFAULT, WHOLE,
     b"GET /x HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n")
seed("http-bare-lf", SRV_DEFAULT, TINY | 39,
     b"GET /lf1 HTTP/1.1\nHost: a\n\nGET /lf2 HTTP/1.1\r\nHost: a\r\n\r\n")
seed("http-then-upgrade", SRV_DEFAULT | ACTIONS, SMALL | 41,
     http("GET", "/first1") + upgrade(PMD) + frame(TEXT, b"\x00broadcast me")
     + frame(TEXT, b"\x04publish me") + close())

# ---- exactly at the limits (max message 4096, head 1024, 125/123) ----------
seed("limit-text-4096-streamed", SRV_DEFAULT, LARGE | 5,
     upgrade() + frame(TEXT, b"t" * 4096) + close())
seed("limit-fragments-4096", SRV_DEFAULT, SMALL | 7,
     upgrade() + frame(BINARY, b"1" * 2049, fin=False) + frame(CONT, b"2" * 2047)
     + frame(BINARY, b"4" * 1000, fin=False) + frame(CONT, b"5" * 5, length=3097))
seed("limit-text-fragments-4096", SRV_DEFAULT, SMALL | 9,
     upgrade() + frame(TEXT, b"a" * 4095, fin=False) + frame(CONT, b"b") + close())
seed("limit-pmd-4096", SRV_DEFAULT, WHOLE,
     upgrade(PMD) + frame(TEXT, deflate(b"z" * 4096), rsv=RSV1)
     + frame(TEXT, deflate(b"z" * 4097), rsv=RSV1))
seed("limit-pmd-fragmented-4096", SRV_TAKEOVER, SMALL | 11,
     upgrade(PMD) + (lambda z: frame(BINARY, z[:5], fin=False, rsv=RSV1)
                     + frame(CONT, z[5:]))(deflate(bytes(range(256)) * 16)) + close())
seed("limit-control-125-reason-123", SRV_DEFAULT, WHOLE,
     upgrade() + frame(PING, b"p" * 125) + frame(PONG, b"q" * 125) + close(1000, b"r" * 123))
_h = http("GET", "/lim1")
seed("limit-head-1024", SRV_DEFAULT, TINY | 13,
     http("GET", "/lim1", ["X-Pad: " + "p" * (1024 - len(_h) - 9)])
     + http("GET", "/lim2", ["X-Pad: " + "p" * (1025 - len(_h) - 9)]))
seed("limit-body-4096", SRV_DEFAULT, LARGE | 15,
     http("POST", "/body1", ["Content-Length: 4096"], b"B" * 4096)
     + http("POST", "/body2", ["Content-Length: 4097"], b"C" * 3000))
seed("limit-small-server", SRV_PLAIN, SMALL | 17,
     upgrade() + frame(TEXT, b"s" * 300) + frame(TEXT, b"s" * 301))

# ---- odd syntax ---------------------------------------------------------------
seed("pmd-quoted-params", SRV_TAKEOVER, WHOLE,
     upgrade(f'{PMD}; client_max_window_bits="10"; server_max_window_bits="12", {PMD}; x="')
     + frame(TEXT, deflate(msg, wbits=10), rsv=RSV1) + close())
seed("pmd-window-8", SRV_DEFAULT, WHOLE,
     upgrade(f"{PMD}; server_max_window_bits=8, {PMD}; server_max_window_bits=09, "
             f"{PMD};server_no_context_takeover;server_no_context_takeover, {PMD}")
     + frame(TEXT, deflate(msg), rsv=RSV1) + close())
seed("http-stray-cr", SRV_DEFAULT, WHOLE, b"GET /x HTTP/1.1\r\nHost: a\rb\r\n\r\n")
seed("http-query-escapes", SRV_DEFAULT, WHOLE,
     http("GET", "/q3?a=%4&b=%zz") + http("GET", "/q3?b=%41+%2") + http("GET", "/q3?a=12345678&b"))

# ---- backpressure: drain, slow consumers ------------------------------------
seed("ws-drain", SRV_DEFAULT | ACTIONS | SMALL_SNDBUF | READ_OUT, WHOLE,
     upgrade() + frame(BINARY, b"3 fill") + frame(BINARY, b"3 fill more"))
seed("ws-slow-consumer", SRV_TAKEOVER | ACTIONS | SMALL_SNDBUF | NO_READ, SMALL | 19,
     upgrade(PMD) + frame(BINARY, b"3" + bytes(range(256)) * 4) + frame(TEXT, b"after"))

# ---- the bystander, the application outside callbacks, stop, references ----
seed("by-broadcast", SRV_DEFAULT | ACTIONS, SMALL | 21,
     upgrade(PMD) + frame(TEXT, b"\x00" + msg) + frame(TEXT, b"\x04publish " + msg)
     + frame(BINARY, b"\x07\xff") + close(), BY | BY_DEFLATE)
seed("by-broadcast-plain-peer", SRV_DEFAULT | ACTIONS, WHOLE,
     upgrade() + frame(TEXT, b"\x00" + msg) + frame(TEXT, b"\x05resubscribe") + close(),
     BY | BY_DEFLATE)
seed("by-slow", SRV_TAKEOVER | ACTIONS, SMALL | 23,
     upgrade(PMD) + b"".join(frame(BINARY, b"\x07\xff") for _ in range(8)) + close(),
     BY | BY_NO_READ | BY_DEFLATE)
seed("by-backlog", SRV_DEFAULT | ACTIONS, SMALL | 25,
     upgrade() + b"".join(frame(BINARY, b"\x07\xff") for _ in range(8)) + close(),
     BY | BY_NO_READ)
seed("app-between-pieces", SRV_DEFAULT, TINY | 27,
     upgrade(PMD) + b"".join(frame(TEXT, b"%d" % i) for i in range(40)) + close(),
     BY | APP)
seed("app-foreign-thread", SRV_NOTIMEOUT, SMALL | 29,
     upgrade(PMD) + b"".join(frame(TEXT, b"%d" % i) for i in range(40)) + close(),
     BY | BY_DEFLATE | APP | FOREIGN)
seed("app-foreign-http", SRV_TAKEOVER, TINY | 31,
     http("GET", "/f1") + upgrade() + frame(TEXT, b"x"), APP | FOREIGN | REF)
seed("stop-open", SRV_DEFAULT | READ_OUT, LARGE | 1,
     upgrade() + frame(TEXT, b"before the stop") + frame(TEXT, b"x" * 100) + close(),
     STOP | BY | REF)
seed("stop-http", SRV_DEFAULT, SMALL | 2,
     http("GET", "/s1") + http("GET", "/s2") + upgrade(), STOP)
seed("stop-closing", SRV_NOTIMEOUT | ACTIONS, SMALL | 3,
     upgrade() + frame(TEXT, b"\x01 close first") + frame(TEXT, b"more"), STOP | REF)
seed("ref-after-close", SRV_DEFAULT | ACTIONS | TIMERS, SMALL | 4,
     upgrade(PMD) + frame(TEXT, b"\x06" + msg), REF | BY)

# ---- amplified: large bodies and frames (server 3 takes 256 KiB) ------------
seed("amp-http-body", SRV_NOTIMEOUT | READ_OUT, WHOLE,
     http("POST", "/amp1", ["Content-Length: 140000"], b"x" * 1000), AMPLIFY)
seed("amp-ws-binary", SRV_NOTIMEOUT, WHOLE,
     upgrade() + frame(BINARY, b"y" * 1000, length=140000), AMPLIFY)
_amp = upgrade(PMD) + frame(TEXT, b"a" * 400, length=150000, mask=b"\0\0\0\0")
seed("amp-ws-text", SRV_NOTIMEOUT | SMALL_SNDBUF, pick_split(
     LARGE, 0, len(_amp), lambda ps: len(ps) > 1 and ps[-2][0] >= len(_amp) - 400), _amp,
     AMPLIFY)
_amp = upgrade(PMD) + frame(BINARY, b"b" * 400, length=150000, mask=b"\0\0\0\0")
seed("amp-ws-binary-default", SRV_DEFAULT, pick_split(
     LARGE, 0, len(_amp), lambda ps: len(ps) > 1 and ps[-2][0] >= len(_amp) - 400), _amp,
     AMPLIFY)

# ---- HTTP with bodies (servers 0, 1 and 3 have an HTTP handler; 2 has none) --
# Appended last: the seeds above keep their bytes (the mask PRNG is shared).
seed("body-byte-at-a-time", SRV_DEFAULT | READ_OUT, TINY | 49,
     http("POST", "/bb1", ["Content-Length: 2000"], bytes(range(250)) * 8))
seed("body-pipelined-keepalive", SRV_TAKEOVER, SMALL | 50,
     http("POST", "/p1", ["Content-Length: 0"]) + http("PUT", "/p2", ["Content-Length: 10"], b"0123456789")
     + http("POST", "/p3", ["Content-Length: 100"], b"c" * 100) + http("GET", "/p4"))
seed("body-no-handler", SRV_PLAIN, SMALL | 51,
     http("POST", "/nh", ["Content-Length: 50"], b"n" * 50) + http("GET", "/after"))
seed("body-then-upgrade", SRV_DEFAULT | ACTIONS, SMALL | 52,
     http("POST", "/bu1", ["Content-Length: 5"], b"hello") + upgrade(PMD)
     + frame(TEXT, b"\x00after a body") + close())
seed("body-at-limit-pieces", SRV_NOTIMEOUT, LARGE | 53,
     http("POST", "/lim1", ["Content-Length: 4096"], b"L" * 4096)
     + http("POST", "/lim3", ["Content-Length: 4097"], b"M" * 3000))
seed("body-head-method", SRV_DEFAULT, WHOLE,
     http("HEAD", "/h1", ["Content-Length: 3"], b"abc") + http("GET", "/h2"))
seed("body-connection-close", SRV_DEFAULT | NO_READ | SMALL_SNDBUF, SMALL | 54,
     http("POST", "/cc1", ["Content-Length: 600", "Connection: close"], b"z" * 600)
     + http("GET", "/never"))
seed("body-length-syntax", SRV_DEFAULT, WHOLE,
     http("POST", "/ls1", ["Content-Length: 0005"], b"hello")
     + http("POST", "/ls2", ["Content-Length: +5"], b"hello"))
seed("body-length-huge", SRV_DEFAULT, WHOLE,
     http("POST", "/lh", ["Content-Length: 18446744073709551616"], b"x"))
seed("body-timers-stalled", SRV_DEFAULT | TIMERS, TINY | 55,
     http("POST", "/st1", ["Content-Length: 300"], b"s" * 40))
seed("body-amplified-pieces", SRV_NOTIMEOUT | READ_OUT, SMALL | 56,
     http("POST", "/ap1", ["Content-Length: 150000"], b"y" * 900), AMPLIFY)

if __name__ == "__main__":
    SEEDS.write(__file__, "corpus")
