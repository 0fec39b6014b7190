/*
 * topic.c - publish/subscribe inside one server.
 *
 * A topic is a named list of subscriptions; each subscription is one node
 * linked both into its topic and into its connection, so that publishing
 * walks only the subscribers and closing a connection ends all of its
 * subscriptions without searching. Topics live in a chained hash table and
 * disappear with their last subscriber. Loop thread only, except
 * ws_server_publish(), which queues like any cross-thread send.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct wsc__sub {
    struct ws_conn *conn;
    struct wsc__topic *topic;
    struct wsc__sub *tprev, *tnext;   /* the topic's subscribers */
    struct wsc__sub *cnext;           /* the connection's subscriptions */
};

struct wsc__topic {
    struct wsc__topic *next;          /* hash chain */
    struct wsc__sub *subs;
    size_t name_len;
    char name[];
};

#define WSC__TOPIC_MAX_NAME 1024

static uint64_t topic_hash(const char *s, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static struct wsc__topic **topic_slot(struct wsc__endpoint *ep, const char *name, size_t len)
{
    struct wsc__topic **slot = &ep->topics[topic_hash(name, len) & (ep->topic_buckets - 1)];

    while (*slot != NULL &&
           ((*slot)->name_len != len || memcmp((*slot)->name, name, len) != 0))
        slot = &(*slot)->next;
    return slot;
}

/* Double the table when it gets as many topics as buckets. */
static int topics_grow(struct wsc__endpoint *ep)
{
    size_t n = ep->topic_buckets ? ep->topic_buckets * 2 : 64;
    struct wsc__topic **t = calloc(n, sizeof(*t));

    if (t == NULL)
        return WS_ENOMEM;
    for (size_t i = 0; i < ep->topic_buckets; i++) {
        struct wsc__topic *tp = ep->topics[i];
        while (tp != NULL) {
            struct wsc__topic *next = tp->next;
            size_t b = topic_hash(tp->name, tp->name_len) & (n - 1);
            tp->next = t[b];
            t[b] = tp;
            tp = next;
        }
    }
    free(ep->topics);
    ep->topics = t;
    ep->topic_buckets = n;
    return 0;
}

struct wsc__topic *wsc__topic_find(struct wsc__endpoint *ep, const char *name)
{
    if (ep->topic_buckets == 0)
        return NULL;
    return *topic_slot(ep, name, strlen(name));
}

struct ws_conn *wsc__topic_first(const struct wsc__topic *t, struct wsc__sub **cursor)
{
    *cursor = t->subs;
    return wsc__topic_next(cursor);
}

struct ws_conn *wsc__topic_next(struct wsc__sub **cursor)
{
    struct wsc__sub *s = *cursor;

    if (s == NULL)
        return NULL;
    *cursor = s->tnext;
    return s->conn;
}

static void sub_unlink(struct wsc__endpoint *ep, struct wsc__sub *s)
{
    struct wsc__topic *t = s->topic;

    if (s->tprev != NULL)
        s->tprev->tnext = s->tnext;
    else
        t->subs = s->tnext;
    if (s->tnext != NULL)
        s->tnext->tprev = s->tprev;
    free(s);
    if (t->subs == NULL) { /* the last subscriber takes the topic along */
        if (ep->srv != NULL && ep->srv->redis != NULL)
            wsc__redis_topic_loop(ep->srv->redis, t->name, t->name_len, false);
        *topic_slot(ep, t->name, t->name_len) = t->next;
        ep->num_topics--;
        free(t);
    }
}

void wsc__topic_drop_conn(struct ws_conn *c)
{
    while (c->subs != NULL) {
        struct wsc__sub *s = c->subs;
        c->subs = s->cnext;
        sub_unlink(c->ep, s);
    }
}

int ws_conn_subscribe(struct ws_conn *conn, const char *topic)
{
    struct wsc__endpoint *ep;
    struct wsc__topic **slot, *t;
    struct wsc__sub *s;
    size_t len;

    if (conn == NULL || topic == NULL || conn->is_client ||
        (len = strlen(topic)) == 0 || len > WSC__TOPIC_MAX_NAME)
        return WS_EINVAL;
    if (atomic_load(&conn->state) != WSC__CONN_OPEN) /* its server may be gone */
        return WS_ECLOSED;
    ep = conn->ep;
    for (s = conn->subs; s != NULL; s = s->cnext)
        if (s->topic->name_len == len && memcmp(s->topic->name, topic, len) == 0)
            return 0; /* already subscribed */
    if (ep->num_topics >= ep->topic_buckets && topics_grow(ep) != 0)
        return WS_ENOMEM;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return WS_ENOMEM;
    slot = topic_slot(ep, topic, len);
    t = *slot;
    if (t == NULL) {
        t = calloc(1, sizeof(*t) + len + 1);
        if (t == NULL) {
            free(s);
            return WS_ENOMEM;
        }
        memcpy(t->name, topic, len);
        t->name_len = len;
        *slot = t;
        ep->num_topics++;
        if (ep->srv != NULL && ep->srv->redis != NULL)
            wsc__redis_topic_loop(ep->srv->redis, t->name, len, true);
    }
    s->conn = conn;
    s->topic = t;
    s->tnext = t->subs;
    if (t->subs != NULL)
        t->subs->tprev = s;
    t->subs = s;
    s->cnext = conn->subs;
    conn->subs = s;
    return 0;
}

int ws_conn_unsubscribe(struct ws_conn *conn, const char *topic)
{
    struct wsc__sub **p;
    size_t len;

    if (conn == NULL || topic == NULL || conn->is_client)
        return WS_EINVAL;
    len = strlen(topic);
    for (p = &conn->subs; *p != NULL; p = &(*p)->cnext) {
        struct wsc__sub *s = *p;
        if (s->topic->name_len == len && memcmp(s->topic->name, topic, len) == 0) {
            *p = s->cnext;
            sub_unlink(conn->ep, s);
            return 0;
        }
    }
    return WS_ENOTFOUND;
}

int ws_server_publish(struct ws_server *srv, const char *topic, enum ws_opcode op,
                      const void *data, size_t len)
{
    size_t tlen;

    if (srv == NULL || topic == NULL || (op != WS_OP_TEXT && op != WS_OP_BINARY) ||
        (data == NULL && len > 0) || (tlen = strlen(topic)) == 0 ||
        tlen > WSC__TOPIC_MAX_NAME)
        return WS_EINVAL;
    if (op == WS_OP_TEXT && !wsc__utf8_check(data, len))
        return WS_EUTF8;
    if (srv->redis != NULL) /* across processes: see redis.c */
        return wsc__redis_publish(srv->redis, topic, op, data, len);
    return wsc__server_fan_out(srv, topic, op, data, len);
}

struct wsc__topic *wsc__topic_chain_next(const struct wsc__topic *t)
{
    return t->next;
}

const char *wsc__topic_name(const struct wsc__topic *t, size_t *len)
{
    *len = t->name_len;
    return t->name;
}

void wsc__topics_free(struct wsc__endpoint *ep)
{
    /* Connections are gone by now, and their subscriptions with them. */
    free(ep->topics);
    ep->topics = NULL;
    ep->topic_buckets = 0;
}
