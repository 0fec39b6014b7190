"""Fixtures for the attack-class tests: the integration suite's `server`
factory (tests/servers/wsc-test-server, checked for a clean exit and no
sanitizer report on teardown) and its watchdog, imported from the
tests.integration package (which also puts wsutil on sys.path)."""
import os
import sys

import pytest

from ..integration import conftest as _fixtures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

server = _fixtures.server
watchdog = _fixtures.watchdog


@pytest.fixture(scope="module")
def shared_server():
    """Factory: shared_server(*options) -> a running Server, one per set of
    options for the whole module (the many parametrized cases of one
    attack reuse it: cheaper under sanitizers, and a hunt for state one
    connection leaves behind for the next). On module teardown each must
    exit 0 on SIGTERM with no sanitizer report, as with `server`."""
    if not os.access(_fixtures.SERVER_BIN, os.X_OK):
        pytest.fail("server binary not built: %s (set TOP_BUILDDIR)" % _fixtures.SERVER_BIN)
    started = {}

    def get(*args):
        key = tuple(str(a) for a in args)
        srv = started.get(key)
        if srv is None:
            srv = started[key] = _fixtures.Server(list(key))
        assert srv.proc.poll() is None, "shared server %s died:\n%s" % (key, srv.stderr[-4000:])
        return srv

    yield get
    _fixtures.stop_all(started.values())
