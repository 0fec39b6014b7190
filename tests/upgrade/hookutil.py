"""Helpers for tests/upgrade (a unique module name: suites may share one
pytest process): start a server binary on 127.0.0.1 port 0,
read its event lines, and on teardown stop it with SIGTERM, requiring exit 0
and no sanitizer report.

Binaries are found through $TOP_BUILDDIR (default: this source tree)."""

import os
import queue
import re
import signal
import subprocess
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("TOP_BUILDDIR", os.path.dirname(os.path.dirname(HERE)))
UPGRADE_SERVER = os.path.join(BUILD, "tests", "servers", "wsc-upgrade-server")
CHAT = os.path.join(BUILD, "examples", "chat", "chat")

def make_cert(tmp_path):
    """A throwaway self-signed certificate for 127.0.0.1: (cert, key) paths
    in tmp_path; the test skips when openssl cannot make one."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("openssl cannot make a certificate: %s" % r.stderr[-300:])
    return cert, key


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "LeakSanitizer")


class Proc:
    def __init__(self, argv):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.lines = queue.Queue()
        self.seen = []
        self.stderr = b""
        threading.Thread(target=self._read, daemon=True).start()
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._err.start()
        m = self.expect(r"^LISTENING (\d+)$", timeout=10)
        self.port = int(m.group(1))

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def _read_err(self):
        self.stderr = self.proc.stderr.read()

    def expect(self, pattern, timeout=5):
        """The next line matching pattern (earlier non-matching lines are kept)."""
        rx = re.compile(pattern)
        for line in self.seen:
            m = rx.search(line)
            if m:
                self.seen.remove(line)
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r}; unmatched: {self.seen}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            m = rx.search(line)
            if m:
                return m
            self.seen.append(line)

    def no_line(self, pattern, wait=0.3):
        time.sleep(wait)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        assert not any(re.search(pattern, s) for s in self.seen), self.seen

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not stop within 10 s")
        self._err.join(5)
        err = self.stderr.decode(errors="replace")
        assert not any(m in err for m in SANITIZER_MARKERS), err
        assert rc == 0, f"exit {rc}: {err}"


