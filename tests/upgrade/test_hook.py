"""The upgrade hook (tests/servers/wsc-upgrade-server) against Python
websockets clients and raw sockets: sync and async decisions, subprotocol
choice, extra headers, aborts, early bytes, the Origin allow-list."""

import asyncio
import socket
import time

import pytest
import websockets
import websockets.exceptions

from hookutil import UPGRADE_SERVER
from rawws import ask, connect, frame, read_frame, read_head, request, wait_eof


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def status_of(exc):
    return getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None),
                                                         "status_code", None)


async def refused(url, **kw):
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
        async with websockets.connect(url, **kw):
            pass
    return ei.value


def test_accept_echo_and_request_view(start):
    srv = start(UPGRADE_SERVER)

    async def go():
        url = f"ws://127.0.0.1:{srv.port}/room/a%20b?x=1&user=carol"
        async with websockets.connect(url, subprotocols=["one", "two"],
                                      origin="http://o.example") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            assert ws.subprotocol is None
    run(go())
    m = srv.expect(r"^UPGRADE path=(\S+) query=(\S+) origin=(\S+) protocols=(\S+) tls=(\d)")
    assert m.groups() == ("/room/a%20b", "x=1&user=carol", "http://o.example", "one,two", "0")
    srv.expect(r"^OPEN user=carol proto=-$")


def test_without_hook_upgrades_as_before(start):
    srv = start(UPGRADE_SERVER, "--no-hook")

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/?reject=401",
                                      subprotocols=["one"]) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            assert ws.subprotocol is None
    run(go())
    srv.expect(r"^OPEN user=- proto=-$")
    srv.no_line(r"^UPGRADE")


def test_subprotocol_chosen_from_offer(start):
    srv = start(UPGRADE_SERVER)

    async def go():
        url = f"ws://127.0.0.1:{srv.port}/?proto=two"
        async with websockets.connect(url, subprotocols=["one", "two", "three"]) as ws:
            assert ws.subprotocol == "two"
    run(go())
    srv.expect(r"^OPEN user=- proto=two$")


def test_subprotocol_not_offered_is_refused_by_accept(start):
    srv = start(UPGRADE_SERVER)
    s = connect(srv.port)
    s.sendall(request("/?proto=four", "Sec-WebSocket-Protocol: one, two\r\n"))
    status, headers, body = read_head(s)
    assert status == 400
    assert b"accept rc=-1" in body + s.recv(100)
    s.close()


def test_extra_headers_on_101_and_on_refusal(start):
    srv = start(UPGRADE_SERVER)
    status, headers, _ = ask(srv.port, "/?header=on-accept")
    assert status == 101 and headers["x-upgrade-test"] == "on-accept"
    s = connect(srv.port)
    s.sendall(request("/?header=on-reject&reject=403"))
    status, headers, rest = read_head(s)
    assert status == 403 and headers["x-upgrade-test"] == "on-reject"
    assert headers["content-length"] == "8" and headers["connection"] == "close"
    assert wait_eof(s)
    s.close()


@pytest.mark.parametrize("code", [300, 401, 403, 599])
def test_reject_status(start, code):
    srv = start(UPGRADE_SERVER)

    async def go():
        e = await refused(f"ws://127.0.0.1:{srv.port}/?reject={code}")
        assert status_of(e) == code
    run(go())
    srv.no_line(r"^OPEN")


@pytest.mark.parametrize("code", [200, 299, 600])
def test_reject_status_out_of_range_is_invalid(start, code):
    # ws_upgrade_reject refuses the status (WS_EINVAL); nothing decided and
    # the handle not kept -> the library answers 500.
    srv = start(UPGRADE_SERVER)
    assert ask(srv.port, f"/?reject={code}")[0] == 500


def test_async_accept_after_200ms(start):
    srv = start(UPGRADE_SERVER)

    async def go():
        t0 = time.monotonic()
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/?delay=200&user=late") as ws:
            assert time.monotonic() - t0 >= 0.19  # it waited for the timer
            await ws.send("after")
            assert await ws.recv() == "after"
    run(go())
    srv.expect(r"^OPEN user=late proto=-$")
    srv.expect(r"^DECIDE accept rc=0$")


