"""examples/chat in a real browser, over https/wss: the system's headless
Chromium driven by puppeteer-core (browser.js) trusts a throwaway
certificate made here by its SPKI pin (never by ignoring certificate errors
wholesale); two users chat both ways, rooms isolate, a spent OTP and a wrong
password are refused, a page from a foreign origin gets 403. Runs only when SANITIZER=none (Chromium under a sanitized build's
timing budget is too slow and adds nothing to the library's checks)."""

import os
import shutil
import signal
import subprocess
import sys

import pytest

from ..common.sockio import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "upgrade"))
from hookutil import make_cert  # noqa: E402  (tests/upgrade's helpers)

BUILD = os.environ.get("TOP_BUILDDIR", os.path.dirname(os.path.dirname(HERE)))
CHAT = os.path.join(BUILD, "examples", "chat", "chat")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def node_path():
    san = os.environ.get("SANITIZER", "none") or "none"
    if san != "none":
        pytest.skip(f"browser test runs only when SANITIZER=none (this build: {san})")
    if not os.access(CHAT, os.X_OK):
        pytest.skip("examples/chat not built (jansson missing)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    if shutil.which("node") is None:
        pytest.skip("node not installed")
    r = subprocess.run(["bash", os.path.join(HERE, "npm-setup.sh")], capture_output=True,
                       text=True, timeout=360)
    if r.returncode != 0:
        pytest.skip("puppeteer-core unavailable: " + r.stderr.strip())
    return r.stdout.strip()


def make_pinned_cert(tmp_path):
    """hookutil's certificate for 127.0.0.1 and its SPKI pin (base64 of
    the SHA-256 of the DER public key, as Chromium's flag wants it)."""
    cert, key = make_cert(tmp_path)
    pin = subprocess.run(
        "openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform der"
        " | openssl dgst -sha256 -binary | base64" % cert,
        shell=True, capture_output=True, text=True, check=True).stdout.strip()
    return cert, key, pin


def test_chat_in_chromium(node_path, tmp_path):
    port = free_port()
    base = f"https://127.0.0.1:{port}/"
    cert, key, pin = make_pinned_cert(tmp_path)
    chat = subprocess.Popen([CHAT, "--listen", f"127.0.0.1:{port}", "--user", "alice:secret",
                             "--user", "bob:hunter2", "--allowed-origin", base.rstrip("/"),
                             "--cert", str(cert), "--key", str(key)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = chat.stdout.readline()
        assert line.startswith("LISTENING"), line + chat.stderr.read()
        shot = os.environ.get("CHAT_SCREENSHOT", str(tmp_path / "chat.png"))
        # Chromium trusts the chat by its key's pin; node's own fetch (the
        # foreign-origin step logs in from outside the browser) by the file.
        env = dict(os.environ, NODE_PATH=node_path, CHROMIUM=CHROMIUM, SPKI_PIN=pin,
                   NODE_EXTRA_CA_CERTS=str(cert))
        r = subprocess.run(["node", os.path.join(HERE, "browser.js"), base, shot],
                           capture_output=True, text=True, timeout=150, env=env)
        assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
        assert os.path.getsize(shot) > 10000
    finally:
        chat.send_signal(signal.SIGTERM)
        out, err = chat.communicate(timeout=10)
    assert chat.returncode == 0, err
    assert "UPGRADE refused otp" in out  # the spent OTP reached the hook and failed there
    assert "LOGIN refused" in out        # the wrong password
