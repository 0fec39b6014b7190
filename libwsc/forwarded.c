/*
 * forwarded.c - the real client address behind trusted reverse proxies.
 *
 * ws_config_set_trusted_proxies() takes a CIDR list. X-Forwarded-For is
 * believed only when the TCP peer is in it, and then only as far as the
 * chain stays trusted: walking the list from the right (the address the
 * nearest proxy saw), trusted entries are proxies and skipped, and the
 * first untrusted one is the client; anything to its left was written by
 * the client and could be forged. A malformed list is ignored as a whole.
 */
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "internal.h"

/* An IPv4 or IPv6 address of len bytes (not NUL-terminated) into addr:
 * its family, or 0 when it is neither. */
static int addr_parse(const char *s, size_t len, uint8_t addr[16])
{
    char tmp[INET6_ADDRSTRLEN];

    if (len == 0 || len >= sizeof(tmp))
        return 0;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (inet_pton(AF_INET, tmp, addr) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, tmp, addr) == 1)
        return AF_INET6;
    return 0;
}

/* "a.b.c.d/n", "v6/n", or an address alone (a host: /32 or /128). */
static int cidr_parse(const char *s, size_t len, struct wsc__cidr *out)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - s) : len;
    int family;
    unsigned bits;

    memset(out, 0, sizeof(*out));
    if ((family = addr_parse(s, alen, out->addr)) == 0)
        return WS_EINVAL;
    out->family = (uint8_t)family;
    bits = family == AF_INET ? 32 : 128;
    if (slash != NULL) {
        /* digits only, at most the address's width */
        unsigned b = 0;
        if (alen + 1 == len)
            return WS_EINVAL;
        for (size_t i = alen + 1; i < len; i++) {
            if (s[i] < '0' || s[i] > '9' || (b = b * 10 + (unsigned)(s[i] - '0')) > bits)
                return WS_EINVAL;
        }
        bits = b;
    }
    out->bits = (uint8_t)bits;
    return 0;
}

int ws_config_set_trusted_proxies(struct ws_config *cfg, const char *list)
{
    struct wsc__cidr set[WSC__MAX_TRUSTED];
    unsigned n = 0;
    const char *p = list;

    if (cfg == NULL)
        return WS_EINVAL;
    while (p != NULL && *p != '\0') {
        size_t len;
        p += strspn(p, " \t,");
        len = strcspn(p, " \t,");
        if (len == 0)
            break;
        if (n == WSC__MAX_TRUSTED || cidr_parse(p, len, &set[n]) != 0)
            return WS_EINVAL;
        n++;
        p += len;
    }
    memcpy(cfg->trusted, set, n * sizeof(set[0]));
    cfg->num_trusted = n;
    return 0;
}

static bool cidr_match(const struct wsc__cidr *c, int family, const uint8_t *addr)
{
    unsigned full = c->bits / 8, rest = c->bits % 8;

    if (c->family != family || memcmp(c->addr, addr, full) != 0)
        return false;
    return rest == 0 || ((c->addr[full] ^ addr[full]) & (uint8_t)(0xFF00 >> rest)) == 0;
}

bool wsc__addr_trusted(const struct ws_config *cfg, int family, const uint8_t *addr)
{
    uint8_t v4[4];

    /* An IPv4 peer on a dual-stack socket shows up as ::ffff:a.b.c.d. */
    if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)addr)) {
        memcpy(v4, addr + 12, 4);
        family = AF_INET;
        addr = v4;
    }
    for (unsigned i = 0; i < cfg->num_trusted; i++)
        if (cidr_match(&cfg->trusted[i], family, addr))
            return true;
    return false;
}

