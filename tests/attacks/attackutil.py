"""Figures and bystander checks for the attack-class tests.

Every test measures the server process from /proc (resident memory, open
descriptors, CPU time), prints the figures, and checks that a well-behaved
client is still served while the attack is in progress.
"""
import os
import time

import wsutil
from wsutil import OP_BINARY, OP_CLOSE, OP_TEXT, cpu_seconds, fd_count, rss_kib, vmsize_kib

SANITIZER = os.environ.get("SANITIZER", "none") or "none"
# Sanitizers keep shadow memory and quarantines: memory bounds are looser.
MEM_SLACK = 1 if SANITIZER == "none" else 4


class Figures:
    """Server figures before an attack; report() prints before/after."""

    def __init__(self, srv, label):
        self.pid, self.label = srv.pid, label
        self.rss0, self.fds0, self.cpu0 = rss_kib(self.pid), fd_count(self.pid), cpu_seconds(self.pid)
        self.peak = self.rss0

    def sample(self):
        self.peak = max(self.peak, rss_kib(self.pid))
        return self.peak

    def report(self, **extra):
        self.sample()
        self.rss1, self.fds1 = rss_kib(self.pid), fd_count(self.pid)
        self.cpu = cpu_seconds(self.pid) - self.cpu0
        more = "".join(" %s=%s" % kv for kv in extra.items())
        print("FIGURES %s: rss %d -> %d KiB (peak %d, growth %d), fds %d -> %d, cpu %.2f s%s"
              % (self.label, self.rss0, self.rss1, self.peak, self.peak - self.rss0,
                 self.fds0, self.fds1, self.cpu, more))
        return self

    def assert_growth_below(self, kib):
        bound = kib * MEM_SLACK
        assert self.peak - self.rss0 <= bound, (
            "%s: server RSS grew by %d KiB (bound %d KiB)" % (self.label, self.peak - self.rss0, bound))

    def wait_fds_back(self, timeout=5.0):
        """Open descriptors return to the baseline (connections released)."""
        deadline = time.monotonic() + wsutil.t(timeout)
        while True:
            n = fd_count(self.pid)
            if n <= self.fds0 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert n <= self.fds0, "%s: %d fds open, %d before" % (self.label, n, self.fds0)
        return n


class Bystander:
    """A correct client, connected before the attack: echo() checks that it
    is still served (a round trip on its connection and on a fresh one)."""

    def __init__(self, port):
        self.port = port
        self.conn, _ = wsutil.handshake(port)
        self.rounds = 0

    def echo(self, timeout=5.0, fresh=True):
        conns = [(self.conn, False)]
        if fresh:
            conns.append((wsutil.handshake(self.port)[0], True))
        for conn, fresh in conns:
            try:
                payload = os.urandom(16).hex().encode()
                conn.send_frame(OP_TEXT, payload)
                op, data = conn.read_message(timeout)
                assert (op, data) == (OP_TEXT, payload), "bystander got %r" % ((op, data[:80]),)
                if fresh:
                    conn.send_frame(OP_CLOSE, wsutil.close_payload(1000))
                    conn.read_until_eof(timeout)
            finally:
                if fresh:
                    conn.close()
        self.rounds += 1

    def close(self):
        try:
            self.conn.send_frame(OP_CLOSE, wsutil.close_payload(1000))
            self.conn.read_until_eof(5.0)
        finally:
            self.conn.close()


def expect_close(conn, code, timeout=5.0):
    """Read frames until the server's close; assert its code and the EOF
    that follows (after answering it)."""
    for _ in range(10000):
        fin, op, payload = conn.read_frame(timeout)
        if op == OP_CLOSE:
            got, _reason = wsutil.parse_close(payload)
            assert got == code, "close code %r, expected %d (reason %r)" % (got, code, _reason)
            try:
                conn.send_frame(OP_CLOSE, payload[:2])
            except OSError:
                pass
            wsutil.wait_for_eof(conn.sock, wsutil.t(timeout))
            return
    raise AssertionError("no close frame")


def scaled(n, floor=1):
    """A count, smaller in slow (ThreadSanitizer) builds."""
    return max(floor, int(n / wsutil.SCALE))


__all__ = ["Figures", "Bystander", "expect_close", "scaled", "rss_kib", "fd_count",
           "cpu_seconds", "vmsize_kib", "OP_BINARY", "OP_TEXT", "SANITIZER"]
