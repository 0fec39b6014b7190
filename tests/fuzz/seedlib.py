"""seedlib.py - what make-corpus.py (fuzz_conn) and make-client-corpus.py
(fuzz_client) share: the control-byte constants, the frame encoder,
permessage-deflate compression, and the seed collection and writer.
Standard library only; everything here is deterministic.
"""
import os
import struct
import sys
import zlib

# flags (byte 0): bits 0-1 which server/client, 2 no reading, 3 actions,
# 4 small sndbuf, 5 read out at the end, 6 half-close first, 7 fire the
# connection timer. split (byte 1): bits 6-7 piece-size class (0 whole,
# 1 <=16, 2 <=256, 3 <=2048), bits 0-5 seed.
NO_READ, ACTIONS, SMALL_SNDBUF, READ_OUT, HALF_CLOSE, TIMERS = 4, 8, 16, 32, 64, 128
WHOLE, TINY, SMALL, LARGE = 0x00, 0x40, 0x80, 0xC0

TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10
PMD = "permessage-deflate"
MAX_SEED = 8192  # run-fuzz.sh's -max_len


def mask(payload, key):
    return bytes(c ^ key[i & 3] for i, c in enumerate(payload))


def frame(opcode, payload=b"", fin=True, rsv=0, length=None, key=None):
    """One frame, masked with the 4-byte key if one is given; length forces
    the declared length (and so its encoding)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv | opcode
    m = 0x80 if key is not None else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, m | n)
    elif n <= 0xFFFF:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if key is None:
        return hdr + payload
    return hdr + key + mask(payload, key)


def deflate(data, wbits=15, stream=None):
    """RFC 7692 7.2.1: compress, sync flush, strip 00 00 ff ff."""
    c = stream or zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class Seeds:
    """Named inputs: three control bytes (flags, split, extras), then what
    the fuzzed library's peer sends."""

    def __init__(self):
        self.seeds = {}

    def add(self, name, flags, split, body, extra=0):
        assert name not in self.seeds, name
        data = bytes([flags, split, extra]) + body
        assert len(data) <= MAX_SEED, (name, len(data))
        self.seeds[name] = data

    def write(self, script, default_dir):
        """Write every seed into argv[1], or default_dir next to script."""
        out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
            os.path.dirname(os.path.abspath(script)), default_dir)
        os.makedirs(out, exist_ok=True)
        for name, data in self.seeds.items():
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
        print(f"{len(self.seeds)} seeds in {out}")
