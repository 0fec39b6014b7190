"""Raw sockets shared by the suites that speak bytes to a server."""

import socket


def recv_until_eof(sock, at_least=None):
    """Every byte the peer sends until its FIN or a TCP reset (a reset ends
    the read like a FIN: what came before it is returned), or, with
    at_least, until that many bytes have come. Bounded by the socket's own
    timeout, whose socket.timeout is the caller's."""
    got = b""
    try:
        while at_least is None or len(got) < at_least:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    return got


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for a program
    that must be given its port, or a connect that must be refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
