/*
 * proxy_protocol.c - HAProxy's PROXY protocol, v1 (text) and v2 (binary),
 * on listeners that ask for it (WS_LISTEN_PROXY_PROTOCOL).
 *
 * A proxy that connects to us sends one header before anything else that
 * names the client's address. It is read before HTTP, and only from a peer
 * in the trusted proxies (ws_config_set_trusted_proxies): anybody else could
 * claim any address. A header from an untrusted peer, a malformed or
 * truncated one, or none at all (the first bytes are not a PROXY header)
 * closes the connection without an answer. LOCAL (v2) and UNKNOWN (v1)
 * headers, which proxies send for their own health checks, keep the
 * peer's address.
 *
 * On a TLS listener the header comes in plaintext before the ClientHello;
 * wsc__proxy_tls_input() takes it off the socket before the handshake runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "internal.h"

static const uint8_t v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* A port: 1 to 5 digits, at most 65535, no sign. */
static bool v1_port(const char *s, size_t len, uint16_t *port)
{
    unsigned long v = 0;

    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

static bool v1_addr(int family, const char *s, size_t len, void *out)
{
    char tmp[INET6_ADDRSTRLEN];

    if (len == 0 || len >= sizeof(tmp))
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return inet_pton(family, tmp, out) == 1;
}

/* "PROXY TCP4|TCP6 src dst sport dport\r\n" or "PROXY UNKNOWN...\r\n". */
static int v1_parse(const uint8_t *buf, size_t len, struct wsc__proxy_info *out)
{
    const char *p = (const char *)buf, *end, *field[6];
    size_t flen[6], n = 0, line;
    int family;

    end = memchr(p, '\n', len < WSC__PROXY_V1_MAX ? len : WSC__PROXY_V1_MAX);
    if (end == NULL)
        return len >= WSC__PROXY_V1_MAX ? WSC__PROXY_BAD : WSC__PROXY_INCOMPLETE;
    line = (size_t)(end - p) + 1;
    if (line < 8 || end[-1] != '\r')
        return WSC__PROXY_BAD;
    /* Fields are separated by exactly one space. */
    for (const char *f = p; n < 6;) {
        const char *sp = memchr(f, ' ', (size_t)(end - 1 - f));
        field[n] = f;
        flen[n] = (size_t)((sp != NULL ? sp : end - 1) - f);
        n++;
        if (sp == NULL)
            break;
        f = sp + 1;
    }
    if (flen[0] != 5 || memcmp(field[0], "PROXY", 5) != 0 || n < 2)
        return WSC__PROXY_BAD;
    if (flen[1] == 7 && memcmp(field[1], "UNKNOWN", 7) == 0) {
        out->local = true;
        return (int)line;
    }
    if (flen[1] == 4 && memcmp(field[1], "TCP4", 4) == 0)
        family = AF_INET;
    else if (flen[1] == 4 && memcmp(field[1], "TCP6", 4) == 0)
        family = AF_INET6;
    else
        return WSC__PROXY_BAD;
    if (n != 6 || field[5] + flen[5] != end - 1) /* nothing after dport */
        return WSC__PROXY_BAD;
    {
        uint8_t src[16], dst[16];
        uint16_t sport, dport;
        if (!v1_addr(family, field[2], flen[2], src) || !v1_addr(family, field[3], flen[3], dst) ||
            !v1_port(field[4], flen[4], &sport) || !v1_port(field[5], flen[5], &dport))
            return WSC__PROXY_BAD;
        out->local = false;
        out->family = family;
        memcpy(out->addr, src, family == AF_INET ? 4 : 16);
        out->port = sport;
    }
    return (int)line;
}

/* 12-byte signature, ver/cmd, family/protocol, length (BE), addresses. */
static int v2_parse(const uint8_t *buf, size_t len, struct wsc__proxy_info *out)
{
    size_t body, total, alen;
    uint8_t cmd, fam;

    if (len < 16)
        return WSC__PROXY_INCOMPLETE;
    if ((buf[12] >> 4) != 2)
        return WSC__PROXY_BAD;
    cmd = buf[12] & 0x0F;
    fam = buf[13];
    body = ((size_t)buf[14] << 8) | buf[15];
    total = 16 + body;
    if (total > WSC__PROXY_V2_MAX || cmd > 1)
        return WSC__PROXY_BAD;
    if (len < total)
        return WSC__PROXY_INCOMPLETE;
    if (cmd == 0) {               /* LOCAL: the proxy's own connection */
        out->local = true;
        return (int)total;
    }
    if (fam == 0x00 || fam == 0x31) { /* UNSPEC, or a UNIX socket: no address */
        out->local = true;
        return (int)total;
    }
    if (fam != 0x11 && fam != 0x21)   /* UDP or unknown: not for a TCP listener */
        return WSC__PROXY_BAD;
    /* TCP over IPv4 (0x11) or IPv6 (0x21): src, dst, sport, dport */
    alen = fam == 0x11 ? 4 : 16;
    if (body < 2 * alen + 4)
        return WSC__PROXY_BAD;
    out->family = fam == 0x11 ? AF_INET : AF_INET6;
    memcpy(out->addr, buf + 16, alen);
    out->port = (uint16_t)((buf[16 + 2 * alen] << 8) | buf[16 + 2 * alen + 1]);
    out->local = false;
    return (int)total;            /* TLVs after the addresses are skipped */
}

int wsc__proxy_parse(const uint8_t *buf, size_t len, struct wsc__proxy_info *out)
{
    size_t n;

    memset(out, 0, sizeof(*out));
    if (len == 0)
        return WSC__PROXY_INCOMPLETE;
    /* Decide v1 or v2 on the first bytes; refuse as soon as neither fits. */
    n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
    if (memcmp(buf, v2_sig, n) == 0)
        return n < sizeof(v2_sig) ? WSC__PROXY_INCOMPLETE : v2_parse(buf, len, out);
    n = len < 6 ? len : 6;
    if (memcmp(buf, "PROXY ", n) == 0)
        return n < 6 ? WSC__PROXY_INCOMPLETE : v1_parse(buf, len, out);
    return WSC__PROXY_BAD;
}

void wsc__proxy_format(const struct wsc__proxy_info *info, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    inet_ntop(info->family, info->addr, ip, sizeof(ip));
    if (info->family == AF_INET6)
        snprintf(out, outlen, "[%s]:%u", ip, (unsigned)info->port);
    else
        snprintf(out, outlen, "%s:%u", ip, (unsigned)info->port);
}

/* ---- listeners that expect the header ---------------------------------- */

int wsc__proxy_listener_add(struct ws_server *srv, evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct sockaddr_storage *grown;

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return WS_ELISTEN;
    grown = realloc(srv->proxy_listeners, (srv->num_proxy_listeners + 1) * sizeof(*grown));
    if (grown == NULL)
        return WS_ENOMEM;
    srv->proxy_listeners = grown;
    grown[srv->num_proxy_listeners++] = ss;
    return 0;
}

static uint16_t ss_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return ((const struct sockaddr_in6 *)(const void *)ss)->sin6_port;
    return ((const struct sockaddr_in *)(const void *)ss)->sin_port;
}

