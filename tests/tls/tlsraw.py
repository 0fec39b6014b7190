"""A TLS client whose every byte on the wire the test controls: Python's
ssl.SSLObject over memory BIOs on a plain socket. Lets a test send half a
record, garbage after a ClientHello, or reset the TCP connection, and see
whether the server's close_notify came before its FIN.
"""

import socket
import ssl
import struct
import time

from wsutil import HOST, frame, new_key, t, upgrade_request

from ..common.sockio import recv_until_eof


class TlsRaw:
    def __init__(self, port, ctx=None, server_hostname="localhost", timeout=5.0):
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self.sock = socket.create_connection((HOST, port), timeout=t(timeout))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=server_hostname)
        self.eof = False

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def pending_records(self):
        """What OpenSSL produced but the socket has not been given."""
        return self.out.read()

    def _feed(self):
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            self.inc.write_eof()
        else:
            self.inc.write(data)
        return data

    def client_hello(self):
        """Produce the ClientHello and send it; the handshake stops there."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.flush()

    def handshake(self):
        deadline = time.monotonic() + t(5)
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                assert time.monotonic() < deadline, "TLS handshake timed out"
                if not self._feed():
                    raise ConnectionError("EOF during the TLS handshake")

    def send(self, data):
        self.obj.write(data)
        self.flush()

    def recv_some(self):
        while True:
            try:
                return self.obj.read(65536)
            except ssl.SSLWantReadError:
                if not self._feed():
                    raise ConnectionError("EOF")

    def upgrade(self, port):
        self.send(upgrade_request(port, key=new_key()))
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.recv_some()
        assert head.startswith(b"HTTP/1.1 101"), head
        return head.split(b"\r\n\r\n", 1)[1]

    def read_until_eof(self, timeout=5.0):
        """Every raw byte until the server's FIN (or reset)."""
        self.sock.settimeout(t(timeout))
        return recv_until_eof(self.sock)

    def reset(self):
        """Close with a TCP RST (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()


def ws_text(payload):
    return frame(0x1, payload)
