#!/usr/bin/env python3
"""wsconf - WebSocket protocol conformance suite for echo servers.

Walks the ground of the Autobahn TestSuite's sections 1-7, 9, 10, 12 and 13
(framing, pings and pongs, reserved bits, opcodes, fragmentation, UTF-8,
close handling, limits and performance, misc, permessage-deflate) against a
server that echoes every text or binary message back unchanged, and checks
the *strict* behaviour of RFC 6455 and RFC 7692:

  - echoes are byte-identical, with the same opcode, in order;
  - a broken rule fails the connection with the exact close code (1002,
    1007, 1009), fast (within T_FAST after the offending bytes) and, for
    invalid UTF-8, fail-fast: before the rest of the message is even sent;
  - the server's own frames are well formed (unmasked, minimal length
    encoding, no reserved bits unless negotiated, control frames <= 125
    bytes and unfragmented, nothing after its close frame) and it closes
    the TCP connection after the close handshake.

Standard library only, raw sockets, one fresh connection per case, every
wait bounded. Usage:

  wsconf.py --url ws://127.0.0.1:PORT/ [--report report.json]
            [--max-message BYTES] [--only 6.4,7.1] [--exclude 9]
            [--server-name NAME] [--list]

Prints one line per case:
  PASS: conformance NAME ID DESCRIPTION
  FAIL: conformance NAME ID DESCRIPTION: WHY
then a per-section table; writes the JSON report and a Markdown summary
(same name, .md) when --report is given. Exit status 0 when no case failed.

Known deviations of other servers (not libwsc) are listed in ONE table,
KNOWN_DEVIATIONS below; a case in it passes for that server only if it fails
in exactly the documented way.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import re
import select
import socket
import ssl
import struct
import sys
import time
import urllib.parse
import zlib

# ---------------------------------------------------------------------------
# timing

SLOW = 3 if "thread" in os.environ.get("SANITIZER", "") else 1
T_CONNECT = 5.0 * SLOW      # TCP connect + opening handshake
T_IO = 5.0 * SLOW           # an expected echo or pong (small messages)
T_BIG = 60.0 * SLOW         # an expected echo of a large message / burst
T_FAST = 1.0 * SLOW         # an expected close after the offending bytes
T_FAIL_FAST = 1.0 * SLOW    # how long fail-fast cases wait before sending the rest
T_EOF = 2.0 * SLOW          # server closes TCP after the close handshake
T_CASE = 120.0 * SLOW       # hard bound for one case
DELAY = 0.005               # pause between "chops" sent separately

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
OPNAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TAIL = b"\x00\x00\xff\xff"

# ---------------------------------------------------------------------------
# known deviations: ONE table, per server name.
#
# (case id regex, kind, reason). A case matching the regex that FAILS with
# exactly that kind is reported as PASS (known deviation: reason); any other
# failure stays a FAIL, and so does a deviation of another kind. Kinds:
#   late-close          right close code, but only after the rest of the
#                       message was sent (not fail-fast)
#   handshake-rejected  an offer the server must decline (RFC 7692 5) made
#                       it refuse the whole handshake with HTTP 400
KNOWN_DEVIATIONS = {
    "node-ws": [
        (r"^6\.4\.\d+$", "late-close",
         "ws validates UTF-8 only when the whole message has arrived "
         "(lib/receiver.js dataMessage -> isValidUTF8(buf)), so 1007 comes after "
         "the end of the message, not at the invalid byte"),
        (r"^13\.14\.\d+$", "late-close",
         "ws inflates the whole message, then validates its UTF-8 "
         "(lib/receiver.js decompress -> dataMessage), so 1007 comes after the end of the "
         "message, not at the invalid byte"),
        (r"^(13\.10\.\d+|13\.11\.6)$", "handshake-rejected",
         "ws answers an invalid permessage-deflate offer with HTTP 400 "
         "'Invalid or unacceptable Sec-WebSocket-Extensions header' "
         "(lib/websocket-server.js; PerMessageDeflate.normalizeParams throws) "
         "instead of declining it as RFC 7692 5 requires, even when a later offer is valid"),
        (r"^13\.10\.14$", "accepted-invalid-offer",
         "ws reads window bits with Number(value), so server_max_window_bits=010 is taken "
         "as 10; RFC 7692 7.1.2.1 allows no leading zeroes, so the offer must be declined"),
        (r"^13\.11\.7$", "handshake-rejected",
         "ws's header parser (lib/extension.js) refuses whitespace around '=' with HTTP 400, "
         "though RFC 6455 9.1 uses RFC 2616's implied *LWS rule"),
    ],
}


class CaseFail(Exception):
    def __init__(self, msg, kind=None):
        super().__init__(msg)
        self.kind = kind


# ---------------------------------------------------------------------------
# frames

def xor_mask(data, key):
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(op, payload=b"", fin=True, rsv=0, mask=True, length=None, key=None):
    """One frame as the client sends it. `length` announces a different
    payload length than len(payload) (for limit tests)."""
    payload = bytes(payload)
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (op & 0xF)
    m = 0x80 if mask else 0
    if n < 126:
        hdr = bytes([b0, m | n])
    elif n < 65536:
        hdr = bytes([b0, m | 126]) + struct.pack("!H", n)
    else:
        hdr = bytes([b0, m | 127]) + struct.pack("!Q", n)
    if not mask:
        return hdr + payload
    if key is None:
        key = os.urandom(4)
    return hdr + key + xor_mask(payload, key)


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    return struct.pack("!H", code) + reason


def split_sizes(n, size):
    """Chunk lengths covering n bytes in pieces of `size` (at least one)."""
    if n == 0:
        return [0]
    return [min(size, n - i) for i in range(0, n, size)]


def wire_close_code_ok(code):
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def describe(ev):
    kind = ev[0]
    if kind == "message":
        op, data = ev[1], ev[2]
        pre = data[:24]
        return f"{OPNAMES.get(op, op)} message of {len(data)} bytes ({pre!r}{'...' if len(data) > 24 else ''})"
    if kind in ("ping", "pong"):
        return f"{kind} with {len(ev[1])}-byte payload {ev[1][:24]!r}"
    if kind == "close":
        return f"close frame with code {ev[1]} reason {ev[2][:40]!r}"
    if kind == "eof":
        return "TCP closed by the server" + (" (reset)" if len(ev) > 1 and ev[1] else "")
    if kind == "timeout":
        return "nothing (timeout)"
    if kind == "violation":
        return "server protocol violation: " + ev[1]
    return repr(ev)


# ---------------------------------------------------------------------------
# permessage-deflate negotiation

PMD = "permessage-deflate"
PMD_PARAMS = ("server_no_context_takeover", "client_no_context_takeover",
              "server_max_window_bits", "client_max_window_bits")


def split_outside_quotes(s, sep):
    out, cur, q, esc = [], [], False, False
    for ch in s:
        if esc:
            cur.append(ch)
            esc = False
        elif q and ch == "\\":
            esc = True
        elif ch == '"':
            q = not q
            cur.append(ch)
        elif ch == sep and not q:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def parse_extensions(values):
    """[(name, [(param, value-or-None), ...]), ...] from header values."""
    exts = []
    for v in values:
        for item in split_outside_quotes(v, ","):
            if not item.strip():
                continue
            parts = split_outside_quotes(item, ";")
            params = []
            for p in parts[1:]:
                p = p.strip()
                if "=" in p:
                    k, val = p.split("=", 1)
                    val = val.strip()
                    if len(val) >= 2 and val[0] == val[-1] == '"':
                        val = val[1:-1]
                    params.append((k.strip().lower(), val))
                else:
                    params.append((p.lower(), None))
            exts.append((parts[0].strip().lower(), params))
    return exts


def check_pmd_response(params, acceptable):
    """Validate an accepted permessage-deflate response against the offers
    the server may legitimately have accepted. Returns the negotiated dict
    or raises CaseFail."""
    neg = {}
    for k, v in params:
        if k in neg:
            raise CaseFail(f"response repeats parameter {k}")
        if k not in PMD_PARAMS:
            raise CaseFail(f"response has unknown parameter {k!r}")
        if k.endswith("context_takeover"):
            if v is not None:
                raise CaseFail(f"response gives {k} a value ({v!r})")
            neg[k] = True
        else:
            if v is None or not re.fullmatch(r"8|9|1[0-5]", v):
                raise CaseFail(f"response has invalid {k}={v!r}")
            neg[k] = int(v)
    why = []
    for off in acceptable:
        if off.get("server_no_context_takeover") and "server_no_context_takeover" not in neg:
            why.append("offer asked server_no_context_takeover, response lacks it")
            continue
        if "server_max_window_bits" in off:
            if neg.get("server_max_window_bits", 99) > off["server_max_window_bits"]:
                why.append(f"offer asked server_max_window_bits={off['server_max_window_bits']},"
                           f" response has {neg.get('server_max_window_bits')}")
                continue
        if "client_max_window_bits" in neg:
            if "client_max_window_bits" not in off:
                why.append("response has client_max_window_bits the offer did not allow")
                continue
            cv = off["client_max_window_bits"]
            if cv is not True and neg["client_max_window_bits"] > cv:
                why.append("response client_max_window_bits above the offered value")
                continue
        return neg
    raise CaseFail("permessage-deflate response matches no acceptable offer: " + "; ".join(why))


# ---------------------------------------------------------------------------
# a connection

class Conn:
    def __init__(self, suite, t):
        self.suite = suite
        self.t = t
        self.sock = None
        self.rbuf = bytearray()
        self.rpos = 0
        self.eof = False
        self.reset = False
        self.last_send = time.monotonic()
        self.send_broken = False
        self.pmd = None              # negotiated params dict or None
        self.deflater = None
        self.inflater = None
        self.frag_op = None          # server's fragmented message in progress
        self.frag_parts = []
        self.frag_compressed = False
        self.close_seen = False
        self.close_time = None
        self.compressed_echoes = 0
        self.messages_seen = 0

    # -- opening ------------------------------------------------------------
    def open(self, offer=None, headers=None, pmd="forbid", acceptable=(),
             pipeline=b"", expect_status=101, request=None):
        host, port = self.suite.host, self.suite.port
        self.sock = socket.create_connection((host, port), timeout=T_CONNECT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.suite.tls is not None:  # wss: handshake blocking, then as plain
            self.sock = self.suite.tls.wrap_socket(self.sock, server_hostname="localhost")
        self.sock.setblocking(False)
        key = base64.b64encode(os.urandom(16))
        if request is None:
            lines = [f"GET {self.suite.path} HTTP/1.1", f"Host: {host}:{port}",
                     "Upgrade: websocket", "Connection: Upgrade",
                     f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13"]
            if offer is not None:
                lines.append(f"Sec-WebSocket-Extensions: {offer}")
            lines += list(headers or [])
            request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        else:
            request = request.replace(b"@KEY@", key).replace(b"@HOST@", f"{host}:{port}".encode())
        if not self._write(request + pipeline):
            raise CaseFail("connection closed while sending the opening handshake")
        deadline = time.monotonic() + T_CONNECT
        while b"\r\n\r\n" not in self.rbuf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CaseFail("no complete HTTP response to the opening handshake")
            r, _, _ = self._select([self.sock], [], left)
            if r:
                self._recv_some()
            if self.eof:
                raise CaseFail(f"connection closed during the opening handshake (got {bytes(self.rbuf[:80])!r})")
        head, _, rest = bytes(self.rbuf).partition(b"\r\n\r\n")
        self.rbuf = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.1 (\d{3})", lines[0])
        if not m:
            raise CaseFail(f"bad status line {lines[0]!r}")
        status = int(m.group(1))
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs.setdefault(k.strip().lower(), []).append(v.strip())
        self.status, self.headers = status, hdrs
        if status != expect_status:
            if status == 400 and pmd in ("decline", "either") and offer is not None:
                want = "101 without the extension" if pmd == "decline" else "101"
                raise CaseFail(f"handshake refused with HTTP {status} for the offer {offer!r} "
                               f"(expected {want})", kind="handshake-rejected")
            raise CaseFail(f"expected HTTP {expect_status}, got {lines[0]!r}")
        if status != 101:
            return
        if "websocket" not in ",".join(hdrs.get("upgrade", [])).lower():
            raise CaseFail("101 without Upgrade: websocket")
        conn_tokens = [x.strip().lower() for v in hdrs.get("connection", []) for x in v.split(",")]
        if "upgrade" not in conn_tokens:
            raise CaseFail("101 without Connection: Upgrade")
        want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        if hdrs.get("sec-websocket-accept") != [want]:
            raise CaseFail(f"wrong Sec-WebSocket-Accept {hdrs.get('sec-websocket-accept')} (want {want})")
        if "sec-websocket-protocol" in hdrs:
            raise CaseFail("server chose a subprotocol nobody offered")
        exts = parse_extensions(hdrs.get("sec-websocket-extensions", []))
        self.ext_header = ", ".join(hdrs.get("sec-websocket-extensions", []))
        for name, _ in exts:
            if name != PMD:
                raise CaseFail(f"server accepted extension {name!r}")
        if len(exts) > 1:
            raise CaseFail(f"server accepted permessage-deflate {len(exts)} times")
        if exts:
            if pmd in ("forbid", "decline"):
                raise CaseFail(f"server accepted permessage-deflate ({self.ext_header}) but must not here"
                               + (f" (offer {offer!r})" if offer else " (not offered)"),
                               kind="accepted-invalid-offer" if pmd == "decline" else None)
            self.pmd = check_pmd_response(exts[0][1], acceptable)
        elif pmd == "require":
            raise CaseFail(f"server did not accept permessage-deflate (offer {offer!r})")

    # -- compression ---------------------------------------------------------
    def deflate(self, data, fresh=False):
        """RFC 7692 7.2.1 compression with the negotiated parameters. Returns
        None when we cannot honour them (client_max_window_bits=8)."""
        bits = self.pmd.get("client_max_window_bits", 15)
        if bits < 9:
            return None
        if self.deflater is None or fresh or self.pmd.get("client_no_context_takeover"):
            self.deflater = zlib.compressobj(6, zlib.DEFLATED, -bits, 8)
        out = self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(TAIL)
        return out[:-4]

    def inflate(self, data):
        bits = self.pmd.get("server_max_window_bits", 15)
        if self.inflater is None or self.pmd.get("server_no_context_takeover"):
            self.inflater = zlib.decompressobj(-bits)
        try:
            if bits < 15:
                # Fed a byte at a time, inflate checks every back-reference
                # against the window (within one call it may reach into its
                # own output), so a server exceeding its window is caught.
                data += TAIL
                out = b"".join(self.inflater.decompress(data[i:i + 1]) for i in range(len(data)))
            else:
                out = self.inflater.decompress(data + TAIL)
        except zlib.error as e:
            what = f"server_max_window_bits={bits}, " if bits < 15 else ""
            ctx = ("server_no_context_takeover" if self.pmd.get("server_no_context_takeover")
                   else "context takeover")
            raise CaseFail(f"cannot inflate the server's compressed message ({what}{ctx}): {e}")
        if self.inflater.eof:
            # A block with BFINAL set (RFC 7692 7.2.3.4): only our appended
            # tail may follow; the next message starts a new stream.
            if self.inflater.unused_data not in (b"", TAIL):
                raise CaseFail("server's compressed message has data after a final (BFINAL) block")
            self.inflater = None
        return out

    # -- sending -------------------------------------------------------------
    def send(self, data, chop=None, delay=0.0):
        """Write data (in pieces of `chop` bytes, pausing `delay` between),
        reading whatever arrives meanwhile so neither side can stall. A
        server that closed the connection just ends the sending."""
        data = memoryview(bytes(data))
        pieces = [data] if not chop else [data[i:i + chop] for i in range(0, len(data), chop)]
        for i, p in enumerate(pieces):
            if i and delay:
                time.sleep(delay)
            if not self._write(p):
                return False
        return True

    def _write(self, data):
        if self.send_broken:
            return False
        off = 0
        deadline = min(time.monotonic() + T_BIG, self.t.deadline)
        while off < len(data):
            left = deadline - time.monotonic()
            if left <= 0:
                raise CaseFail(f"sending stalled: server did not read ({off}/{len(data)} bytes)")
            r, w, _ = self._select([] if self.eof else [self.sock], [self.sock], left)
            if r:
                self._recv_some()
            if w:
                try:
                    off += self.sock.send(data[off:off + (1 << 20)])
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                    self.send_broken = True
                    return False
                except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
                except ssl.SSLError:
                    self.send_broken = True
                    return False
        self.last_send = time.monotonic()
        return True

    def _select(self, rd, wr, left):
        """select(), except that bytes TLS already decrypted count as readable
        (the socket itself would not say so)."""
        if rd and isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0:
            return rd, select.select([], wr, [], 0)[1], []
        return select.select(rd, wr, [], left)

    def _recv_some(self):
        try:
            d = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                ssl.SSLWantWriteError):
            return
        except (ConnectionResetError, ssl.SSLError):
            d = b""
            self.reset = True
        if not d:
            self.eof = True
        else:
            self.rbuf += d

    # -- receiving -----------------------------------------------------------
    def _parse_frame(self):
        buf, p = self.rbuf, self.rpos
        avail = len(buf) - p
        if avail < 2:
            return None
        b0, b1 = buf[p], buf[p + 1]
        n = b1 & 0x7F
        hl = 2
        minimal = True
        if n == 126:
            if avail < 4:
                return None
            n = struct.unpack_from("!H", buf, p + 2)[0]
            hl = 4
            minimal = n >= 126
        elif n == 127:
            if avail < 10:
                return None
            n = struct.unpack_from("!Q", buf, p + 2)[0]
            hl = 10
            minimal = n >= 65536
        masked = bool(b1 & 0x80)
        if masked:
            hl += 4
        if avail < hl + n:
            return None
        payload = bytes(buf[p + hl:p + hl + n])
        if masked:
            payload = xor_mask(payload, bytes(buf[p + hl - 4:p + hl]))
        self.rpos = p + hl + n
        if self.rpos > (1 << 22) or self.rpos == len(buf):
            del buf[:self.rpos]
            self.rpos = 0
        return (bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload, masked, minimal, n)

    def _event_from_buffer(self):
        while True:
            fr = self._parse_frame()
            if fr is None:
                return None
            fin, rsv, op, payload, masked, minimal, n = fr
            name = OPNAMES.get(op, f"opcode {op}")
            if self.close_seen:
                return ("violation", f"{name} frame after the server's close frame")
            if masked:
                return ("violation", f"server sent a masked {name} frame")
            if not minimal:
                return ("violation", f"server used a non-minimal length encoding for {n} bytes")
            if op not in OPNAMES:
                return ("violation", f"server sent reserved opcode {op}")
            if op >= 8:
                if rsv:
                    return ("violation", f"server set RSV bits {rsv} on a {name} frame")
                if n > 125 or not fin:
                    return ("violation", f"server sent an invalid {name} frame (len {n}, fin {fin})")
                if op == PING:
                    return ("ping", payload)
                if op == PONG:
                    return ("pong", payload)
                self.close_seen = True
                self.close_time = time.monotonic()
                if n == 1:
                    return ("violation", "server close frame with a 1-byte payload")
                if n == 0:
                    return ("close", None, b"")
                code = struct.unpack("!H", payload[:2])[0]
                reason = payload[2:]
                if not wire_close_code_ok(code):
                    return ("violation", f"server sent close code {code}, not allowed on the wire")
                try:
                    reason.decode("utf-8")
                except UnicodeDecodeError:
                    return ("violation", f"server close reason is not UTF-8: {reason!r}")
                return ("close", code, reason)
            # data frames
            if op == CONT:
                if self.frag_op is None:
                    return ("violation", "server sent a continuation frame with no message open")
                if rsv:
                    return ("violation", f"server set RSV bits {rsv} on a continuation frame")
            else:
                if self.frag_op is not None:
                    return ("violation", "server started a new message inside a fragmented one")
                # rsv is the 3-bit field: 4 = RSV1 ("compressed"), 2 = RSV2, 1 = RSV3
                if rsv & 3 or (rsv & 4 and self.pmd is None):
                    return ("violation", f"server set RSV bits {rsv:03b} (not negotiated)")
                self.frag_op = op
                self.frag_parts = []
                self.frag_compressed = bool(rsv & 4)
            self.frag_parts.append(payload)
            if not fin:
                continue
            data = b"".join(self.frag_parts)
            op, self.frag_op, self.frag_parts = self.frag_op, None, []
            if self.frag_compressed:
                data = self.inflate(data)
                self.compressed_echoes += 1
            self.messages_seen += 1
            if op == TEXT:
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError as e:
                    return ("violation", f"server sent a text message that is not UTF-8 ({e})")
            return ("message", op, data)

    def next_event(self, timeout):
        deadline = min(time.monotonic() + timeout, self.t.deadline)
        while True:
            ev = self._event_from_buffer()
            if ev is not None:
                return ev
            if self.eof:
                if len(self.rbuf) > self.rpos:
                    return ("violation", f"TCP closed inside a frame ({len(self.rbuf) - self.rpos} bytes left over)")
                return ("eof", self.reset)
            left = deadline - time.monotonic()
            if left <= 0:
                return ("timeout",)
            r, _, _ = self._select([self.sock], [], left)
            if r:
                self._recv_some()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


# ---------------------------------------------------------------------------
# the per-case context: what case functions use

class Ctx:
    def __init__(self, suite, case):
        self.suite = suite
        self.case = case
        self.c = None
        self.conns = []
        self.close_code = None
        self.close_after_ms = None
        self.notes = []
        self.deadline = time.monotonic() + T_CASE
        self.max_message = suite.max_message

    # connections
    def connect(self, offer=None, pmd=None, acceptable=None, **kw):
        """Open a connection. Without offer no extension may be accepted;
        with one, pmd is "require" (default), "either" or "decline"."""
        c = Conn(self.suite, self)
        self.conns.append(c)
        if offer is not None and pmd is None:
            pmd = "require"
        if acceptable is None and offer is not None:
            acceptable = [o for o in parse_offers(offer) if o is not None]
        c.open(offer=offer, pmd=pmd or "forbid", acceptable=acceptable or [], **kw)
        self.c = c
        return c

    def note(self, s):
        self.notes.append(s)

    # sending
    def send(self, data, chop=None, delay=0.0, c=None):
        return (c or self.c).send(data, chop=chop, delay=delay)

    def msg(self, op, payload, frag=None, compress=None, c=None, rsv_extra=0):
        """Frames for one message. frag: None (one frame), an int (frame
        payload size) or a list of frame payload sizes. compress: None means
        'if negotiated'."""
        c = c or self.c
        payload = bytes(payload)
        rsv = 0
        if compress is None:
            compress = c.pmd is not None
        if compress:
            z = c.deflate(payload)
            if z is not None:
                payload, rsv = z, 4
        if frag is None:
            sizes = [len(payload)]
        elif isinstance(frag, int):
            sizes = split_sizes(len(payload), frag)
        else:
            sizes = list(frag)
            assert sum(sizes) == len(payload), (sizes, len(payload))
        out, off = [], 0
        for i, s in enumerate(sizes):
            out.append(frame(op if i == 0 else CONT, payload[off:off + s],
                             fin=(i == len(sizes) - 1), rsv=(rsv | rsv_extra) if i == 0 else 0))
            off += s
        return b"".join(out)

    def send_msg(self, op, payload, frag=None, chop=None, delay=0.0, compress=None, c=None):
        return self.send(self.msg(op, payload, frag=frag, compress=compress, c=c),
                         chop=chop, delay=delay, c=c)

    # expecting
    def event(self, timeout=None, c=None):
        c = c or self.c
        ev = c.next_event(T_IO if timeout is None else timeout)
        if ev[0] == "violation":
            raise CaseFail(describe(ev))
        return ev

    def expect(self, *specs, timeout=None, c=None):
        """Expect exactly these events next: ("text"|"binary", bytes) or
        ("pong", bytes)."""
        for i, (kind, data) in enumerate(specs):
            ev = self.event(timeout, c=c)
            want_op = {"text": TEXT, "binary": BINARY}.get(kind)
            if want_op is not None:
                if ev[0] == "message" and ev[1] == want_op and ev[2] == data:
                    continue
                if ev[0] == "message" and ev[1] == want_op:
                    a, b = ev[2], data
                    k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
                    raise CaseFail(f"echo #{i + 1}: {kind} message of {len(a)} bytes differs from the "
                                   f"{len(b)} bytes sent (first difference at offset {k})")
                raise CaseFail(f"expected echo #{i + 1} ({kind}, {len(data)} bytes), got {describe(ev)}")
            if kind == "pong":
                if ev[0] == "pong" and ev[1] == data:
                    continue
                raise CaseFail(f"expected pong with payload {data[:24]!r} ({len(data)} bytes), got {describe(ev)}")
            raise AssertionError(kind)

    def expect_echo(self, op, payload, timeout=None, c=None):
        self.expect(("text" if op == TEXT else "binary", bytes(payload)), timeout=timeout, c=c)

    def _finish_close(self, c, code):
        """After the server's close frame: answer it, then the server must
        close TCP with nothing more sent."""
        c.send(frame(CLOSE, close_payload(code)))
        ev = c.next_event(T_EOF)
        if ev[0] == "violation":
            raise CaseFail(describe(ev))
        if ev[0] == "timeout":
            raise CaseFail(f"server did not close the TCP connection within {T_EOF:.1f}s after the close handshake")
        if ev[0] != "eof":
            raise CaseFail(f"after its close frame the server sent {describe(ev)}")

    def expect_close(self, codes, timeout=None, c=None, what=""):
        """The server must fail/close the connection with a code in codes,
        within T_FAST of our last write."""
        c = c or self.c
        codes = set(codes) if not isinstance(codes, int) else {codes}
        ev = self.event(T_FAST if timeout is None else timeout, c=c)
        return self._check_close(c, ev, codes, what)

    def _check_close(self, c, ev, codes, what="", late=False):
        if ev[0] == "close":
            self.close_code = ev[1]
            self.close_after_ms = round((c.close_time - c.last_send) * 1000, 1)
            if ev[1] not in codes:
                raise CaseFail(f"expected close {fmt_codes(codes)}{what}, got close {ev[1]} "
                               f"reason {ev[2][:60]!r}")
            self._finish_close(c, ev[1])
            return ev
        if ev[0] == "timeout":
            raise CaseFail(f"expected close {fmt_codes(codes)}{what}, but no close frame within "
                           f"{T_FAST:.1f}s")
        raise CaseFail(f"expected close {fmt_codes(codes)}{what}, got {describe(ev)}")

    def close_normal(self, code=1000, reason=b"", expect_codes=None, c=None):
        """Client-initiated closing handshake: the server echoes the code
        (an empty close gets an empty close or 1000 back)."""
        c = c or self.c
        c.send(frame(CLOSE, close_payload(code, reason)))
        if expect_codes is None:
            expect_codes = {None, 1000} if code is None else {code}
        ev = self.event(T_IO, c=c)
        if ev[0] != "close":
            raise CaseFail(f"expected the close reply {fmt_codes(expect_codes)}, got {describe(ev)}")
        self.close_code = ev[1]
        self.close_after_ms = round((c.close_time - c.last_send) * 1000, 1)
        if ev[1] not in expect_codes:
            raise CaseFail(f"expected close reply {fmt_codes(expect_codes)}, got {ev[1]}")
        ev = c.next_event(T_EOF)
        if ev[0] == "violation":
            raise CaseFail(describe(ev))
        if ev[0] == "timeout":
            raise CaseFail(f"server did not close the TCP connection within {T_EOF:.1f}s after the close handshake")
        if ev[0] != "eof":
            raise CaseFail(f"after its close frame the server sent {describe(ev)}")

    def fail_fast(self, codes, rest, expect_before=(), wait=None, c=None):
        """The last write contained the offending byte: the close must come
        within T_FAIL_FAST, before `rest` is sent. Otherwise `rest` is sent
        and a close with the right code counts as 'late-close'."""
        c = c or self.c
        codes = {codes} if isinstance(codes, int) else set(codes)
        if expect_before:
            self.expect(*expect_before)
        ev = self.event(T_FAIL_FAST if wait is None else wait, c=c)
        if ev[0] != "timeout":
            return self._check_close(c, ev, codes)
        t0 = time.monotonic()
        c.send(rest)
        ev = self.event(T_FAST, c=c)
        if ev[0] == "close" and ev[1] in codes:
            self.close_code = ev[1]
            self.close_after_ms = round((c.close_time - t0) * 1000, 1)
            try:
                self._finish_close(c, ev[1])
            except CaseFail as e:
                raise CaseFail(f"close {ev[1]} came only after the rest of the message was sent "
                               f"(not fail-fast), and then: {e}")
            raise CaseFail(f"close {ev[1]} came only after the rest of the message was sent, not "
                           f"within {T_FAIL_FAST:.1f}s of the offending byte (not fail-fast)",
                           kind="late-close")
        raise CaseFail(f"no close within {T_FAIL_FAST:.1f}s of the offending byte; after the rest "
                       f"of the message: {describe(ev)}")

    def cleanup(self):
        for c in self.conns:
            c.close()


def fmt_codes(codes):
    codes = sorted(codes, key=lambda x: -1 if x is None else x)
    return "/".join("(empty)" if x is None else str(x) for x in codes)


def parse_offers(offer):
    """The valid permessage-deflate offers in a header value, in order
    (None for an invalid offer), as dicts."""
    out = []
    for name, params in parse_extensions([offer]):
        if name != PMD:
            continue
        d, ok = {}, True
        for k, v in params:
            if k in d or k not in PMD_PARAMS:
                ok = False
            elif k.endswith("context_takeover"):
                ok = ok and v is None
                d[k] = True
            elif k == "server_max_window_bits":
                ok = ok and v is not None and re.fullmatch(r"8|9|1[0-5]", v) is not None
                d[k] = int(v) if ok else None
            else:
                if v is None:
                    d[k] = True
                else:
                    ok = ok and re.fullmatch(r"8|9|1[0-5]", v) is not None
                    d[k] = int(v) if ok else None
        out.append(d if ok else None)
    return out


# ---------------------------------------------------------------------------
# case registry

class Case:
    def __init__(self, cid, desc, fn):
        self.id, self.desc, self.fn = cid, desc, fn
        self.section = int(cid.split(".")[0])


CASES = []
_IDS = set()


def add(cid, desc, fn):
    assert cid not in _IDS, cid
    assert "\n" not in desc
    _IDS.add(cid)
    CASES.append(Case(cid, desc, fn))


def case(cid, desc):
    def deco(fn):
        add(cid, desc, fn)
        return fn
    return deco


SECTION_NAMES = {
    1: "Framing", 2: "Pings/Pongs", 3: "Reserved bits", 4: "Opcodes",
    5: "Fragmentation", 6: "UTF-8 handling", 7: "Close handling",
    9: "Limits/Performance", 10: "Misc", 12: "permessage-deflate payloads",
    13: "permessage-deflate negotiation and framing",
}

RNG_SEED = 6455


def rbytes(n, seed):
    return random.Random(seed).randbytes(n)


def text_payload(n, seed=0):
    """n bytes of printable ASCII."""
    r = random.Random(seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 *.-"
    if n <= 4096:
        return bytes(r.choice(alphabet) for _ in range(n))
    block = bytes(r.choice(alphabet) for _ in range(4093))  # odd period
    return (block * (n // len(block) + 1))[:n]


def bin_payload(n, seed=0):
    if n <= (1 << 20):
        return rbytes(n, seed)
    block = rbytes(1 << 16, seed)
    return (block * (n // len(block) + 1))[:n]


def payload_for(op, n, seed=0):
    return text_payload(n, seed) if op == TEXT else bin_payload(n, seed)


def echo_case(op, payload, frag=None, chop=None, delay=0.0, timeout=None):
    def fn(t):
        t.connect()
        t.send_msg(op, payload, frag=frag, chop=chop, delay=delay)
        t.expect_echo(op, payload, timeout=timeout)
        t.close_normal()
    return fn


def fail_case(sends, codes, before=(), chop=None, delay=0.0, offer=None):
    """Send the frames in `sends` (each written separately), expect the
    echoes/pongs in `before`, then a close with a code in codes."""
    def fn(t):
        t.connect(offer=offer) if offer else t.connect()
        for s in sends:
            t.send(s, chop=chop, delay=delay)
            if delay:
                time.sleep(delay)
        t.expect(*before)
        t.expect_close(codes)
    return fn


# ===========================================================================
# 1 Framing

def build_section1():
    sizes = [0, 125, 126, 127, 128, 65535, 65536]
    for sec, op, name in ((1, TEXT, "text"), (2, BINARY, "binary")):
        for i, n in enumerate(sizes, 1):
            add(f"1.{sec}.{i}", f"{name} message, payload length {n}",
                echo_case(op, payload_for(op, n, i)))
        add(f"1.{sec}.8", f"{name} message, payload length 65536, written in chops of 997 octets",
            echo_case(op, payload_for(op, 65536, 8), chop=997))

    def split_every(payload, positions_fn):
        def fn(t):
            t.connect()
            f = frame(TEXT, payload)
            for k in positions_fn(len(f)):
                t.send(f[:k])
                time.sleep(0.002)
                t.send(f[k:])
                t.expect_echo(TEXT, payload)
            t.close_normal()
        return fn

    add("1.3.1", "7-bit length frame (14 bytes) split into two writes at every byte boundary",
        split_every(b"Hello, libwsc!", lambda n: range(1, n)))
    add("1.3.2", "16-bit length frame (200 bytes) split into two writes at every header boundary and inside the payload",
        split_every(text_payload(200, 2), lambda n: list(range(1, 12)) + [n // 2, n - 1]))
    add("1.3.3", "64-bit length frame (70000 bytes) split into two writes at every header boundary and inside the payload",
        split_every(text_payload(70000, 3), lambda n: list(range(1, 18)) + [4096, 4097, n // 2, n - 1]))
    add("1.3.4", "7-bit length frame written one octet per write",
        echo_case(TEXT, b"Hello, libwsc! octet by octet", chop=1, delay=0.0005))
    add("1.3.5", "16-bit length frame (300 bytes) written one octet per write",
        echo_case(BINARY, bin_payload(300, 5), chop=1, delay=0.0002))

    @case("1.3.6", "64-bit length frame: header and first 100 payload octets one per write, then the rest")
    def _(t):
        t.connect()
        p = bin_payload(70000, 6)
        f = frame(BINARY, p)
        t.send(f[:114], chop=1, delay=0.0002)
        t.send(f[114:])
        t.expect_echo(BINARY, p)
        t.close_normal()

    @case("1.3.7", "100 text messages of 0..297 bytes in one write")
    def _(t):
        t.connect()
        msgs = [text_payload(i * 3, i) for i in range(100)]
        t.send(b"".join(frame(TEXT, m) for m in msgs))
        t.expect(*[("text", m) for m in msgs])
        t.close_normal()

    @case("1.3.8", "50 binary messages with lengths on every encoding boundary in one write")
    def _(t):
        t.connect()
        lens = [0, 1, 124, 125, 126, 127, 65535, 65536, 65537, 200000] * 5
        msgs = [bin_payload(n, i) for i, n in enumerate(lens)]
        t.send(b"".join(frame(BINARY, m) for m in msgs))
        t.expect(*[("binary", m) for m in msgs], timeout=T_BIG)
        t.close_normal()

    @case("1.3.9", "two frames sharing writes: first write ends inside the second frame's header")
    def _(t):
        t.connect()
        a, b = text_payload(300, 1), text_payload(70000, 2)
        fa, fb = frame(TEXT, a), frame(TEXT, b)
        t.send(fa + fb[:5])
        time.sleep(DELAY)
        t.send(fb[5:])
        t.expect(("text", a), ("text", b))
        t.close_normal()

    @case("1.3.10", "60 frames of random sizes written in random chunks of 1..64 octets")
    def _(t):
        t.connect()
        r = random.Random(1310)
        msgs = [(r.choice((TEXT, BINARY)), r.choice((0, 1, 5, 125, 126, 127, 300, 4000))) for _ in range(60)]
        msgs = [(op, payload_for(op, n, i)) for i, (op, n) in enumerate(msgs)]
        data = b"".join(frame(op, p) for op, p in msgs)
        off = 0
        while off < len(data):
            k = r.randint(1, 64)
            t.send(data[off:off + k])
            off += k
            if r.random() < 0.05:
                time.sleep(0.001)
        t.expect(*[("text" if op == TEXT else "binary", p) for op, p in msgs])
        t.close_normal()

    @case("1.3.11", "binary messages of every length 0..300 on one connection")
    def _(t):
        t.connect()
        for n in range(301):
            p = bin_payload(n, n)
            t.send(frame(BINARY, p))
            t.expect_echo(BINARY, p)
        t.close_normal()

    @case("1.3.12", "text messages of lengths 65530..65540 (16/64-bit length boundary)")
    def _(t):
        t.connect()
        for n in range(65530, 65541):
            p = text_payload(n, n)
            t.send(frame(TEXT, p))
            t.expect_echo(TEXT, p)
        t.close_normal()

    @case("1.3.13", "text message of 1 MiB + 1 byte in a single frame")
    def _(t):
        t.connect()
        p = text_payload((1 << 20) + 1, 13)
        t.send(frame(TEXT, p))
        t.expect_echo(TEXT, p, timeout=T_BIG)
        t.close_normal()

    # unmasked frames
    unmasked = [
        ("1.4.1", "unmasked text frame", [frame(TEXT, b"Hello", mask=False)], ()),
        ("1.4.2", "unmasked binary frame", [frame(BINARY, b"\x00\x01\x02", mask=False)], ()),
        ("1.4.3", "unmasked empty text frame", [frame(TEXT, b"", mask=False)], ()),
        ("1.4.4", "unmasked ping", [frame(PING, b"ping", mask=False)], ()),
        ("1.4.5", "unmasked pong", [frame(PONG, b"pong", mask=False)], ()),
        ("1.4.6", "unmasked close 1000", [frame(CLOSE, close_payload(1000), mask=False)], ()),
        ("1.4.7", "valid text, then an unmasked text frame",
         [frame(TEXT, b"first"), frame(TEXT, b"second", mask=False)], (("text", b"first"),)),
        ("1.4.8", "masked first fragment, unmasked continuation",
         [frame(TEXT, b"frag", fin=False), frame(CONT, b"ment", mask=False)], ()),
        ("1.4.9", "unmasked 16-bit length binary frame (1000 bytes)",
         [frame(BINARY, bin_payload(1000), mask=False)], ()),
    ]
    for cid, desc, sends, before in unmasked:
        add(cid, desc + " -> 1002", fail_case(sends, {1002}, before))


# ===========================================================================
# 2 Pings/Pongs

def build_section2():
    def ping_echo(payload, chop=None, delay=0.0):
        def fn(t):
            t.connect()
            t.send(frame(PING, payload), chop=chop, delay=delay)
            t.expect(("pong", payload))
            t.close_normal()
        return fn

    add("2.1", "ping without payload -> pong without payload", ping_echo(b""))
    add("2.2", "ping with small text payload -> identical pong", ping_echo(b"Hello, world!"))
    add("2.3", "ping with small binary (non UTF-8) payload -> identical pong",
        ping_echo(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"))
    add("2.4", "ping with 125-byte binary payload -> identical pong", ping_echo(bytes([0xFE]) * 125))
    add("2.5", "ping with 126-byte payload -> 1002",
        fail_case([frame(PING, bytes([0xFE]) * 126)], {1002}))
    add("2.6", "ping with 125-byte payload written one octet per write -> identical pong",
        ping_echo(bytes(range(125)), chop=1, delay=0.0005))

    @case("2.7", "unsolicited pong without payload is ignored")
    def _(t):
        t.connect()
        t.send(frame(PONG, b""))
        t.send(frame(PING, b"marker"))
        t.expect(("pong", b"marker"))
        t.close_normal()

    @case("2.8", "unsolicited pong with payload is ignored")
    def _(t):
        t.connect()
        t.send(frame(PONG, b"unsolicited pong payload"))
        t.send(frame(TEXT, b"still open"))
        t.expect(("text", b"still open"))
        t.close_normal()

    @case("2.9", "unsolicited pong with payload, then ping -> only the ping's pong")
    def _(t):
        t.connect()
        t.send(frame(PONG, b"unsolicited pong payload"))
        t.send(frame(PING, b"ping payload"))
        t.expect(("pong", b"ping payload"))
        t.close_normal()

    def many_pings(chop, delay):
        def fn(t):
            t.connect()
            pays = [f"payload-{i}".encode() for i in range(10)]
            data = b"".join(frame(PING, p) for p in pays)
            t.send(data, chop=chop, delay=delay)
            # RFC 6455 5.5.3: a pong may answer only the most recent ping.
            got, want = [], list(pays)
            while True:
                ev = t.event()
                if ev[0] != "pong":
                    raise CaseFail(f"expected pongs, got {describe(ev)}")
                if ev[1] not in want:
                    raise CaseFail(f"pong {ev[1]!r} answers no outstanding ping (in order)")
                want = want[want.index(ev[1]) + 1:]
                got.append(ev[1])
                if ev[1] == pays[-1]:
                    break
            if len(got) < len(pays):
                t.note(f"{len(got)} pongs for 10 pings (allowed)")
            t.close_normal()
        return fn

    add("2.10", "10 pings with payload -> pongs in order ending with the last ping's", many_pings(None, 0))
    add("2.11", "10 pings with payload written one octet per write -> pongs in order",
        many_pings(1, 0.0002))
    add("2.12", "pong with 126-byte payload -> 1002",
        fail_case([frame(PONG, b"x" * 126)], {1002}))
    add("2.13", "ping announcing a 64-bit payload length -> 1002",
        fail_case([frame(PING, b"x" * 70000)], {1002}))

    @case("2.14", "text, ping, binary, ping interleaved -> echo, pong, echo, pong in order")
    def _(t):
        t.connect()
        t.send(frame(TEXT, b"one") + frame(PING, b"p1") + frame(BINARY, b"\x02") + frame(PING, b"p2"))
        t.expect(("text", b"one"), ("pong", b"p1"), ("binary", b"\x02"), ("pong", b"p2"))
        t.close_normal()

    @case("2.15", "100 pings with distinct 125-byte payloads in one write -> pongs in order")
    def _(t):
        t.connect()
        pays = [bytes([i]) * 125 for i in range(100)]
        t.send(b"".join(frame(PING, p) for p in pays))
        want = list(pays)
        while True:
            ev = t.event()
            if ev[0] != "pong" or ev[1] not in want:
                raise CaseFail(f"expected pongs in order, got {describe(ev)}")
            want = want[want.index(ev[1]) + 1:]
            if not want:
                break
        t.close_normal()

    @case("2.16", "unsolicited pong with 125-byte payload during a fragmented message is ignored")
    def _(t):
        t.connect()
        t.send(frame(TEXT, b"frag", fin=False) + frame(PONG, b"z" * 125) + frame(CONT, b"ment"))
        t.expect(("text", b"fragment"))
        t.close_normal()


# ===========================================================================
# 3 Reserved bits

def build_section3():
    add("3.1", "text message with RSV = 1 -> 1002", fail_case([frame(TEXT, b"Hello", rsv=1)], {1002}))
    add("3.2", "small text, then text with RSV = 2, then ping -> echo, 1002, no pong",
        fail_case([frame(TEXT, b"Hello"), frame(TEXT, b"Hello", rsv=2), frame(PING, b"")],
                  {1002}, before=(("text", b"Hello"),)))
    add("3.3", "small text, text with RSV = 3, ping, frame-wise with pauses -> echo, 1002",
        fail_case([frame(TEXT, b"Hello"), frame(TEXT, b"Hello", rsv=3), frame(PING, b"")],
                  {1002}, before=(("text", b"Hello"),), delay=DELAY))
    add("3.4", "small text, text with RSV = 4, ping, octet-wise -> echo, 1002",
        fail_case([frame(TEXT, b"Hello"), frame(TEXT, b"Hello", rsv=4), frame(PING, b"")],
                  {1002}, before=(("text", b"Hello"),), chop=1, delay=0.0003))
    add("3.5", "binary message with RSV = 5 -> 1002",
        fail_case([frame(BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5)], {1002}))
    add("3.6", "ping with RSV = 6 -> 1002", fail_case([frame(PING, b"Hello", rsv=6)], {1002}))
    add("3.7", "close with RSV = 7 -> 1002", fail_case([frame(CLOSE, close_payload(1000), rsv=7)], {1002}))

    kinds = [
        (8, "text frame", lambda r: [frame(TEXT, b"reserved", rsv=r)]),
        (9, "binary frame", lambda r: [frame(BINARY, b"\x01\x02", rsv=r)]),
        (10, "ping", lambda r: [frame(PING, b"p", rsv=r)]),
        (11, "pong", lambda r: [frame(PONG, b"p", rsv=r)]),
        (12, "close", lambda r: [frame(CLOSE, close_payload(1000), rsv=r)]),
        (13, "continuation frame", lambda r: [frame(TEXT, b"frag", fin=False), frame(CONT, b"ment", rsv=r)]),
    ]
    for sub, name, mk in kinds:
        for r in range(1, 8):
            add(f"3.{sub}.{r}", f"{name} with RSV bits {r:03b} (no extension) -> 1002",
                fail_case(mk(r), {1002}))


# ===========================================================================
# 4 Opcodes

def build_section4():
    for grp, ops in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
        kind = "non-control" if grp == 1 else "control"
        o = ops
        add(f"4.{grp}.1", f"frame with reserved {kind} opcode {o[0]} -> 1002",
            fail_case([frame(o[0], b"")], {1002}))
        add(f"4.{grp}.2", f"frame with reserved {kind} opcode {o[1]} and payload -> 1002",
            fail_case([frame(o[1], b"reserved opcode payload")], {1002}))
        add(f"4.{grp}.3", f"small text, reserved {kind} opcode {o[2]}, ping -> echo, 1002, no pong",
            fail_case([frame(TEXT, b"Hello"), frame(o[2], b""), frame(PING, b"")], {1002},
                      before=(("text", b"Hello"),)))
        add(f"4.{grp}.4", f"small text, reserved {kind} opcode {o[3]} with payload, ping -> echo, 1002",
            fail_case([frame(TEXT, b"Hello"), frame(o[3], b"reserved opcode payload"), frame(PING, b"")],
                      {1002}, before=(("text", b"Hello"),)))
        add(f"4.{grp}.5", f"small text, reserved {kind} opcode {o[4]} with payload, ping, octet-wise -> echo, 1002",
            fail_case([frame(TEXT, b"Hello"), frame(o[4], b"reserved opcode payload"), frame(PING, b"")],
                      {1002}, before=(("text", b"Hello"),), chop=1, delay=0.0003))
    for i, op in enumerate((3, 4, 5, 6, 7, 11, 12, 13, 14, 15), 1):
        add(f"4.3.{i}", f"reserved opcode {op} inside a fragmented text message -> 1002",
            fail_case([frame(TEXT, b"frag", fin=False), frame(op, b"x"), frame(CONT, b"ment")], {1002}))
    for i, op in enumerate((3, 4, 5, 6, 7, 11, 12, 13, 14, 15), 1):
        add(f"4.4.{i}", f"reserved opcode {op} with FIN = 0 -> 1002",
            fail_case([frame(op, b"x", fin=False)], {1002}))


# ===========================================================================
# 5 Fragmentation

def build_section5():
    add("5.1", "ping fragmented into 2 fragments -> 1002",
        fail_case([frame(PING, b"fragment1", fin=False), frame(CONT, b"fragment2")], {1002}))
    add("5.2", "pong fragmented into 2 fragments -> 1002",
        fail_case([frame(PONG, b"fragment1", fin=False), frame(CONT, b"fragment2")], {1002}))
    two = frame(TEXT, b"fragment1", fin=False) + frame(CONT, b"fragment2")
    add("5.3", "text message in 2 fragments", echo_case(TEXT, b"fragment1fragment2", frag=[9, 9]))
    add("5.4", "text message in 2 fragments, written frame-wise with pauses",
        echo_case(TEXT, b"fragment1fragment2", frag=[9, 9], chop=len(two) // 2, delay=DELAY))
    add("5.5", "text message in 2 fragments, written octet-wise",
        echo_case(TEXT, b"fragment1fragment2", frag=[9, 9], chop=1, delay=0.0003))

    def ping_between(chop, delay):
        def fn(t):
            t.connect()
            data = frame(TEXT, b"fragment1", fin=False) + frame(PING, b"pongme!") + frame(CONT, b"fragment2")
            t.send(data, chop=chop, delay=delay)
            t.expect(("pong", b"pongme!"), ("text", b"fragment1fragment2"))
            t.close_normal()
        return fn

    add("5.6", "text in 2 fragments with a ping in between -> pong, then echo", ping_between(None, 0))
    add("5.7", "text in 2 fragments with a ping in between, frame-wise with pauses", ping_between(17, DELAY))
    add("5.8", "text in 2 fragments with a ping in between, octet-wise", ping_between(1, 0.0003))
    orphan_fin = frame(CONT, b"fragment1") + frame(TEXT, b"fragment2")
    add("5.9", "continuation (FIN = 1) with nothing to continue, then text -> 1002",
        fail_case([orphan_fin], {1002}))
    add("5.10", "continuation (FIN = 1) with nothing to continue, then text, frame-wise",
        fail_case([frame(CONT, b"fragment1"), frame(TEXT, b"fragment2")], {1002}, delay=DELAY))
    add("5.11", "continuation (FIN = 1) with nothing to continue, then text, octet-wise",
        fail_case([orphan_fin], {1002}, chop=1, delay=0.0003))
    orphan = frame(CONT, b"fragment1", fin=False) + frame(TEXT, b"fragment2")
    add("5.12", "continuation (FIN = 0) with nothing to continue, then text -> 1002",
        fail_case([orphan], {1002}))
    add("5.13", "continuation (FIN = 0) with nothing to continue, then text, frame-wise",
        fail_case([frame(CONT, b"fragment1", fin=False), frame(TEXT, b"fragment2")], {1002}, delay=DELAY))
    add("5.14", "continuation (FIN = 0) with nothing to continue, then text, octet-wise",
        fail_case([orphan], {1002}, chop=1, delay=0.0003))
    add("5.15", "text in 2 fragments, then orphan continuation (FIN = 0), then text, one write -> echo, 1002",
        fail_case([frame(TEXT, b"fragment1", fin=False) + frame(CONT, b"fragment2") +
                   frame(CONT, b"fragment3", fin=False) + frame(TEXT, b"fragment4")],
                  {1002}, before=(("text", b"fragment1fragment2"),)))
    add("5.16", "2x (orphan continuation FIN = 0, then text in 2 fragments) -> 1002",
        fail_case([(frame(CONT, b"fragment1", fin=False) + frame(TEXT, b"fragment2", fin=False) +
                    frame(CONT, b"fragment3")) * 2], {1002}))
    add("5.17", "2x (orphan continuation FIN = 1, then text in 2 fragments) -> 1002",
        fail_case([(frame(CONT, b"fragment1") + frame(TEXT, b"fragment2", fin=False) +
                    frame(CONT, b"fragment3")) * 2], {1002}))
    add("5.18", "text in 2 fragments, both with opcode text -> 1002",
        fail_case([frame(TEXT, b"fragment1", fin=False) + frame(TEXT, b"fragment2")], {1002}))

    def five_frags(chop, delay):
        def fn(t):
            t.connect()
            parts = [frame(TEXT, b"fragment1", fin=False), frame(CONT, b"fragment2", fin=False),
                     frame(PING, b"pongme 1!"), frame(CONT, b"fragment3", fin=False),
                     frame(PING, b"pongme 2!"), frame(CONT, b"fragment4", fin=False),
                     frame(CONT, b"fragment5")]
            for p in parts:
                t.send(p, chop=chop, delay=delay)
                time.sleep(0.01)
            t.expect(("pong", b"pongme 1!"), ("pong", b"pongme 2!"),
                     ("text", b"fragment1fragment2fragment3fragment4fragment5"))
            t.close_normal()
        return fn

    add("5.19", "text in 5 fragments with 2 pings in between, with pauses", five_frags(None, 0))
    add("5.20", "text in 5 fragments with 2 pings in between, octet-wise with pauses", five_frags(1, 0.0003))

    # extras
    add("5.21", "text message as 4 fragments: empty, empty, 'Hello', empty",
        echo_case(TEXT, b"Hello", frag=[0, 0, 5, 0]))
    add("5.22", "binary message as 4 empty fragments", echo_case(BINARY, b"", frag=[0, 0, 0, 0]))
    add("5.23", "text message of 1000 one-byte fragments", echo_case(TEXT, text_payload(1000, 23), frag=1))
    add("5.24", "binary message of 300 fragments of 1..300 bytes",
        echo_case(BINARY, bin_payload(45150, 24), frag=list(range(1, 301))))
    add("5.25", "binary message in fragments of 65536 bytes (1 MiB total)",
        echo_case(BINARY, bin_payload(1 << 20, 25), frag=65536, timeout=T_BIG))
    add("5.26", "text fragment boundaries of 125/126/65535/65536 bytes",
        echo_case(TEXT, text_payload(125 + 126 + 65535 + 65536, 26), frag=[125, 126, 65535, 65536]))
    add("5.27", "binary message inside a fragmented text message -> 1002",
        fail_case([frame(TEXT, b"frag", fin=False), frame(BINARY, b"x")], {1002}))
    add("5.28", "text message inside a fragmented binary message -> 1002",
        fail_case([frame(BINARY, b"frag", fin=False), frame(TEXT, b"x")], {1002}))
    add("5.29", "close with FIN = 0 -> 1002",
        fail_case([frame(CLOSE, close_payload(1000), fin=False)], {1002}))
    add("5.30", "close with FIN = 0 inside a fragmented message -> 1002",
        fail_case([frame(TEXT, b"frag", fin=False), frame(CLOSE, close_payload(1000), fin=False)], {1002}))
    add("5.31", "ping with FIN = 0 followed by a ping continuation inside a fragmented message -> 1002",
        fail_case([frame(TEXT, b"frag", fin=False), frame(PING, b"a", fin=False), frame(CONT, b"b")], {1002}))

    @case("5.32", "two fragmented messages back to back, text then binary, with pings between all frames")
    def _(t):
        t.connect()
        data = (frame(TEXT, b"ab", fin=False) + frame(PING, b"1") + frame(CONT, b"cd", fin=False) +
                frame(PING, b"2") + frame(CONT, b"ef") + frame(BINARY, b"\x00", fin=False) +
                frame(PING, b"3") + frame(CONT, b"\xff"))
        t.send(data)
        t.expect(("pong", b"1"), ("pong", b"2"), ("text", b"abcdef"), ("pong", b"3"),
                 ("binary", b"\x00\xff"))
        t.close_normal()

    @case("5.33", "fragmented messages with random fragment sizes, written in random chunks")
    def _(t):
        t.connect()
        r = random.Random(533)
        msgs, data = [], b""
        for i in range(30):
            op = r.choice((TEXT, BINARY))
            p = payload_for(op, r.randint(0, 3000), i)
            sizes, left = [], len(p)
            while left > 0:
                s = min(left, r.choice((0, 1, 7, 125, 126, 500)))
                sizes.append(s)
                left -= s
            sizes.append(0) if not sizes or r.random() < 0.3 else None
            msgs.append((op, p))
            data += t.msg(op, p, frag=sizes)
        off = 0
        while off < len(data):
            k = r.randint(1, 700)
            t.send(data[off:off + k])
            off += k
        t.expect(*[("text" if op == TEXT else "binary", p) for op, p in msgs])
        t.close_normal()


# ===========================================================================
# 6 UTF-8

UTF8_GROUPS = [
    (5, "valid UTF-8 samples", [
        "κόσμε".encode(), b"\xf0\x9f\x98\x80", "こんにちは世界".encode(),
        "Hello-µ@ßöäüàá-UTF-8!!".encode(), "\U0010ffff\U00010000\u0800\u0080".encode()]),
    (7, "first possible sequence of a certain length",
     [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"]),
    (8, "first possible sequence of 5/6 bytes (invalid)",
     [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"]),
    (9, "last possible sequence of a certain length",
     [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"]),
    (10, "last possible sequence beyond U+10FFFF (invalid)",
     [b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf"]),
    (11, "other boundary conditions",
     [b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80"]),
    (12, "unexpected continuation bytes",
     [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf", b"\x80\xbf\x80\xbf\x80",
      b"\x80\xbf\x80\xbf\x80\xbf", bytes(range(0x80, 0xC0))]),
    (13, "lonely start characters",
     [b"".join(bytes([c]) + b" " for c in range(0xC0, 0xE0)),
      b"".join(bytes([c]) + b" " for c in range(0xE0, 0xF0)),
      b"".join(bytes([c]) + b" " for c in range(0xF0, 0xF8)),
      b"".join(bytes([c]) + b" " for c in range(0xF8, 0xFC)),
      b"\xfc \xfd "]),
    (14, "sequences with the last continuation byte missing",
     [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80",
      b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]),
    (15, "concatenation of incomplete sequences",
     [b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf"
      b"\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf"]),
    (16, "impossible bytes", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"]),
    (17, "overlong ASCII character",
     [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf",
      b"\xfc\x80\x80\x80\x80\xaf"]),
    (18, "maximum overlong sequences",
     [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x87\xbf\xbf\xbf",
      b"\xfc\x83\xbf\xbf\xbf\xbf"]),
    (19, "overlong NUL",
     [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80",
      b"\xfc\x80\x80\x80\x80\x80"]),
    (20, "single UTF-16 surrogates",
     [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf", b"\xed\xb0\x80",
      b"\xed\xbe\x80", b"\xed\xbf\xbf"]),
    (21, "paired UTF-16 surrogates",
     [b"\xed\xa0\x80\xed\xb0\x80", b"\xed\xa0\x80\xed\xbf\xbf", b"\xed\xad\xbf\xed\xb0\x80",
      b"\xed\xad\xbf\xed\xbf\xbf", b"\xed\xae\x80\xed\xb0\x80", b"\xed\xae\x80\xed\xbf\xbf",
      b"\xed\xaf\xbf\xed\xb0\x80", b"\xed\xaf\xbf\xed\xbf\xbf"]),
    (22, "noncharacter code points (valid UTF-8)",
     [chr(c).encode() for c in (0xFFFE, 0xFFFF)] +
     [chr(p * 0x10000 + c).encode() for p in range(1, 17) for c in (0xFFFE, 0xFFFF)] +
     [chr(c).encode() for c in range(0xFDD0, 0xFDF0, 4)]),
    (23, "Unicode specials (valid UTF-8)",
     [chr(c).encode() for c in range(0xFFF9, 0xFFFE)] + [b"\xef\xbf\xbd" * 3]),
]


def utf8_valid(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def utf8_case(payload, frag=None, chop=None, delay=0.0):
    ok = utf8_valid(payload)

    def fn(t):
        t.connect()
        t.send(t.msg(TEXT, payload, frag=frag), chop=chop, delay=delay)
        if ok:
            t.expect_echo(TEXT, payload)
            t.close_normal()
        else:
            t.expect_close({1007})
    return fn


def hexs(b, n=12):
    s = b[:n].hex(" ")
    return s + (" ..." if len(b) > n else "")


def build_section6():
    add("6.1.1", "empty text frame", echo_case(TEXT, b""))
    add("6.1.2", "fragmented text message, 3 empty fragments", echo_case(TEXT, b"", frag=[0, 0, 0]))
    add("6.1.3", "fragmented text message, empty + 'middle' + empty", echo_case(TEXT, b"middle", frag=[0, 6, 0]))
    hello = "Hello-µ@ßöäüàá-UTF-8!!".encode()
    add("6.2.1", "valid UTF-8 text in one fragment", echo_case(TEXT, hello))
    add("6.2.2", "valid UTF-8 text in 2 fragments split on a code point boundary",
        echo_case(TEXT, hello, frag=[7, len(hello) - 7]))
    add("6.2.3", "valid UTF-8 text in 1-octet fragments (splitting code points)", echo_case(TEXT, hello, frag=1))
    kosme = "κόσμε".encode()
    add("6.2.4", "valid UTF-8 'κόσμε' x 10 in 1-octet fragments", echo_case(TEXT, kosme * 10, frag=1))
    bad = kosme + b"\xed\xa0\x80" + b"edited"
    add("6.3.1", "invalid UTF-8 text (surrogate) in one fragment -> 1007", utf8_case(bad))
    add("6.3.2", "invalid UTF-8 text (surrogate) in 1-octet fragments -> 1007", utf8_case(bad, frag=1))

    # 6.4 fail fast
    ff = [
        # (desc, part1, part2 (completes the invalid sequence), part3, mode)
        ("3 fragments: valid, U+110000 (f4 90 80 80), rest", kosme, b"\xf4\x90\x80\x80", b"edited", "frames"),
        ("3 fragments: 'κόσμε' + f4, 90, 80 80 + rest", kosme + b"\xf4", b"\x90", b"\x80\x80edited", "frames"),
        ("1 frame in 3 writes: valid, U+110000, rest", kosme, b"\xf4\x90\x80\x80", b"edited", "chops"),
        ("1 frame in 3 writes: 'κόσμε' + f4, 90, rest", kosme + b"\xf4", b"\x90", b"\x80\x80edited", "chops"),
        ("3 fragments: valid, overlong c0 af, rest", kosme, b"\xc0\xaf", b"edited", "frames"),
        ("3 fragments: valid, surrogate ed a0 80, rest", kosme, b"\xed\xa0\x80", b"edited", "frames"),
        ("3 fragments: valid, lone continuation 80, rest", kosme, b"\x80", b"edited", "frames"),
        ("3 fragments: valid, impossible byte fe, rest", kosme, b"\xfe", b"edited", "frames"),
        ("1 frame in 3 writes: valid, overlong e0 80 af, rest", kosme, b"\xe0\x80\xaf", b"edited", "chops"),
        ("1 frame in 3 writes: valid, surrogate ed bf bf, rest", kosme, b"\xed\xbf\xbf", b"edited", "chops"),
        ("64 KiB frame: 100 valid bytes, then f8, rest withheld", b"a" * 100, b"\xf8", b"b" * (65536 - 101), "chops"),
        ("1 MiB frame: 5000 valid bytes, then surrogate, rest withheld", b"a" * 5000, b"\xed\xa0\x80",
         b"b" * ((1 << 20) - 5003), "chops"),
        ("fragments: 4000 valid bytes, then 1-byte fragment c1, rest", b"x" * 4000, b"\xc1", b"y" * 10, "frames"),
        ("fragments: valid 'κόσμε' + e0, 1-octet fragment 9f (overlong), rest", kosme + b"\xe0", b"\x9f",
         b"\xbfedited", "frames"),
    ]
    for i, (desc, p1, p2, p3, mode) in enumerate(ff, 1):
        def fn(t, p1=p1, p2=p2, p3=p3, mode=mode):
            t.connect()
            if mode == "frames":
                t.send(frame(TEXT, p1, fin=False))
                time.sleep(DELAY)
                t.send(frame(CONT, p2, fin=False))
                rest = frame(CONT, p3)
            else:
                whole = frame(TEXT, p1 + p2 + p3)
                hl = len(whole) - len(p1 + p2 + p3)
                t.send(whole[:hl + len(p1)])
                time.sleep(DELAY)
                t.send(whole[hl + len(p1):hl + len(p1) + len(p2)])
                rest = whole[hl + len(p1) + len(p2):]
            t.fail_fast({1007}, rest)
        add(f"6.4.{i}", f"fail fast on invalid UTF-8, {desc} -> 1007 before the rest is sent", fn)

    # 6.5 - 6.23: sequences in one frame
    kos_prefix = kosme
    seqs = []
    for grp, name, items in UTF8_GROUPS:
        for j, s in enumerate(items, 1):
            cid = f"6.{grp}.{j}"
            v = "valid" if utf8_valid(s) else "invalid"
            seqs.append((cid, s, name))
            add(cid, f"{name}: {hexs(s)} ({v}) in one frame" + (" -> 1007" if v == "invalid" else ""),
                utf8_case(s))
    for j in range(1, len(kos_prefix) + 1):
        s = kos_prefix[:j]
        v = "valid" if utf8_valid(s) else "invalid"
        add(f"6.6.{j}", f"prefix of 'κόσμε' of {j} bytes ({v})" + (" -> 1007" if v == "invalid" else ""),
            utf8_case(s))
        seqs.append((f"6.6.{j}", s, "prefix of 'κόσμε'"))
    seqs.sort(key=lambda x: [int(p) for p in x[0].split(".")])
    # 6.24: each sequence between 'a' and 'z', 1-octet fragments
    for k, (cid, s, name) in enumerate(seqs, 1):
        p = b"a" + s + b"z"
        v = "valid" if utf8_valid(p) else "invalid"
        add(f"6.24.{k}", f"'a' + sequence of {cid} + 'z' ({v}) in 1-octet fragments"
            + (" -> 1007" if v == "invalid" else ""), utf8_case(p, frag=1))
    # 6.25: each sequence after 'κόσμε', one frame written one octet per write
    for k, (cid, s, name) in enumerate(seqs, 1):
        p = kosme + s
        v = "valid" if utf8_valid(p) else "invalid"
        add(f"6.25.{k}", f"'κόσμε' + sequence of {cid} ({v}) in one frame written octet-wise"
            + (" -> 1007" if v == "invalid" else ""), utf8_case(p, chop=1))

    @case("6.26.1", "every code point U+0000..U+10FFFF except surrogates, in 1 MiB-ish text fragments")
    def _(t):
        t.connect()
        s = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF).encode()
        # 4,382,488 bytes: split at odd sizes so code points straddle frames
        parts = split_sizes(len(s), 1048573)
        t.send(t.msg(TEXT, s, frag=parts))
        t.expect_echo(TEXT, s, timeout=T_BIG)
        t.close_normal()


# ===========================================================================
# 7 Close handling

def build_section7():
    @case("7.1.1", "echo a text message, then close normally")
    def _(t):
        t.connect()
        t.send(frame(TEXT, b"Hello World!"))
        t.expect(("text", b"Hello World!"))
        t.close_normal()

    @case("7.1.2", "close, then close again: exactly one close back")
    def _(t):
        t.connect()
        t.send(frame(CLOSE, close_payload(1000)) + frame(CLOSE, close_payload(1000)))
        ev = t.event()
        if ev[0] != "close" or ev[1] != 1000:
            raise CaseFail(f"expected close 1000, got {describe(ev)}")
        t.close_code = 1000
        ev = t.c.next_event(T_EOF)
        if ev[0] != "eof":
            raise CaseFail(f"after the close, expected TCP close, got {describe(ev)}")

    def after_close(extra, desc, pre=b""):
        def fn(t):
            t.connect()
            t.send(pre + frame(CLOSE, close_payload(1000)) + extra)
            ev = t.event()
            if ev[0] != "close" or ev[1] != 1000:
                raise CaseFail(f"expected close 1000 and nothing else, got {describe(ev)}")
            t.close_code = 1000
            t.close_after_ms = round((t.c.close_time - t.c.last_send) * 1000, 1)
            ev = t.c.next_event(T_EOF)
            if ev[0] != "eof":
                raise CaseFail(f"after the close, expected TCP close, got {describe(ev)} ({desc})")
        return fn

    add("7.1.3", "close, then ping: no pong", after_close(frame(PING, b"ping"), "pong after close"))
    add("7.1.4", "close, then text: no echo", after_close(frame(TEXT, b"after close"), "echo after close"))
    add("7.1.5", "first fragment, close, then last fragment: no echo",
        after_close(frame(CONT, b"ment"), "echo after close", pre=frame(TEXT, b"frag", fin=False)))

    @case("7.1.6", "256 KiB text message, then close, then ping: echo, close, no pong")
    def _(t):
        t.connect()
        p = text_payload(256 * 1024, 716)
        t.send(frame(TEXT, p) + frame(CLOSE, close_payload(1000)) + frame(PING, b"x"))
        t.expect(("text", p), timeout=T_BIG)
        ev = t.event()
        if ev[0] != "close" or ev[1] != 1000:
            raise CaseFail(f"expected close 1000, got {describe(ev)}")
        t.close_code = 1000
        ev = t.c.next_event(T_EOF)
        if ev[0] != "eof":
            raise CaseFail(f"expected TCP close, got {describe(ev)}")

    add("7.1.7", "close, then 1 MiB of data frames: all ignored",
        after_close(frame(BINARY, bin_payload(1 << 20, 717)), "echo after close"))

    @case("7.1.8", "close, then invalid frames (reserved opcode, RSV, bad UTF-8): ignored, close 1000 only")
    def _(t):
        after_close(frame(5, b"x") + frame(TEXT, b"\xff", rsv=2) + frame(TEXT, b"\xc0\xaf"),
                    "reaction to frames after close")(t)

    add("7.3.1", "close with empty payload -> empty close (or 1000) back",
        lambda t: (t.connect(), t.close_normal(code=None)))
    add("7.3.2", "close with 1-byte payload -> 1002", fail_case([frame(CLOSE, b"\x03")], {1002}))
    add("7.3.3", "close 1000 without reason", lambda t: (t.connect(), t.close_normal(1000)))
    add("7.3.4", "close 1000 with a short reason", lambda t: (t.connect(), t.close_normal(1000, b"Ok, bye")))
    add("7.3.5", "close 1000 with a 123-byte reason (payload 125)",
        lambda t: (t.connect(), t.close_normal(1000, b"*" * 123)))
    add("7.3.6", "close 1000 with a 124-byte reason (payload 126) -> 1002",
        fail_case([frame(CLOSE, close_payload(1000, b"*" * 124))], {1002}))
    add("7.3.7", "close 1000 with a 123-byte multibyte UTF-8 reason",
        lambda t: (t.connect(), t.close_normal(1000, ("€" * 41).encode())))
    add("7.5.1", "close with invalid UTF-8 reason -> 1007",
        fail_case([frame(CLOSE, close_payload(1000, kosme_bad()))], {1007}))
    add("7.5.2", "close with reason truncated inside a UTF-8 sequence -> 1007",
        fail_case([frame(CLOSE, close_payload(1000, "bye €".encode()[:-1]))], {1007}))
    add("7.5.3", "close with a surrogate in the reason -> 1007",
        fail_case([frame(CLOSE, close_payload(1001, b"\xed\xa0\x80"))], {1007}))
    add("7.5.4", "close with an overlong NUL in the reason -> 1007",
        fail_case([frame(CLOSE, close_payload(1000, b"a\xc0\x80"))], {1007}))

    valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
             1012, 1013, 1014]
    for i, code in enumerate(valid, 1):
        add(f"7.7.{i}", f"close with valid code {code} -> echoed",
            lambda t, code=code: (t.connect(), t.close_normal(code, b"reason")))
    invalid = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 1015]
    for i, code in enumerate(invalid, 1):
        add(f"7.9.{i}", f"close with invalid code {code} -> 1002",
            fail_case([frame(CLOSE, close_payload(code))], {1002}))
    add("7.13.1", "close with invalid code 5000 -> 1002", fail_case([frame(CLOSE, close_payload(5000))], {1002}))
    add("7.13.2", "close with invalid code 65535 -> 1002",
        fail_case([frame(CLOSE, close_payload(65535))], {1002}))

    @case("7.14.1", "close written one octet per write -> echoed")
    def _(t):
        t.connect()
        t.send(frame(CLOSE, close_payload(3333, b"slowly")), chop=1, delay=0.0005)
        ev = t.event()
        if ev[0] != "close" or ev[1] != 3333:
            raise CaseFail(f"expected close 3333, got {describe(ev)}")
        t.close_code = 3333
        ev = t.c.next_event(T_EOF)
        if ev[0] != "eof":
            raise CaseFail(f"expected TCP close, got {describe(ev)}")

    @case("7.14.2", "close inside a fragmented message between ping and pong traffic")
    def _(t):
        t.connect()
        t.send(frame(TEXT, b"a", fin=False) + frame(PING, b"p"))
        t.expect(("pong", b"p"))
        t.close_normal(4001, b"mid-message")

    @case("7.14.3", "after the server failed the connection (1002), data we send is not echoed")
    def _(t):
        t.connect()
        t.send(frame(3, b""))  # reserved opcode
        ev = t.event(T_FAST)
        if ev[0] != "close" or ev[1] != 1002:
            raise CaseFail(f"expected close 1002, got {describe(ev)}")
        t.close_code = 1002
        t.close_after_ms = round((t.c.close_time - t.c.last_send) * 1000, 1)
        t.send(frame(TEXT, b"after fail") + frame(PING, b"x") + frame(CLOSE, close_payload(1002)))
        ev = t.c.next_event(T_EOF)
        if ev[0] == "violation":
            raise CaseFail(describe(ev))
        if ev[0] != "eof":
            raise CaseFail(f"expected only TCP close, got {describe(ev)}")


def kosme_bad():
    return "κόσμε".encode() + b"\xed\xa0\x80" + b"edited"


# ===========================================================================
# 9 Limits/Performance

def build_section9(max_message):
    MiB = 1 << 20
    sizes = [64 * 1024, 256 * 1024, MiB, 4 * MiB, 8 * MiB, 16 * MiB]
    for sec, op, name in ((1, TEXT, "text"), (2, BINARY, "binary")):
        for i, n in enumerate(sizes, 1):
            if n > max_message:
                continue
            add(f"9.{sec}.{i}", f"{name} message of {n // 1024} KiB",
                echo_case(op, payload_for(op, n, i), timeout=T_BIG))
    frags = [64, 256, 1024, 4096, 16384, 65536, 256 * 1024, MiB, 4 * MiB]
    for sec, op, name in ((3, TEXT, "text"), (4, BINARY, "binary")):
        for i, f in enumerate(frags, 1):
            add(f"9.{sec}.{i}", f"fragmented {name} message of 4 MiB in fragments of {f} bytes",
                echo_case(op, payload_for(op, 4 * MiB, 90 + i), frag=f, timeout=T_BIG))
    chopsz = [64, 128, 256, 512, 1024, 2048]
    for sec, op, name in ((5, TEXT, "text"), (6, BINARY, "binary")):
        for i, c in enumerate(chopsz, 1):
            add(f"9.{sec}.{i}", f"{name} message of 1 MiB written in chops of {c} octets",
                echo_case(op, payload_for(op, MiB, 95 + i), chop=c, timeout=T_BIG))
    msz = [0, 16, 64, 256, 1024, 4096]
    for sec, op, name in ((7, TEXT, "text"), (8, BINARY, "binary")):
        for i, n in enumerate(msz, 1):
            def fn(t, op=op, n=n):
                t.connect()
                p = payload_for(op, n, n)
                f = frame(op, p)
                t0 = time.monotonic()
                for _ in range(1000):
                    t.send(f)
                    t.expect_echo(op, p)
                t.note(f"1000 round trips in {1000 * (time.monotonic() - t0):.0f} ms")
                t.close_normal()
            add(f"9.{sec}.{i}", f"1000 {name} messages of {n} bytes, one round trip each", fn)

    def burst(count, lo, hi, seed):
        def fn(t):
            t.connect()
            r = random.Random(seed)
            msgs = []
            for i in range(count):
                op = r.choice((TEXT, BINARY))
                msgs.append((op, payload_for(op, r.randint(lo, hi), i % 64)))
            t.send(b"".join(frame(op, p) for op, p in msgs))
            t.expect(*[("text" if op == TEXT else "binary", p) for op, p in msgs], timeout=T_BIG)
            t.close_normal()
        return fn

    add("9.9.1", "5000 messages of 0..16 bytes in one write, echoed in order", burst(5000, 0, 16, 991))
    add("9.9.2", "2000 messages of 0..1024 bytes in one write, echoed in order", burst(2000, 0, 1024, 992))
    add("9.9.3", "200 messages of 0..64 KiB in one write, echoed in order", burst(200, 0, 65536, 993))

    # limits
    def too_big_header(op, length, desc, codes=(1009,), extra=b"x" * 1000):
        def fn(t):
            t.connect()
            hdr = frame(op, b"", length=length)
            body = xor_mask(extra, hdr[-4:])  # mask key is the header's last 4 bytes
            t.send(hdr + body)
            t.expect_close(set(codes), what=f" ({desc})")
        return fn

    m = max_message
    add("9.10.1", f"text frame announcing max+1 = {m + 1} bytes -> 1009 at the header",
        too_big_header(TEXT, m + 1, "one frame over the limit"))
    add("9.10.2", f"binary frame announcing max+1 = {m + 1} bytes -> 1009 at the header",
        too_big_header(BINARY, m + 1, "one frame over the limit"))
    add("9.10.3", "binary frame announcing 2^40 bytes -> 1009 fast",
        too_big_header(BINARY, 1 << 40, "2^40-byte frame"))
    add("9.10.4", "text frame announcing 2^63-1 bytes -> 1009 fast",
        too_big_header(TEXT, (1 << 63) - 1, "2^63-1 byte frame"))
    add("9.10.5", "frame length with the most significant bit set (2^63) -> 1002 or 1009",
        too_big_header(BINARY, 1 << 63, "length MSB set", codes=(1002, 1009)))

    @case("9.10.6", f"fragmented binary message reaching max ({m} bytes) + 1 byte -> 1009 at the last header")
    def _(t):
        t.connect()
        fsz = min(m, 4 << 20)
        p = bin_payload(fsz, 9106)
        sent = 0
        first = True
        while sent < m:
            k = min(fsz, m - sent)
            t.send(frame(BINARY if first else CONT, p[:k], fin=False))
            first = False
            sent += k
        t.send(frame(CONT, b"z"))  # one byte too many
        t.expect_close({1009}, timeout=T_FAST * 4)

    @case("9.10.7", "fragmented text message: first fragment max - 10, second announcing 11 -> 1009")
    def _(t):
        t.connect()
        p = text_payload(m - 10, 9107)
        t.send(frame(TEXT, p, fin=False))
        hdr = frame(CONT, b"", length=11)
        t.send(hdr + xor_mask(b"abc", hdr[-4:]))
        t.expect_close({1009}, timeout=T_FAST * 4)

    add("9.10.8", f"binary message of exactly max = {m} bytes in 1 MiB fragments is echoed",
        echo_case(BINARY, bin_payload(m, 9108), frag=MiB, timeout=T_BIG))

    @case("9.10.9", "too-big frame after valid traffic: echo, then 1009")
    def _(t):
        t.connect()
        t.send(frame(TEXT, b"fine"))
        t.expect(("text", b"fine"))
        hdr = frame(TEXT, b"", length=m + 1)
        t.send(hdr + xor_mask(b"y" * 100, hdr[-4:]))
        t.expect_close({1009})

    @case("9.10.10", "ping and pong are not counted against the message limit")
    def _(t):
        t.connect()
        p = bin_payload(m - 100, 91010)
        t.send(frame(BINARY, p[:m // 2], fin=False) + frame(PING, b"x" * 125) +
               frame(PONG, b"y" * 125) + frame(CONT, p[m // 2:]))
        t.expect(("pong", b"x" * 125), ("binary", p), timeout=T_BIG)
        t.close_normal()


# ===========================================================================
# 10 Misc

def build_section10():
    add("10.1.1", "text message of 65536 bytes in fragments of 1300 bytes",
        echo_case(TEXT, text_payload(65536, 101), frag=1300))

    @case("10.2.1", "handshake with lower-case header names and 'Connection: keep-alive, Upgrade'")
    def _(t):
        req = (b"GET / HTTP/1.1\r\nhost: @HOST@\r\nupgrade: WebSocket\r\n"
               b"connection: keep-alive, Upgrade\r\nsec-websocket-key: @KEY@\r\n"
               b"sec-websocket-version: 13\r\n\r\n")
        t.connect(request=req)
        t.send(frame(TEXT, b"hi"))
        t.expect(("text", b"hi"))
        t.close_normal()

    @case("10.2.2", "frames in the same write as the opening handshake are processed")
    def _(t):
        t.connect(pipeline=frame(TEXT, b"early") + frame(PING, b"early ping") + frame(BINARY, b"\x00"))
        t.expect(("text", b"early"), ("pong", b"early ping"), ("binary", b"\x00"))
        t.close_normal()

    @case("10.2.3", "handshake with an unknown extension offered: not accepted")
    def _(t):
        t.connect(headers=["Sec-WebSocket-Extensions: x-unknown-extension; foo=bar"])
        t.send(frame(TEXT, b"plain"))
        t.expect(("text", b"plain"))
        t.close_normal()

    @case("10.3.1", "binary message with all 256 byte values, repeated 256 times")
    def _(t):
        echo_case(BINARY, bytes(range(256)) * 256)(t)

    @case("10.3.2", "alternating text and binary messages of growing size")
    def _(t):
        t.connect()
        for i in range(60):
            op = TEXT if i % 2 else BINARY
            p = payload_for(op, i * i * 17, i)
            t.send(frame(op, p))
            t.expect_echo(op, p)
        t.close_normal()

    @case("10.4.1", "20 concurrent connections, interleaved messages: each gets only its own echoes")
    def _(t):
        conns = [t.connect() for _ in range(20)]
        for rnd in range(5):
            for i, c in enumerate(conns):
                t.send(frame(TEXT, f"conn {i} round {rnd}".encode()), c=c)
        for i, c in enumerate(conns):
            for rnd in range(5):
                t.expect(("text", f"conn {i} round {rnd}".encode()), c=c)
        for c in conns:
            t.close_normal(c=c)

    @case("10.4.2", "a failed connection does not disturb another one")
    def _(t):
        a = t.connect()
        b = t.connect()
        t.send(frame(TEXT, b"before", fin=False), c=a)
        t.send(frame(TEXT, b"\xff"), c=b)
        t.expect_close({1007}, c=b)
        t.send(frame(CONT, b" after"), c=a)
        t.expect(("text", b"before after"), c=a)
        t.close_normal(c=a)


# ===========================================================================
# 12 / 13 permessage-deflate

DEFAULT_OFFER = "permessage-deflate; client_max_window_bits"


def corpus(kind, n=600_000):
    r = random.Random({"json": 1, "bmp": 2, "text": 3, "html": 4, "random": 5, "utf8": 6}[kind])
    words = ("the of and to in is was that for on with as by at it from this be are or an "
             "which have not were but his they had their one all would there been has more "
             "when who will no if out so said what up its about into than them can only other "
             "new some could time these two may then do first any my now such like our over "
             "man me even most made after also did many before must through back years where "
             "much your way well down should because each just those people Mr how too little "
             "state good very make world still own see men work long get here between both life "
             "being under never day same another know while last might us great old year off come "
             "since against go came right used take three").split()
    if kind == "random":
        return r.randbytes(n)
    if kind == "bmp":
        out = bytearray()
        w = 512
        y = 0
        while len(out) < n:
            for x in range(w):
                v = (x * 3 + y * 5 + ((x * y) >> 6)) & 0xFF
                out += bytes([v, (v + r.randint(0, 3)) & 0xFF, (255 - v) & 0xFF])
            y += 1
        return bytes(out[:n])
    parts = []
    size = 0
    i = 0
    while size < n:
        if kind == "json":
            s = json.dumps({"id": i, "name": " ".join(r.choice(words) for _ in range(3)),
                            "score": round(r.random() * 1000, 3), "tags": r.sample(words, 4),
                            "active": r.random() < 0.5, "nested": {"x": r.randint(0, 99999), "y": None}},
                           ensure_ascii=False) + ",\n"
        elif kind == "text":
            s = " ".join(r.choice(words) for _ in range(r.randint(5, 20))).capitalize() + ". "
            if r.random() < 0.15:
                s += "\n\n"
        elif kind == "utf8":
            s = " ".join(r.choice(("κόσμε", "Grüße", "日本語", "emoji 😀", "naïve", "ñandú", "Ωμέγα",
                                   r.choice(words))) for _ in range(12)) + "\n"
        else:  # html
            s = (f'<div class="row r{i % 7}"><a href="/item/{i}">{r.choice(words)} {r.choice(words)}</a>'
                 f'<span style="color:#{r.randint(0, 0xFFFFFF):06x}">{r.randint(0, 9999)}</span></div>\n')
        parts.append(s)
        size += len(s.encode())
        i += 1
    return "".join(parts).encode()[:n]


_CORPORA = {}


def corpus_slice(kind, size, i):
    if kind not in _CORPORA:
        _CORPORA[kind] = corpus(kind)
    c = _CORPORA[kind]
    start = (i * 7919 * 13 + size * 3) % (len(c) - size - 8)
    s = c[start:start + size + 8]
    if kind in ("json", "text", "html", "utf8"):
        # cut on code point boundaries; keep exactly `size` bytes when possible
        a = 0
        while a < 4 and (s[a] & 0xC0) == 0x80:
            a += 1
        s = s[a:a + size]
        while s and not utf8_valid(s):
            s = s[:-1]
        return s
    return s[:size]


def pmd_stream_case(offer, kind, size, count, op=None, frag=None, pmd="require", acceptable=None):
    """Negotiate with offer, then send `count` compressed messages of `size`
    bytes from a corpus (in windows of a few messages), expecting identical
    echoes. frag: frame size for the compressed stream, or None."""
    if op is None:
        op = BINARY if kind in ("bmp", "random") else TEXT

    def fn(t):
        c = t.connect(offer=offer, pmd=pmd, acceptable=acceptable)
        msgs = [corpus_slice(kind, size, i) for i in range(count)]
        window = 16 if size <= 16384 else 4
        for a in range(0, count, window):
            batch = msgs[a:a + window]
            t.send(b"".join(t.msg(op, p, frag=frag) for p in batch))
            t.expect(*[("text" if op == TEXT else "binary", p) for p in batch], timeout=T_BIG)
        if c.pmd is not None:
            t.note(f"negotiated: {c.ext_header}; server compressed {c.compressed_echoes}/{count} echoes")
        else:
            t.note("permessage-deflate declined")
        t.close_normal()
    return fn


def build_section12():
    kinds = [("json", "JSON text"), ("bmp", "bitmap-like binary"), ("text", "human-readable text"),
             ("html", "HTML text"), ("random", "random (incompressible) binary")]
    sizes = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]
    for gi, (kind, name) in enumerate(kinds, 1):
        for si, size in enumerate(sizes, 1):
            count = 100 if size <= 4096 else (40 if size <= 32768 else 12)
            add(f"12.{gi}.{si}", f"{count} compressed {name} messages of {size} bytes (offer: {DEFAULT_OFFER})",
                pmd_stream_case(DEFAULT_OFFER, kind, size, count))
        for fi, fsz in enumerate((64, 256, 1024, 4096), len(sizes) + 1):
            add(f"12.{gi}.{fi}", f"8 compressed {name} messages of 65536 bytes, compressed stream in "
                f"frames of {fsz} bytes", pmd_stream_case(DEFAULT_OFFER, kind, 65536, 8, frag=fsz))
    for si, size in enumerate((16, 1024, 65536, 131072), 1):
        add(f"12.6.{si}", f"compressed multibyte UTF-8 text messages of {size} bytes",
            pmd_stream_case(DEFAULT_OFFER, "utf8", size, 20))


OFFERS_13 = [
    ("permessage-deflate", "no parameters"),
    ("permessage-deflate; client_no_context_takeover", "client_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=9", "server_max_window_bits=9"),
    ("permessage-deflate; server_max_window_bits=15", "server_max_window_bits=15"),
    ("permessage-deflate; server_no_context_takeover; server_max_window_bits=9",
     "server_no_context_takeover, server_max_window_bits=9"),
    ("permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=15; client_max_window_bits=15", "all four parameters, 15 bits"),
    ("permessage-deflate; server_max_window_bits=8, permessage-deflate; server_no_context_takeover; "
     "client_max_window_bits=9, permessage-deflate", "three offers, the first demanding an 8-bit window"),
    ("permessage-deflate; client_max_window_bits=9", "client_max_window_bits=9"),
    ("permessage-deflate; client_max_window_bits; server_max_window_bits=12", "client_max_window_bits, "
     "server_max_window_bits=12"),
]


def build_section13():
    sizes = [16, 64, 256, 1024, 4096, 16384, 65536, 131072]
    for oi, (offer, name) in enumerate(OFFERS_13, 1):
        for si, size in enumerate(sizes, 1):
            count = 50 if size <= 4096 else 10
            kind = "text" if si % 2 else "json"
            pmd = "require"
            add(f"13.{oi}.{si}", f"offer '{name}': {count} messages of {size} bytes",
                pmd_stream_case(offer, kind, size, count, pmd=pmd))

    # 13.10: invalid offers are declined (101 without the extension)
    invalid = [
        ("permessage-deflate; foo", "unknown parameter"),
        ("permessage-deflate; foo=1", "unknown parameter with value"),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", "duplicate parameter"),
        ("permessage-deflate; client_max_window_bits; client_max_window_bits=10", "duplicate client_max_window_bits"),
        ("permessage-deflate; server_max_window_bits=7", "server_max_window_bits=7"),
        ("permessage-deflate; server_max_window_bits=16", "server_max_window_bits=16"),
        ("permessage-deflate; server_max_window_bits=abc", "server_max_window_bits=abc"),
        ("permessage-deflate; server_max_window_bits", "server_max_window_bits without value"),
        ("permessage-deflate; client_max_window_bits=7", "client_max_window_bits=7"),
        ("permessage-deflate; client_max_window_bits=16", "client_max_window_bits=16"),
        ("permessage-deflate; client_max_window_bits=abc", "client_max_window_bits=abc"),
        ("permessage-deflate; server_no_context_takeover=1", "value on server_no_context_takeover"),
        ("permessage-deflate; client_no_context_takeover=x", "value on client_no_context_takeover"),
        ("permessage-deflate; server_max_window_bits=010", "server_max_window_bits=010 (leading zero)"),
    ]
    for i, (offer, name) in enumerate(invalid, 1):
        def fn(t, offer=offer):
            t.connect(offer=offer, pmd="decline")
            t.send(frame(TEXT, b"uncompressed"))
            t.expect(("text", b"uncompressed"))
            t.close_normal()
        add(f"13.10.{i}", f"invalid offer ({name}) is declined: 101 without the extension", fn)
    n8 = len(invalid)
    mixed = [
        ("permessage-deflate; foo, permessage-deflate", "unknown parameter, then a valid offer"),
        ("permessage-deflate; server_max_window_bits=16, permessage-deflate; client_max_window_bits",
         "bad window bits, then a valid offer"),
        ("permessage-deflate; server_no_context_takeover=1, permessage-deflate; server_no_context_takeover",
         "value on a no-value parameter, then a valid offer"),
    ]
    for i, (offer, name) in enumerate(mixed, n8 + 1):
        def fn(t, offer=offer):
            valid = [o for o in parse_offers(offer) if o is not None]
            t.connect(offer=offer, pmd="either", acceptable=valid)
            if t.c.pmd is None:
                raise CaseFail("the valid later offer was not accepted")
            for k in range(3):
                p = corpus_slice("text", 3000, k)
                t.send_msg(TEXT, p)
                t.expect_echo(TEXT, p)
            t.close_normal()
        add(f"13.10.{i}", f"{name}: the valid offer is accepted", fn)

    # 13.11 negotiation details
    @case("13.11.1", "offer on two Sec-WebSocket-Extensions header lines, unknown extension first")
    def _(t):
        c = Conn(t.suite, t)
        t.conns.append(c)
        c.open(headers=["Sec-WebSocket-Extensions: x-webkit-deflate-frame",
                        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
               pmd="require", acceptable=[{"client_max_window_bits": True}])
        t.c = c
        p = corpus_slice("json", 5000, 1)
        t.send_msg(TEXT, p)
        t.expect_echo(TEXT, p)
        t.close_normal()

    @case("13.11.2", "quoted parameter value: server_max_window_bits=\"10\" is honoured")
    def _(t):
        t.connect(offer='permessage-deflate; server_max_window_bits="10"', pmd="either",
                  acceptable=[{"server_max_window_bits": 10}])
        if t.c.pmd is None:
            raise CaseFail("valid offer with a quoted value declined")
        for k in range(5):
            p = corpus_slice("text", 20000, k)
            t.send_msg(TEXT, p)
            t.expect_echo(TEXT, p)
        t.close_normal()

    def ws_offer(offer, acceptable):
        def fn(t):
            t.connect(offer=offer, pmd="either", acceptable=acceptable)
            if t.c.pmd is None:
                raise CaseFail("valid offer declined")
            p = corpus_slice("text", 20000, 7)
            t.send_msg(TEXT, p)
            t.expect_echo(TEXT, p)
            t.close_normal()
        return fn

    add("13.11.3", "offer with extra whitespace around ';' is accepted",
        ws_offer("permessage-deflate ;  client_max_window_bits ;server_max_window_bits=11",
                 [{"client_max_window_bits": True, "server_max_window_bits": 11}]))

    @case("13.11.4", "offer demanding server_max_window_bits=8 only: declined or honoured with 8")
    def _(t):
        t.connect(offer="permessage-deflate; server_max_window_bits=8", pmd="either")
        if t.c.pmd is None:
            t.note("declined")
        for k in range(5):
            p = corpus_slice("html", 20000, k)
            t.send_msg(TEXT, p)
            t.expect_echo(TEXT, p)
        t.close_normal()

    @case("13.11.5", "without client_max_window_bits in the offer, the response must not have it")
    def _(t):
        t.connect(offer="permessage-deflate", acceptable=[{}])
        t.send_msg(TEXT, b"x" * 2000)
        t.expect_echo(TEXT, b"x" * 2000)
        t.close_normal()

    @case("13.11.6", "declined offer: a frame with RSV1 -> 1002")
    def _(t):
        t.connect(offer="permessage-deflate; foo", pmd="decline")
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        t.send(frame(TEXT, (z.compress(b"hello") + z.flush(zlib.Z_SYNC_FLUSH))[:-4], rsv=4))
        t.expect_close({1002})

    add("13.11.7", "offer with whitespace around '=' (RFC 6455 9.1 implied *LWS) is accepted",
        ws_offer("permessage-deflate; server_max_window_bits = 11; client_max_window_bits",
                 [{"client_max_window_bits": True, "server_max_window_bits": 11}]))

    # 13.12 framing with the extension negotiated
    def pm(fn):
        def wrapped(t):
            t.connect(offer=DEFAULT_OFFER)
            fn(t)
        return wrapped

    def comp(t, data):
        z = t.c.deflate(data)
        if z is None:
            raise CaseFail("cannot compress with the negotiated window")
        return z

    @case("13.12.1", "uncompressed messages (RSV1 clear) are fine with the extension negotiated")
    @pm
    def _(t):
        for p in (b"", b"plain", text_payload(5000, 1)):
            t.send(frame(TEXT, p))
            t.expect_echo(TEXT, p)
        t.close_normal()

    @case("13.12.2", "compressed empty message (payload 0x00)")
    @pm
    def _(t):
        t.send(frame(TEXT, b"\x00", rsv=4) + frame(BINARY, b"\x00", rsv=4))
        t.expect(("text", b""), ("binary", b""))
        t.close_normal()

    @case("13.12.3", "compressed message without the tail stripped (ends 00 00 ff ff)")
    @pm
    def _(t):
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = z.compress(b"tail kept " * 20) + z.flush(zlib.Z_SYNC_FLUSH)
        t.send(frame(TEXT, body, rsv=4))
        t.expect(("text", b"tail kept " * 20))
        t.close_normal()

    @case("13.12.4", "compressed message in 3 fragments, RSV1 on the first only")
    @pm
    def _(t):
        p = corpus_slice("json", 30000, 3)
        z = comp(t, p)
        a, b = len(z) // 3, 2 * len(z) // 3
        t.send(frame(TEXT, z[:a], fin=False, rsv=4) + frame(CONT, z[a:b], fin=False) + frame(CONT, z[b:]))
        t.expect_echo(TEXT, p)
        t.close_normal()

    @case("13.12.5", "compressed fragmented message with a ping between fragments -> pong, echo")
    @pm
    def _(t):
        p = corpus_slice("text", 30000, 4)
        z = comp(t, p)
        a = len(z) // 2
        t.send(frame(TEXT, z[:a], fin=False, rsv=4) + frame(PING, b"mid") + frame(CONT, z[a:]))
        t.expect(("pong", b"mid"), ("text", p))
        t.close_normal()

    @case("13.12.6", "compressed message in 1-byte fragments")
    @pm
    def _(t):
        p = corpus_slice("html", 2000, 5)
        t.send(t.msg(TEXT, p, frag=1))
        t.expect_echo(TEXT, p)
        t.close_normal()

    @case("13.12.7", "compressed message written one octet per write")
    @pm
    def _(t):
        p = corpus_slice("json", 3000, 6)
        t.send(t.msg(TEXT, p), chop=1)
        t.expect_echo(TEXT, p)
        t.close_normal()

    @case("13.12.8", "compressed and uncompressed messages interleaved, 40 messages")
    @pm
    def _(t):
        for k in range(40):
            p = corpus_slice("text", 500 + 97 * k, k)
            t.send_msg(TEXT, p, compress=bool(k % 3))
            t.expect_echo(TEXT, p)
        t.close_normal()

    @case("13.12.9", "20 identical compressed messages (context takeover when allowed)")
    @pm
    def _(t):
        p = corpus_slice("json", 8000, 9)
        for _ in range(20):
            t.send_msg(TEXT, p)
        t.expect(*[("text", p)] * 20)
        t.close_normal()

    add("13.12.10", "RSV1 on a continuation frame -> 1002",
        pm(lambda t: (t.send(frame(TEXT, comp(t, b"abc"), fin=False, rsv=4) + frame(CONT, b"\x00", rsv=4)),
                      t.expect_close({1002}))))
    add("13.12.11", "RSV1 on a continuation frame of an uncompressed message -> 1002",
        pm(lambda t: (t.send(frame(TEXT, b"abc", fin=False) + frame(CONT, b"def", rsv=4)),
                      t.expect_close({1002}))))
    add("13.12.12", "RSV1 on a ping -> 1002",
        pm(lambda t: (t.send(frame(PING, b"x", rsv=4)), t.expect_close({1002}))))
    add("13.12.13", "RSV1 on a pong -> 1002",
        pm(lambda t: (t.send(frame(PONG, b"x", rsv=4)), t.expect_close({1002}))))
    add("13.12.14", "RSV1 on a close -> 1002",
        pm(lambda t: (t.send(frame(CLOSE, close_payload(1000), rsv=4)), t.expect_close({1002}))))
    add("13.12.15", "RSV2 on a text frame with the extension negotiated -> 1002",
        pm(lambda t: (t.send(frame(TEXT, b"abc", rsv=2)), t.expect_close({1002}))))
    add("13.12.16", "RSV3 on a compressed text frame -> 1002",
        pm(lambda t: (t.send(frame(TEXT, comp(t, b"abc"), rsv=5)), t.expect_close({1002}))))
    add("13.12.17", "invalid deflate data -> 1007",
        pm(lambda t: (t.send(frame(BINARY, b"\xff\xff\xff\xff\xff", rsv=4)), t.expect_close({1007}))))
    add("13.12.18", "compressed text that inflates to invalid UTF-8 -> 1007",
        pm(lambda t: (t.send(frame(TEXT, comp(t, kosme_bad()), rsv=4)), t.expect_close({1007}))))
    add("13.12.19", "compressed text that inflates to truncated UTF-8 -> 1007",
        pm(lambda t: (t.send(frame(TEXT, comp(t, "κόσμε".encode()[:-1]), rsv=4)), t.expect_close({1007}))))

    def bomb(t, total, frag):
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        out = []
        block = b"\x00" * (1 << 20)
        left = total
        while left > 0:
            k = min(left, len(block))
            out.append(z.compress(block[:k]))
            left -= k
        body = (b"".join(out) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]
        if frag:
            t.send(t.msg(BINARY, body, frag=max(1, len(body) // 8), compress=False, rsv_extra=4))
        else:
            t.send(frame(BINARY, body, rsv=4))
        return len(body)

    @case("13.12.20", "compressed messages from a fresh compressor each time (no context takeover used)")
    @pm
    def _(t):
        for k in range(10):
            p = corpus_slice("json", 3000, 1)
            t.c.deflater = None  # always allowed, whatever was negotiated
            t.send_msg(TEXT, p)
            t.expect_echo(TEXT, p)
        t.close_normal()

    @case("13.12.21", "compressed message ending with a BFINAL block plus 0x00 (RFC 7692 7.2.3.4), then more")
    @pm
    def _(t):
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        # The final block, then one 0x00 octet (BTYPE 00, BFINAL 0) so that the
        # receiver's appended 00 00 ff ff forms an empty stored block.
        body = z.compress(b"final block " * 30) + z.flush(zlib.Z_FINISH) + b"\x00"
        t.send(frame(TEXT, body, rsv=4))
        t.expect(("text", b"final block " * 30))
        t.c.deflater = None  # the server's inflater may start afresh
        t.send_msg(TEXT, b"after final " * 30)
        t.expect(("text", b"after final " * 30))
        t.close_normal()

    @case("13.12.22", "compressed message with an empty first fragment (RSV1) and an empty middle fragment")
    @pm
    def _(t):
        p = corpus_slice("text", 2000, 3)
        z = comp(t, p)
        t.send(frame(TEXT, b"", fin=False, rsv=4) + frame(CONT, z[:10], fin=False) +
               frame(CONT, b"", fin=False) + frame(CONT, z[10:]))
        t.expect(("text", p))
        t.close_normal()

    # Not a case: an RSV1 frame with an empty payload. With the tail that is
    # 00 00 ff ff, an unfinished stored block (LEN 0xff00), not DEFLATE data
    # for an empty message (that is 0x00, RFC 7692 7.2.3.6).

    @case("13.12.23", "empty compressed messages (0x00) between compressed messages")
    @pm
    def _(t):
        for k in range(5):
            p = corpus_slice("json", 1500, k)
            t.send_msg(TEXT, p)
            t.send(frame(TEXT, b"\x00", rsv=4))
            t.expect(("text", p), ("text", b""))
        t.close_normal()

    @case("13.12.24", "compressed empty text message in 3 fragments: empty, empty, 0x00")
    @pm
    def _(t):
        t.send(frame(TEXT, b"", fin=False, rsv=4) + frame(CONT, b"", fin=False) + frame(CONT, b"\x00"))
        t.expect(("text", b""))
        t.close_normal()

    # RFC 7692 7.2.3: the RFC's own example payloads, each "Hello"
    rfc_examples = [
        (25, "7.2.3.1 'Hello' compressed", "f2 48 cd c9 c9 07 00"),
        (26, "7.2.3.3 a DEFLATE block with no compression", "00 05 00 fa ff 48 65 6c 6c 6f 00"),
        (27, "7.2.3.4 a DEFLATE block with BFINAL set to 1", "f3 48 cd c9 c9 07 00 00"),
        (28, "7.2.3.5 two DEFLATE blocks in one message", "f2 48 05 00 00 00 ff ff ca c9 c9 07 00"),
    ]
    for n, name, hx in rfc_examples:
        def fn(t, hx=hx):
            t.send(frame(TEXT, bytes.fromhex(hx), rsv=4))
            t.expect(("text", b"Hello"))
            t.c.deflater = None  # our next message starts a new stream
            t.send_msg(TEXT, b"Hello again, Hello again")
            t.expect(("text", b"Hello again, Hello again"))
            t.close_normal()
        add(f"13.12.{n}", f"RFC 7692 example {name}, then a compressed message", pm(fn))

    @case("13.12.29", "RFC 7692 7.2.3.2 example: 'Hello' twice sharing the LZ77 window (if allowed)")
    @pm
    def _(t):
        t.send(frame(TEXT, bytes.fromhex("f2 48 cd c9 c9 07 00"), rsv=4))
        t.expect(("text", b"Hello"))
        if t.c.pmd.get("client_no_context_takeover"):
            t.note("client_no_context_takeover negotiated: second message sent without the shared window")
            t.send(frame(TEXT, bytes.fromhex("f2 48 cd c9 c9 07 00"), rsv=4))
        else:
            t.send(frame(TEXT, bytes.fromhex("f2 00 11 00 00"), rsv=4))
        t.expect(("text", b"Hello"))
        t.close_normal()

    @case("13.13.1", "decompression bomb: max+1 zero bytes compressed into one small frame -> 1009")
    @pm
    def _(t):
        n = bomb(t, t.max_message + 1, False)
        t.note(f"{n} compressed bytes")
        t.expect_close({1009}, timeout=T_FAST * 4)

    @case("13.13.2", "decompression bomb: 4 x max zero bytes compressed, in 8 fragments -> 1009")
    @pm
    def _(t):
        n = bomb(t, 4 * t.max_message, True)
        t.note(f"{n} compressed bytes")
        t.expect_close({1009}, timeout=T_FAST * 4)

    @case("13.13.3", "compressed message inflating to exactly max bytes is echoed")
    @pm
    def _(t):
        p = (corpus_slice("text", 65536, 1) * (t.max_message // 65536 + 1))[:t.max_message]
        t.send_msg(BINARY, p)
        t.expect_echo(BINARY, p, timeout=T_BIG)
        t.close_normal()

    @case("13.13.4", "incompressible message of max - 4 KiB bytes sent as stored deflate blocks")
    @pm
    def _(t):
        # stored (uncompressed) deflate blocks: the wire is a little larger
        # than the message (5 bytes per 64 KiB block), still under max
        p = bin_payload(t.max_message - 4096, 1114)
        z = zlib.compressobj(0, zlib.DEFLATED, -15)
        body = (z.compress(p) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]
        t.send(frame(BINARY, body, rsv=4))
        t.expect_echo(BINARY, p, timeout=T_BIG)
        t.close_normal()


    # 13.14 fail fast on invalid UTF-8 inside compressed text
    def comp_parts(t, parts):
        c = t.c
        bits = c.pmd.get("client_max_window_bits", 15)
        if bits < 9:
            raise CaseFail("cannot compress with the negotiated window")
        if c.deflater is None or c.pmd.get("client_no_context_takeover"):
            c.deflater = zlib.compressobj(6, zlib.DEFLATED, -bits, 8)
        outs = [c.deflater.compress(x) + c.deflater.flush(zlib.Z_SYNC_FLUSH) for x in parts]
        outs[-1] = outs[-1][:-4]
        return outs

    kos = "κόσμε".encode()
    cff = [
        ("3 compressed fragments: valid, U+110000, rest", kos, b"\xf4\x90\x80\x80", b"edited", "frames"),
        ("3 compressed fragments: 'κόσμε' + f4, 90, rest", kos + b"\xf4", b"\x90", b"\x80\x80edited", "frames"),
        ("one compressed frame in 3 writes: valid, surrogate, rest", kos, b"\xed\xa0\x80", b"edited", "chops"),
        ("one compressed frame: 3000 valid bytes, then c0 af, 60000 bytes withheld",
         text_payload(3000, 1), b"\xc0\xaf", text_payload(60000, 2), "chops"),
    ]
    for i, (desc, p1, p2, p3, mode) in enumerate(cff, 1):
        def fn(t, p1=p1, p2=p2, p3=p3, mode=mode):
            t.connect(offer=DEFAULT_OFFER)
            z1, z2, z3 = comp_parts(t, [p1, p2, p3])
            if mode == "frames":
                t.send(frame(TEXT, z1, fin=False, rsv=4))
                time.sleep(DELAY)
                t.send(frame(CONT, z2, fin=False))
                rest = frame(CONT, z3)
            else:
                whole = frame(TEXT, z1 + z2 + z3, rsv=4)
                hl = len(whole) - len(z1 + z2 + z3)
                t.send(whole[:hl + len(z1)])
                time.sleep(DELAY)
                t.send(whole[hl + len(z1):hl + len(z1) + len(z2)])
                rest = whole[hl + len(z1) + len(z2):]
            t.fail_fast({1007}, rest)
        add(f"13.14.{i}", f"fail fast on invalid UTF-8 in compressed text, {desc} -> 1007 before the rest", fn)


# ===========================================================================
# running

class Suite:
    def __init__(self, url, name, max_message):
        u = urllib.parse.urlparse(url)
        if u.scheme not in ("ws", "wss") or u.hostname != "127.0.0.1":
            raise SystemExit("wsconf: only ws:// or wss://127.0.0.1:PORT/ URLs are allowed")
        self.tls = None
        if u.scheme == "wss":  # the server under test, on loopback: not verified
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.tls.check_hostname = False
            self.tls.verify_mode = ssl.CERT_NONE
        self.host, self.port = u.hostname, u.port
        self.path = u.path or "/"
        self.name = name
        self.max_message = max_message
        self.gone = None     # id of the case where connections were first refused


def deviation_for(server, cid, kind):
    for rx, k, reason in KNOWN_DEVIATIONS.get(server, []):
        if re.match(rx, cid) and k == kind:
            return reason
    return None


def run_case(suite, cs):
    t = Ctx(suite, cs)
    t0 = time.monotonic()
    result, detail, dev = "PASS", "", None
    try:
        if suite.gone:
            # Refused connections: the server died (see its stderr); do not
            # bury that under hundreds of identical errors.
            raise CaseFail(f"not run: the server refused connections since case {suite.gone}")
        cs.fn(t)
    except ConnectionRefusedError as e:
        suite.gone = cs.id
        result, detail = "FAIL", f"{type(e).__name__}: {e} (server gone?)"
    except CaseFail as e:
        dev = deviation_for(suite.name, cs.id, e.kind) if e.kind else None
        if dev:
            detail = f"known deviation: {e}"
        else:
            result, detail = "FAIL", str(e)
    except (OSError, socket.timeout) as e:
        result, detail = "FAIL", f"{type(e).__name__}: {e}"
    except Exception as e:  # a bug in the suite itself: report it, keep going
        result, detail = "FAIL", f"suite error: {type(e).__name__}: {e}"
    finally:
        t.cleanup()
    dur = round((time.monotonic() - t0) * 1000, 1)
    if result == "PASS" and t.notes and not detail:
        detail = "; ".join(t.notes)
    return {"id": cs.id, "section": cs.section, "description": cs.desc, "result": result,
            "duration_ms": dur, "detail": detail, "deviation": dev,
            "close_code": t.close_code, "close_after_ms": t.close_after_ms}


def build_all(max_message):
    del CASES[:]
    _IDS.clear()
    build_section1()
    build_section2()
    build_section3()
    build_section4()
    build_section5()
    build_section6()
    build_section7()
    build_section9(max_message)
    build_section10()
    build_section12()
    build_section13()


def matches(cid, spec):
    pats = [p.strip() for p in (spec or "").split(",") if p.strip()]
    return any(cid == p or cid.startswith(p + ".") for p in pats)


def selected(cases, only, exclude=None):
    return [c for c in cases if (not only or matches(c.id, only)) and not matches(c.id, exclude)]


def summary_rows(results):
    rows = []
    for sec in sorted({r["section"] for r in results}):
        rs = [r for r in results if r["section"] == sec]
        rows.append((sec, SECTION_NAMES.get(sec, ""), len(rs),
                     sum(r["result"] == "PASS" for r in rs),
                     sum(r["result"] == "FAIL" for r in rs),
                     sum(bool(r["deviation"]) for r in rs)))
    return rows


def write_markdown(path, suite, results, elapsed):
    rows = summary_rows(results)
    with open(path, "w") as f:
        f.write(f"# Conformance report: {suite.name}\n\n")
        f.write(f"Suite tests/conformance/wsconf.py against ws://{suite.host}:{suite.port}{suite.path}, "
                f"max message {suite.max_message} bytes, {len(results)} cases in {elapsed:.1f} s.\n\n")
        f.write("| section | name | cases | pass | fail | known deviations |\n|---|---|---|---|---|---|\n")
        for sec, name, n, p, fl, d in rows:
            f.write(f"| {sec} | {name} | {n} | {p} | {fl} | {d} |\n")
        tot = [sum(r[i] for r in rows) for i in (2, 3, 4, 5)]
        f.write(f"| all | | {tot[0]} | {tot[1]} | {tot[2]} | {tot[3]} |\n\n")
        fails = [r for r in results if r["result"] == "FAIL"]
        if fails:
            f.write("## Failures\n\n| case | description | why |\n|---|---|---|\n")
            for r in fails:
                f.write(f"| {r['id']} | {r['description']} | {r['detail'].replace('|', '/')} |\n")
            f.write("\n")
        devs = [r for r in results if r["deviation"]]
        if devs:
            f.write("## Known deviations\n\n| case | observed |\n|---|---|\n")
            for r in devs:
                f.write(f"| {r['id']} | {r['detail'].replace('|', '/')} |\n")
            f.write("\n")
        f.write("## All cases\n\n| case | result | close code | close after ms | ms | description |\n"
                "|---|---|---|---|---|---|\n")
        for r in results:
            f.write(f"| {r['id']} | {r['result']}{' (deviation)' if r['deviation'] else ''} | "
                    f"{'' if r['close_code'] is None else r['close_code']} | "
                    f"{'' if r['close_after_ms'] is None else r['close_after_ms']} | {r['duration_ms']} | "
                    f"{r['description'].replace('|', '/')} |\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description="WebSocket conformance suite for echo servers")
    ap.add_argument("--url", help="ws://127.0.0.1:PORT/")
    ap.add_argument("--report", help="write the JSON report here (and a .md summary beside it)")
    ap.add_argument("--max-message", type=int, default=16 * 1024 * 1024,
                    help="the server's message size limit in bytes (default 16 MiB)")
    ap.add_argument("--only", help="comma-separated case ids or id prefixes (e.g. 6.4,7.1.2)")
    ap.add_argument("--exclude", help="comma-separated case ids or id prefixes to leave out")
    ap.add_argument("--server-name", default="server", help="name used in result lines")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    a = ap.parse_args(argv)
    build_all(a.max_message)
    cases = selected(CASES, a.only, a.exclude)
    if a.list:
        for c in cases:
            print(f"{c.id}\t{c.desc}")
        print(f"{len(cases)} cases", file=sys.stderr)
        return 0
    if not a.url:
        ap.error("--url is required")
    if not cases:
        ap.error(f"no case matches --only {a.only}")
    suite = Suite(a.url, a.server_name, a.max_message)
    results = []
    t0 = time.monotonic()
    for cs in cases:
        r = run_case(suite, cs)
        results.append(r)
        if r["result"] == "PASS":
            extra = f" ({r['detail']})" if r["deviation"] else ""
            print(f"PASS: conformance {suite.name} {cs.id} {cs.desc}{extra}", flush=True)
        else:
            print(f"FAIL: conformance {suite.name} {cs.id} {cs.desc}: {r['detail']}", flush=True)
    elapsed = time.monotonic() - t0
    rows = summary_rows(results)
    print(f"\nconformance summary for {suite.name} ({elapsed:.1f} s)")
    print(f"  {'section':<48} {'cases':>6} {'pass':>6} {'fail':>6} {'dev':>5}")
    for sec, name, n, p, fl, d in rows:
        print(f"  {str(sec) + ' ' + name:<48} {n:>6} {p:>6} {fl:>6} {d:>5}")
    tot = [sum(r[i] for r in rows) for i in (2, 3, 4, 5)]
    print(f"  {'total':<48} {tot[0]:>6} {tot[1]:>6} {tot[2]:>6} {tot[3]:>5}")
    if a.report:
        os.makedirs(os.path.dirname(os.path.abspath(a.report)), exist_ok=True)
        with open(a.report, "w") as f:
            json.dump({"server": suite.name, "url": a.url, "max_message": a.max_message,
                       "elapsed_s": round(elapsed, 2), "cases": results}, f, indent=1)
        md = os.path.splitext(a.report)[0] + ".md"
        write_markdown(md, suite, results, elapsed)
    return 0 if tot[2] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
