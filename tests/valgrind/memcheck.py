"""A program under valgrind memcheck, for the tests in this directory: its
stdout lines collected (the port comes from them), and on finish() its exit
status and memcheck's report."""
import os
import re
import signal
import subprocess
import threading
import time


class Memchecked:
    """argv under memcheck; port_pattern's group 1 is the listening port.
    leak_kinds are reported and make the exit status 99 (--error-exitcode)."""

    def __init__(self, argv, port_pattern, leak_kinds="definite", start_timeout=60):
        self.log = "/tmp/wsc-memcheck-%d-%d.log" % (os.getpid(), time.monotonic_ns())
        cmd = ["valgrind", "--tool=memcheck", "--error-exitcode=99", "--leak-check=full",
               "--show-leak-kinds=" + leak_kinds, "--errors-for-leak-kinds=" + leak_kinds,
               "--log-file=" + self.log] + list(argv)
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(self.expect(port_pattern, start_timeout).group(1))

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def expect(self, pattern, timeout=20):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = rx.search(line)
                if m:
                    return m
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("no %r in %r" % (pattern, self.lines[-20:]))

    def finish(self):
        """SIGTERM, wait, and return (exit status, memcheck report)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait(timeout=10)
        try:
            with open(self.log) as f:
                report = f.read()
            os.unlink(self.log)
        except OSError:
            report = ""
        return rc, report
