"""Connection I/O (libwsc/io.c, libwsc/message.c) seen from raw sockets.

The reader does one read() per wake-up into a per-thread buffer, parses
complete frames in place, keeps a cut-off small frame in a per-connection
stash (control frames, and uncompressed binary frames of at most
WSC__GATHER_MAX = 64 KiB header included) and streams the rest (larger data
frames and every incomplete text frame, UTF-8 checked as it arrives). The
writer corks the replies of one input pass into one writev() (small ones
copied, echoed payloads >= 1 KiB referenced in the read buffer) and puts
what the socket does not take into a backlog.

These tests drive those paths with byte-exact expectations against the
echo example (examples/echo/echo) and, for broadcast, the test server.
"""

import contextlib
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import wsutil
from wsutil import (HOST, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                    Conn, frame, t)

from ..common.children import die_with_parent, sanitizer_env

TOP_BUILDDIR = os.environ.get("TOP_BUILDDIR", "/work/main")
ECHO_BIN = os.path.join(TOP_BUILDDIR, "examples", "echo", "echo")
BROADCAST_BIN = os.path.join(TOP_BUILDDIR, "examples", "broadcast", "broadcast")

# Library constants (libwsc/internal.h, libwsc/config.c).
GATHER_MAX = 64 * 1024          # WSC__GATHER_MAX
READ_SIZE = 256 * 1024          # WSC__READ_SIZE
DEFAULT_MAX_MESSAGE = 1 << 20   # max_message_size default (echo's default too)
DEFAULT_MAX_BUFFERED = 16 << 20  # the cap these tests give echo (--max-buffered)
LIB_MAX_BUFFERED = 4 << 20       # the library's default max_buffered

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "LeakSanitizer",
)


# ---- the echo example as a server ----------------------------------------------

