"""Fixtures for tests/upgrade (helpers in hookutil.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hookutil import Proc  # noqa: E402


@pytest.fixture
def start():
    procs = []

    def _start(binary, *args):
        if not os.access(binary, os.X_OK):
            pytest.skip(f"{binary} not built")
        p = Proc([binary, "--listen", "127.0.0.1:0", *args])
        procs.append(p)
        return p

    yield _start
    for p in procs:
        p.stop()
