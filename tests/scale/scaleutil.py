"""Helpers for the scale-out tests: real peers (redis-server, nginx, haproxy)
and libwsc backends, each started by the test on 127.0.0.1 with its files in
a temporary directory, and stopped by it.

Binaries are found through $TOP_BUILDDIR (default: this source tree).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

# scaleutil is imported as a top-level module (tests/scale is on sys.path),
# so the shared helpers come by their package name, not relatively.
from tests.common.children import sanitizer_env
from tests.common.sockio import free_port  # noqa: F401 (the scale tests take it from here)

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("TOP_SRCDIR", os.path.dirname(os.path.dirname(HERE)))
TOP_BUILDDIR = os.environ.get("TOP_BUILDDIR", TOP_SRCDIR)
SERVER_BIN = os.path.join(TOP_BUILDDIR, "tests", "servers", "wsc-test-server")
ECHO_BIN = os.path.join(TOP_BUILDDIR, "examples", "echo", "echo")
HOST = "127.0.0.1"

# Timeouts are multiplied by this under slow sanitizer builds.
SCALE = 3.0 if "thread" in os.environ.get("SANITIZER", "") else (
    2.0 if os.environ.get("SANITIZER", "none") != "none" else 1.0)

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "LeakSanitizer")


def t(seconds):
    return seconds * SCALE


def wait_port(port, timeout):
    """True once something accepts on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Proc:
    """A child process whose stdout lines can be waited for."""

    def __init__(self, argv, cwd=None, env=None):
        e = sanitizer_env()
        if env:
            e.update(env)
        self.argv = argv
        self.proc = subprocess.Popen(argv, cwd=cwd, env=e, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        self.err = []
        self._seen = 0
        self._cond = threading.Condition()
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True)]
        for th in self._pumps:
            th.start()

    def _pump(self, f, into):
        for raw in iter(f.readline, b""):
            with self._cond:
                into.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def expect(self, regex, timeout=10):
        """The next stdout line (after the last one matched) matching regex."""
        deadline = time.monotonic() + t(timeout)
        rx = re.compile(regex)
        with self._cond:
            while True:
                for i in range(self._seen, len(self.lines)):
                    m = rx.search(self.lines[i])
                    if m:
                        self._seen = i + 1
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and
                                 self._seen >= len(self.lines)):
                    if self.proc.poll() is not None:
                        time.sleep(0.1)
                    raise AssertionError("%s: no line matching %r; stdout %r stderr %r" % (
                        os.path.basename(self.argv[0]), regex, self.lines[-10:],
                        self.err[-10:]))
                self._cond.wait(min(left, 0.2))

    def wait(self, timeout=10):
        """Exit status, once the process and its output are done."""
        rc = self.proc.wait(timeout=t(timeout))
        for th in self._pumps:
            th.join(t(timeout))
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal the process and wait; returns its exit status."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not exit after %s" % (self.argv[0], sig))

    def sanitizer_report(self):
        text = "\n".join(self.err)
        return text if any(m in text for m in SANITIZER_MARKERS) else None


def start_server(argv, listening):
    """A libwsc program, once it printed the line matching listening (its
    port is group 1, kept as .port). One that stopped because this build
    lacks a feature it was asked for (WS_EUNSUPPORTED, e.g. --redis without
    hiredis) skips the test."""
    p = Proc(argv)
    try:
        m = p.expect(listening, timeout=10)
    except AssertionError:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.stop(signal.SIGKILL)
        missing = [line for line in p.err if "not supported by this build" in line]
        if missing:
            pytest.skip("%s (no hiredis?)" % missing[0])
        raise
    p.port = int(m.group(1))
    return p


def stop_all(procs, checked=()):
    """Stop whichever of procs still run (SIGTERM, the last started first);
    each of checked must have exited with 0 and no sanitizer report."""
    for p in reversed(procs):
        if p.proc.poll() is None:
            p.stop(signal.SIGTERM)
    for p in checked:
        assert p.proc.returncode == 0, (p.argv[0], p.proc.returncode, p.err[-20:])
        assert p.sanitizer_report() is None, p.sanitizer_report()


def start_peer(name, default_path, package, args, port):
    """A third-party server (redis-server, nginx, haproxy) that is to accept
    on 127.0.0.1:port: (Proc, None), or (None, the reason to skip)."""
    exe = shutil.which(name) or default_path
    if not os.path.exists(exe):
        return None, "%s not installed (apt-get install %s)" % (name, package)
    p = Proc([exe] + args)
    if not wait_port(port, t(10)):
        p.stop(signal.SIGKILL)
        return None, "%s did not start: %r" % (name, p.err[-5:])
    p.port = port
    return p, None


def start_redis(tmp, port=None):
    """redis-server on a temporary port without persistence, or None."""
    port = port or free_port()
    return start_peer("redis-server", "/usr/bin/redis-server", "redis-server",
                      ["--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                       "--dir", str(tmp), "--daemonize", "no", "--protected-mode", "no"], port)
