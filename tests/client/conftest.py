"""Fixtures for the libwsc client tests.

`client(url, *options)` starts tests/servers/wsc-test-client and returns a
Client whose stdout lines can be waited for with `cl.expect(regex)`;
`cl.finish()` waits for it to exit and checks exit status 0. On teardown
every client still running gets SIGTERM; every client must have exited 0,
with no sanitizer report on stderr.

`peer(*options)` starts peer_server.py (a Python `websockets` server) in a
subprocess and returns a Peer whose JSON events can be waited for with
`p.expect_event("open", ...)`. `raw_server(handler)` is a raw-socket server
(rawpeer.RawServer) in this process.

Binaries are found through $TOP_BUILDDIR (default /work/main).
"""

import faulthandler
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rawpeer import SCALE, RawServer, t  # noqa: E402

from ..common.children import die_with_parent, sanitizer_env

TOP_BUILDDIR = os.environ.get("TOP_BUILDDIR", "/work/main")
CLIENT_BIN = os.path.join(TOP_BUILDDIR, "tests", "servers", "wsc-test-client")
PEER_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_server.py")
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

SANITIZER = os.environ.get("SANITIZER", "none") or "none"
SANITIZER_MARKERS = (
    "AddressSanitizer",
    "runtime error:",
    "ThreadSanitizer",
    "LeakSanitizer",
)