def test_async_reject_after_200ms(start):
    srv = start(UPGRADE_SERVER)

    async def go():
        e = await refused(f"ws://127.0.0.1:{srv.port}/?delay=200&reject=403")
        assert status_of(e) == 403
    run(go())
    srv.expect(r"^DECIDE reject rc=0$")


def test_async_subprotocol_and_header(start):
    srv = start(UPGRADE_SERVER)
    s = connect(srv.port)
    s.sendall(request("/?delay=100&proto=b&header=x", "Sec-WebSocket-Protocol: a, b\r\n"))
    status, headers, _ = read_head(s)
    assert status == 101
    assert headers["sec-websocket-protocol"] == "b" and headers["x-upgrade-test"] == "x"
    srv.expect(r"^OPEN user=- proto=b$")
    s.close()


def test_client_gone_during_async_decision(start):
    srv = start(UPGRADE_SERVER)
    s = connect(srv.port)
    s.sendall(request("/?hold=1"))
    srv.expect(r"^UPGRADE path=/ query=hold=1")
    s.close()
    m = srv.expect(r"^ABORT late_accept=(-?\d+) late_reject=(-?\d+) pending=(\d)$")
    assert m.groups() == ("-3", "-3", "0")  # WS_ECLOSED, no longer pending


def test_client_gone_before_timer_decides(start):
    # The decision comes after the client left: the abort runs first, the
    # timer's later accept must find nothing to use (ASan checks the rest).
    srv = start(UPGRADE_SERVER)
    s = connect(srv.port)
    s.sendall(request("/?delay=300"))
    srv.expect(r"^UPGRADE")
    s.close()
    srv.expect(r"^ABORT late_accept=-3 late_reject=-3 pending=0$")
    srv.no_line(r"^OPEN", wait=0.5)


def test_handshake_timeout_aborts_pending_decision(start):
    srv = start(UPGRADE_SERVER, "--handshake-timeout", "300")
    s = connect(srv.port)
    s.sendall(request("/?hold=1"))
    srv.expect(r"^ABORT late_accept=-3 late_reject=-3 pending=0$", timeout=5)
    assert wait_eof(s)
    s.close()


def test_server_stop_aborts_pending_decision(start):
    srv = start(UPGRADE_SERVER)
    s = connect(srv.port)
    s.sendall(request("/?hold=1"))
    srv.expect(r"^UPGRADE")
    srv.stop()
    out = "\n".join(srv.seen + [srv.lines.get() for _ in range(srv.lines.qsize())])
    assert "ABORT late_accept=-3" in out
    s.close()


def test_early_bytes_are_kept_and_handled_after_accept(start):
    srv = start(UPGRADE_SERVER)
    s = connect(srv.port)
    # Two frames right behind the request, before any answer.
    s.sendall(request("/?delay=200") + frame(b"early one") + frame(b"early two"))
    status, _, rest = read_head(s)
    assert status == 101
    op, data = read_frame(s, rest)
    assert (op, data) == (1, b"early one")
    s.close()


def test_early_bytes_sync_accept(start):
    srv = start(UPGRADE_SERVER)
    s = connect(srv.port)
    s.sendall(request("/") + frame(b"pipelined"))
    status, _, rest = read_head(s)
    assert status == 101
    assert read_frame(s, rest) == (1, b"pipelined")
    s.close()


def _frame_of_size(total):
    # masked frame with a 16-bit length: 2 + 2 + 4 header bytes
    return frame(b"e" * (total - 8), opcode=0x2)


def test_early_bytes_limit_both_sides(start):
    srv = start(UPGRADE_SERVER, "--max-head", "1024")
    # Exactly max_head_size early bytes: kept and echoed after the accept.
    s = connect(srv.port)
    s.sendall(request("/?delay=300") + _frame_of_size(1024))
    status, _, rest = read_head(s)
    assert status == 101
    op, data = read_frame(s, rest)
    assert op == 2 and len(data) == 1016
    s.close()
    # One byte more: dropped without a response, the application told.
    s = connect(srv.port)
    s.sendall(request("/?delay=300") + _frame_of_size(1025))
    srv.expect(r"^ABORT late_accept=-3")
    assert wait_eof(s)
    s.close()


# ---- the Origin allow-list ---------------------------------------------------------

ORIGINS = "https://a.example, http://127.0.0.1:8080"


