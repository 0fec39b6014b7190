"""Pathological Sec-WebSocket-Extensions and Sec-WebSocket-Protocol values
(ws CVE-2021-32640: a header of many spaces made its parser quadratic).

Each value is a pattern repeated to fill the request head exactly to
max_head_size (8 KiB): the upgrade is answered 101 (unusable offers are
declined, RFC 7692 5), with a valid Sec-WebSocket-Accept and at most one
permessage-deflate in the answer; one byte more and it is 431. Then the
same patterns at 32 KiB and 256 KiB heads (--max-head 262144): the server's
CPU time for 8x the bytes stays about 8x (linear), and a correct client is
served while the large heads arrive.
"""
import time

import pytest

import wsutil
from attackutil import Bystander, Figures, cpu_seconds

HEAD_LIMIT = 8192

EXT = "Sec-WebSocket-Extensions"
PROTO = "Sec-WebSocket-Protocol"
PATTERNS = [
    (EXT, ","),
    (EXT, ";"),
    (EXT, " "),
    (EXT, " \t"),
    (EXT, "="),
    (EXT, '"'),
    (EXT, '; a="'),
    (EXT, "permessage-deflate;"),
    (EXT, "permessage-deflate, "),
    (EXT, "permessage-deflate; client_max_window_bits, "),
    (EXT, "permessage-deflate; server_max_window_bits=15; server_max_window_bits=15; "),
    (EXT, 'permessage-deflate; client_max_window_bits="'),
    (EXT, "x;y=z,"),
    (PROTO, ","),
    (PROTO, " "),
    (PROTO, "chat, "),
    (PROTO, 'a,b;c="'),
]
IDS = ["%s-%r" % ("ext" if n == EXT else "proto", p) for n, p in PATTERNS]


def head_of_size(port, name, pattern, size, key):
    """An upgrade request whose head is exactly size bytes, the header
    name: value filling it (the value is pattern repeated, cut to fit;
    never ending in a space, which HTTP would strip)."""
    base = wsutil.upgrade_request(port, key=key, extra=((name, ""),))
    n = size - len(base)
    assert n > 0
    value = (pattern * (n // len(pattern) + 1))[:n]
    if value[-1] in " \t":
        value = value[:-1] + "x"
    req = wsutil.upgrade_request(port, key=key, extra=((name, value),))
    assert len(req) == size
    return req


def upgrade_answer(port, req, key):
    c = wsutil.Conn(wsutil.connect(port))
    try:
        c.send(req)
        resp = c.read_http_response(body=False)
        if resp.status == 101:
            assert resp.header("sec-websocket-accept") == wsutil.accept_for(key), resp
            ext = resp.header("sec-websocket-extensions")
            if ext is not None:
                assert ext.count("permessage-deflate") == 1 and "," not in ext, ext
            assert resp.header("sec-websocket-protocol") is None, resp
            c.send_frame(wsutil.OP_CLOSE, wsutil.close_payload(1000))
            fin, op, payload = c.read_frame()
            assert op == wsutil.OP_CLOSE
        return resp
    finally:
        c.close()


@pytest.mark.parametrize("name,pattern", PATTERNS, ids=IDS)
def test_pathological_value_at_head_limit(shared_server, name, pattern):
    srv = shared_server()
    fig = Figures(srv, "header-%s" % IDS[PATTERNS.index((name, pattern))])
    key = wsutil.new_key()
    at = upgrade_answer(srv.port, head_of_size(srv.port, name, pattern, HEAD_LIMIT, key), key)
    assert at.status == 101, "head of exactly %d bytes: %r" % (HEAD_LIMIT, at)
    over = upgrade_answer(srv.port, head_of_size(srv.port, name, pattern, HEAD_LIMIT + 1, key),
                          key)
    assert over.status == 431, "head of %d bytes: %r" % (HEAD_LIMIT + 1, over)
    fig.report(at_limit=at.status, over_limit=over.status,
               extension=at.header("sec-websocket-extensions"))
    fig.wait_fds_back()


def test_many_extension_header_lines(server):
    """The offers spread over as many header lines as max_headers allows
    (100): answered 101; one line more: 431."""
    srv = server()
    fig = Figures(srv, "extension-lines")
    key = wsutil.new_key()
    base_headers = 5
    for lines, status in ((100 - base_headers, 101), (101 - base_headers, 431)):
        extra = [(EXT, "x; y=%d, permessage-deflate; server_max_window_bits=7" % i)
                 for i in range(lines - 1)] + [(EXT, "permessage-deflate")]
        resp = upgrade_answer(srv.port, wsutil.upgrade_request(srv.port, key=key, extra=extra),
                              key)
        assert resp.status == status, (lines, resp)
        if status == 101:
            assert resp.header("sec-websocket-extensions").startswith("permessage-deflate"), resp
    fig.report()
    fig.wait_fds_back()


LINEAR_PATTERNS = [(EXT, ","), (EXT, " "), (EXT, "permessage-deflate;"), (EXT, '; a="'),
                   (PROTO, " ")]


@pytest.mark.parametrize("name,pattern", LINEAR_PATTERNS,
                         ids=[IDS[PATTERNS.index(p)] for p in LINEAR_PATTERNS])
def test_pathological_value_linear(server, name, pattern):
    big_limit = 256 * 1024
    srv = server("--max-head", big_limit)
    by = Bystander(srv.port)
    fig = Figures(srv, "header-linear-%s" % IDS[PATTERNS.index((name, pattern))])
    cpu = {}
    for size in (big_limit // 8, big_limit):
        key = wsutil.new_key()
        req = head_of_size(srv.port, name, pattern, size, key)
        c0, t0 = cpu_seconds(srv.pid), time.monotonic()
        for i in range(8):
            # Half of them arrive in 1 KiB pieces (the head is parsed as it
            # comes: resuming must not rescan from the start).
            c = wsutil.Conn(wsutil.connect(srv.port))
            try:
                if i % 2:
                    for off in range(0, len(req), 1024):
                        c.send(req[off:off + 1024])
                else:
                    c.send(req)
                resp = c.read_http_response(timeout=20, body=False)
                assert resp.status == 101, resp
            finally:
                c.close()
            if i == 4:
                by.echo()
        cpu[size] = (cpu_seconds(srv.pid) - c0, time.monotonic() - t0)
    (s1, (cpu1, wall1)), (s2, (cpu2, wall2)) = sorted(cpu.items())
    fig.report(head_small=s1, head_large=s2, cpu_small="%.3f" % cpu1, cpu_large="%.3f" % cpu2,
               wall_small="%.2f" % wall1, wall_large="%.2f" % wall2)
    # 8x the bytes: at most 30x the CPU time (floored at 50 ms, the clock
    # ticks being 10 ms); quadratic work would be 64x.
    assert cpu2 <= 30 * max(cpu1, 0.05), cpu
    fig.assert_growth_below(8 * 1024)
    by.close()
    fig.wait_fds_back()
