"""examples/chat at its limits, both sides of each: at most 4096 live
one-time passwords (otp.c OTP_MAX; the next login gets 503 until one is
spent or expires), the --allowed-origin list of at most 2047 characters
(chat.c ORIGINS_MAX; one more and the program will not start), the
password length a login can carry, and the OTP's exact length on /ws.

The 4096 logins are pipelined on one keep-alive connection in batches, so
filling the store takes well under a second."""

import asyncio
import json
import socket
import subprocess
import time
import urllib.parse

import pytest
import websockets
import websockets.exceptions

from hookutil import CHAT

USERS = ["--user", "alice:secret", "--user", "bob:hunter2"]
OTP_MAX = 4096
ORIGINS_MAX = 2047
BATCH = 256  # requests written before their answers are read


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 15))


class Logins:
    """POST /login n times on one HTTP/1.1 keep-alive connection."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.rd = self.sock.makefile("rb")

    def close(self):
        self.rd.close()
        self.sock.close()

    def _response(self):
        status = self.rd.readline()
        assert status.startswith(b"HTTP/1.1 "), status
        headers = {}
        while True:
            line = self.rd.readline()
            assert line.endswith(b"\r\n"), line
            if line == b"\r\n":
                break
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.rd.read(int(headers["content-length"]))
        return int(status.split()[1]), headers, json.loads(body)

    def run(self, n, user="alice", password="secret", form=False):
        """[(status, headers, json body)] for n logins, in order."""
        if form:
            ctype = b"application/x-www-form-urlencoded"
            body = urllib.parse.urlencode({"username": user, "password": password}).encode()
        else:
            ctype = b"application/json"
            body = json.dumps({"username": user, "password": password}).encode()
        req = (b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
               % (ctype, len(body), body))
        out = []
        while len(out) < n:
            k = min(BATCH, n - len(out))
            self.sock.sendall(req * k)
            out.extend(self._response() for _ in range(k))
        return out


def fill(port, n):
    """n logins that must all succeed: their OTPs, checked distinct."""
    c = Logins(port)
    try:
        answers = c.run(n)
    finally:
        c.close()
    assert [a[0] for a in answers] == [200] * n, [a for a in answers if a[0] != 200][:1]
    otps = [a[2]["otp"] for a in answers]
    assert len(set(otps)) == n
    return otps


def login_once(port, user="alice", password="secret", form=False):
    c = Logins(port)
    try:
        return c.run(1, user, password, form)[0]
    finally:
        c.close()


def refused_full(answer):
    status, headers, body = answer
    return status == 503 and "error" in body and headers.get("retry-after") is not None


async def join(port, otp, **kw):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?otp={otp}", **kw)
    hello = json.loads(await ws.recv())
    assert hello["type"] == "hello"
    return ws


async def ws_status(url, **kw):
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
        async with websockets.connect(url, **kw):
            pass
    return ei.value.status_code


# ---- OTP_MAX: live one-time passwords --------------------------------------------

def test_otp_cap_both_sides(start):
    """4096 live OTPs are issued; the 4097th login is refused with 503 (and
    Retry-After); spending one makes room for exactly one more."""
    chat = start(CHAT, *USERS, "--otp-ttl", "600000")  # nothing expires here
    otps = fill(chat.port, OTP_MAX)
    answer = login_once(chat.port)
    assert refused_full(answer), answer
    assert "one-time passwords" in answer[2]["error"]
    chat.expect(r"^LOGIN refused: too many unused one-time passwords$")

    async def spend(otp):
        ws = await join(chat.port, otp)
        await ws.close()
    run(spend(otps[0]))  # the oldest
    status, _, body = login_once(chat.port, "bob", "hunter2")
    assert status == 200 and len(body["otp"]) == 32 and body["otp"] not in otps
    assert refused_full(login_once(chat.port))
    # A refused login issued nothing: the last of the 4096 and the new one still work.
    run(spend(otps[-1]))
    run(spend(body["otp"]))


def test_otp_cap_expired_ones_free_it(start):
    """With a short --otp-ttl a full store empties by itself: after the
    TTL, logins succeed again and the timer reports the purge."""
    ttl = 3000
    chat = start(CHAT, *USERS, "--otp-ttl", str(ttl))
    t0 = time.monotonic()
    otps = fill(chat.port, OTP_MAX)
    answer = login_once(chat.port)
    if time.monotonic() - t0 > ttl / 1000 * 0.8:
        pytest.skip("filling the store took most of the TTL on this machine")
    assert refused_full(answer), answer
    time.sleep(ttl / 1000 + 0.2)  # the last of them issued before answer

    async def refused():
        return await ws_status(f"ws://127.0.0.1:{chat.port}/ws?otp={otps[-1]}")
    assert run(refused()) == 401  # expired, not usable
    # The timer purges the expired ones (at least once a second).
    gone = 0
    deadline = time.monotonic() + 5
    while gone < OTP_MAX - 1 and time.monotonic() < deadline:
        gone += int(chat.expect(r"^PURGED (\d+)$", timeout=5).group(1))
    assert gone >= OTP_MAX - 1
    fill(chat.port, 2)  # room again


# ---- the OTP on /ws: exactly 32 hex digits -----------------------------------------

@pytest.mark.parametrize("mangle", [lambda o: o + "0", lambda o: o[:-1], lambda o: o + "0" * 8])
def test_otp_length_both_sides(start, mangle):
    """One character more or less than the OTP is refused with 401 and
    does not spend it; the OTP itself is accepted."""
    chat = start(CHAT, *USERS)
    otp = login_once(chat.port)[2]["otp"]

    async def go():
        assert await ws_status(f"ws://127.0.0.1:{chat.port}/ws?otp={mangle(otp)}") == 401
        ws = await join(chat.port, otp)
        await ws.close()
    run(go())


# ---- the login's password buffer ---------------------------------------------------

def test_password_length_both_sides(start):
    """A 127-byte password logs in (JSON and form); a 128-byte one cannot
    be carried by a login, so --user refuses it at startup."""
    pw = "p" * 127
    chat = start(CHAT, "--user", "carol:" + pw)
    for form in (False, True):
        status, _, body = login_once(chat.port, "carol", pw, form)
        assert status == 200 and len(body["otp"]) == 32
    assert login_once(chat.port, "carol", pw[:-1])[0] == 401
    r = subprocess.run([CHAT, "--listen", "127.0.0.1:0", "--user", "carol:" + pw + "p"],
                       capture_output=True, timeout=10)
    assert r.returncode == 2 and b"--user 'carol:...'" in r.stderr, r
    assert b"ppp" not in r.stderr, "the refusal must not print the password"


# ---- ORIGINS_MAX: the --allowed-origin list ----------------------------------------

LAST = "http://last.example:8080"


def origins_of_length(total, count):
    """count origins, LAST at the end, whose comma-joined list is total long."""
    head = [f"http://o{i:02d}.example" for i in range(count - 2)]
    fixed = sum(map(len, head)) + len(LAST) + (count - 1)  # commas
    pad = total - fixed - len("http://.example")
    assert pad > 0
    out = ["http://" + "p" * pad + ".example", *head, LAST]
    assert len(",".join(out)) == total
    return out


def origin_args(origins):
    return [a for o in origins for a in ("--allowed-origin", o)]


@pytest.mark.parametrize("count", [1, 2, 40])
def test_origin_list_at_limit_starts(start, count):
    """A list of exactly 2047 characters is taken whole: its last origin is
    allowed, a different one (or that one cut short) gets 403."""
    if count == 1:
        origins = ["http://" + "p" * (ORIGINS_MAX - len("http://.example")) + ".example"]
    else:
        origins = origins_of_length(ORIGINS_MAX, count)
    assert len(",".join(origins)) == ORIGINS_MAX
    chat = start(CHAT, *USERS, *origin_args(origins))
    last = origins[-1]

    async def go():
        ws = await join(chat.port, login_once(chat.port)[2]["otp"], origin=last)
        await ws.close()
        base = f"ws://127.0.0.1:{chat.port}/ws?otp="
        for other in ("http://evil.example", last[:-1], last + "0"):
            otp = login_once(chat.port)[2]["otp"]
            assert await ws_status(base + otp, origin=other) == 403
    run(go())


@pytest.mark.parametrize("count", [1, 2, 40])
def test_origin_list_over_limit_refused(count):
    """One character more and chat does not start: exit 2, and stderr says
    the list is too long and what the limit is."""
    if count == 1:
        origins = ["http://" + "p" * (ORIGINS_MAX + 1 - len("http://.example")) + ".example"]
    else:
        origins = origins_of_length(ORIGINS_MAX + 1, count)
    assert len(",".join(origins)) == ORIGINS_MAX + 1
    r = subprocess.run([CHAT, "--listen", "127.0.0.1:0", *USERS, *origin_args(origins)],
                       capture_output=True, timeout=10)
    assert r.returncode == 2, r
    assert b"LISTENING" not in r.stdout
    assert b"--allowed-origin" in r.stderr and b"2047" in r.stderr, r.stderr
