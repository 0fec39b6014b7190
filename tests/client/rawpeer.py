"""Raw-socket servers for the client tests: a listening socket on 127.0.0.1
whose connections are handled by a test function in a thread, plus the
server side of the wire (reading the client's upgrade request and masked
frames). Every blocking call has a deadline."""

import base64
import hashlib
import os
import socket
import struct
import threading
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


def accept_for(key):
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode("ascii")


def unmask(payload, key):
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def server_frame(opcode, payload=b"", fin=True, mask_key=None):
    """A frame as a server sends it: unmasked unless mask_key is given."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask_key is not None else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask_key is None:
        return head + payload
    return head + mask_key + unmask(payload, mask_key)


class Request:
    def __init__(self, request_line, headers, raw):
        self.request_line = request_line
        self.headers = headers            # [(lower-case name, value)]
        self.raw = raw

    def header(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return None

    @property
    def key(self):
        return self.header("sec-websocket-key")


class Frame:
    def __init__(self, fin, rsv, opcode, masked, mask_key, payload):
        self.fin, self.rsv, self.opcode = fin, rsv, opcode
        self.masked, self.mask_key, self.payload = masked, mask_key, payload

    def __repr__(self):
        return "Frame(op=%#x fin=%s masked=%s key=%r len=%d)" % (
            self.opcode, self.fin, self.masked, self.mask_key, len(self.payload))


class Peer:
    """One accepted connection, from the server's side."""

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
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, deadline):
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

    def read_request(self, timeout=5.0):
        deadline = time.monotonic() + t(timeout)
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise AssertionError("request head too long")
            if not self._fill(deadline):
                raise EOFError("EOF before a complete request head: %r" % self.buf)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        return Request(lines[0], headers, head)

    def accept(self, timeout=5.0, extra=(), status="101 Switching Protocols",
               accept=None, omit=(), version="HTTP/1.1"):
        """Read the upgrade request and answer it (by default correctly).
        Returns the Request."""
        req = self.read_request(timeout)
        headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                   ("Sec-WebSocket-Accept", accept if accept is not None
                    else accept_for(req.key or ""))]
        headers = [(n, v) for (n, v) in headers if n.lower() not in omit]
        headers += list(extra)
        self.send(("%s %s\r\n" % (version, status)
                   + "".join("%s: %s\r\n" % h for h in headers) + "\r\n"))
        return req

    def read_frame(self, timeout=5.0):
        b0, b1 = self.read_exact(2, timeout)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self.read_exact(2, timeout))
        elif n == 127:
            (n,) = struct.unpack("!Q", self.read_exact(8, timeout))
        masked = bool(b1 & 0x80)
        key = self.read_exact(4, timeout) if masked else None
        payload = self.read_exact(n, timeout) if n else b""
        if masked:
            payload = unmask(payload, key)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, masked, key, payload)

    def wait_eof(self, timeout=5.0):
        """Read and discard until the client closes; raises on timeout."""
        deadline = time.monotonic() + t(timeout)
        while not self.eof:
            self._fill(deadline)
        self.buf = b""


class RawServer:
    """Listen on 127.0.0.1:port (0: any); every accepted connection runs
    handler(peer) in its own thread. Exceptions in handlers are kept and
    re-raised by check()."""

    def __init__(self, handler, port=0):
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.errors = []
        self.accepted = 0
        self.done = threading.Event()      # set when a handler returns
        self._stop = threading.Event()
        self._threads = []
        self._peers = []
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.accepted += 1
            peer = Peer(s)
            self._peers.append(peer)
            th = threading.Thread(target=self._run, args=(peer,), daemon=True)
            self._threads.append(th)
            th.start()

    def _run(self, peer):
        try:
            self.handler(peer)
        except BaseException as e:  # noqa: B902 - reported by check()
            self.errors.append(e)
        finally:
            peer.close()
            self.done.set()

    def wait_done(self, timeout=10.0):
        assert self.done.wait(t(timeout)), "raw server handler did not finish"

    def check(self):
        if self.errors:
            raise self.errors[0]

    def close(self):
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for th in self._threads:
            th.join(t(10))
        for p in self._peers:
            p.close()
        self._thread.join(5)
