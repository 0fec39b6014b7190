"""Close and ping payloads never carry uninitialised bytes.

examples/echo and the test server run under valgrind memcheck; every byte
they write to a socket must be initialised (memcheck reports "Syscall param
write(buf)/writev(vector[...]) points to uninitialised byte(s)" otherwise),
and no other memcheck error may occur. The workload covers every length a
control payload can have:

- pings with payloads of every length 0..125 (the pongs are checked
  byte for byte), close frames with reasons of every length 0..123, and the
  conformance suite's ping and close payload sections and a few
  compressed echoes (wsconf.py, WSCONF_CASES below) against the echo;
- pings and closes the server makes itself (ws_conn_ping with payloads of
  every length, ws_conn_close with reasons of every length, the heartbeat's
  pings): those come from the library's own buffers.

Skipped without valgrind, and in sanitizer builds (valgrind cannot run
sanitizer-instrumented code).
"""
import os
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import wsutil  # noqa: E402
from wsutil import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT  # noqa: E402
from .memcheck import Memchecked  # noqa: E402

SRC = os.environ.get("TOP_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.environ.get("TOP_BUILDDIR", "/work/main")
ECHO = os.path.join(BUILD, "examples", "echo", "echo")
SERVER = os.path.join(BUILD, "tests", "servers", "wsc-test-server")
WSCONF = os.path.join(SRC, "tests", "conformance", "wsconf.py")

pytestmark = [
    pytest.mark.skipif(os.environ.get("SANITIZER", "none") not in ("", "none"),
                       reason="valgrind cannot run sanitizer builds"),
    pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed"),
]

T = 20  # generous: everything is 20-50x slower under memcheck


def assert_clean(rc, report):
    print(report[-1500:])
    assert "Memcheck" in report and "ERROR SUMMARY" in report, report[-3000:]  # it ran
    assert "uninitialised" not in report, report[-6000:]
    assert "ERROR SUMMARY: 0 errors" in report, report[-6000:]
    assert rc == 0, "exit status %r\n%s" % (rc, report[-3000:])


def pings_of_every_length(port):
    c, _ = wsutil.handshake(port, timeout=T)
    try:
        for n in range(126):
            payload = bytes((i * 7 + n) & 0xFF for i in range(n))
            c.send_frame(OP_PING, payload)
            fin, op, got = c.read_frame(timeout=T)
            assert (op, got) == (OP_PONG, payload), (n, op, got[:20])
        c.send_frame(OP_CLOSE, wsutil.close_payload(1000))
        c.read_until_eof(timeout=T)
    finally:
        c.close()


def closes_of_every_length(port):
    """A close with a reason of every length 0..123 (ASCII and two-byte
    UTF-8), plus an empty close: the server's close frame comes back."""
    for n in list(range(124)) + [None]:
        c, _ = wsutil.handshake(port, timeout=T)
        try:
            if n is None:
                payload = b""
            else:
                reason = ("é" * (n // 2) + "r" * (n % 2)).encode() if n % 3 else b"r" * n
                payload = wsutil.close_payload(1000 if n % 2 else 4000 + n, reason)
            c.send_frame(OP_CLOSE, payload)
            fin, op, got = c.read_frame(timeout=T)
            assert op == OP_CLOSE and len(got) <= 125 and len(got) != 1, (n, got)
            c.read_until_eof(timeout=T)
        finally:
            c.close()


def wsconf(port, only, name):
    r = subprocess.run([sys.executable, WSCONF, "--url", "ws://127.0.0.1:%d/" % port,
                        "--only", only, "--server-name", name, "--max-message", str(1 << 20)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=600)
    fails = [line for line in r.stdout.splitlines() if line.startswith("FAIL:")]
    passes = sum(1 for line in r.stdout.splitlines() if line.startswith("PASS:"))
    print("wsconf %s --only %s: %d passed, %d failed" % (name, only, passes, len(fails)))
    return passes, fails


# The conformance cases run: every ping case, the close payload cases, a few
# compressed echoes (sections 7.1, 7.13, 7.14 wait for silences: too slow here).
WSCONF_CASES = "2,7.3,7.5,7.7,7.9,12.1.1,12.2.1,13.1.1"


def test_echo_control_payloads_initialised():
    srv = Memchecked([ECHO, "127.0.0.1:0"],
                     r"^listening on ws://127\.0\.0\.1:(\d+)/$")
    try:
        t0 = time.monotonic()
        pings_of_every_length(srv.port)
        t1 = time.monotonic()
        closes_of_every_length(srv.port)
        t2 = time.monotonic()
        passes, fails = wsconf(srv.port, WSCONF_CASES, "memcheck-echo")
        print("memcheck echo: pings %.1f s, closes %.1f s, wsconf %.1f s"
              % (t1 - t0, t2 - t1, time.monotonic() - t2))
    finally:
        rc, report = srv.finish()
    assert_clean(rc, report)
    # Under memcheck a timing-sensitive case may be slow; a wrong answer
    # is still a failure (memory errors are what this test is for).
    assert passes > 0, "no conformance case passed"
    assert not [f for f in fails if "timed out" not in f and "within" not in f], fails


def test_server_made_pings_and_closes_initialised():
    srv = Memchecked([SERVER, "--listen", "127.0.0.1:0", "--ping-on-message",
                      "--close-on-message", "--ping-interval", "200", "--pong-timeout", "5000"],
                     r"^LISTENING (\d+)$")
    try:
        c, _ = wsutil.handshake(srv.port, timeout=T)
        try:
            for n in range(126):
                payload = bytes(0x41 + (i + n) % 26 for i in range(n))
                c.send_frame(OP_TEXT, b"ping:" + payload)
                for _ in range(20):  # the heartbeat's pings may come in between
                    fin, op, got = c.read_frame(timeout=T)
                    assert op == OP_PING, (n, op)
                    if got == payload:
                        break
                    c.send_frame(OP_PONG, got)
                else:
                    raise AssertionError("no ping with the %d-byte payload" % n)
            # the heartbeat: wait for one of its pings, answer it
            fin, op, got = c.read_frame(timeout=T)
            assert op == OP_PING
            c.send_frame(OP_PONG, got)
        finally:
            c.close()
        for n in range(124):
            c, _ = wsutil.handshake(srv.port, timeout=T)
            try:
                reason = "é" * (n // 2) + "r" * (n % 2)
                c.send_frame(OP_TEXT, ("close:%d:%s" % (1000 + (n % 4 == 1) + 3000 * (n % 4 == 2),
                                                        reason)).encode())
                for _ in range(20):
                    fin, op, got = c.read_frame(timeout=T)
                    if op == OP_CLOSE:
                        break
                assert op == OP_CLOSE and got[2:] == reason.encode(), (n, got)
                c.send_frame(OP_CLOSE, got[:2])
                c.read_until_eof(timeout=T)
            finally:
                c.close()
    finally:
        rc, report = srv.finish()
    assert_clean(rc, report)