/* Did the socket come in through a listener with the PROXY protocol on?
 * Its local port (and address, unless the listener has a wildcard one)
 * says which listener accepted it. */
static bool proxy_expected(struct ws_conn *c)
{
    struct ws_server *srv = c->ep->srv;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (srv == NULL || srv->num_proxy_listeners == 0 ||
        getsockname(c->fd, (struct sockaddr *)&ss, &sl) != 0)
        return false;
    for (size_t i = 0; i < srv->num_proxy_listeners; i++) {
        const struct sockaddr_storage *l = &srv->proxy_listeners[i];
        if (l->ss_family != ss.ss_family || ss_port(l) != ss_port(&ss))
            continue;
        if (l->ss_family == AF_INET) {
            const struct sockaddr_in *a = (const void *)l, *b = (const void *)&ss;
            if (a->sin_addr.s_addr == htonl(INADDR_ANY) ||
                a->sin_addr.s_addr == b->sin_addr.s_addr)
                return true;
        } else {
            const struct sockaddr_in6 *a = (const void *)l, *b = (const void *)&ss;
            if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) ||
                memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0)
                return true;
        }
    }
    return false;
}

size_t wsc__proxy_input(struct ws_conn *c, const uint8_t *buf, size_t len)
{
    struct wsc__proxy_info info;
    int rc;

    if (c->proxy_phase == WSC__PROXY_UNCHECKED) {
        if (!proxy_expected(c)) {
            c->proxy_phase = WSC__PROXY_NONE;
            return 0;
        }
        /* Only a trusted proxy may tell us who the client is. */
        if (!wsc__peer_trusted(c)) {
            wsc__conn_flush_and_close(c);
            return len;
        }
        c->proxy_phase = WSC__PROXY_EXPECTED;
    }
    rc = wsc__proxy_parse(buf, len, &info);
    if (rc == WSC__PROXY_INCOMPLETE)
        return 0;                 /* more to come; the handshake timeout bounds it */
    if (rc < 0) {
        wsc__conn_flush_and_close(c);
        return len;
    }
    if (!info.local)
        wsc__addr_set_proxy(&c->remote, &info);
    c->proxy_phase = info.local ? WSC__PROXY_NONE : WSC__PROXY_DONE;
    return (size_t)rc;
}

