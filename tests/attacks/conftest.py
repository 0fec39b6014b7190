"""Fixtures for the attack-class tests: the integration suite's `server`
factory (tests/servers/wsc-test-server, checked for a clean exit and no
sanitizer report on teardown) and its watchdog, loaded from
tests/integration/conftest.py under a name of its own."""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(HERE, "..", "integration")
sys.path.insert(0, INTEGRATION)
sys.path.insert(0, HERE)

_spec = importlib.util.spec_from_file_location(
    "wsc_integration_fixtures", os.path.join(INTEGRATION, "conftest.py"))
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

server = _fixtures.server
watchdog = _fixtures.watchdog
