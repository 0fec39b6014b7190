/*
 * rawws.h - a minimal raw-socket RFC 6455 client for the embedding tests
 * (test-ownership, test-lifetime, test-sendto): connect to 127.0.0.1,
 * upgrade, send masked frames, read unmasked ones. Blocking calls only,
 * each bounded by a receive timeout, so a broken server fails a check
 * instead of hanging the suite.
 */
#ifndef RAWWS_H
#define RAWWS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Connect to 127.0.0.1:port and upgrade; the socket, or -1. Every read
 * on it times out after timeout_s seconds. */
static inline int rawws_open(int port, int timeout_s)
{
    static const char req[] =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { timeout_s, 0 };
    char buf[512];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0)
        return -1;
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return -1;
    }
    /* The response head, byte by byte so no frame byte is consumed. */
    while (got < sizeof(buf) - 1 && read(fd, buf + got, 1) == 1) {
        got++;
        buf[got] = '\0';
        if (got >= 4 && memcmp(buf + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (got < 12 || strncmp(buf, "HTTP/1.1 101", 12) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int rawws_read_exact(int fd, void *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* One server frame: its payload length (payload truncated to cap, the
 * rest read and discarded), opcode in *op; -1 on EOF, timeout or a frame
 * longer than 64 MiB. */
static inline long rawws_read_frame(int fd, int *op, void *payload, size_t cap)
{
    unsigned char h[8];
    uint64_t n;
    char sink[4096];

    if (rawws_read_exact(fd, h, 2) != 0)
        return -1;
    *op = h[0] & 0x0f;
    n = h[1] & 0x7f;
    if (n == 126) {
        if (rawws_read_exact(fd, h, 2) != 0)
            return -1;
        n = ((uint64_t)h[0] << 8) | h[1];
    } else if (n == 127) {
        if (rawws_read_exact(fd, h, 8) != 0)
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = (n << 8) | h[i];
    }
    if (n > (64u << 20))
        return -1;
    if (rawws_read_exact(fd, payload, n < cap ? (size_t)n : cap) != 0)
        return -1;
    for (uint64_t left = n > cap ? n - cap : 0; left > 0;) {
        size_t k = left < sizeof(sink) ? (size_t)left : sizeof(sink);
        if (rawws_read_exact(fd, sink, k) != 0)
            return -1;
        left -= k;
    }
    return (long)n;
}

/* One masked client frame, fin or not, of payload[0..n) (n <= 65535) into
 * out, which has room for 8 + n bytes; returns the frame's length. */
static inline size_t rawws_frame(unsigned char *out, int fin, int op, const void *payload, size_t n)
{
    const unsigned char mask[4] = { 0x5a, 0x13, 0xc7, 0x01 };
    size_t h = 2;

    out[0] = (unsigned char)((fin ? 0x80 : 0) | op);
    if (n < 126) {
        out[1] = (unsigned char)(0x80 | n);
    } else {
        out[1] = 0x80 | 126;
        out[2] = (unsigned char)(n >> 8);
        out[3] = (unsigned char)n;
        h = 4;
    }
    memcpy(out + h, mask, 4);
    for (size_t i = 0; i < n; i++)
        out[h + 4 + i] = ((const unsigned char *)payload)[i] ^ mask[i % 4];
    return h + 4 + n;
}

/* Write one such frame (n <= 65535); 0 or -1. */
static inline int rawws_send_frame(int fd, int fin, int op, const void *payload, size_t n)
{
    unsigned char f[4 + 4 + 65535]; /* on the stack: any thread */
    size_t len;

    if (n > 65535)
        return -1;
    len = rawws_frame(f, fin, op, payload, n);
    return write(fd, f, len) == (ssize_t)len ? 0 : -1;
}

/* One final masked frame with a payload of at most 65535 bytes; 0 or -1. */
static inline int rawws_send(int fd, int op, const void *payload, size_t n)
{
    return rawws_send_frame(fd, 1, op, payload, n);
}

#endif
