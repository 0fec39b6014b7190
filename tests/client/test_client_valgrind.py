"""The client under valgrind through failing and succeeding paths: zero
memory errors and zero leaked bytes (definite, indirect, possible).
Skipped in sanitizer builds and when valgrind is missing."""

import os
import shutil
import threading

import pytest

from rawpeer import OP_CLOSE, accept_for, server_frame, t

from ..common.sockio import free_port


def valgrind_usable():
    return (os.environ.get("SANITIZER", "none") or "none") == "none" and \
        shutil.which("valgrind") is not None


pytestmark = pytest.mark.skipif(not valgrind_usable(),
                                reason="valgrind missing or sanitizer build (SANITIZER=%s)"
                                % os.environ.get("SANITIZER", "none"))

# valgrind is slow to start and to run: generous, still bounded.
VG_TIMEOUT = 20


def url(port):
    return "ws://127.0.0.1:%d/" % port


def test_valgrind_wrong_accept(client, raw_server):
    def handler(peer):
        peer.accept(accept=accept_for("dGhlIHNhbXBsZSBub25jZQ=="))
        peer.wait_eof(timeout=VG_TIMEOUT)

    srv = raw_server(handler)
    cl = client(url(srv.port), "--send", "x", valgrind=True)
    cl.expect(r"^GIVEUP error=-14 ", timeout=VG_TIMEOUT)
    cl.finish(timeout=VG_TIMEOUT)


def test_valgrind_refused_with_retries(client):
    cl = client(url(free_port()), "--reconnect", "20:40:2", valgrind=True)
    cl.expect(r"^GIVEUP error=-13 ", timeout=VG_TIMEOUT)
    cl.finish(timeout=VG_TIMEOUT)
    assert cl.count(r"^RECONNECT ") == 2


def test_valgrind_handshake_timeout(client, raw_server):
    release = threading.Event()

    def silent(peer):
        peer.read_request(timeout=VG_TIMEOUT)
        release.wait(t(VG_TIMEOUT))

    srv = raw_server(silent)
    cl = client(url(srv.port), "--handshake-timeout", 1500, valgrind=True)
    cl.expect(r"^GIVEUP error=-15 ", timeout=VG_TIMEOUT)
    release.set()
    cl.finish(timeout=VG_TIMEOUT)


def test_valgrind_masked_frame_and_garbage(client, raw_server):
    def handler(peer):
        peer.accept(timeout=VG_TIMEOUT)
        peer.send(server_frame(0x1, "bad", mask_key=b"abcd"))
        f = peer.read_frame(timeout=VG_TIMEOUT)
        assert f.opcode == OP_CLOSE, f
        peer.close()

    srv = raw_server(handler)
    cl = client(url(srv.port), valgrind=True)
    cl.expect(r"^CLOSE code=1002 cause=protocol ", timeout=VG_TIMEOUT)
    cl.finish(timeout=VG_TIMEOUT)

    def garbage(peer):
        peer.read_request(timeout=VG_TIMEOUT)
        peer.send(b"\x00\x01garbage\r\n\r\n")

    srv2 = raw_server(garbage)
    cl2 = client(url(srv2.port), valgrind=True)
    cl2.expect(r"^GIVEUP error=-14 ", timeout=VG_TIMEOUT)
    cl2.finish(timeout=VG_TIMEOUT)


def test_valgrind_bad_urls(client):
    for u in ("http://x/", "wss://[::1", "ws://[::1"):
        cl = client(u, valgrind=True)
        cl.expect(r"^CONNECT rc=-", timeout=VG_TIMEOUT)
        cl.finish(timeout=VG_TIMEOUT)


def test_valgrind_dns_failure(client):
    cl = client("ws://no-such-host.invalid/", "--connect-timeout", 3000, valgrind=True)
    cl.expect(r"^GIVEUP error=-1[56] ", timeout=VG_TIMEOUT)
    cl.finish(timeout=VG_TIMEOUT)


def test_valgrind_echo_with_deflate_threads_and_close(client, peer):
    p = peer()
    cl = client(url(p.port), "--send", "hello " * 100, "--send-binary-size", 100000,
                "--ping", "p", "--send-threads", 2, "--send-count", 50,
                "--expect", 102, "--close", "4000:bye", valgrind=True)
    cl.expect(r"^CLOSE code=4000 cause=clean remote=0 reason=bye$", timeout=VG_TIMEOUT)
    cl.finish(timeout=VG_TIMEOUT)
    assert p.expect_event("closed", timeout=10)["code"] == 4000


def test_valgrind_server_killed_then_reconnect_stop(client, peer):
    p = peer()
    cl = client(url(p.port), "--reconnect", "30:60:0", valgrind=True)
    cl.expect(r"^OPEN ", timeout=VG_TIMEOUT)
    p.kill()
    cl.expect(r"^CLOSE code=1006 cause=disconnect ", timeout=VG_TIMEOUT)
    cl.expect(r"^RECONNECT attempt=2 ", timeout=VG_TIMEOUT)
    cl.signal(15)
    cl.expect(r"^GIVEUP ", timeout=VG_TIMEOUT)
    cl.finish(timeout=VG_TIMEOUT)
