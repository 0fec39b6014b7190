"""Node `ws` as the client of examples/echo (tests/compat/node-client.js),
perMessageDeflate on and off, against each echo mode. Skipped when node or
the npm module is unavailable (see tests/conformance/npm-setup.sh)."""

import json
import os
import subprocess

import pytest

from .compatutil import SLOW, node_modules

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "node-client.js")


@pytest.mark.parametrize("client_deflate", [True, False], ids=["client-deflate", "client-plain"])
def test_node_ws_client(echo_server, client_deflate):
    nm = node_modules()
    env = dict(os.environ, NODE_PATH=nm)
    r = subprocess.run(["node", CLIENT, echo_server.url, "--deflate" if client_deflate else "--no-deflate"],
                       capture_output=True, text=True, timeout=120 * SLOW, env=env)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no JSON from node-client.js (exit {r.returncode}): {r.stdout[-500:]} {r.stderr[-1000:]}"
    out = json.loads(lines[-1])
    assert r.returncode == 0 and "fatal" not in out, out.get("fatal") or r.stderr[-1000:]
    failed = [f"{x['name']}: {x['detail']}" for x in out["results"] if not x["ok"]]
    assert not failed, failed
    assert len(out["results"]) >= 38
    ext = out["extensions"]
    if client_deflate and echo_server.mode != "off":
        assert ext.split(";")[0].strip() == "permessage-deflate", ext
        if echo_server.mode == "deflate":
            assert "server_no_context_takeover" in ext and "client_no_context_takeover" in ext, ext
        else:
            assert "no_context_takeover" not in ext, ext
    else:
        assert ext == "", ext
