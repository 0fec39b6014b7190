"""examples/chat with Python clients: login, OTP refusals (none, bogus,
spent, expired), rooms, JSON error paths, the 512-byte limit, heartbeat,
the Origin allow-list and option validation."""

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import websockets
import websockets.exceptions

from hookutil import CHAT, make_cert
from rawws import connect, read_head, request, wait_eof

USERS = ["--user", "alice:secret", "--user", "bob:hunter2"]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 15))


def http(port, path, body=None, ctype="application/json", method=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def login(port, user="alice", password="secret"):
    status, _, body = http(port, "/login",
                           json.dumps({"username": user, "password": password}).encode())
    assert status == 200, body
    return json.loads(body)["otp"]


async def join(port, otp, **kw):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?otp={otp}", **kw)
    hello = json.loads(await ws.recv())
    assert hello["type"] == "hello"
    return ws, hello["payload"]


async def event(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def ws_status(url, **kw):
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
        async with websockets.connect(url, **kw):
            pass
    return ei.value.status_code


@pytest.fixture
def chat(start):
    return start(CHAT, *USERS)


def test_page_and_login(chat):
    status, headers, body = http(chat.port, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"<title>libwsc chat</title>" in body and b'id="messages"' in body
    otp = login(chat.port)
    assert len(otp) == 32 and all(c in "0123456789abcdef" for c in otp)
    assert login(chat.port) != otp
    status, _, body = http(chat.port, "/login", b"username=bob&password=hunter2",
                           "application/x-www-form-urlencoded")
    assert status == 200 and len(json.loads(body)["otp"]) == 32
    chat.expect(r"^LOGIN ok user=bob$")


@pytest.mark.parametrize("body,ctype", [
    (b'{"username":"alice","password":"wrong"}', "application/json"),
    (b'{"username":"mallory","password":"secret"}', "application/json"),
    (b'{"username":"alice"}', "application/json"),
    (b'{"username":"alice","password":"secret"', "application/json"),
    (b'["alice","secret"]', "application/json"),
    (b"username=alice&password=secre", "application/x-www-form-urlencoded"),
    (b"username=alice&password=%zz", "application/x-www-form-urlencoded"),
    (b"", "application/x-www-form-urlencoded"),
])
def test_login_refused_401(chat, body, ctype):
    status, _, out = http(chat.port, "/login", body, ctype)
    assert status == 401 and json.loads(out) == {"error": "wrong username or password"}


def test_login_methods_and_paths(chat):
    assert http(chat.port, "/login")[0] == 405
    assert http(chat.port, "/nope")[0] == 404
    assert http(chat.port, "/", b"x", method="POST")[0] == 405


def test_ws_refusals(chat):
    async def go():
        base = f"ws://127.0.0.1:{chat.port}"
        assert await ws_status(base + "/ws") == 401
        assert await ws_status(base + "/ws?otp=") == 401
        assert await ws_status(base + "/ws?otp=" + "0" * 32) == 401
        assert await ws_status(base + "/ws?otp=" + "0" * 31) == 401
        otp = login(chat.port)
        assert await ws_status(base + "/other?otp=" + otp) == 404
        ws, me = await join(chat.port, otp)  # a 404 elsewhere does not spend it
        assert me == {"username": "alice", "room": "general"}
        assert await ws_status(base + "/ws?otp=" + otp) == 401  # spent
        await ws.close()
    run(go())


def test_expired_otp_and_purge(start):
    chat = start(CHAT, *USERS, "--otp-ttl", "300")
    otp = login(chat.port)
    time.sleep(0.5)

    async def go():
        return await ws_status(f"ws://127.0.0.1:{chat.port}/ws?otp={otp}")
    assert run(go()) == 401
    login(chat.port)  # never used: the timer purges it
    chat.expect(r"^PURGED 1$", timeout=5)


def test_rooms_and_messages(chat):
    async def go():
        a, _ = await join(chat.port, login(chat.port))
        b, _ = await join(chat.port, login(chat.port, "bob", "hunter2"))
        await a.send(json.dumps({"type": "send_message", "payload": {"message": "hi bob"}}))
        for ws in (a, b):
            e = await event(ws)
            assert e["type"] == "new_message"
            p = e["payload"]
            assert (p["from"], p["message"], p["room"]) == ("alice", "hi bob", "general")
            assert p["sent"].endswith("Z") and "T" in p["sent"]
        await b.send(json.dumps({"type": "send_message",
                                 "payload": {"message": "hi alice", "from": "mallory"}}))
        assert (await event(a))["payload"]["from"] == "bob"  # the server says who
        assert (await event(b))["payload"]["message"] == "hi alice"
        await b.send(json.dumps({"type": "change_room", "payload": {"name": "dev"}}))
        assert await event(b) == {"type": "room_changed", "payload": {"name": "dev"}}
        await a.send(json.dumps({"type": "send_message", "payload": {"message": "alone"}}))
        assert (await event(a))["payload"]["message"] == "alone"
        await b.send(json.dumps({"type": "send_message", "payload": {"message": "in dev"}}))
        e = await event(b)
        assert e["payload"]["room"] == "dev" and e["payload"]["message"] == "in dev"
        with pytest.raises(asyncio.TimeoutError):  # neither crossed rooms
            await asyncio.wait_for(a.recv(), 0.3)
        await a.close()
        await b.close()
    run(go())


@pytest.mark.parametrize("text,why", [
    ("not json", "malformed"),
    ('{"type":"send_message"}', "malformed"),
    ('{"type":42,"payload":{}}', "malformed"),
    ('{"type":"send_message","payload":[]}', "send_message needs"),
    ('{"type":"send_message","payload":{"message":""}}', "send_message needs"),
    ('{"type":"send_message","payload":{"message":7}}', "send_message needs"),
    ('{"type":"change_room","payload":{"name":"a b"}}', "change_room needs"),
    ('{"type":"change_room","payload":{"name":"' + "r" * 33 + '"}}', "change_room needs"),
    ('{"type":"dance","payload":{}}', "unknown event type"),
])
def test_protocol_errors_keep_connection(chat, text, why):
    async def go():
        ws, _ = await join(chat.port, login(chat.port))
        await ws.send(text)
        e = await event(ws)
        assert e["type"] == "error" and why in e["payload"]["message"]
        await ws.send(json.dumps({"type": "send_message", "payload": {"message": "still here"}}))
        assert (await event(ws))["payload"]["message"] == "still here"
        await ws.close()
    run(go())


def test_binary_is_an_error_event(chat):
    async def go():
        ws, _ = await join(chat.port, login(chat.port))
        await ws.send(b'{"type":"send_message","payload":{"message":"x"}}')
        assert (await event(ws))["type"] == "error"
        await ws.close()
    run(go())


def _event_of_size(n):
    head = '{"type":"send_message","payload":{"message":"'
    tail = '"}}'
    return head + "m" * (n - len(head) - len(tail)) + tail


def test_512_byte_limit_both_sides(chat):
    async def go():
        ws, _ = await join(chat.port, login(chat.port))
        text = _event_of_size(512)
        assert len(text.encode()) == 512
        await ws.send(text)
        e = await event(ws)
        assert e["type"] == "new_message" and len(e["payload"]["message"]) > 450
        await ws.send(_event_of_size(513))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
            await asyncio.wait_for(ws.recv(), 5)
        assert ei.value.rcvd.code == 1009
    run(go())
    chat.expect(r"^LEAVE user=alice code=1009$")


def test_heartbeat_closes_silent_client(start):
    chat = start(CHAT, *USERS, "--ping-interval", "200", "--pong-timeout", "200")
    s = connect(chat.port)
    s.sendall(request("/ws?otp=" + login(chat.port)))
    assert read_head(s)[0] == 101
    # Never answer the ping: the server drops us.
    assert wait_eof(s, timeout=5)
    chat.expect(r"^LEAVE user=alice code=1006$")
    s.close()


def test_heartbeat_keeps_answering_client(start):
    chat = start(CHAT, *USERS, "--ping-interval", "200", "--pong-timeout", "200")

    async def go():
        ws, _ = await join(chat.port, login(chat.port))  # websockets answers pings
        await asyncio.sleep(1.0)
        await ws.send(json.dumps({"type": "send_message", "payload": {"message": "alive"}}))
        assert (await event(ws))["payload"]["message"] == "alive"
        await ws.close()
    run(go())


def test_allowed_origin(start):
    chat = start(CHAT, *USERS, "--allowed-origin", "http://good.example",
                 "--allowed-origin", "https://also.example")

    async def go():
        base = f"ws://127.0.0.1:{chat.port}/ws?otp="
        assert await ws_status(base + login(chat.port), origin="http://evil.example") == 403
        ws, _ = await join(chat.port, login(chat.port), origin="https://also.example")
        await ws.close()
        ws, _ = await join(chat.port, login(chat.port))  # no Origin: not a browser
        await ws.close()
    run(go())


@pytest.mark.parametrize("args", [
    ["--otp-ttl", "abc"], ["--otp-ttl", "99"], ["--otp-ttl", "600001"], ["--otp-ttl", "-1"],
    ["--ping-interval", "x"], ["--ping-interval", "3600001"], ["--pong-timeout", "1e3"],
    ["--pong-timeout", "3600001"], ["--user", "u" * 33 + ":pw"],
    [a for i in range(31) for a in ("--user", f"u{i}:pw")],  # 2 + 31 = 33 users
    ["--user", "nocolon"], ["--user", "a b:pw"], ["--user", "alice:"],
    ["--allowed-origin", "a,b"], ["--allowed-origin", ""], ["--cert", "c.pem"],
    ["extra"],
])
def test_options_validated(args):
    r = subprocess.run([CHAT, "--listen", "127.0.0.1:0", *USERS, *args], capture_output=True,
                       timeout=10)
    assert r.returncode == 2, r


def test_needs_a_user():
    r = subprocess.run([CHAT, "--listen", "127.0.0.1:0"], capture_output=True, timeout=10)
    assert r.returncode == 2


@pytest.mark.parametrize("ttl", ["100", "600000"])
def test_otp_ttl_bounds_accepted(start, ttl):
    chat = start(CHAT, *USERS, "--otp-ttl", ttl)
    assert login(chat.port)


@pytest.mark.parametrize("args", [
    ["--ping-interval", "0"], ["--ping-interval", "3600000"],
    ["--pong-timeout", "0"], ["--pong-timeout", "3600000"],
    [a for i in range(30) for a in ("--user", f"u{i}:pw")],  # 2 + 30 = 32 users
])
def test_option_bounds_accepted(start, args):
    chat = start(CHAT, *USERS, *args)
    assert login(chat.port)


def test_user_name_of_32_bytes(start):
    name = "u" * 32
    chat = start(CHAT, "--user", name + ":pw")
    assert login(chat.port, name, "pw")


def test_room_name_of_32_bytes(chat):
    # 33 bytes: test_protocol_errors_keep_connection
    async def go():
        ws, _ = await join(chat.port, login(chat.port))
        await ws.send(json.dumps({"type": "change_room", "payload": {"name": "r" * 32}}))
        assert await event(ws) == {"type": "room_changed", "payload": {"name": "r" * 32}}
        await ws.close()
    run(go())


def test_chat_over_https_and_wss(start, tmp_path):
    """--cert/--key: the page, the login and the chat all over TLS (a
    throwaway certificate made here, trusted by the clients); plain HTTP to
    that port is not served."""
    import ssl
    cert, key = make_cert(tmp_path)
    chat = start(CHAT, *USERS, "--cert", str(cert), "--key", str(key))
    ctx = ssl.create_default_context(cafile=str(cert))
    base = f"https://127.0.0.1:{chat.port}"
    with urllib.request.urlopen(base + "/", timeout=5, context=ctx) as page:
        assert page.status == 200 and b"libwsc chat" in page.read()
    req = urllib.request.Request(base + "/login", data=json.dumps(
        {"username": "alice", "password": "secret"}).encode())
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
        otp = json.loads(resp.read())["otp"]

    async def go():
        ws = await websockets.connect(f"wss://127.0.0.1:{chat.port}/ws?otp={otp}", ssl=ctx)
        assert json.loads(await ws.recv())["type"] == "hello"
        await ws.send(json.dumps({"type": "send_message", "payload": {"message": "secure"}}))
        e = await event(ws)
        assert e["type"] == "new_message" and e["payload"]["message"] == "secure"
        await ws.close()
    run(go())
    with pytest.raises(Exception):
        urllib.request.urlopen(f"http://127.0.0.1:{chat.port}/", timeout=3)


def test_chat_cert_without_key_refused():
    r = subprocess.run([CHAT, "--user", "a:b", "--cert", "x.pem"], capture_output=True,
                       timeout=10)
    assert r.returncode == 2 and b"--cert and --key" in r.stderr
