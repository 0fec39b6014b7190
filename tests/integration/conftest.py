"""Fixtures for the libwsc integration tests.

`server(*options)` starts tests/servers/wsc-test-server on 127.0.0.1, port 0,
and returns a Server whose stdout lines can be waited for with
`srv.expect(regex)`. On teardown every server started by the test gets
SIGTERM and must exit 0 within 10 s with no sanitizer report on stderr.

Binaries are found through $TOP_BUILDDIR (default /work/main).
"""

import faulthandler
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wsutil import SCALE, t  # noqa: E402

from ..common.children import die_with_parent, sanitizer_env

TOP_BUILDDIR = os.environ.get("TOP_BUILDDIR", "/work/main")
SERVER_BIN = os.path.join(TOP_BUILDDIR, "tests", "servers", "wsc-test-server")

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "LeakSanitizer",
)


class Server:
    def __init__(self, args):
        self.args = list(args)
        self.proc = subprocess.Popen(
            [SERVER_BIN, "--listen", "127.0.0.1:0"] + self.args,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=sanitizer_env(), preexec_fn=die_with_parent)
        self.pid = self.proc.pid
        self.lines = []
        self._consumed = set()
        self._scan_from = 0
        self._cond = threading.Condition()
        self._stdout_done = False
        self._stderr = []
        self.returncode = None
        self._out_thread = threading.Thread(target=self._read_stdout, daemon=True)
        self._err_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._out_thread.start()
        self._err_thread.start()
        try:
            m = self.expect(r"^LISTENING (\d+)$", timeout=10)
        except AssertionError:
            self.kill()
            raise
        self.port = int(m.group(1))

    # ---- output readers ---------------------------------------------------

    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._stdout_done = True
            self._cond.notify_all()

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            self._stderr.append(raw.decode("utf-8", "replace"))

    @property
    def stderr(self):
        return "".join(self._stderr)

    def output(self):
        with self._cond:
            return "\n".join(self.lines)

    # ---- waiting for lines ------------------------------------------------

    def _find(self, rx):
        for i in range(self._scan_from, len(self.lines)):
            if i in self._consumed:
                continue
            m = rx.search(self.lines[i])
            if m:
                return i, m
        return None, None

    def expect(self, pattern, timeout=5.0):
        """Wait for the first not yet matched stdout line that matches
        pattern (re.search); mark it matched and return the match. Raises
        AssertionError after timeout (scaled for slow sanitizers)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + t(timeout)
        with self._cond:
            while True:
                i, m = self._find(rx)
                if m is not None:
                    self._consumed.add(i)
                    while self._scan_from in self._consumed:
                        self._scan_from += 1
                    return m
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stdout_done:
                    tail = "\n".join(self.lines[-40:])
                    raise AssertionError(
                        "server printed no line matching %r within %.1f s%s\n"
                        "--- last stdout lines ---\n%s\n--- stderr ---\n%s"
                        % (pattern, t(timeout),
                           " (stdout closed)" if self._stdout_done else "",
                           tail, self.stderr[-4000:]))
                self._cond.wait(min(remaining, 0.5))

    async def aexpect(self, pattern, timeout=5.0):
        """expect() for coroutines: waits in a worker thread, so the event
        loop (and the websockets clients on it) keeps running."""
        import asyncio
        return await asyncio.get_running_loop().run_in_executor(
            None, self.expect, pattern, timeout)

    async def await_count(self, pattern, n, timeout=5.0):
        """wait_count() for coroutines."""
        import asyncio
        return await asyncio.get_running_loop().run_in_executor(
            None, self.wait_count, pattern, n, timeout)

    def expect_none(self, pattern, duration):
        """Assert that no line matching pattern appears (or has appeared,
        unmatched) within duration seconds (not scaled)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + duration
        with self._cond:
            while True:
                i, m = self._find(rx)
                assert m is None, "unexpected server line: %r" % self.lines[i]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stdout_done:
                    return
                self._cond.wait(min(remaining, 0.1))

    def matching(self, pattern):
        """All stdout lines so far (matched or not) matching pattern."""
        rx = re.compile(pattern)
        with self._cond:
            return [line for line in self.lines if rx.search(line)]

    def count(self, pattern):
        return len(self.matching(pattern))

    def wait_count(self, pattern, n, timeout=5.0):
        """Wait until at least n lines match pattern; return the count."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + t(timeout)
        seen, checked = 0, 0
        with self._cond:
            while True:
                for line in self.lines[checked:]:
                    if rx.search(line):
                        seen += 1
                checked = len(self.lines)
                if seen >= n:
                    return seen
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stdout_done:
                    raise AssertionError("only %d of %d lines matching %r within %.1f s"
                                         % (seen, n, pattern, t(timeout)))
                self._cond.wait(min(remaining, 0.5))

    # ---- process control --------------------------------------------------

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Wait for exit; returns the exit status (raises on timeout)."""
        self.returncode = self.proc.wait(timeout=timeout)
        self._out_thread.join(timeout=5)
        self._err_thread.join(timeout=5)
        return self.returncode

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(t(timeout))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def check_stderr(self):
        err = self.stderr
        for marker in SANITIZER_MARKERS:
            assert marker not in err, "sanitizer report on stderr:\n" + err[-8000:]


@pytest.fixture
def server():
    """Factory: server(*options) -> a running Server."""
    if not os.access(SERVER_BIN, os.X_OK):
        pytest.fail("server binary not built: %s (set TOP_BUILDDIR)" % SERVER_BIN)
    started = []

    def start(*args):
        srv = Server([str(a) for a in args])
        started.append(srv)
        return srv

    yield start
    stop_all(started)


def stop_all(servers):
    """Teardown: each server (if still running) gets SIGTERM and must exit 0
    within 10 s with no sanitizer report on stderr; fails the test with
    every server's failure otherwise. Shared with the suites that load
    these fixtures (tests/attacks)."""
    errors = []
    for srv in servers:
        try:
            if srv.returncode is None:
                rc = srv.stop(10.0)
            else:
                rc = srv.returncode
            if rc != 0:
                errors.append("server %s exited with %r\nstderr:\n%s\nstdout tail:\n%s"
                              % (srv.args, rc, srv.stderr[-4000:],
                                 "\n".join(srv.lines[-20:])))
        except subprocess.TimeoutExpired:
            srv.kill()
            errors.append("server %s did not exit within %.0f s of SIGTERM\nstdout tail:\n%s"
                          % (srv.args, t(10.0), "\n".join(srv.lines[-20:])))
        try:
            srv.check_stderr()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture(autouse=True)
def watchdog():
    """Last resort against a hung test: dump every thread's stack and exit
    (the servers follow through PR_SET_PDEATHSIG). Tests bound their own
    waits far below this."""
    faulthandler.dump_traceback_later(t(120), exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def timeout_scale():
    return SCALE