/* ---- the header in front of a TLS handshake ---------------------------- */

/*
 * OpenSSL reads the socket itself, so exactly the header's bytes must come
 * off it and the ClientHello behind them (often in the same segment) must
 * stay: peek, parse, then read only what the header covers. A partial header
 * is read off too (into the stash), or the level-triggered read event would
 * fire again at once; the handshake timeout bounds the wait as it bounds the
 * handshake. Returns true when the TLS handshake may run; false to wait for
 * more, or after a refusal closed c.
 */
bool wsc__proxy_tls_input(struct ws_conn *c)
{
    uint8_t buf[WSC__PROXY_V2_MAX];
    struct wsc__proxy_info info;
    size_t have = wsc__stash_len(c), take;
    ssize_t n;
    int rc;

    if (c->proxy_phase == WSC__PROXY_UNCHECKED) {
        if (c->is_client || !proxy_expected(c)) {
            c->proxy_phase = WSC__PROXY_NONE;
            return true;
        }
        if (!wsc__peer_trusted(c))
            goto refuse; /* only a trusted proxy may name the client */
        c->proxy_phase = WSC__PROXY_EXPECTED;
    }
    if (c->proxy_phase != WSC__PROXY_EXPECTED)
        return true;
    if (have >= sizeof(buf))
        goto refuse; /* cannot happen: the parser refuses longer headers */
    if (have > 0)
        memcpy(buf, c->stash->data, have);
    n = recv(c->fd, buf + have, sizeof(buf) - have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return false;
    if (n <= 0)
        goto refuse; /* EOF or an error inside the header */
    rc = wsc__proxy_parse(buf, have + (size_t)n, &info);
    if (rc < 0)
        goto refuse;
    take = rc == WSC__PROXY_INCOMPLETE ? (size_t)n : (size_t)rc - have;
    if (recv(c->fd, buf + have, take, 0) != (ssize_t)take)
        goto refuse; /* the bytes were peeked: they are there */
    if (rc == WSC__PROXY_INCOMPLETE) {
        if (!wsc__io_stash(c, buf, have + take))
            goto refuse;
        return false;
    }
    wsc__io_stash_free(c);
    if (!info.local)
        wsc__addr_set_proxy(&c->remote, &info);
    c->proxy_phase = info.local ? WSC__PROXY_NONE : WSC__PROXY_DONE;
    return true;

refuse:
    wsc__io_stash_free(c);
    wsc__conn_io_closed(c);
    return false;
}