/* The TCP peer's address, in the form wsc__proxy_format() prints. */
static bool peer_addr(const struct ws_conn *c, struct wsc__proxy_info *peer)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    memset(peer, 0, sizeof(*peer));
    if (c->fd < 0 || getpeername(c->fd, (struct sockaddr *)&ss, &sl) != 0)
        return false;
    peer->family = ss.ss_family;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const void *)&ss;
        memcpy(peer->addr, &s4->sin_addr, 4);
        peer->port = ntohs(s4->sin_port);
        return true;
    }
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)&ss;
        memcpy(peer->addr, &s6->sin6_addr, 16);
        peer->port = ntohs(s6->sin6_port);
        return true;
    }
    return false;
}

bool wsc__peer_trusted(const struct ws_conn *c)
{
    struct wsc__proxy_info peer;

    return c->ep->cfg.num_trusted > 0 && peer_addr(c, &peer) &&
           wsc__addr_trusted(&c->ep->cfg, peer.family, peer.addr);
}

/* One X-Forwarded-For entry: an IPv4 or IPv6 address, optionally in
 * brackets (IPv6) or with a port (IPv4 "a.b.c.d:p", "[v6]:p"). */
static bool xff_entry(const char *s, size_t len, int *family, uint8_t addr[16])
{
    const char *colon;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return false;
        len = (size_t)(close - s - 1);
        s++;
    } else if ((colon = memchr(s, ':', len)) != NULL &&
               memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) == NULL) {
        len = (size_t)(colon - s); /* "a.b.c.d:port" */
    }
    return (*family = addr_parse(s, len, addr)) != 0;
}

int wsc__xff_client(const struct ws_config *cfg, const char *const *values,
                    const size_t *lens, size_t count, int *family, uint8_t addr[16])
{
    bool found = false;

    /* The headers form one list in order; walk it from its right end. */
    for (size_t h = count; h-- > 0;) {
        const char *v = values[h];
        size_t end = lens[h];
        while (end > 0) {
            size_t start = end, a, b;
            int fam;
            uint8_t ad[16];
            while (start > 0 && v[start - 1] != ',')
                start--;
            for (a = start; a < end && (v[a] == ' ' || v[a] == '\t'); a++)
                ;
            for (b = end; b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'); b--)
                ;
            if (!xff_entry(v + a, b - a, &fam, ad))
                return WSC__XFF_BAD;
            *family = fam;
            memcpy(addr, ad, 16);
            found = true;
            if (!wsc__addr_trusted(cfg, fam, ad))
                return WSC__XFF_OK;   /* the first untrusted one: the client */
            end = start > 0 ? start - 1 : 0;
        }
    }
    return found ? WSC__XFF_OK : WSC__XFF_NONE; /* all trusted: the left-most */
}

void wsc__forwarded_apply(struct ws_conn *c, const struct wsc__http_request *req)
{
    const char *values[16];
    size_t lens[16], count = 0;
    struct wsc__proxy_info who;

    /* A PROXY header already named the client; nothing to do without a
     * trusted list. */
    if (c->ep->cfg.num_trusted == 0 || c->proxy_phase == WSC__PROXY_DONE ||
        !peer_addr(c, &who))
        return;
    /* Start from the peer: a keep-alive connection's previous request may
     * have named another client. */
    wsc__addr_set_proxy(&c->remote, &who);
    if (!wsc__addr_trusted(&c->ep->cfg, who.family, who.addr))
        return;                   /* a forged header from anybody else is ignored */
    /* The last 16 lines, filled from the end: the nearest proxy's entries
     * are at the end, and the first lines are the client's to forge. */
    for (size_t i = req->num_headers; i-- > 0 && count < 16;) {
        const struct wsc__http_header *h = &req->headers[i];
        if (h->name_len == 15 && strncasecmp(h->name, "X-Forwarded-For", 15) == 0) {
            count++;
            values[16 - count] = h->value;
            lens[16 - count] = h->value_len;
        }
    }
    if (count == 0 || wsc__xff_client(&c->ep->cfg, values + 16 - count, lens + 16 - count,
                                      count, &who.family, who.addr) != WSC__XFF_OK)
        return;
    who.port = 0;                 /* the header carries no port: 0 says so */
    wsc__addr_set_proxy(&c->remote, &who);
}