class EchoServer:
    """examples/echo/echo on 127.0.0.1, port 0; stderr is collected."""

    def __init__(self, args, binary=None):
        self.args = [str(a) for a in args]
        self.proc = subprocess.Popen(
            [binary or ECHO_BIN] + self.args + ["127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=sanitizer_env(), preexec_fn=die_with_parent)
        self.pid = self.proc.pid
        self.allow_stderr = False
        self._stderr = []
        self._lock = threading.Lock()
        self._err_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_thread.start()
        self.port = None
        deadline = time.monotonic() + t(10)
        # The first stdout line names the port; read it with a deadline.
        os.set_blocking(self.proc.stdout.fileno(), False)
        buf = b""
        while b"\n" not in buf:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                raise AssertionError("echo did not start: %r %r" % (buf, self.stderr))
            try:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
            except BlockingIOError:
                chunk = None
            if chunk:
                buf += chunk
            else:
                time.sleep(0.01)
        line = buf.split(b"\n", 1)[0].decode()
        m = re.match(r"^listening on ws://127\.0\.0\.1:(\d+)/$", line)
        assert m, "unexpected first line from echo: %r" % line
        self.port = int(m.group(1))
        os.set_blocking(self.proc.stdout.fileno(), True)
        self._out_thread = threading.Thread(target=self._drain_stdout, daemon=True)
        self._out_thread.start()

    def _drain_stdout(self):
        for _ in iter(self.proc.stdout.readline, b""):
            pass

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            with self._lock:
                self._stderr.append(raw.decode("utf-8", "replace"))

    @property
    def stderr(self):
        with self._lock:
            return "".join(self._stderr)

    def stderr_count(self, pattern):
        rx = re.compile(pattern)
        with self._lock:
            return sum(1 for line in self._stderr if rx.search(line))

    def rss_kib(self):
        return wsutil.rss_kib(self.pid)

    def stop(self, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=t(timeout))
        self._err_thread.join(timeout=5)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def echo():
    """Factory: echo(*options) -> a running EchoServer. On teardown each gets
    SIGTERM and must exit 0, with nothing on stderr (no failed send, no
    sanitizer report) unless the test set allow_stderr."""
    if not os.access(ECHO_BIN, os.X_OK):
        pytest.fail("echo example not built: %s" % ECHO_BIN)
    started = []

    def start(*args, binary=None):
        srv = EchoServer(args, binary)
        started.append(srv)
        return srv

    yield start

    errors = []
    for srv in started:
        try:
            rc = srv.stop()
            if rc != 0:
                errors.append("echo %s exited with %r; stderr:\n%s"
                              % (srv.args, rc, srv.stderr[-4000:]))
        except subprocess.TimeoutExpired:
            srv.kill()
            errors.append("echo %s did not exit within 10 s of SIGTERM" % srv.args)
        err = srv.stderr
        for marker in SANITIZER_MARKERS:
            if marker in err:
                errors.append("sanitizer report on stderr:\n" + err[-8000:])
                break
        else:
            if err and not srv.allow_stderr:
                errors.append("unexpected stderr from echo:\n" + err[-4000:])
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


# ---- raw client helpers --------------------------------------------------------

def open_ws(port, rcvbuf=None, timeout=10.0):
    """A raw, handshaken WebSocket connection (TCP_NODELAY). rcvbuf, if set,
    is applied before connect (fixing the window: no autotuning)."""
    key = wsutil.new_key()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(t(timeout))
        s.connect((HOST, port))
        c = Conn(s)
        c.send(wsutil.upgrade_request(port, key=key))
        resp = c.read_http_response(timeout, body=False)
        assert resp.status_line == "HTTP/1.1 101 Switching Protocols", resp
        assert resp.header("sec-websocket-accept") == wsutil.accept_for(key), resp
        assert resp.header("sec-websocket-extensions") is None, resp
    except BaseException:
        s.close()
        raise
    return c


def first_difference(a, b):
    n = min(len(a), len(b))
    for start in range(0, n, 4096):
        if a[start:start + 4096] != b[start:start + 4096]:
            for i in range(start, min(start + 4096, n)):
                if a[i] != b[i]:
                    return i
    return n


def assert_bytes(got, want, what):
    """Equality of two byte strings with a short report (no huge diffs)."""
    if got == want:
        return
    i = first_difference(got, want)
    raise AssertionError("%s: got %d bytes, expected %d; first difference at offset %d: "
                         "got %r, expected %r"
                         % (what, len(got), len(want), i, got[i:i + 16], want[i:i + 16]))


def expect_frame(c, opcode, payload, what, timeout=10.0):
    """The next frame is one whole (FIN) frame with this opcode and payload."""
    try:
        fin, op, got = c.read_frame(timeout)
    except (socket.timeout, EOFError) as e:
        raise AssertionError("%s: no frame (%r)" % (what, e))
    assert op == opcode, "%s: opcode %#x, expected %#x (payload %r)" % (what, op, opcode,
                                                                        got[:64])
    assert fin, "%s: echo not a single FIN frame" % what
    assert_bytes(got, payload, what)


def expect_close(c, code, what, timeout=1.0):
    """The next frame is a close with this code; then the server closes TCP."""
    try:
        fin, op, payload = c.read_frame(timeout)
    except (socket.timeout, EOFError) as e:
        raise AssertionError("%s: no close %d within %.1f s (%r)"
                             % (what, code, t(timeout), e))
    assert op == OP_CLOSE, "%s: frame %#x %r instead of a close" % (what, op, payload[:64])
    got = wsutil.parse_close(payload)[0]
    assert got == code, "%s: close code %r, expected %d (%r)" % (what, got, code, payload)
    wsutil.wait_for_eof(c.sock, t(3))


def assert_silent(c, duration, what):
    """Nothing arrives (and the connection stays open) for duration seconds."""
    assert not c.buf, "%s: unexpected bytes %r" % (what, c.buf[:64])
    c.sock.settimeout(duration)
    try:
        data = c.sock.recv(65536)
    except socket.timeout:
        return
    finally:
        c.sock.settimeout(t(10))
    if data:
        raise AssertionError("%s: unexpected bytes within %.1f s: %r" % (what, duration,
                                                                         data[:64]))
    raise AssertionError("%s: the server closed the connection" % what)


def close_cleanly(c):
    try:
        c.send_frame(OP_CLOSE, wsutil.close_payload(1000))
        fin, op, payload = c.read_frame(5)
        assert op == OP_CLOSE and wsutil.parse_close(payload)[0] == 1000, (op, payload)
        wsutil.wait_for_eof(c.sock, t(3))
    finally:
        c.close()


def send_bytewise(sock, data, pause=0.0005, edge=64, every=256):
    """One send() per byte. Pauses after each of the first and last `edge`
    bytes and after every `every`-th byte in between, so the server's reads
    really end at many different offsets (header bytes especially)."""
    n = len(data)
    for i in range(n):
        sock.sendall(data[i:i + 1])
        if i < edge or i >= n - edge or i % every == 0:
            time.sleep(pause)


def random_cuts(rng, n, max_chunk=20000, tiny=0.3):
    """Chunk lengths adding up to n: some tiny (1..16), the rest up to max_chunk."""
    cuts = []
    left = n
    while left > 0:
        k = rng.randint(1, 16) if rng.random() < tiny else rng.randint(1, max_chunk)
        k = min(k, left)
        cuts.append(k)
        left -= k
    return cuts


def send_chunks(sock, data, cuts, pause=0.001):
    assert sum(cuts) == len(data)
    i = 0
    for k in cuts:
        sock.sendall(data[i:i + k])
        i += k
        time.sleep(pause)


_UTF8_CHARS = ["a", "b", " ", "\u00e9", "\u00df", "\u20ac", "\u4e2d", "\U0001d11e",
               "\U0001f600"]


def utf8_payload(n, seed):
    """Exactly n bytes of valid UTF-8 with 1- to 4-byte sequences."""
    rng = random.Random(seed)
    out, size = [], 0
    while True:
        ch = rng.choice(_UTF8_CHARS).encode()
        if size + len(ch) > n:
            break
        out.append(ch)
        size += len(ch)
    out.append(b"a" * (n - size))
    data = b"".join(out)
    assert len(data) == n
    data.decode("utf-8")
    return data


def header_len(n):
    return 2 + 4 + (0 if n < 126 else 2 if n < 65536 else 8)


# ---- 1. one byte per send() -------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535])
def test_binary_frame_one_byte_per_send(echo, size):
    srv = echo()
    c = open_ws(srv.port)
    try:
        data = random.Random(size).randbytes(size)
        send_bytewise(c.sock, frame(OP_BINARY, data))
        expect_frame(c, OP_BINARY, data, "echo of %d bytes sent bytewise" % size)
        # The connection is in a clean state afterwards: a normal frame works.
        c.send_frame(OP_BINARY, b"after")
        expect_frame(c, OP_BINARY, b"after", "frame after the bytewise one")
    finally:
        close_cleanly(c)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 3000])
def test_text_frame_one_byte_per_send(echo, size):
    """Text frames cut off are streamed (UTF-8 checked per read): multi-byte
    characters arrive split over separate reads and must still pass."""
    srv = echo()
    c = open_ws(srv.port)
    try:
        data = utf8_payload(size, seed=size)
        send_bytewise(c.sock, frame(OP_TEXT, data), edge=400)
        expect_frame(c, OP_TEXT, data, "echo of %d text bytes sent bytewise" % size)
        # A ping sent bytewise too (control frames are gathered).
        send_bytewise(c.sock, frame(OP_PING, b"bytewise-ping"))
        expect_frame(c, OP_PONG, b"bytewise-ping", "pong")
    finally:
        close_cleanly(c)


# ---- 2. many frames in one send() -----------------------------------------------

