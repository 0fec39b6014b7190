#!/usr/bin/python3
"""piecewise-echo.py PORT PID [PIECE] [FRAMES] - the server CPU an echo of
60,000-byte binary frames costs when each frame arrives in PIECE-byte
sends (default 1460, one TCP segment's payload) rather than in one: the
case of a large gathered frame over a real network, where the server reads
it a segment at a time. PID is the server process (its utime + stime from
/proc/PID/stat); a 50 us pause between sends keeps them separate reads.
Prints one line: server CPU per frame in microseconds.

    examples/echo/echo --max-message 1048576 127.0.0.1:9313 &
    bench/piecewise-echo.py 9313 $! 1460 1000
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
from wsutil import OP_BINARY, frame, handshake  # noqa: E402

SIZE = 60000


def server_ticks(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    piece = int(sys.argv[3]) if len(sys.argv) > 3 else 1460
    frames = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    c, _ = handshake(port, timeout=10.0)  # the 101 checked; TCP_NODELAY set
    s = c.sock
    wire = frame(OP_BINARY, os.urandom(SIZE))
    echo_len = SIZE + 4  # the server's frame: 2 + 2 bytes of header
    got = len(c.buf)  # bytes read past the 101, if any
    t0 = server_ticks(pid)
    start = time.monotonic()
    for n in range(frames):
        for i in range(0, len(wire), piece):
            s.send(wire[i:i + piece])
            time.sleep(0.00005)
        while got < (n + 1) * echo_len:
            chunk = s.recv(1 << 20)
            if not chunk:
                sys.exit("the server closed the connection")
            got += len(chunk)
    cpu = (server_ticks(pid) - t0) / os.sysconf("SC_CLK_TCK")
    print("piece=%d frames=%d server_cpu_s=%.2f us_per_frame=%.0f wall_s=%.1f"
          % (piece, frames, cpu, cpu / frames * 1e6, time.monotonic() - start))
    s.close()


if __name__ == "__main__":
    main()
