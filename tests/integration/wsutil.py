"""Raw-socket WebSocket helpers for the libwsc integration tests.

Everything here talks to 127.0.0.1 only, and every blocking call has a
deadline: a helper raises (socket.timeout / AssertionError) rather than hang.
"""

import base64
import errno
import hashlib
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HOST = "127.0.0.1"

# Timeouts are multiplied by this under slow sanitizers (ThreadSanitizer).
SCALE = 3.0 if "thread" in os.environ.get("SANITIZER", "") else 1.0

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


def t(seconds):
    """A timeout, scaled for slow sanitizer builds."""
    return seconds * SCALE


def new_key():
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_for(key):
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode("ascii")


def upgrade_request(port, key=None, path="/", method="GET", version="13",
                    host=True, extra=(), omit=()):
    """Bytes of an upgrade request. extra: (name, value) pairs appended;
    omit: lower-case header names to leave out; version None omits it."""
    if key is None:
        key = new_key()
    headers = []
    if host:
        headers.append(("Host", "%s:%d" % (HOST, port)))
    headers += [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
    ]
    if version is not None:
        headers.append(("Sec-WebSocket-Version", version))
    headers = [(n, v) for (n, v) in headers if n.lower() not in omit]
    headers += list(extra)
    lines = ["%s %s HTTP/1.1" % (method, path)]
    lines += ["%s: %s" % (n, v) for (n, v) in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def connect(port, timeout=5.0):
    s = socket.create_connection((HOST, port), timeout=t(timeout))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class HttpResponse:
    def __init__(self, status_line, headers, body, raw_head):
        self.status_line = status_line
        self.headers = headers          # list of (lower-case name, value)
        self.body = body
        self.raw_head = raw_head
        parts = status_line.split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None

    def header(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def __repr__(self):
        return "HttpResponse(%r, %r, %r)" % (self.status_line, self.headers, self.body[:200])


class Conn:
    """A raw socket with a receive buffer, for HTTP then WebSocket frames."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Read more bytes into buf; False on EOF (or connection reset)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_exact(self, n, timeout=5.0):
        deadline = time.monotonic() + t(timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise EOFError("EOF after %d of %d bytes" % (len(self.buf), n))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_until_eof(self, timeout=5.0, limit=1 << 24):
        """Everything up to EOF (or reset). Raises socket.timeout."""
        deadline = time.monotonic() + t(timeout)
        while not self.eof and len(self.buf) < limit:
            self._fill(deadline)
        data, self.buf = self.buf, b""
        return data

    def read_http_response(self, timeout=5.0, body=True):
        """Read a response head and, if body, a Content-Length body."""
        deadline = time.monotonic() + t(timeout)
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise AssertionError("response head too long: %r" % self.buf[:200])
            if not self._fill(deadline):
                raise EOFError("EOF before a complete response head: %r" % self.buf)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        resp = HttpResponse(lines[0], headers, b"", head)
        if body and resp.status not in (101, 204, 304):
            length = resp.header("content-length")
            if length is not None:
                n = int(length)
                while len(self.buf) < n:
                    if not self._fill(deadline):
                        raise EOFError("EOF in the body")
                resp.body, self.buf = self.buf[:n], self.buf[n:]
        return resp

    # ---- WebSocket frames -------------------------------------------------

    def read_frame(self, timeout=5.0):
        """One frame from the server: (fin, opcode, payload). Checks that the
        server did not mask it and used no RSV bits."""
        b0, b1 = self.read_exact(2, timeout)
        fin = bool(b0 & 0x80)
        assert b0 & 0x70 == 0, "server set RSV bits: %#x" % b0
        opcode = b0 & 0x0F
        assert not b1 & 0x80, "server frames must not be masked"
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self.read_exact(2, timeout))
            assert n >= 126, "non-minimal 16-bit length %d" % n
        elif n == 127:
            (n,) = struct.unpack("!Q", self.read_exact(8, timeout))
            assert n >= 65536, "non-minimal 64-bit length %d" % n
        payload = self.read_exact(n, timeout) if n else b""
        return fin, opcode, payload

    def read_message(self, timeout=5.0, max_frames=100000):
        """A whole data message (answering nothing): (opcode, payload).
        Control frames in between are returned as they come instead."""
        opcode, parts = None, []
        for _ in range(max_frames):
            fin, op, payload = self.read_frame(timeout)
            if op >= 0x8:
                if opcode is None:
                    return op, payload
                continue
            if opcode is None:
                assert op != OP_CONT, "continuation without a start"
                opcode = op
            else:
                assert op == OP_CONT, "new message inside a fragmented one"
            parts.append(payload)
            if fin:
                return opcode, b"".join(parts)
        raise AssertionError("too many frames")

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None):
        self.send(frame(opcode, payload, fin=fin, mask=mask, rsv=rsv, mask_key=mask_key))


def mask_bytes(payload, key):
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None):
    """A client frame (masked unless mask=False)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    if mask_key is None:
        mask_key = os.urandom(4)
    return head + mask_key + mask_bytes(payload, mask_key)


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


def parse_close(payload):
    """(code, reason bytes) of a close payload; (None, b"") when empty."""
    if not payload:
        return None, b""
    assert len(payload) >= 2, "close payload of 1 byte"
    return struct.unpack("!H", payload[:2])[0], payload[2:]


def handshake(port, key=None, path="/", timeout=5.0, extra=(), data_after=b""):
    """Open a raw WebSocket connection: returns (Conn, HttpResponse). The
    101 and its Sec-WebSocket-Accept are checked. data_after is sent in the
    same send() call as the request."""
    if key is None:
        key = new_key()
    c = Conn(connect(port, timeout))
    try:
        c.send(upgrade_request(port, key=key, path=path, extra=extra) + data_after)
        resp = c.read_http_response(timeout, body=False)
        assert resp.status_line == "HTTP/1.1 101 Switching Protocols", resp
        assert resp.header("sec-websocket-accept") == accept_for(key), resp
    except BaseException:
        c.close()
        raise
    return c, resp


def http_exchange(port, request, timeout=5.0):
    """Send raw request bytes on a fresh connection and read one response."""
    c = Conn(connect(port, timeout))
    try:
        try:
            c.send(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading it all
        return c.read_http_response(timeout)
    finally:
        c.close()


def wait_for_eof(sock, timeout):
    """Read and discard until the peer closes; returns the seconds it took.
    Raises socket.timeout if the socket is still open after timeout."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("socket still open after %.2f s" % timeout)
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return time.monotonic() - start
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE):
                return time.monotonic() - start
            raise
        if not data:
            return time.monotonic() - start


# ---- asyncio / websockets ---------------------------------------------------

def run(coro, timeout=20.0):
    """Run a coroutine to completion within timeout (scaled)."""
    import asyncio
    return asyncio.run(asyncio.wait_for(coro, t(timeout)))


def ws_connect(port, path="/", **kw):
    """websockets.connect() to the test server with the suite's defaults:
    no size limit, no client keepalive pings, no compression."""
    import websockets
    kw.setdefault("max_size", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("compression", None)
    kw.setdefault("open_timeout", t(10))
    kw.setdefault("close_timeout", t(10))
    return websockets.connect("ws://%s:%d%s" % (HOST, port, path), **kw)


def check_sender_threads(srv, conns, threads, count, deflate=False):
    """The test server's sender threads (--send-threads/--send-conns/
    --send-count) each send count messages "<tag><thread>:<seq>" to every one
    of conns clients: each client gets all threads * count, every thread's
    in order (seq 0, 1, 2, ... with no gap), and the server says SENDERS
    DONE. With deflate, every other client takes permessage-deflate."""
    import asyncio

    async def receive(ws):
        last = {}
        for _ in range(threads * count):
            msg = await asyncio.wait_for(ws.recv(), t(20))
            th, seq = msg[1:].split(":")
            assert int(seq) == last.get(th, -1) + 1, (msg, last)
            last[th] = int(seq)
        assert last == {str(i): count - 1 for i in range(threads)}

    async def go():
        clients = [await ws_connect(srv.port, compression="deflate" if deflate and i % 2 else None)
                   .__aenter__() for i in range(conns)]
        try:
            for ws in clients:
                await receive(ws)
        finally:
            for ws in clients:
                await ws.close()
    run(go(), timeout=60)
    srv.expect(r"^SENDERS DONE$", 20)


# ---- a process's figures, from /proc (the resource-bound tests) ----------

def proc_status_kib(pid, field):
    """A KiB figure of /proc/PID/status: "VmRSS" (resident), "VmSize"
    (reserved, touched or not)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for %d" % (field, pid))


def rss_kib(pid):
    return proc_status_kib(pid, "VmRSS")


def vmsize_kib(pid):
    return proc_status_kib(pid, "VmSize")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_seconds(pid):
    """utime + stime of the whole process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