def test_allowed_origin_passes(start):
    srv = start(UPGRADE_SERVER, "--allowed-origins", ORIGINS)

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/",
                                      origin="HTTPS://A.example") as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"
    run(go())
    srv.expect(r"^UPGRADE .* origin=HTTPS://A.example")


@pytest.mark.parametrize("origin", ["https://evil.example", "https://a.example.evil",
                                    "http://127.0.0.1:808", "null", "https://a.example:443"])
def test_foreign_origin_403_before_hook(start, origin):
    srv = start(UPGRADE_SERVER, "--allowed-origins", ORIGINS)
    assert ask(srv.port, "/", f"Origin: {origin}\r\n")[0] == 403
    srv.no_line(r"^UPGRADE")


def test_two_origin_headers_refused(start):
    srv = start(UPGRADE_SERVER, "--allowed-origins", ORIGINS)
    two = "Origin: https://a.example\r\nOrigin: https://evil.example\r\n"
    assert ask(srv.port, "/", two)[0] == 403


def test_no_origin_allowed_unless_dash(start):
    srv = start(UPGRADE_SERVER, "--allowed-origins", ORIGINS)
    assert ask(srv.port, "/")[0] == 101
    strict = start(UPGRADE_SERVER, "--allowed-origins", ORIGINS + ", -")
    assert ask(strict.port, "/")[0] == 403
    assert ask(strict.port, "/", "Origin: https://a.example\r\n")[0] == 101


def test_null_origin_token(start):
    srv = start(UPGRADE_SERVER, "--allowed-origins", "null")
    assert ask(srv.port, "/", "Origin: null\r\n")[0] == 101


def test_allowed_origins_length_limit(start):
    ok = ",".join(["https://x.example"] * 200)[:2047]
    srv = start(UPGRADE_SERVER, "--allowed-origins", ok)  # 2047 bytes: accepted
    assert len(ok) == 2047
    import subprocess
    r = subprocess.run([UPGRADE_SERVER, "--allowed-origins", ok + "x"], capture_output=True,
                       timeout=10)
    assert r.returncode == 2 and b"bad --allowed-origins" in r.stderr
    del srv


def test_second_decision_is_refused(start):
    srv = start(UPGRADE_SERVER)
    s = connect(srv.port)
    s.sendall(request("/?twice=1&delay=50"))
    assert read_head(s)[0] == 101
    m = srv.expect(r"^SECOND accept=(-?\d+) reject=(-?\d+) header=(-?\d+)$")
    assert m.groups() == ("-8", "-8", "-8")  # WS_ESTATE: already decided
    s.close()


def test_abandoned_handle_refuses_with_500(start):
    srv = start(UPGRADE_SERVER)
    s = connect(srv.port)
    s.sendall(request("/?delay=100&abandon=1"))
    srv.expect(r"^ABANDON$")
    assert read_head(s)[0] == 500
    srv.no_line(r"^ABORT")
    s.close()


@pytest.mark.parametrize("name,rc", [
    ("Sec-WebSocket-Accept", -1), ("sec-websocket-protocol", -1), ("Upgrade", -1),
    ("Connection", -1), ("Content-Length", -1), ("Transfer-Encoding", -1),
    ("X-Bad%3AName", -1), ("X-CR%0D", -1), ("X-LF%0A", -1), ("X-Fine", 0)])
def test_header_names_checked(start, name, rc):
    srv = start(UPGRADE_SERVER)
    status, headers, _ = ask(srv.port, f"/?hdrname={name}")
    assert status == 101
    assert srv.expect(r"^ADDHDR rc=(-?\d+)$").group(1) == str(rc)
    if rc == 0:
        assert headers["x-fine"] == "v"


def test_decision_after_abort_on_a_kept_handle(start):
    # The application keeps its reference past the abort and decides from
    # its timer later: WS_ECLOSED, and (under ASan) no use of freed memory.
    srv = start(UPGRADE_SERVER)
    s = connect(srv.port)
    s.sendall(request("/?delay=400&keep=1&user=ghost"))
    srv.expect(r"^UPGRADE")
    s.close()
    srv.expect(r"^ABORT late_accept=-3 late_reject=-3 pending=0$")
    srv.expect(r"^DECIDE accept rc=-3$", timeout=5)
    srv.no_line(r"^OPEN")
