"""examples/chat in a real browser: the system's headless Chromium driven
by puppeteer-core (browser.js): two users chat both ways, rooms isolate,
a spent OTP and a wrong password are refused, a page from a foreign origin
gets 403. Runs only when SANITIZER=none (Chromium under a sanitized build's
timing budget is too slow and adds nothing to the library's checks)."""

import os
import shutil
import signal
import socket
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("TOP_BUILDDIR", os.path.dirname(os.path.dirname(HERE)))
CHAT = os.path.join(BUILD, "examples", "chat", "chat")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def test_chat_in_chromium(node_path, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    chat = subprocess.Popen([CHAT, "--listen", f"127.0.0.1:{port}", "--user", "alice:secret",
                             "--user", "bob:hunter2", "--allowed-origin", base.rstrip("/")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = chat.stdout.readline()
        assert line.startswith("LISTENING"), line + chat.stderr.read()
        shot = os.environ.get("CHAT_SCREENSHOT", str(tmp_path / "chat.png"))
        env = dict(os.environ, NODE_PATH=node_path, CHROMIUM=CHROMIUM)
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
