"""Fragmentation attacks.

- A million 1-byte continuation frames in one message (Node ws's 2026
  advisory: per-fragment bookkeeping made memory and time grow with the
  number of frames, not the bytes): memory stays bounded, the CPU time for
  10x the frames is about 10x, and a correct client is served meanwhile.
- Control frames interleaved between the fragments of a message exactly at
  max_message_size (accepted, every ping answered in order) and one byte
  over it (1009 once the byte arrives; the pings before it still answered).
"""
import pytest

import wsutil
from attackutil import Bystander, Figures, cpu_seconds, expect_close, scaled
from wsutil import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT

CHUNK_FRAMES = 10240          # frames per sendall() (a multiple of 256)
MASK = b"\x3c\x5a\x96\xe1"


def one_byte_frames(opcode, first, count, last):
    """count 1-byte masked frames: the message's first (opcode, not FIN)
    when first, else continuations; the very last one has FIN when last.
    Payload bytes cycle through 0..255 (binary) or '0'..'o' (text)."""
    alphabet = bytes(range(256)) if opcode == OP_BINARY else bytes(range(0x30, 0x70))
    out = bytearray()
    for i in range(count):
        op = opcode if first and i == 0 else OP_CONT
        fin = last and i == count - 1
        b = alphabet[i % len(alphabet)]
        out += bytes([(0x80 if fin else 0) | op, 0x81]) + MASK + bytes([b ^ MASK[0]])
    return bytes(out)


def expected_payload(opcode, count):
    alphabet = bytes(range(256)) if opcode == OP_BINARY else bytes(range(0x30, 0x70))
    reps = count // len(alphabet) + 1
    return (alphabet * reps)[:count]


def send_tiny_frame_message(conn, opcode, chunks, during=None):
    """One message of chunks * CHUNK_FRAMES 1-byte frames, sent in large
    writes built once; during() runs when half of it has been sent."""
    first = one_byte_frames(opcode, True, CHUNK_FRAMES, False)
    middle = one_byte_frames(opcode, False, CHUNK_FRAMES, False)
    last = one_byte_frames(opcode, False, CHUNK_FRAMES, True)
    for i in range(chunks):
        conn.send(first if i == 0 else last if i == chunks - 1 else middle)
        if during is not None and i == chunks // 2:
            during()


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_million_one_byte_continuations(server, opcode):
    srv = server("--max-message", 1 << 20)
    by = Bystander(srv.port)
    fig = Figures(srv, "1-byte-frames-%s" % ("text" if opcode == OP_TEXT else "binary"))
    conn, _ = wsutil.handshake(srv.port)
    results = {}
    try:
        # 10x the frames: 102,400 then 1,024,000 (a message of 1000 KiB).
        for chunks in (scaled(10, 2), scaled(100, 20)):
            frames = chunks * CHUNK_FRAMES
            rss0, cpu0 = fig.sample(), cpu_seconds(srv.pid)
            send_tiny_frame_message(conn, opcode, chunks, during=lambda: (by.echo(), fig.sample()))
            op, data = conn.read_message(timeout=30)
            assert op == opcode and len(data) == frames, (op, len(data))
            assert data == expected_payload(opcode, frames), "echo differs"
            results[frames] = (cpu_seconds(srv.pid) - cpu0, fig.sample() - rss0)
        by.echo()
        conn.send_frame(wsutil.OP_CLOSE, wsutil.close_payload(1000))
        expect_close(conn, 1000)
    finally:
        conn.close()
    (n1, (cpu1, _)), (n2, (cpu2, _)) = sorted(results.items())
    fig.report(frames="%d+%d" % (n1, n2), cpu_small="%.3f" % cpu1, cpu_large="%.3f" % cpu2,
               cpu_ratio="%.1f" % (cpu2 / max(cpu1, 0.01)), bystander_rounds=by.rounds)
    # No per-frame memory: a 1000 KiB message costs its buffer and the echo
    # of it, not 1M records (16 bytes each would be 16 MiB).
    fig.assert_growth_below(8 * 1024)
    # Linear, by CPU time (not wall time): 10x the frames may cost at most
    # 30x (clock ticks are 10 ms: the small run is floored at 50 ms). A
    # quadratic cost would be 100x.
    assert cpu2 <= 30 * max(cpu1, 0.05), "CPU %.2f s for %d frames, %.2f s for %d" % (
        cpu2, n2, cpu1, n1)
    by.close()
    fig.wait_fds_back()


LIMIT = 4096


def interleaved(conn, opcode, total, pieces):
    """A message of total bytes in `pieces` fragments, each fragment
    followed by a ping "p<i>" and an unsolicited pong. Returns the pings
    sent before the last fragment and the message."""
    msg = (b"0123456789abcdef" * (total // 16 + 1))[:total]
    size = total // pieces
    bounds = [i * size for i in range(pieces)] + [total]
    out, pings = bytearray(), []
    for i in range(pieces):
        part = msg[bounds[i]:bounds[i + 1]]
        out += wsutil.frame(opcode if i == 0 else OP_CONT, part, fin=i == pieces - 1)
        if i < pieces - 1:
            ping = b"p%d" % i
            pings.append(ping)
            out += wsutil.frame(OP_PING, ping) + wsutil.frame(OP_PONG, b"unsolicited")
    conn.send(bytes(out))
    return pings, msg


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("over", [0, 1], ids=["at-limit", "limit+1"])
def test_control_frames_between_fragments_at_limit(server, opcode, over):
    srv = server("--max-message", LIMIT)
    by = Bystander(srv.port)
    fig = Figures(srv, "interleaved-%s-%s" % ("text" if opcode == OP_TEXT else "binary",
                                              "over" if over else "at"))
    conn, _ = wsutil.handshake(srv.port)
    try:
        for pieces in (2, 16, 64):
            pings, msg = interleaved(conn, opcode, LIMIT + over, pieces)
            got = []
            for _ in range(len(pings)):
                fin, op, payload = conn.read_frame()
                assert op == OP_PONG, "expected a pong, got opcode %d %r" % (op, payload[:40])
                got.append(payload)
            assert got == pings, "pongs out of order: %r" % got[:8]
            by.echo()
            if over:
                expect_close(conn, 1009)
                break
            op, data = conn.read_message()
            assert (op, data) == (opcode, msg), "echo of the %d-byte message differs" % LIMIT
        else:
            conn.send_frame(wsutil.OP_CLOSE, wsutil.close_payload(1000))
            expect_close(conn, 1000)
    finally:
        conn.close()
    if over:
        srv.expect(r"^CLOSE \d+ code=1009 ")
    by.close()
    fig.report(bystander_rounds=by.rounds)
    fig.assert_growth_below(4 * 1024)
    fig.wait_fds_back()