VALGRIND_CMD = ["valgrind", "--leak-check=full", "--error-exitcode=99",
                "--errors-for-leak-kinds=definite,indirect,possible",
                "--show-leak-kinds=definite,indirect,possible"]


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    what = "process"

    def __init__(self, argv):
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=sanitizer_env(), preexec_fn=die_with_parent)
        self.pid = self.proc.pid
        self.started = time.monotonic()
        self.lines = []          # (monotonic time, line)
        self._consumed = set()
        self._cond = threading.Condition()
        self._stdout_done = False
        self._stderr = []
        self.returncode = None
        self._out_thread = threading.Thread(target=self._read_stdout, daemon=True)
        self._err_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._out_thread.start()
        self._err_thread.start()

    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                self.lines.append((time.monotonic(), line))
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
            return "\n".join(line for _, line in self.lines)

    def _describe(self):
        with self._cond:
            tail = "\n".join(line for _, line in self.lines[-40:])
        return ("%s %s\n--- last stdout lines ---\n%s\n--- stderr ---\n%s"
                % (self.what, self.argv, tail, self.stderr[-4000:]))

    def expect(self, pattern, timeout=5.0, with_time=False):
        """Wait for the first not yet matched stdout line matching pattern
        (re.search); mark it matched and return the match (and the time it
        was read, if with_time). Raises AssertionError after timeout
        (scaled) or when stdout closes first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + t(timeout)
        with self._cond:
            while True:
                for i, (when, line) in enumerate(self.lines):
                    if i in self._consumed:
                        continue
                    m = rx.search(line)
                    if m:
                        self._consumed.add(i)
                        return (m, when) if with_time else m
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stdout_done:
                    raise AssertionError(
                        "no line matching %r within %.1f s%s\n%s"
                        % (pattern, t(timeout),
                           " (stdout closed)" if self._stdout_done else "",
                           self._describe()))
                self._cond.wait(min(remaining, 0.2))

    def matching(self, pattern):
        rx = re.compile(pattern)
        with self._cond:
            return [line for _, line in self.lines if rx.search(line)]

    def count(self, pattern):
        return len(self.matching(pattern))

    def wait_count(self, pattern, n, timeout=5.0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + t(timeout)
        with self._cond:
            while True:
                seen = sum(1 for _, line in self.lines if rx.search(line))
                if seen >= n:
                    return seen
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stdout_done:
                    raise AssertionError("only %d of %d lines matching %r within %.1f s\n%s"
                                         % (seen, n, pattern, t(timeout), self._describe()))
                self._cond.wait(min(remaining, 0.2))

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Wait for exit (timeout scaled); returns the exit status."""
        try:
            self.returncode = self.proc.wait(timeout=t(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError("%s still running after %.1f s\n%s"
                                 % (self.what, t(timeout), self._describe()))
        self._out_thread.join(timeout=5)
        self._err_thread.join(timeout=5)
        return self.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.returncode = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._out_thread.join(timeout=5)
        self._err_thread.join(timeout=5)


class Client(Proc):
    what = "wsc-test-client"

    def __init__(self, url, args, valgrind=False):
        self.valgrind_log = None
        argv = [CLIENT_BIN, url] + list(args)
        if valgrind:
            self.valgrind_log = "/tmp/wsc-client-valgrind-%d-%d.log" % (
                os.getpid(), time.monotonic_ns())
            argv = VALGRIND_CMD + ["--log-file=" + self.valgrind_log] + argv
        super().__init__(argv)

    def finish(self, timeout=10.0):
        """Wait for the client to exit on its own; assert exit status 0
        and a clean stderr; return stdout as a list of lines."""
        rc = self.wait(timeout)
        self.check_stderr()
        assert rc == 0, "client exited with %r\n%s%s" % (rc, self._describe(),
                                                         self.valgrind_report())
        return [line for _, line in self.lines]

    def valgrind_report(self):
        if self.valgrind_log is None or not os.path.exists(self.valgrind_log):
            return ""
        with open(self.valgrind_log) as f:
            return "\n--- valgrind ---\n" + f.read()[-8000:]

    def check_stderr(self):
        err = self.stderr
        for marker in SANITIZER_MARKERS:
            assert marker not in err, "sanitizer report on stderr:\n" + err[-8000:]


class Peer(Proc):
    """peer_server.py: a websockets server in a subprocess."""

    what = "peer_server.py"

    def __init__(self, args):
        super().__init__([PYTHON, PEER_SERVER] + list(args))
        self.events = []
        self._ev_consumed = set()
        ev = self.expect_event("listening", timeout=15)
        self.port = ev["port"]

    def _parsed(self):
        with self._cond:
            while len(self.events) < len(self.lines):
                line = self.lines[len(self.events)][1]
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    self.events.append({"ev": "unparsed", "line": line})
            return self.events

    def expect_event(self, ev, timeout=5.0, **match):
        """Wait for the first not yet consumed event of kind ev whose fields
        equal match; consume and return it."""
        deadline = time.monotonic() + t(timeout)
        with self._cond:
            while True:
                for i, e in enumerate(self._parsed()):
                    if i in self._ev_consumed or e.get("ev") != ev:
                        continue
                    if all(e.get(k) == v for k, v in match.items()):
                        self._ev_consumed.add(i)
                        return e
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stdout_done:
                    raise AssertionError("peer printed no %s event matching %r within %.1f s\n%s"
                                         % (ev, match, t(timeout), self._describe()))
                self._cond.wait(min(remaining, 0.2))

    def all_events(self, ev):
        with self._cond:
            return [e for e in self._parsed() if e.get("ev") == ev]

    def wait_events(self, ev, n, timeout=5.0):
        """All events of kind ev once there are at least n of them: the
        peer prints each before it answers, but our reader thread may not
        have taken the line from the pipe yet when the answer arrives."""
        deadline = time.monotonic() + t(timeout)
        with self._cond:
            while True:
                got = [e for e in self._parsed() if e.get("ev") == ev]
                remaining = deadline - time.monotonic()
                if len(got) >= n or remaining <= 0 or self._stdout_done:
                    return got
                self._cond.wait(min(remaining, 0.2))

    def stop(self):
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=t(10))
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def client():
    """Factory: client(url, *options, valgrind=False) -> a running Client."""
    if not os.access(CLIENT_BIN, os.X_OK):
        pytest.fail("client binary not built: %s (set TOP_BUILDDIR)" % CLIENT_BIN)
    started = []

    def start(url, *args, valgrind=False):
        cl = Client(url, [str(a) for a in args], valgrind=valgrind)
        started.append(cl)
        return cl

    yield start

    errors = []
    for cl in started:
        if cl.proc.poll() is None:
            cl.signal(signal.SIGTERM)
            try:
                cl.proc.wait(timeout=t(10))
            except subprocess.TimeoutExpired:
                cl.kill()
                errors.append("client did not exit within %.0f s of SIGTERM\n%s"
                              % (t(10), cl._describe()))
                continue
        cl.returncode = cl.proc.returncode
        cl._out_thread.join(timeout=5)
        cl._err_thread.join(timeout=5)
        if cl.returncode != 0:
            errors.append("client exited with %r\n%s%s"
                          % (cl.returncode, cl._describe(), cl.valgrind_report()))
        try:
            cl.check_stderr()
        except AssertionError as e:
            errors.append(str(e))
        if cl.valgrind_log is not None and os.path.exists(cl.valgrind_log):
            os.unlink(cl.valgrind_log)
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def peer():
    """Factory: peer(*options) -> a running peer_server.py."""
    started = []

    def start(*args):
        p = Peer([str(a) for a in args])
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def raw_server():
    """Factory: raw_server(handler, port=0) -> a running RawServer. Handler
    exceptions fail the test at teardown."""
    started = []

    def start(handler, port=0):
        s = RawServer(handler, port)
        started.append(s)
        return s

    yield start
    errors = []
    for s in started:
        s.close()
        errors += s.errors
    if errors:
        raise errors[0]


@pytest.fixture(autouse=True)
def watchdog():
    """Last resort against a hung test: dump every thread's stack and exit
    (the children follow through PR_SET_PDEATHSIG)."""
    faulthandler.dump_traceback_later(t(120), exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def timeout_scale():
    return SCALE
