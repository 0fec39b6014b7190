"""The scale-out tests import scaleutil from this directory; a test that
takes the redis fixture gets a redis-server of its own (or is skipped)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scaleutil import start_redis, stop_all  # noqa: E402


@pytest.fixture
def redis(tmp_path):
    p, why = start_redis(tmp_path)
    if p is None:
        pytest.skip(why)
    yield p
    stop_all([p])
