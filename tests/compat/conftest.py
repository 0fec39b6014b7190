"""Fixtures for the client compatibility tests: real third-party clients
(Python `websockets`, Node `ws`) against examples/echo, with
permessage-deflate on and off.

`echo_server` is parametrized over the echo's modes:
  deflate   default: permessage-deflate offered, no context takeover (forced)
  takeover  --deflate-context-takeover: context takeover where the client allows
  off       --no-deflate: the extension is always declined
Each mode's echo runs once per module and must exit 0 on SIGTERM with no
sanitizer report. Binaries come from $TOP_BUILDDIR (default: the source tree).
"""

import pytest

from .compatutil import Echo, MODES


@pytest.fixture(scope="module", params=sorted(MODES))
def echo_server(request):
    srv = Echo(request.param)
    yield srv
    assert srv.stop() == 0
