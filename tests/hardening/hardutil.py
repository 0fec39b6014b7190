"""Helpers for the hardening tests: child processes with collected output,
and /proc figures (RSS, open fds, CPU time) of a server under attack."""

import os
import re
import signal
import subprocess
import threading
import time

from wsutil import SCALE, cpu_seconds, fd_count, rss_kib, t  # noqa: F401 (re-exported)

# hardutil is imported as a top-level module (tests/hardening is on
# sys.path), so the shared helpers come by their package name.
from tests.common.children import sanitizer_env

BUILD = os.environ.get("TOP_BUILDDIR", "/work/main")
SANITIZER = os.environ.get("SANITIZER", "none") or "none"
SANITIZED = SANITIZER != "none"
MARKERS = ("AddressSanitizer", "runtime error:", "ThreadSanitizer", "LeakSanitizer")


def example(name, binary=None):
    return os.path.join(BUILD, "examples", name, binary or name)


def helper_binary(name):
    return os.path.join(BUILD, "tests", "servers", name)


class Proc:
    """A child whose stdout lines a thread collects (as they come)."""

    def __init__(self, argv):
        self.argv = [str(a) for a in argv]
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=sanitizer_env())
        self.pid = self.p.pid
        self.lines = []
        self.err = []
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._read, args=(self.p.stdout, True),
                                          daemon=True),
                         threading.Thread(target=self._read, args=(self.p.stderr, False),
                                          daemon=True)]
        for th in self._threads:
            th.start()

    def _read(self, pipe, out):
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                (self.lines if out else self.err).append(line)
                self._cond.notify_all()

    def expect(self, pattern, timeout=5.0):
        """The first stdout line matching pattern (scaled timeout)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + t(timeout)
        with self._cond:
            while True:
                for line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not self._alive_readers()):
                    raise AssertionError("%s: no line matching %r within %.1f s\nstdout:\n%s\n"
                                         "stderr:\n%s" % (self.argv[0], pattern, t(timeout),
                                                          "\n".join(self.lines[-30:]),
                                                          "\n".join(self.err[-30:])))
                self._cond.wait(min(left, 0.2))

    def _alive_readers(self):
        return any(th.is_alive() for th in self._threads)

    def wait(self, timeout):
        rc = self.p.wait(timeout=timeout)
        for th in self._threads:
            th.join(timeout=5)
        return rc

    def stop(self, timeout=10.0):
        """SIGTERM (if still running) and wait; SIGKILL as a last resort."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.wait(t(timeout))
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.wait(10)

    def sanitizer_report(self):
        err = "\n".join(self.err)
        return err[-6000:] if any(m in err for m in MARKERS) else ""


def listening_port(p):
    """The port an example printed ("listening on ws://127.0.0.1:PORT/")."""
    return int(p.expect(r"listening on ws://127\.0\.0\.1:(\d+)/").group(1))
