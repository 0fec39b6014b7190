#!/usr/bin/python3
"""make-client-corpus.py [DIR] - seed inputs for fuzz_client (default DIR:
tests/fuzz/client-corpus next to this script). Standard library only;
deterministic.

Every seed is three control bytes (see fuzz_client.c: flags, split, extras)
followed by what a server sends: an upgrade response (valid or not, with
and without permessage-deflate and a subprotocol) and unmasked frames.
"""
import base64
import hashlib
import struct
import zlib

from seedlib import (ACTIONS, BINARY, CLOSE, CONT, HALF_CLOSE, LARGE, NO_READ, PING, PMD, PONG,
                     READ_OUT, RSV1, SMALL, SMALL_SNDBUF, TEXT, TIMERS, TINY, WHOLE, Seeds,
                     deflate)
from seedlib import frame as _frame

# flags (byte 0) bits 0-1: which client (the other bits: seedlib.py).
CL_DEFAULT, CL_TAKEOVER, CL_PLAIN, CL_NOTIMEOUT = 0, 1, 2, 3
# extras (byte 2)
APP, STOP, REF, NO_REQUEST = 1, 2, 4, 8

# fuzz_client.c's __wrap_RAND_bytes: byte i is i * 37 + 11.
KEY = base64.b64encode(bytes((i * 37 + 11) & 0xFF for i in range(16))).decode()
ACCEPT = base64.b64encode(hashlib.sha1(
    (KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
SEEDS = Seeds()
seed = SEEDS.add


def response(extensions=None, protocol=None, accept=ACCEPT, status="101 Switching Protocols",
             extra="", upgrade="websocket", connection="Upgrade", http="1.1"):
    lines = [f"HTTP/{http} {status}"]
    if upgrade is not None:
        lines.append(f"Upgrade: {upgrade}")
    if connection is not None:
        lines.append(f"Connection: {connection}")
    if accept is not None:
        lines.append(f"Sec-WebSocket-Accept: {accept}")
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    if protocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def frame(opcode, payload=b"", fin=True, rsv=0, length=None, masked=False):
    """A server frame (unmasked unless masked, which is a protocol error)."""
    return _frame(opcode, payload, fin, rsv, length, b"\x01\x02\x03\x04" if masked else None)


def close(code=None, reason=b""):
    return frame(CLOSE, b"" if code is None else struct.pack("!H", code) + reason)


msg = ("The quick brown fox jumps over the lazy dog. " * 20).encode()

# ---- valid responses, then frames ------------------------------------------
seed("ok-plain-close", CL_PLAIN | READ_OUT, WHOLE,
     response() + frame(TEXT, b"hello") + close(1000, b"bye"))
seed("ok-default-frames", CL_DEFAULT, SMALL | 1,
     response() + frame(TEXT, b"hello") + frame(BINARY, bytes(range(256)))
     + frame(PING, b"p") + frame(PONG, b"q") + close(1000))
seed("ok-pmd", CL_DEFAULT | READ_OUT, WHOLE,
     response(f"{PMD}; server_no_context_takeover; client_no_context_takeover")
     + frame(TEXT, deflate(msg), rsv=RSV1) + frame(TEXT, b"plain too") + close(1000))
seed("ok-pmd-takeover", CL_TAKEOVER | ACTIONS, SMALL | 2,
     (lambda z: response(f"{PMD}; client_max_window_bits=9")
      + frame(BINARY, deflate(msg, stream=z), rsv=RSV1)
      + frame(BINARY, deflate(msg, stream=z), rsv=RSV1) + close())(
         zlib.compressobj(6, zlib.DEFLATED, -15)))
seed("ok-pmd-fragmented", CL_DEFAULT, TINY | 3,
     response(PMD) + (lambda z: frame(TEXT, z[:7], fin=False, rsv=RSV1) + frame(PING, b"mid")
                      + frame(CONT, z[7:]))(deflate(msg)) + close(1001))
seed("ok-subprotocol", CL_DEFAULT | ACTIONS, WHOLE,
     response(protocol="superchat") + frame(TEXT, b"\x02ping me") + close())
seed("ok-subprotocol-and-pmd", CL_TAKEOVER, WHOLE,
     response(f"{PMD}; server_max_window_bits=10", protocol="chat")
     + frame(TEXT, deflate(b"chat " * 40, wbits=10), rsv=RSV1) + close())
seed("ok-frames-same-write", CL_NOTIMEOUT | READ_OUT, WHOLE,
     response() + b"".join(frame(TEXT, b"%d" % i) for i in range(60)) + close())
seed("ok-actions", CL_DEFAULT | ACTIONS, SMALL | 4,
     response(PMD) + b"".join(frame(BINARY, bytes([i]) + b" action payload" * 4)
                              for i in (0, 2, 5, 6, 1, 7, 3)))
seed("ok-stop", CL_DEFAULT | ACTIONS, SMALL | 5,
     response() + frame(TEXT, b"\x04stop") + frame(TEXT, b"after"), STOP)
seed("ok-app-ref", CL_NOTIMEOUT, TINY | 6,
     response() + b"".join(frame(TEXT, b"m%d" % i) for i in range(20)) + close(),
     APP | REF)
seed("ok-timers", CL_DEFAULT | TIMERS | READ_OUT, SMALL | 7,
     response() + frame(TEXT, b"then a heartbeat") + frame(PONG, b""))
seed("ok-timers-no-close-answer", CL_DEFAULT | TIMERS | ACTIONS, WHOLE,
     response() + frame(TEXT, b"\x03close, never answered"))
seed("ok-backlog", CL_TAKEOVER | ACTIONS | NO_READ | SMALL_SNDBUF, SMALL | 8,
     response() + b"".join(frame(BINARY, b"\x05" + bytes(range(256)) * 4) for _ in range(4)))
seed("ok-half-close", CL_DEFAULT | HALF_CLOSE, WHOLE, response() + frame(TEXT, b"x"))
seed("ok-large-message", CL_NOTIMEOUT, LARGE | 9,
     response() + frame(BINARY, b"L" * 5000, fin=False) + frame(CONT, b"M" * 3000) + close())
seed("ok-no-request-read", CL_DEFAULT, WHOLE, response() + close(), NO_REQUEST)

# ---- frames a client must refuse --------------------------------------------
seed("bad-masked-frame", CL_DEFAULT, WHOLE, response() + frame(TEXT, b"masked", masked=True))
seed("bad-rsv-without-pmd", CL_PLAIN, WHOLE, response() + frame(TEXT, deflate(b"x"), rsv=RSV1))
seed("bad-utf8", CL_DEFAULT, TINY | 10, response() + frame(TEXT, b"ok \xc3\x28 bad"))
seed("bad-too-big", CL_PLAIN, WHOLE, response() + frame(BINARY, b"b" * 301))
seed("bad-too-big-fragments", CL_DEFAULT, SMALL | 11,
     response() + frame(BINARY, b"a" * 4000, fin=False) + frame(CONT, b"b" * 97))
seed("bad-top-bit-length", CL_DEFAULT, WHOLE,
     response() + struct.pack("!BBQ", 0x82, 127, 1 << 63))
seed("bad-bomb", CL_DEFAULT, WHOLE,
     response(PMD) + frame(BINARY, deflate(b"\0" * 300000), rsv=RSV1))
seed("bad-control-long", CL_DEFAULT, WHOLE, response() + frame(PING, b"p" * 126))
seed("bad-close-code", CL_DEFAULT, WHOLE, response() + close(1005))
seed("bad-close-reason", CL_DEFAULT, WHOLE, response() + close(1000, b"\xff"))
seed("bad-continuation", CL_DEFAULT, WHOLE, response() + frame(CONT, b"orphan"))

# ---- responses a client must refuse ---------------------------------------------
seed("resp-200", CL_DEFAULT, WHOLE, response(status="200 OK") + b"body")
seed("resp-wrong-accept", CL_DEFAULT, WHOLE, response(accept="x" * 28))
seed("resp-no-accept", CL_DEFAULT, WHOLE, response(accept=None))
seed("resp-two-accepts", CL_DEFAULT, WHOLE,
     response(extra=f"Sec-WebSocket-Accept: {'y' * 28}\r\n"))
seed("resp-no-upgrade", CL_DEFAULT, WHOLE, response(upgrade=None))
seed("resp-no-connection", CL_DEFAULT, WHOLE, response(connection=None))
seed("resp-http10", CL_DEFAULT, WHOLE, response(http="1.0"))
seed("resp-pmd-unoffered", CL_PLAIN, WHOLE, response(PMD) + close())
seed("resp-pmd-bad-params", CL_DEFAULT, WHOLE,
     response(f"{PMD}; server_max_window_bits=7; bogus"))
seed("resp-pmd-two", CL_DEFAULT, WHOLE, response(f"{PMD}, {PMD}"))
seed("resp-pmd-two-lines", CL_DEFAULT, WHOLE,
     response(PMD, extra=f"Sec-WebSocket-Extensions: {PMD}\r\n"))
seed("resp-pmd-client-bits-unoffered", CL_TAKEOVER, WHOLE,
     response(f"{PMD}; client_max_window_bits=8") + close())
seed("resp-unknown-extension", CL_DEFAULT, WHOLE, response("x-webkit-deflate-frame"))
seed("resp-protocol-unoffered", CL_DEFAULT, WHOLE, response(protocol="other"))
seed("resp-protocol-two", CL_DEFAULT, WHOLE, response(protocol="chat, superchat"))
seed("resp-protocol-without-offer", CL_PLAIN, WHOLE, response(protocol="chat"))
seed("resp-head-too-big", CL_DEFAULT, LARGE | 12, response(extra="X-Big: " + "b" * 1100 + "\r\n"))
seed("resp-too-many-headers", CL_PLAIN, WHOLE,
     response(extra="".join(f"X-H{i}: {i}\r\n" for i in range(10))))
seed("resp-garbage", CL_DEFAULT, WHOLE, b"\x00\xffHTTP/1.1 101\r\n\r\n")
seed("resp-bare-lf", CL_DEFAULT, TINY | 13, response().replace(b"\r\n", b"\n") + close())
seed("resp-folded", CL_DEFAULT, WHOLE,
     response(extra="X-Folded: a\r\n b\r\n") + close())
seed("resp-partial", CL_DEFAULT | TIMERS, TINY | 14, response()[:40])
seed("resp-empty", CL_DEFAULT | TIMERS, WHOLE, b"")

if __name__ == "__main__":
    SEEDS.write(__file__, "client-corpus")
