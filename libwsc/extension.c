/*
 * extension.c - negotiating permessage-deflate (RFC 7692 section 7) from the
 * client's Sec-WebSocket-Extensions offers.
 *
 * Offers come in order of preference, possibly over several header lines:
 *   permessage-deflate; client_max_window_bits, permessage-deflate
 * The first offer that is valid and acceptable wins; an invalid offer is
 * declined, not fatal (RFC 7692 5: the server "MUST decline" it).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

struct pmd_offer {
    bool server_no_context_takeover, client_no_context_takeover;
    int server_max_window_bits;   /* 0 = not offered */
    int client_max_window_bits;   /* 0 = not offered, -1 = offered without value */
};

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static const char *token_end(const char *p, const char *end)
{
    while (p < end && *p != ';' && *p != ',' && *p != '=' && *p != ' ' &&
           *p != '\t' && *p != '"')
        p++;
    return p;
}

static bool slice_is(const char *s, const char *e, const char *lit)
{
    return (size_t)(e - s) == strlen(lit) && strncasecmp(s, lit, (size_t)(e - s)) == 0;
}

/* A window-bits value: 8..15 without leading zeros (RFC 7692 7.1.2). */
static int parse_bits(const char *v, size_t len)
{
    if (len == 1 && v[0] == '8')
        return 8;
    if (len == 1 && v[0] == '9')
        return 9;
    if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
    return -1;
}

/* Apply one "name[=value]" parameter; false makes the offer invalid. */
static bool offer_param(struct pmd_offer *o, const char *n, const char *ne,
                        const char *v, size_t vlen, bool has_value)
{
    if (slice_is(n, ne, "server_no_context_takeover") && !has_value &&
        !o->server_no_context_takeover)
        return o->server_no_context_takeover = true;
    if (slice_is(n, ne, "client_no_context_takeover") && !has_value &&
        !o->client_no_context_takeover)
        return o->client_no_context_takeover = true;
    if (slice_is(n, ne, "server_max_window_bits") && has_value &&
        o->server_max_window_bits == 0)
        return (o->server_max_window_bits = parse_bits(v, vlen)) > 0;
    if (slice_is(n, ne, "client_max_window_bits") && o->client_max_window_bits == 0) {
        o->client_max_window_bits = has_value ? parse_bits(v, vlen) : -1;
        return o->client_max_window_bits != -1 || !has_value;
    }
    return false; /* unknown or repeated parameter, or misplaced value */
}

/*
 * Parse one extension element starting at *pp: "name *(; param)". Leaves *pp
 * after the element's comma. Returns true if it is a valid
 * permessage-deflate offer (filled into o).
 */
static bool parse_element(const char **pp, const char *end, struct pmd_offer *o)
{
    const char *p = skip_ows(*pp, end), *n = p, *ne = token_end(p, end);
    bool valid = slice_is(n, ne, "permessage-deflate");

    memset(o, 0, sizeof(*o));
    p = skip_ows(ne, end);
    while (p < end && *p == ';') {
        const char *pn = skip_ows(p + 1, end), *pne = token_end(pn, end);
        const char *v = NULL;
        size_t vlen = 0;
        bool has_value = false;
        p = skip_ows(pne, end);
        if (p < end && *p == '=') {
            has_value = true;
            p = skip_ows(p + 1, end);
            if (p < end && *p == '"') { /* quoted-string (RFC 7692 7) */
                const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
                if (q == NULL) {
                    *pp = end;
                    return false;
                }
                v = p + 1;
                vlen = (size_t)(q - v);
                p = q + 1;
            } else {
                v = p;
                p = token_end(p, end);
                vlen = (size_t)(p - v);
            }
            p = skip_ows(p, end);
        }
        if (pn == pne || (valid && !offer_param(o, pn, pne, v, vlen, has_value)))
            valid = false;
    }
    if (p < end && *p != ',')
        valid = false;
    while (p < end && *p != ',') /* skip junk to the next element */
        p++;
    *pp = p < end ? p + 1 : end;
    return valid && n != ne;
}