def test_2000_frames_in_one_send(echo):
    """2000 binary frames (0..3000 bytes, all length encodings, pings in
    between) in one send(): more than one 256 KiB read, so frames are cut at
    the read boundary; echoes and pongs come back in exactly this order."""
    srv = echo()
    rng = random.Random(2000)
    c = open_ws(srv.port)
    try:
        expected, wire = [], []
        for i in range(2000):
            if i % 97 == 50:
                p = b"ping-%d" % i
                wire.append(frame(OP_PING, p))
                expected.append((OP_PONG, p))
                continue
            r = rng.random()
            if r < 0.6:
                n = rng.randint(0, 200)
            elif r < 0.8:
                n = rng.choice([124, 125, 126, 127, 1023, 1024, 1025])
            else:
                n = rng.randint(1000, 3000)
            p = struct.pack("!I", i)[:n] + rng.randbytes(max(0, n - 4))
            wire.append(frame(OP_BINARY, p))
            expected.append((OP_BINARY, p))
        buf = b"".join(wire)
        assert len(buf) > READ_SIZE
        c.send(buf)
        for i, (op, p) in enumerate(expected):
            expect_frame(c, op, p, "reply %d of %d" % (i, len(expected)))
        assert_silent(c, 0.2, "after all replies")
    finally:
        close_cleanly(c)


# ---- 3. a sequence split at every offset ---------------------------------------------

def _split_sequence(kind, rng):
    """(wire bytes, expected (opcode, payload) replies) of ~300 bytes."""
    if kind == "binary":
        a, p, b = rng.randbytes(100), rng.randbytes(20), rng.randbytes(170)
        wire = frame(OP_BINARY, a) + frame(OP_PING, p) + frame(OP_BINARY, b)
        return wire, [(OP_BINARY, a), (OP_PONG, p), (OP_BINARY, b)]
    # A text message in two fragments with a ping between them, a character
    # split across the fragments, then a binary frame.
    text = utf8_payload(150, seed=rng.random())
    cut = next(i for i in range(61, 140) if (text[i] & 0xC0) == 0x80)  # inside a character
    p, b = rng.randbytes(20), rng.randbytes(60)
    wire = (frame(OP_TEXT, text[:cut], fin=False) + frame(OP_PING, p) +
            frame(OP_CONT, text[cut:], fin=True) + frame(OP_BINARY, b))
    return wire, [(OP_PONG, p), (OP_TEXT, text), (OP_BINARY, b)]


@pytest.mark.parametrize("kind", ["binary", "text-fragmented"])
def test_sequence_split_at_every_offset(echo, kind):
    srv = echo()
    rng = random.Random(kind)
    c = open_ws(srv.port)
    try:
        length = len(_split_sequence(kind, rng)[0])
        for off in range(1, length):
            wire, expected = _split_sequence(kind, rng)  # fresh payloads and masks
            assert len(wire) == length
            c.send(wire[:off])
            time.sleep(0.002)
            c.send(wire[off:])
            for j, (op, p) in enumerate(expected):
                expect_frame(c, op, p, "split at %d/%d, reply %d" % (off, len(wire), j))
        assert_silent(c, 0.1, "after the splits")
    finally:
        close_cleanly(c)


# ---- 4. sizes around the gather threshold, in random pieces ------------------------

THRESHOLD_SIZES = [
    65536 - 14 - 1, 65536 - 14, 65536 - 14 + 1,
    GATHER_MAX - 8 - 1, GATHER_MAX - 8, GATHER_MAX - 8 + 1,  # frame = 64 KiB -1/0/+1
    65535, 65536, 65536 + 100, 200 * 1024, DEFAULT_MAX_MESSAGE,
]


@pytest.mark.parametrize("size", THRESHOLD_SIZES)
def test_binary_sizes_around_gather_threshold_in_pieces(echo, size):
    srv = echo()
    rng = random.Random(size)
    c = open_ws(srv.port)
    try:
        patterns = {
            "random": None,
            "header-split": [3],
            "last-byte-late": [header_len(size) + size - 1],
            "header-then-payload": [header_len(size)],
        }
        for name, head in patterns.items():
            data = rng.randbytes(size)
            wire = frame(OP_BINARY, data)
            if head is None:
                cuts = random_cuts(rng, len(wire))
            else:
                cuts = head + random_cuts(rng, len(wire) - sum(head))
            send_chunks(c.sock, wire, cuts)
            expect_frame(c, OP_BINARY, data, "%d bytes, %s (%d pieces)"
                         % (size, name, len(cuts)))
        # A small frame right behind a large one in the same piece.
        data = rng.randbytes(size)
        wire = frame(OP_BINARY, data) + frame(OP_BINARY, b"tail")
        send_chunks(c.sock, wire, random_cuts(rng, len(wire)))
        expect_frame(c, OP_BINARY, data, "%d bytes followed by a small frame" % size)
        expect_frame(c, OP_BINARY, b"tail", "the small frame behind it")
    finally:
        close_cleanly(c)


GROW_MIN = 4 * 1024               # WSC__GROW_MIN: a partial frame read on in place


def test_gathered_frames_completed_with_the_next_frames_start(echo):
    """Partial frames of GROW_MIN or more are read on in the stash itself
    (io.c). A read that completes one frame may bring the next frame's
    start: GROW_MIN or more of it (kept in the same stash, moved to its
    front) or less (copied out to a small one). Every frame echoes whole
    and in order."""
    srv = echo()
    rng = random.Random(77)
    c = open_ws(srv.port)
    try:
        sizes = [60000, 60000, 2000, 60000, 5000]
        payloads = [rng.randbytes(n) for n in sizes]
        wires = [frame(OP_BINARY, p) for p in payloads]
        a, b, cc, d, e = wires
        pieces = [
            a[:10000],                       # a partial frame over GROW_MIN
            a[10000:] + b[:8000],            # completes a; 8000 of b stay (>= GROW_MIN)
            b[8000:30000],                   # b grows in place
            b[30000:] + cc[:1000],           # completes b; 1000 of cc (< GROW_MIN) copied out
            cc[1000:] + d[:GROW_MIN],        # cc whole, d's start exactly GROW_MIN
            d[GROW_MIN:] + e,                # d and e whole
        ]
        for piece in pieces:
            c.sock.sendall(piece)
            time.sleep(0.05)  # each piece its own read
        for i, p in enumerate(payloads):
            expect_frame(c, OP_BINARY, p, "frame %d of %d bytes" % (i, len(p)))
    finally:
        close_cleanly(c)


FRAGMENT_SIZES = [0, 1, 125, 126, GATHER_MAX - 8 - 1, GATHER_MAX - 8, GATHER_MAX - 8 + 1,
                  65535, 65536, 70000]


