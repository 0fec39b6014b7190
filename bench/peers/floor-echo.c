/*
 * floor-echo - the cheapest WebSocket echo server we could write, as a
 * yardstick: what one read() and one write() per wake-up cost on this
 * machine with (almost) nothing else around them. It is not a WebSocket
 * implementation: no validation, no UTF-8 checks, no limits beyond what
 * keeps it from crashing on wsc-bench's traffic, no close handshake worth
 * the name. Only for bench/run-peers, never for real peers.
 *
 *   floor-echo PORT        (listens on 127.0.0.1)
 *
 * Per wake-up: read() up to 256 KiB, unmask every complete frame in place
 * while writing its unmasked reply into one output buffer, write() that
 * buffer once; a partial frame is kept for the next read, unsent output
 * waits for EPOLLOUT. Any server doing at least one read and one write per
 * wake-up spends at least this much CPU per message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define RBUF (256 * 1024)

struct conn {
    int fd;
    int upgraded;
    unsigned char *keep;      /* unparsed input (a partial frame or head) */
    size_t keep_len;
    unsigned char *out;       /* output the socket did not take */
    size_t out_len, out_cap;
};

static unsigned char rbuf[RBUF];
static unsigned char *obuf;  /* replies of one wake-up */
static size_t obuf_cap;

static void drop(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->keep);
    free(c->out);
    free(c);
}

static int reserve(unsigned char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 65536;
    while (n < need)
        n *= 2;
    unsigned char *p = realloc(*buf, n);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

/* Write out, keeping what the socket refuses; -1: the peer is gone. */
static int flush(int ep, struct conn *c, const unsigned char *p, size_t n)
{
    ssize_t w = 0;

    if (c->out_len == 0) {
        w = write(c->fd, p, n);
        if (w < 0 && errno != EAGAIN)
            return -1;
        if (w < 0)
            w = 0;
    }
    if ((size_t)w < n) {
        if (reserve(&c->out, &c->out_cap, c->out_len + n - (size_t)w) != 0)
            return -1;
        memcpy(c->out + c->out_len, p + w, n - (size_t)w);
        c->out_len += n - (size_t)w;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
}

/* The upgrade: find the key, answer 101. Returns bytes used, 0 for more. */
static size_t handshake(int ep, struct conn *c, const unsigned char *buf, size_t len)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    const char *k;
    char key[128], resp[256];
    unsigned char sha[SHA_DIGEST_LENGTH], acc[64];
    size_t kl;

    if (end == NULL)
        return 0;
    k = memmem(buf, (size_t)(end - (const char *)buf), "Sec-WebSocket-Key: ", 19);
    if (k == NULL)
        return (size_t)-1;
    k += 19;
    kl = strcspn(k, "\r");
    if (kl + sizeof(guid) > sizeof(key))
        return (size_t)-1;
    memcpy(key, k, kl);
    memcpy(key + kl, guid, sizeof(guid) - 1);
    SHA1((unsigned char *)key, kl + sizeof(guid) - 1, sha);
    EVP_EncodeBlock(acc, sha, SHA_DIGEST_LENGTH);
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acc);
    if (flush(ep, c, (unsigned char *)resp, (size_t)n) != 0)
        return (size_t)-1;
    c->upgraded = 1;
    return (size_t)(end + 4 - (const char *)buf);
}

/* Echo every complete frame; returns bytes used, or (size_t)-1 to drop. */
static size_t frames(struct conn *c, unsigned char *buf, size_t len, size_t *olen)
{
    size_t used = 0;

    while (len - used >= 2) {
        unsigned char *p = buf + used;
        uint64_t plen = p[1] & 0x7f;
        size_t h = 2;
        if (plen == 126) {
            if (len - used < 4)
                break;
            plen = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (plen == 127) {
            if (len - used < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | p[2 + i];
            h = 10;
        }
        if (!(p[1] & 0x80) || plen > (1u << 24))
            return (size_t)-1;
        if (len - used < h + 4 + plen)
            break;
        unsigned char *m = p + h, *d = p + h + 4;
        uint64_t k;
        unsigned char k8[8] = { m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3] };
        memcpy(&k, k8, 8);
        size_t i = 0;
        for (; i + 8 <= plen; i += 8) {
            uint64_t w;
            memcpy(&w, d + i, 8);
            w ^= k;
            memcpy(d + i, &w, 8);
        }
        for (; i < plen; i++)
            d[i] ^= m[i & 3];
        unsigned op = p[0] & 0x0f;
        if (op == 0x8)
            return (size_t)-1;          /* close: just hang up */
        if (reserve(&obuf, &obuf_cap, *olen + 10 + plen) != 0)
            return (size_t)-1;
        unsigned char *o = obuf + *olen;
        o[0] = (unsigned char)(0x80 | (op == 0x9 ? 0xA : op));
        if (plen < 126) {
            o[1] = (unsigned char)plen;
            h = 2;
        } else if (plen < 65536) {
            o[1] = 126;
            o[2] = (unsigned char)(plen >> 8);
            o[3] = (unsigned char)plen;
            h = 4;
        } else {
            o[1] = 127;
            for (int j = 0; j < 8; j++)
                o[2 + j] = (unsigned char)(plen >> (56 - 8 * j));
            h = 10;
        }
        memcpy(o + h, d, plen);
        *olen += h + plen;
        used = (size_t)(d + plen - buf);
    }
    (void)c;
    return used;
}

static void readable(int ep, struct conn *c)
{
    size_t have = c->keep_len, used, olen = 0;
    unsigned char *buf = rbuf;
    ssize_t n;

    if (have > RBUF / 2) { /* not a benchmark frame */
        drop(ep, c);
        return;
    }
    memcpy(buf, c->keep, have);
    n = read(c->fd, buf + have, RBUF - have);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        drop(ep, c);
        return;
    }
    if (n < 0)
        return;
    have += (size_t)n;
    used = c->upgraded ? frames(c, buf, have, &olen) : handshake(ep, c, buf, have);
    if (used == (size_t)-1) {
        drop(ep, c);
        return;
    }
    if (olen > 0 && flush(ep, c, obuf, olen) != 0) {
        drop(ep, c);
        return;
    }
    c->keep_len = have - used;
    if (c->keep_len > 0) {
        unsigned char *k = realloc(c->keep, c->keep_len);
        if (k == NULL) {
            drop(ep, c);
            return;
        }
        c->keep = k;
        memcpy(c->keep, buf + used, c->keep_len);
    }
}

static void writable(int ep, struct conn *c)
{
    ssize_t w = write(c->fd, c->out, c->out_len);

    if (w < 0 && errno != EAGAIN) {
        drop(ep, c);
        return;
    }
    if (w > 0) {
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    if (c->out_len == 0) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 9001, one = 1;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), ep = epoll_create1(0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, evs[256];

    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 511) != 0) {
        perror("floor-echo");
        return 1;
    }
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    printf("listening on ws://127.0.0.1:%d/\n", port);
    fflush(stdout);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct conn *nc = calloc(1, sizeof(*nc));
                    if (nc == NULL) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct epoll_event cev = { .events = EPOLLIN, .data.ptr = nc };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT)
                writable(ep, c);
            else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                readable(ep, c);
        }
    }
}
