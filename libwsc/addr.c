/* addr.c - a connection's peer address, kept in binary (20 bytes instead
 * of a 56-byte string: idle memory, issue 14) and formatted on demand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "internal.h"

void wsc__addr_set(struct wsc__addr *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        a->family = AF_INET6;
        a->port = ntohs(s6->sin6_port);
        memcpy(a->bytes, &s6->sin6_addr, 16);
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        a->family = AF_INET;
        a->port = ntohs(s4->sin_port);
        memcpy(a->bytes, &s4->sin_addr, 4);
    }
}

void wsc__addr_set_proxy(struct wsc__addr *a, const struct wsc__proxy_info *info)
{
    memset(a, 0, sizeof(*a));
    if (info->family != AF_INET && info->family != AF_INET6)
        return;
    a->family = (uint8_t)info->family;
    a->port = info->port;
    memcpy(a->bytes, info->addr, info->family == AF_INET6 ? 16 : 4);
}

void wsc__addr_format(const struct wsc__addr *a, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (a->family != AF_INET && a->family != AF_INET6) {
        snprintf(out, outlen, "unknown");
        return;
    }
    inet_ntop(a->family, a->bytes, ip, sizeof(ip));
    if (a->family == AF_INET6)
        snprintf(out, outlen, "[%s]:%u", ip, (unsigned)a->port);
    else
        snprintf(out, outlen, "%s:%u", ip, (unsigned)a->port);
}

/* A connection's strings share one allocation: "remote\0subprotocol\0". */
char *wsc__conn_names_new(const struct ws_conn *c, const char *subprotocol)
{
    char remote[WSC__ADDR_STRLEN];
    size_t rlen, plen = strlen(subprotocol);
    char *names;

    wsc__addr_format(&c->remote, remote, sizeof(remote));
    rlen = strlen(remote);
    names = malloc(rlen + 1 + plen + 1);
    if (names == NULL)
        return NULL;
    memcpy(names, remote, rlen + 1);
    memcpy(names + rlen + 1, subprotocol, plen + 1);
    return names;
}

void wsc__conn_names_install(struct ws_conn *c, char *names)
{
    /* No other thread has the handle yet: nobody holds the old string. */
    free(atomic_exchange_explicit(&c->names, names, memory_order_acq_rel));
}

const char *wsc__conn_subprotocol(const struct ws_conn *c)
{
    const char *names = atomic_load_explicit(&((struct ws_conn *)c)->names,
                                             memory_order_acquire);

    return names != NULL ? names + strlen(names) + 1 : "";
}

/* The names are made by the first caller, from any thread, unless the
 * upgrade made them; a compare-and-swap lets only one be installed (a
 * loser frees its own). They live until the last reference goes
 * (ws_conn_unref). */
const char *ws_conn_remote_addr(const struct ws_conn *conn)
{
    struct ws_conn *c = (struct ws_conn *)conn; /* the cache only */
    char *fresh, *expected;

    if (conn == NULL)
        return NULL;
    expected = atomic_load_explicit(&c->names, memory_order_acquire);
    if (expected != NULL)
        return expected;
    fresh = wsc__conn_names_new(c, "");
    if (fresh == NULL)
        return "unknown";         /* no memory: nothing to keep it in */
    if (atomic_compare_exchange_strong_explicit(&c->names, &expected, fresh,
                                                memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    free(fresh);
    return expected;
}