@pytest.mark.parametrize("kind", ["binary", "text"])
@pytest.mark.parametrize("total", [65536 + 100, 200 * 1024, DEFAULT_MAX_MESSAGE])
def test_fragmented_message_in_pieces(echo, kind, total):
    """One message in several fragments (sizes around the threshold, and
    empty ones), a ping after the first; every fragment split in random
    pieces. The pong comes first, then the whole message, exact."""
    srv = echo()
    rng = random.Random("%s-%d" % (kind, total))
    c = open_ws(srv.port)
    try:
        for rep in range(2):
            if kind == "text":
                data = utf8_payload(total, seed=rng.random())
            else:
                data = rng.randbytes(total)
            sizes, left = [], total
            while left > 0:
                n = rng.choice(FRAGMENT_SIZES + [rng.randint(1, 300000)])
                n = min(n, left)
                sizes.append(n)
                left -= n
            if len(sizes) == 1:
                sizes = [sizes[0] - 1, 1]
            frames, pos = [], 0
            for i, n in enumerate(sizes):
                frames.append(frame(OP_TEXT if kind == "text" and i == 0 else
                                    OP_BINARY if i == 0 else OP_CONT,
                                    data[pos:pos + n], fin=i == len(sizes) - 1))
                pos += n
                if i == 0:
                    frames.append(frame(OP_PING, b"mid-%d" % rep))
            for f in frames:
                send_chunks(c.sock, f, random_cuts(rng, len(f)))
            expect_frame(c, OP_PONG, b"mid-%d" % rep, "pong inside the message")
            expect_frame(c, OP_TEXT if kind == "text" else OP_BINARY, data,
                         "%s message of %d bytes in %d fragments %r"
                         % (kind, total, len(sizes), sizes))
    finally:
        close_cleanly(c)


# ---- 5. large and small mixed in one pass ---------------------------------------------

def test_mixed_large_and_small_in_one_send(echo):
    """20 KiB, 10 B, 30 KiB per send, several times; then 10 such trios in
    one send: echoes that point into the read buffer and copied small ones
    leave in one writev, in order."""
    srv = echo()
    rng = random.Random(5)
    c = open_ws(srv.port)
    try:
        for rep in range(8):
            trio = [rng.randbytes(20 * 1024), rng.randbytes(10), rng.randbytes(30 * 1024)]
            c.send(b"".join(frame(OP_BINARY, p) for p in trio))
            for j, p in enumerate(trio):
                expect_frame(c, OP_BINARY, p, "rep %d frame %d" % (rep, j))
        payloads = []
        for _ in range(10):
            payloads += [rng.randbytes(20 * 1024), rng.randbytes(10), rng.randbytes(30 * 1024)]
        c.send(b"".join(frame(OP_BINARY, p) for p in payloads))
        for j, p in enumerate(payloads):
            expect_frame(c, OP_BINARY, p, "batch frame %d" % j)
    finally:
        close_cleanly(c)


def test_many_referenced_payloads_in_one_pass(echo):
    """More referenced payloads (>= 1 KiB) than the cork's 64 iovecs hold,
    alternating with tiny ones and pings, around the 1 KiB reference
    threshold, in one send: the cork is written several times in one pass."""
    srv = echo()
    rng = random.Random(64)
    c = open_ws(srv.port)
    try:
        wire, expected = [], []
        for i in range(300):
            if i % 3 == 0:
                p = rng.randbytes(rng.choice([1022, 1023, 1024, 1025, rng.randint(1024, 4000)]))
                op = OP_BINARY
            elif i % 3 == 1:
                p = rng.randbytes(rng.randint(0, 10))
                op = OP_BINARY
            elif i % 2:
                p = b"p%d" % i
                op = OP_PING
            else:
                p = utf8_payload(rng.randint(1000, 1100), seed=i)
                op = OP_TEXT
            wire.append(frame(op, p))
            expected.append((OP_PONG if op == OP_PING else op, p))
        c.send(b"".join(wire))
        for j, (op, p) in enumerate(expected):
            expect_frame(c, op, p, "reply %d" % j)
    finally:
        close_cleanly(c)


# ---- 6. text fail-fast -----------------------------------------------------------------

@pytest.mark.parametrize("announced", [300, 50000, 200000])
def test_invalid_utf8_fails_before_the_frame_is_complete(echo, announced):
    """A text frame whose 101st byte is 0xff, with only 200 payload bytes
    sent: close 1007 within 1 s, without the rest of the frame."""
    srv = echo()
    c = open_ws(srv.port)
    try:
        payload = bytearray(utf8_payload(announced, seed=announced))
        payload[100] = 0xFF
        wire = frame(OP_TEXT, bytes(payload))
        c.send(wire[:header_len(announced) + 200])
        expect_close(c, 1007, "invalid UTF-8 in a partial %d-byte text frame" % announced)
    finally:
        c.close()


def test_invalid_utf8_in_partial_continuation_fails_fast(echo):
    srv = echo()
    c = open_ws(srv.port)
    try:
        c.send_frame(OP_TEXT, b"valid start \xe2\x82", fin=False)  # ends mid-character
        payload = bytearray(b"\xac" + b"x" * 49999)                # completes the euro sign
        payload[100] = 0xC0                                        # never valid in UTF-8
        wire = frame(OP_CONT, bytes(payload), fin=True)
        c.send(wire[:header_len(len(payload)) + 200])
        expect_close(c, 1007, "invalid UTF-8 in a partial continuation frame")
    finally:
        c.close()


@pytest.mark.parametrize("announced", [300, 50000, 200000])
def test_valid_utf8_prefix_waits_for_the_rest(echo, announced):
    """A valid prefix (ending inside a multi-byte character): no close for
    0.5 s; then the rest arrives and the echo is exact."""
    srv = echo()
    c = open_ws(srv.port)
    try:
        payload = b"a" * 98 + "\u20ac".encode() + utf8_payload(announced - 101, seed=1)
        assert len(payload) == announced
        wire = frame(OP_TEXT, payload)
        cut = header_len(announced) + 100      # after the euro sign's second byte
        c.send(wire[:cut])
        assert_silent(c, 0.5, "valid text prefix")
        c.send(wire[cut:])
        expect_frame(c, OP_TEXT, payload, "text echo after the rest arrived")
    finally:
        close_cleanly(c)


