"""Every example validates every numeric option and lists every option in
its usage (issue 10, item 7). Before, `echo --max-connections abc` meant
"no limit" and `-1` meant 4294967295.

The options are read from each program's getopt_long table in its
source, so an option added later is checked too. A bad value must exit 2
with a message naming the option, at once (a program that accepts the
value starts serving or connecting instead: killed after a few seconds,
which fails the test).
"""

import os
import re
import subprocess

import pytest

from hardutil import BUILD, t

SRC = os.environ.get("TOP_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))

# binary, source, positional arguments that make a valid command line
PROGRAMS = [
    ("examples/echo/echo", "examples/echo/echo.c", ["127.0.0.1:0"]),
    ("examples/broadcast/broadcast", "examples/broadcast/broadcast.c", ["127.0.0.1:0"]),
    ("examples/rtt-measure/rtt-measure", "examples/rtt-measure/rtt-measure.c", ["127.0.0.1:0"]),
    ("examples/ticker/ticker-server", "examples/ticker/ticker-server.c", ["127.0.0.1:0"]),
    ("examples/ticker/ticker-client", "examples/ticker/ticker-client.c",
     ["ws://127.0.0.1:9/", "AAPL"]),
    ("examples/chat/chat", "examples/chat/chat.c", ["--listen", "127.0.0.1:0"]),
]
# Options that take something other than a number.
NOT_NUMERIC = {"symbols", "tag", "trusted-proxies", "redis", "listen", "user",
               "allowed-origin", "cert", "key", "ca", "log"}
BAD_VALUES = ["abc", "-1", "99999999999999999999"]


def getopt_table(source):
    """(name, takes_argument) for each entry of the struct option table."""
    with open(os.path.join(SRC, source)) as f:
        text = f.read()
    table = re.search(r"struct option\s+\w+\[\]\s*=\s*\{(.*?)\n\s*\};", text, re.S)
    assert table, "no getopt_long table in %s" % source
    return [(name, arg != "no_argument") for name, arg in re.findall(
        r'\{\s*"([A-Za-z0-9-]+)"\s*,\s*(\w+)', table.group(1))]


def run(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=t(3),
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        return None, "still running after %.0f s: %s" % (t(3), (e.stderr or b"")[-300:])


CASES = []
for binary, source, positional in PROGRAMS:
    for name, has_arg in getopt_table(source):
        if has_arg and name not in NOT_NUMERIC:
            for value in BAD_VALUES:
                CASES.append(pytest.param(binary, positional, name, value,
                                          id="%s--%s=%s" % (os.path.basename(binary), name,
                                                            value)))


@pytest.mark.parametrize("binary,positional,option,value", CASES)
def test_bad_numeric_value_exits_2_naming_the_option(binary, positional, option, value):
    rc, out = run([os.path.join(BUILD, binary), "--" + option, value] + positional)
    assert rc == 2, "%s --%s %s: exit %r\n%s" % (binary, option, value, rc, out)
    assert option in out, "the message does not name --%s: %r" % (option, out)


@pytest.mark.parametrize("binary,source", [(b, s) for b, s, _ in PROGRAMS],
                         ids=[os.path.basename(b) for b, _, _ in PROGRAMS])
def test_help_lists_every_option(binary, source):
    rc, out = run([os.path.join(BUILD, binary), "--help"])
    assert rc == 0, out
    missing = [name for name, _ in getopt_table(source) if "--" + name not in out]
    assert not missing, "%s --help does not list %s" % (binary, missing)
