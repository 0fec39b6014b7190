"""Fixtures for the hardening regression tests (issue 10).

The `server` fixture (tests/servers/wsc-test-server, checked for a clean
exit and no sanitizer report) and the watchdog are the integration
suite's, imported from the tests.integration package (which also puts
wsutil on sys.path) so both suites start servers the same way. `proc(argv)` starts any other binary (an example, the
test client) the same way: stdout lines collected, stopped on teardown,
stderr checked for sanitizer reports.
"""

import os
import sys

import pytest

from ..integration import conftest as _integration

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

server = _integration.server      # noqa: F811 (re-exported fixture)
watchdog = _integration.watchdog  # noqa: F811

from hardutil import Proc  # noqa: E402


@pytest.fixture
def proc():
    """Factory: proc(argv) -> a running Proc; all are stopped and checked
    (no sanitizer report) on teardown."""
    started = []

    def start(argv):
        p = Proc(argv)
        started.append(p)
        return p

    yield start
    errors = []
    for p in started:
        p.stop()
        err = p.sanitizer_report()
        if err:
            errors.append("%s: sanitizer report:\n%s" % (p.argv[0], err))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)