def test_truncated_utf8_at_message_end_in_pieces(echo):
    """A streamed text frame that ends inside a character: 1007 when it ends."""
    srv = echo()
    c = open_ws(srv.port)
    try:
        payload = utf8_payload(999, seed=7) + b"\xe2"
        wire = frame(OP_TEXT, payload)
        c.send(wire[:500])
        assert_silent(c, 0.3, "first half of a text frame")
        c.send(wire[500:])
        expect_close(c, 1007, "text frame ending inside a character")
    finally:
        c.close()


# The unmasking tells ASCII text apart (one OR per word or vector) and
# skips the validator for it. These guard that shortcut: a byte at or above
# 0x80 anywhere is still looked at, and ASCII that continues an open
# character is still an error.
_HIGH_LENGTHS = [1, 2, 7, 8, 23, 63, 64, 125, 126, 511, 512, 600, 3000]


@pytest.mark.parametrize("n", _HIGH_LENGTHS)
def test_text_with_one_high_byte_anywhere(echo, n):
    """ASCII text with one bad byte (a lone continuation byte 0x80) at the
    first, middle and last position: 1007 each time; a valid two-byte
    character at the same positions is echoed."""
    srv = echo()
    c = open_ws(srv.port)
    try:
        for at in sorted({0, max(0, min(n // 2, n - 2)), max(0, n - 2)}):
            good = b"a" * at + "\u00e9".encode() + b"b" * (n - at - 2) if n >= 2 else b"z"
            assert len(good) == n
            c.send_frame(OP_TEXT, good)
            expect_frame(c, OP_TEXT, good, "%d bytes with a character at %d" % (n, at))
    finally:
        close_cleanly(c)
    for at in sorted({0, n // 2, n - 1}):
        bad = bytearray(b"q" * n)
        bad[at] = 0x80
        c = open_ws(srv.port)
        try:
            c.send_frame(OP_TEXT, bytes(bad))
            expect_close(c, 1007, "%d bytes, 0x80 at %d" % (n, at))
        finally:
            c.close()


@pytest.mark.parametrize("how", ["fragments", "streamed"])
def test_ascii_after_an_open_character_is_invalid(echo, how):
    """A text message whose first part ends with a lead byte (0xE2), then a
    part of only ASCII: 1007 at once, before the message ends (bytes that
    complete the character could still follow, and would pass if the ASCII
    were skipped). fragments: a non-final continuation frame that arrives
    whole; streamed: the next 1000 bytes of one 3000-byte frame, 0.3 s on."""
    srv = echo()
    c = open_ws(srv.port)
    try:
        if how == "fragments":
            c.send_frame(OP_TEXT, b"x" * 99 + b"\xe2", fin=False)
            assert_silent(c, 0.2, "a fragment ending inside a character")
            c.send_frame(OP_CONT, b"y" * 100, fin=False)
        else:
            wire = frame(OP_TEXT, b"x" * 999 + b"\xe2" + b"y" * 1000 + b"\x82\xac" + b"z" * 998)
            cut = header_len(3000) + 1000
            c.send(wire[:cut])
            assert_silent(c, 0.3, "a streamed frame's part ending inside a character")
            c.send(wire[cut:cut + 1000])
        expect_close(c, 1007, "ASCII continuing an open character (%s)" % how)
    finally:
        c.close()


def test_binary_partial_frame_with_ff_bytes_is_not_checked(echo):
    """The same bytes as binary: no UTF-8 check, the frame is echoed."""
    srv = echo()
    c = open_ws(srv.port)
    try:
        payload = bytearray(utf8_payload(50000, seed=3))
        payload[100] = 0xFF
        wire = frame(OP_BINARY, bytes(payload))
        c.send(wire[:header_len(50000) + 200])
        assert_silent(c, 0.5, "partial binary frame")
        c.send(wire[header_len(50000) + 200:])
        expect_frame(c, OP_BINARY, bytes(payload), "binary echo")
    finally:
        close_cleanly(c)


# ---- 7. a client that does not read (the backlog) ----------------------------------------

MSG = 16 * 1024
ECHO_FRAME = 4 + MSG            # unmasked 16-bit length header


def _numbered(i, rng_bytes):
    return struct.pack("!I", i) + rng_bytes[:MSG - 4]


def test_unread_echoes_wait_in_the_backlog(echo):
    """800 x 16 KiB (13 MB of echoes, under the 16 MiB max_buffered cap, far
    over the kernel's buffers: a 64 KiB receive buffer here, tcp_wmem max
    there) sent without reading; then every echo arrives, in order."""
    srv = echo("--max-buffered", str(DEFAULT_MAX_BUFFERED))
    n = 800
    assert n * ECHO_FRAME < DEFAULT_MAX_BUFFERED - 512 * 1024
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        wmem_max = int(f.read().split()[2])
    if n * ECHO_FRAME < wmem_max + 4 * 1024 * 1024:
        pytest.skip("tcp_wmem max %d: the kernel could hold every echo" % wmem_max)
    c = open_ws(srv.port, rcvbuf=65536)
    try:
        rng = random.Random(7)
        block = rng.randbytes(MSG + 4096)
        payloads = [_numbered(i, block[i % 4096:]) for i in range(n)]
        rss_before = srv.rss_kib()
        wire = b"".join(frame(OP_BINARY, p) for p in payloads)
        c.send(wire)
        # Wait for the server to have read everything: its memory then
        # holds the part of the echoes the sockets do not.
        backlog_kib = (n * ECHO_FRAME - wmem_max - 2 * 65536) // 1024
        deadline = time.monotonic() + t(10)
        grown = 0
        while time.monotonic() < deadline:
            grown = srv.rss_kib() - rss_before
            if grown >= backlog_kib // 2:
                break
            time.sleep(0.05)
        assert grown >= backlog_kib // 2, \
            "server memory grew by %d KiB only: no backlog?" % grown
        for i, p in enumerate(payloads):
            expect_frame(c, OP_BINARY, p, "echo %d of %d" % (i, n))
        c.send_frame(OP_BINARY, b"last")
        expect_frame(c, OP_BINARY, b"last", "echo after the backlog drained")
    finally:
        close_cleanly(c)


def server_unread_bytes(port):
    """Bytes waiting unread in the receive queue of the server's established
    socket(s) on port (/proc/net/tcp and tcp6: local port, state 01)."""
    total = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state, queues = fields[1], fields[3], fields[4]
                    if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                        total += int(queues.split(":")[1], 16)
        except FileNotFoundError:
            pass
    return total


def test_unread_echoes_beyond_the_cap_pause_reading_and_lose_nothing(echo):
    """Past max_buffered ws_conn_send fails with WS_EAGAIN: echo keeps that
    echo, pauses reading (ws_conn_pause_reading) and resumes on drain. So a
    client that sends far more than the cap without reading gets every echo,
    in order and exact, and the server's memory stays near the cap (the rest
    waits in the client's socket, not in the server)."""
    cap = 3 << 20
    srv = echo("--max-buffered", str(cap))
    n = 1500                           # 24.6 MB of echoes, 12x the cap
    c = open_ws(srv.port, rcvbuf=65536)
    try:
        rng = random.Random(8)
        block = rng.randbytes(MSG + 4096)
        payloads = [_numbered(i, block[i % 4096:]) for i in range(n)]
        wire = b"".join(frame(OP_BINARY, p) for p in payloads)
        rss_before = srv.rss_kib()
        sender = threading.Thread(target=c.send, args=(wire,), daemon=True)
        sender.start()
        # The server stopped reading: the client's send blocks, or (when the
        # server's receive buffer grew large enough to take it all: tcp_rmem's
        # maximum is 32 MiB here) the rest waits unread in the server's socket.
        time.sleep(t(1))
        unread = server_unread_bytes(srv.port)
        print("server socket holds %d KiB unread; client still sending: %s"
              % (unread // 1024, sender.is_alive()))
        assert sender.is_alive() or unread >= 1 << 20, \
            "the server read everything: no flow control"
        grown = srv.rss_kib() - rss_before
        print("server RSS grew by %d KiB while paused (cap %d KiB)" % (grown, cap // 1024))
        assert grown < 4 * cap // 1024 + 8192, "server holds %d KiB" % grown
        for i, p in enumerate(payloads):
            expect_frame(c, OP_BINARY, p, "echo %d of %d" % (i, n))
        sender.join(t(10))
        assert not sender.is_alive()
        c.send_frame(OP_BINARY, b"last")
        expect_frame(c, OP_BINARY, b"last", "echo after the backlog drained")
    finally:
        close_cleanly(c)


# ---- 8. a slow huge frame does not hold up others ------------------------------------------

def test_slow_huge_frame_does_not_delay_other_connections(echo):
    srv = echo()
    slow = open_ws(srv.port)
    fast = open_ws(srv.port)
    data = random.Random(8).randbytes(DEFAULT_MAX_MESSAGE)
    wire = frame(OP_BINARY, data)
    started = threading.Event()
    done = threading.Event()
    errors = []

    def trickle():
        try:
            for k, i in enumerate(range(0, len(wire), 64)):
                slow.sock.sendall(wire[i:i + 64])
                if k == 64:
                    started.set()
                if k % 16 == 15:
                    time.sleep(0.001)
        except BaseException as e:  # noqa: B902 - reported by the main thread
            errors.append(e)
        finally:
            started.set()
            done.set()

    th = threading.Thread(target=trickle, daemon=True)
    th.start()
    try:
        assert started.wait(t(5))
        worst = 0.0
        for i in range(100):
            p = b"fast %d" % i
            t0 = time.monotonic()
            fast.send_frame(OP_BINARY, p)
            expect_frame(fast, OP_BINARY, p, "fast round trip %d" % i, timeout=5)
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.004)
        still_trickling = not done.is_set()
        # Generous for loaded CI machines: blocked behind the slow frame would
        # mean about 1.3 s, the time the slow frame takes.
        assert worst < t(0.5), "worst round trip %.3f s" % worst
        assert still_trickling, "the slow frame was done before the round trips"
        assert done.wait(t(20)), "the slow sender did not finish"
        th.join(t(5))
        assert not errors, errors
        expect_frame(slow, OP_BINARY, data, "the slowly sent 1 MiB frame", timeout=10)
    finally:
        done.wait(t(20))
        close_cleanly(fast)
        close_cleanly(slow)


# ---- broadcast queued behind a connection's own replies ---------------------------------------

def test_broadcast_keeps_order_with_own_replies(server):
    """The test server: in one send(), echoes and broadcasts alternate. The
    sender gets echo, broadcast, echo, ... exactly in call order (the
    broadcast is queued behind its corked echoes); another client gets the
    broadcasts in order; each broadcast leaves once per connection."""
    srv = server("--broadcast-on-message", "--no-deflate")
    a, _ = wsutil.handshake(srv.port)
    b, _ = wsutil.handshake(srv.port)
    srv.wait_count(r"^OPEN ", 2)
    rng = random.Random(9)
    try:
        wire, expect_a, expect_b = [], [], []
        for i in range(200):
            e = rng.randbytes(rng.choice([5, 1500, 20000]))
            x = b"b%d:" % i + bytes(rng.choice(b"abcdefgh") for _ in range(
                rng.choice([10, 700, 3000])))
            wire.append(frame(OP_BINARY, e))
            wire.append(frame(OP_TEXT, b"bcast:" + x))
            expect_a += [(OP_BINARY, e), (OP_TEXT, x)]
            expect_b.append((OP_TEXT, x))
        a.send(b"".join(wire))
        for j, (op, p) in enumerate(expect_a):
            expect_frame(a, op, p, "sender reply %d" % j)
        for j, (op, p) in enumerate(expect_b):
            expect_frame(b, op, p, "other client broadcast %d" % j)
        srv.wait_count(r"^CMD bcast rc=0$", 200)
        assert srv.count(r"^CMD bcast rc=(?!0$)") == 0
        assert_silent(a, 0.2, "sender after the replies")
        assert_silent(b, 0.2, "other client after the broadcasts")
    finally:
        close_cleanly(a)
        close_cleanly(b)


# ---- output a peer provokes without reading is bounded ------------------------------

def _flood_until_blocked(sock, chunk, limit):
    """Send chunk until the server stops taking input (a send times out) or
    limit bytes went out; returns the bytes sent. (Not scaled for slow
    sanitizer builds beyond 3 s: an HTTP connection that sits unanswered
    longer meets the 5 s keep-alive timeout.)"""
    sent = 0
    sock.settimeout(min(t(2), 3.0))
    try:
        while sent < limit:
            sent += sock.send(chunk)
    except socket.timeout:
        pass
    return sent


@pytest.mark.parametrize("kind", ["ping", "http"])
def test_unread_replies_do_not_grow_server_memory(echo, kind):
    """A ping flood (pongs) or pipelined HTTP requests (404s) from a peer that
    never reads: once 1.5 x max_buffered (4 MiB by default) waits for the
    socket the server stops reading, so its memory stays near the cap
    instead of growing with the input; and the connection still works once
    the peer reads."""
    # echo answers plain HTTP with 426 and closes; examples/broadcast serves
    # keep-alive requests (404 for this path), so it answers every one.
    srv = echo() if kind == "ping" else echo(binary=BROADCAST_BIN)
    rss_before = srv.rss_kib()
    limit = 200 * 1024 * 1024
    if kind == "ping":
        c = open_ws(srv.port, rcvbuf=4096)
        sock = c.sock
        chunk = frame(OP_PING, b"A" * 125) * 1000
    else:
        sock = socket.create_connection((HOST, srv.port))
        chunk = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" * 1000
    sent = _flood_until_blocked(sock, chunk, limit)
    time.sleep(0.3)
    grown_kib = srv.rss_kib() - rss_before
    assert sent < limit, "the server read %d bytes without its replies being read" % sent
    # The cap plus one read pass's worth of replies, and allocator slack.
    # (Sanitizers change what RSS means: ASan keeps freed memory in a
    # 256 MiB quarantine, TSan shadows every allocation. There only the stop
    # in reading, checked above, is asserted.)
    if os.environ.get("SANITIZER", "none") in ("", "none"):
        assert grown_kib < 48 * 1024, "server memory grew by %d KiB" % grown_kib
    # Reading drains it, and the server answers what it had left unread.
    # (Ask only for what was surely held back: the throttle's threshold,
    # 1.5 x the library's default max_buffered.)
    want = LIB_MAX_BUFFERED * 3 // 2
    sock.settimeout(t(10))
    got = 0
    deadline = time.monotonic() + t(20)
    try:
        while got < want and time.monotonic() < deadline:
            data = sock.recv(1 << 20)
            if not data:
                break
            got += len(data)
    except ConnectionResetError:
        pass
    assert got >= want, "only %d bytes of replies came back" % got
    sock.close()


# ---- 9. edge-triggered reads: input no new arrival announces (watch.c) -----------

@contextlib.contextmanager
def _stopped(srv):
    """The server process stopped (SIGSTOP) inside, so what the client
    sends is all in the server's socket before it reads again."""
    os.kill(srv.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(srv.pid, signal.SIGCONT)


def _grow_server_rcvbuf(c):
    """Echo a few 2 MiB messages: the server's receive buffer autotunes
    past 1 MiB, so a 1 MiB burst is all held by the kernel."""
    for i in range(6):
        p = bytes([i]) * (2 << 20)
        c.send_frame(OP_BINARY, p)
        expect_frame(c, OP_BINARY, p, "warm-up echo %d" % i)


def _send_all_nonblocking(sock, data):
    """Send what the kernel takes now; the count sent."""
    sock.setblocking(False)
    sent = 0
    try:
        while sent < len(data):
            sent += sock.send(data[sent:])
    except BlockingIOError:
        pass
    return sent


def _server_recv_q(srv, peer_port):
    """Bytes queued unread in the server's socket for the client on
    peer_port; None once the server process no longer holds that socket
    (an orphaned FIN-WAIT-2 socket stays listed, but with no process)."""
    out = subprocess.run(["ss", "-tnpH", "sport = :%d" % srv.port], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if (len(f) >= 5 and f[4].endswith(":%d" % peer_port) and
                "pid=%d," % srv.pid in line):
            return int(f[1])
    return None


def test_input_beyond_one_read_already_queued_is_read_on(echo):
    """1 MiB arrives while the server is stopped, all of it before the
    server's next read (256 KiB, READ_SIZE). Nothing more arrives, so no
    new edge announces the rest: the server must read on by itself and
    echo the whole message. (A warm-up first grows the server's receive
    buffer past the message, so the kernel really holds it all.)"""
    srv = echo("--max-message", 4 << 20, "--max-buffered", 64 << 20)
    c = open_ws(srv.port)
    try:
        _grow_server_rcvbuf(c)
        payload = random.Random(9).randbytes(1 << 20)
        wire = frame(OP_BINARY, payload)
        with _stopped(srv):
            sent = _send_all_nonblocking(c.sock, wire)
            c.sock.settimeout(t(10))
            assert sent == len(wire), \
                "the stopped server's socket took only %d of %d bytes" % (sent, len(wire))
            time.sleep(0.2)  # on the wire and queued before the server runs again
        assert len(wire) > READ_SIZE
        expect_frame(c, OP_BINARY, payload, "echo of the queued 1 MiB", timeout=5.0)
    finally:
        close_cleanly(c)


@pytest.mark.parametrize("ending", ["fin", "rst"])
def test_data_and_end_of_stream_in_one_arrival(echo, ending):
    """A frame and the end of the stream (FIN, or a reset) arrive together
    while the server is stopped: one read takes the frame, and the end
    must still be seen without anything else arriving. After a FIN the
    frame is echoed and the server closes; after a reset it lets go."""
    srv = echo()
    c = open_ws(srv.port)
    pid_fds = "/proc/%d/fd" % srv.pid
    fds_open = len(os.listdir(pid_fds))
    with _stopped(srv):
        c.send_frame(OP_BINARY, b"last words")
        if ending == "fin":
            c.sock.shutdown(socket.SHUT_WR)
        else:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.sock.close()
        time.sleep(0.2)
    if ending == "fin":
        expect_frame(c, OP_BINARY, b"last words", "echo before the FIN", timeout=5.0)
        wsutil.wait_for_eof(c.sock, t(2))
        c.close()
    # The connection's socket is closed by the server within 2 s either way.
    deadline = time.monotonic() + t(2)
    while len(os.listdir(pid_fds)) >= fds_open and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(os.listdir(pid_fds)) < fds_open, \
        "the server still holds the connection's socket after its peer's %s" % ending


def test_lingering_server_reads_on_input_already_queued(echo):
    """The server answers a close, half-closes and lingers, discarding
    input until the client's FIN (WSC__LINGER_MS, 2 s, at most). Then 1 MiB
    arrives while it is stopped, all of it in the server's socket. Nothing
    more arrives and the client sends no FIN, so no new edge announces what
    is left after the first 256 KiB read: the lingering reads must go on by
    themselves and leave nothing queued in the server's socket."""
    srv = echo("--max-message", 4 << 20, "--max-buffered", 64 << 20)
    c = open_ws(srv.port)
    try:
        peer_port = c.sock.getsockname()[1]
        _grow_server_rcvbuf(c)
        c.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        _fin, op, body = c.read_frame(5.0)
        assert (op, body[:2]) == (OP_CLOSE, struct.pack("!H", 1000)), "the close is answered"
        junk = frame(OP_BINARY, bytes(1 << 20))  # after the close: never parsed
        with _stopped(srv):
            sent = _send_all_nonblocking(c.sock, junk)
            c.sock.settimeout(t(10))
            assert sent == len(junk), \
                "the stopped server's socket took only %d of %d bytes" % (sent, len(junk))
            time.sleep(0.2)
            # All of it is in the server's socket: no later arrival brings an edge.
            assert _server_recv_q(srv, peer_port) == len(junk)
        assert len(junk) > READ_SIZE
        deadline = time.monotonic() + t(1)
        queued = _server_recv_q(srv, peer_port)
        while queued and time.monotonic() < deadline:
            time.sleep(0.02)
            queued = _server_recv_q(srv, peer_port)
        assert queued == 0, ("%s bytes still unread in the lingering server's socket"
                             % queued if queued else "the server let go of the socket "
                             "before the client's FIN (linger ended early)")
        c.sock.shutdown(socket.SHUT_WR)
        wsutil.wait_for_eof(c.sock, t(2))
    finally:
        c.close()


# ---- 10. small whole frames (message.c's small_frame) ------------------------------

@pytest.mark.parametrize("kind", ["text", "binary"])
@pytest.mark.parametrize("limit", [1, 100, 124, 125])
def test_small_frame_at_and_over_a_small_max_message(echo, kind, limit):
    """A max_message_size of at most 125 bytes is checked on the small-frame
    path too: a frame at the limit is echoed; one byte over fails the
    connection with 1009 (over 125 that frame takes the 16-bit length)."""
    srv = echo("--max-message", limit)
    op = OP_TEXT if kind == "text" else OP_BINARY
    c = open_ws(srv.port)
    try:
        for n in sorted({0, limit // 2, limit}):
            p = b"a" * n
            c.send_frame(op, p)
            expect_frame(c, op, p, "echo of %d bytes under max_message %d" % (n, limit))
        c.send_frame(op, b"a" * (limit + 1))
        expect_close(c, 1009, "%d bytes over max_message %d" % (limit + 1, limit))
    finally:
        c.close()


def test_small_frames_between_other_frames_keep_their_state(echo):
    """Small frames taken whole, then a fragmented text message (which must
    not take the small path: a message is in progress), a ping inside it,
    an RSV1 frame (refused: no deflate), all in one send."""
    srv = echo("--no-deflate")
    c = open_ws(srv.port)
    try:
        wire = (frame(OP_TEXT, b"one") + frame(OP_BINARY, b"\xff\x00") +
                frame(OP_TEXT, b"fr", fin=False) + frame(OP_PING, b"p") +
                frame(OP_CONT, b"ag", fin=True) + frame(OP_TEXT, "\u00e9".encode()))
        c.send(wire)
        expect_frame(c, OP_TEXT, b"one", "first small frame")
        expect_frame(c, OP_BINARY, b"\xff\x00", "second small frame")
        expect_frame(c, OP_PONG, b"p", "pong inside the fragmented message")
        expect_frame(c, OP_TEXT, b"frag", "the fragmented message")
        expect_frame(c, OP_TEXT, "\u00e9".encode(), "small frame after it")
        # A small frame inside a message in progress is a protocol error.
        c.send(frame(OP_TEXT, b"x", fin=False) + frame(OP_TEXT, b"y"))
        expect_close(c, 1002, "a new message inside a fragmented one")
    finally:
        c.close()


@pytest.mark.parametrize("bad", [b"\xc3", b"ok\xff", b"\xed\xa0\x80"])
def test_small_text_frame_invalid_utf8(echo, bad):
    srv = echo()
    c = open_ws(srv.port)
    try:
        c.send(frame(OP_TEXT, b"fine") + frame(OP_TEXT, bad) + frame(OP_TEXT, b"never"))
        expect_frame(c, OP_TEXT, b"fine", "the valid frame before")
        expect_close(c, 1007, "invalid UTF-8 %r" % bad)
    finally:
        c.close()


def test_small_frame_with_rsv_bit_is_refused(echo):
    srv = echo("--no-deflate")
    c = open_ws(srv.port)
    try:
        c.send(frame(OP_TEXT, b"x", rsv=4))  # RSV1
        expect_close(c, 1002, "RSV1 without deflate")
    finally:
        c.close()
