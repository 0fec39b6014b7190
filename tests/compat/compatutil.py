"""Helpers for the client compatibility tests (see conftest.py): starting
examples/echo in each mode, and finding Node's ws for node-client.js."""

import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("TOP_BUILDDIR", SRC)
ECHO = os.path.join(BUILD, "examples", "echo", "echo")
SLOW = 3 if "thread" in os.environ.get("SANITIZER", "") else 1
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                     "LeakSanitizer")
MODES = {
    "deflate": [],
    "takeover": ["--deflate-context-takeover"],
    "off": ["--no-deflate"],
}


class Echo:
    def __init__(self, mode):
        self.mode = mode
        self.proc = subprocess.Popen([ECHO, "127.0.0.1:0"] + MODES[mode],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.err = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True).start()
        deadline = time.monotonic() + 10 * SLOW
        self.port = None
        while self.port is None and time.monotonic() < deadline:
            for ln in list(self.lines):
                m = re.match(r"listening on ws://127\.0\.0\.1:(\d+)/$", ln)
                if m:
                    self.port = int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        if self.port is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"echo {MODES[mode]} did not start: {self.err}")
        self.url = f"ws://127.0.0.1:{self.port}/"

    @staticmethod
    def _read(pipe, out):
        for line in pipe:
            out.append(line.rstrip("\n"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("echo did not exit within 10 s of SIGTERM")
        time.sleep(0.05)
        err = "\n".join(self.err)
        for bad in SANITIZER_MARKERS:
            assert bad not in err, err
        return rc


_NODE = {}


def node_modules():
    """NODE_PATH for Node's ws (installed by tests/conformance/npm-setup.sh),
    or pytest.skip when node, npm or the module is unavailable."""
    if "path" not in _NODE:
        path, why = None, None
        if shutil.which("node") is None:
            why = "node is not installed"
        else:
            try:
                r = subprocess.run(["bash", os.path.join(SRC, "tests", "conformance", "npm-setup.sh")],
                                   capture_output=True, text=True, timeout=400,
                                   env=dict(os.environ, TOP_BUILDDIR=BUILD))
                if r.returncode == 0 and r.stdout.strip():
                    path = r.stdout.strip().splitlines()[-1]
                else:
                    why = "Node ws unavailable: " + r.stderr.strip()[-300:]
            except (OSError, subprocess.SubprocessError) as e:
                why = f"Node ws unavailable: {e}"
        _NODE["path"], _NODE["why"] = path, why
    if _NODE["path"] is None:
        pytest.skip(_NODE["why"])
    return _NODE["path"]