/* Decide on an acceptable offer; false declines it. */
static bool accept_offer(const struct pmd_offer *o, const struct ws_config *cfg,
                         struct wsc__pmd *pmd)
{
    int bits = cfg->deflate_window_bits;

    /* zlib cannot deflate with an 8-bit window (it silently uses 9), which
     * a peer limited to 256-byte distances could not inflate. */
    if (o->server_max_window_bits == 8)
        return false;
    if (o->server_max_window_bits > 0 && o->server_max_window_bits < bits)
        bits = o->server_max_window_bits;
    pmd->enabled = true;
    pmd->tx_window_bits = (uint8_t)bits;
    /* Forcing no context takeover lets every connection share one zlib
     * stream per direction: no per-connection compression memory. */
    pmd->tx_no_context_takeover =
        o->server_no_context_takeover || cfg->deflate_no_context_takeover;
    pmd->rx_no_context_takeover =
        o->client_no_context_takeover || cfg->deflate_no_context_takeover;
    pmd->announce_tx_bits = o->server_max_window_bits > 0 || bits < 15;
    return true;
}

bool wsc__pmd_negotiate(const struct wsc__http_request *req,
                        const struct ws_config *cfg, struct wsc__pmd *pmd)
{
    memset(pmd, 0, sizeof(*pmd));
    if (!cfg->deflate)
        return false;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct wsc__http_header *h = &req->headers[i];
        const char *p = h->value, *end = h->value + h->value_len;
        if (!slice_is(h->name, h->name + h->name_len, "Sec-WebSocket-Extensions"))
            continue;
        while (p < end) {
            struct pmd_offer o;
            if (parse_element(&p, end, &o) && accept_offer(&o, cfg, pmd))
                return true;
        }
    }
    return false;
}

bool wsc__pmd_parse_response(const char *value, size_t len, const struct ws_config *cfg,
                             struct wsc__pmd *pmd)
{
    const char *p = value, *end = value + len;
    struct pmd_offer o;

    memset(pmd, 0, sizeof(*pmd));
    /* Exactly one element, validated like an offer (RFC 7692 7: unknown,
     * repeated or malformed parameters fail the connection). */
    if (!cfg->deflate || !parse_element(&p, end, &o) || p != end || end[-1] == ',')
        return false;
    /* In a response both window parameters carry a value. */
    if (o.client_max_window_bits == -1)
        return false;
    pmd->enabled = true;
    pmd->tx_window_bits = (uint8_t)cfg->deflate_window_bits;
    if (o.client_max_window_bits > 0 && o.client_max_window_bits < pmd->tx_window_bits)
        /* zlib cannot deflate with 8: then we simply never compress. */
        pmd->tx_window_bits = o.client_max_window_bits >= 9 ? (uint8_t)o.client_max_window_bits : 0;
    /* Resetting our own compressor is always allowed (RFC 7692 7.1.1.2);
     * server_max_window_bits needs nothing: we inflate with 15 bits. */
    pmd->tx_no_context_takeover =
        o.client_no_context_takeover || cfg->deflate_no_context_takeover;
    pmd->rx_no_context_takeover = o.server_no_context_takeover;
    return true;
}

int wsc__pmd_response(const struct wsc__pmd *pmd, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "permessage-deflate%s%s",
                     pmd->tx_no_context_takeover ? "; server_no_context_takeover" : "",
                     pmd->rx_no_context_takeover ? "; client_no_context_takeover" : "");

    if (n > 0 && pmd->announce_tx_bits && (size_t)n < outlen)
        n += snprintf(out + n, outlen - (size_t)n, "; server_max_window_bits=%u",
                      (unsigned)pmd->tx_window_bits);
    return n > 0 && (size_t)n < outlen ? n : WS_ENOMEM;
}
