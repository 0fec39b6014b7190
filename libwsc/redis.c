/*
 * redis.c - topics across processes over Redis pub/sub (optional: hiredis).
 *
 * Each server holds two Redis connections on its first loop (loop 0), both
 * driven by hiredis's libevent adapter, so no thread is added: one in
 * subscribe mode, one for PUBLISH (a subscribed connection may not publish).
 * A topic is SUBSCRIBEd once per process while any loop has a subscriber
 * to it, and UNSUBSCRIBEd when the last one leaves; topic.c reports the
 * first and last subscriber of each loop here.
 *
 * A publish delivers to the local subscribers directly (the frame is
 * encoded once per process, as without Redis) and goes to Redis as
 * "WSC1" node(8) seq(8) opcode(1) payload. Every node ignores its own
 * messages when they come back, and counts holes in each (node, topic)
 * sequence as lost messages. While Redis is down a publish fails with
 * WS_EREDIS and delivers nothing; the bridge reconnects with backoff and
 * subscribes again to the live topics.
 *
 * Threads: publishes and subscription changes may come from any loop; they
 * go through a mutex-guarded queue that loop 0 drains (at once when the
 * caller is loop 0), so a topic's sequence numbers reach Redis in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef HAVE_HIREDIS

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>
#include <openssl/rand.h>

#define RDS_MAGIC "WSC1"
#define RDS_HDR (4 + 8 + 8 + 1)
#define RDS_BACKOFF_MIN_MS 100u
#define RDS_BACKOFF_MAX_MS 5000u
#define RDS_PREFIX_MAX 128

/* What this node last saw from one other node on one channel. */
struct rds_peer {
    struct rds_peer *next;
    uint64_t node;
    uint64_t last_seq;
};

/* One topic this process publishes to or subscribes to. Kept until the
 * bridge is freed: its publish sequence must not restart. */
struct rds_chan {
    struct rds_chan *next;
    unsigned loops;               /* loops with a local subscriber */
    bool sub_sent;                /* SUBSCRIBE issued on the current link */
    bool confirmed;               /* Redis acknowledged it */
    uint64_t pub_seq;             /* last sequence number we published */
    struct rds_peer *peers;       /* receive side: per publishing node */
    size_t name_len;              /* prefix + topic */
    char name[];
};

/* A PUBLISH waiting for loop 0, already in Redis's wire format (RESP), so
 * that hiredis copies the payload once more, not twice. */
struct rds_out {
    struct rds_out *next;
    size_t len;
    char data[];
};

struct wsc__redis {
    struct ws_server *srv;
    struct event_base *base;
    char host[256];
    int port;
    char prefix[RDS_PREFIX_MAX];
    size_t prefix_len;
    uint64_t node;

    redisAsyncContext *pub, *sub; /* loop 0 only; NULL when not connected */
    bool pub_up, sub_up;          /* loop 0 only */
    _Atomic bool up;              /* both links up: publishes accepted */
    bool freeing;
    unsigned backoff_ms;
    struct event *retry_ev;       /* reconnect after backoff */
    struct event *sync_ev;        /* drain the queue, reconcile subscriptions */

    pthread_mutex_t lock;         /* guards everything below */
    struct rds_chan *chans;
    bool subs_dirty;              /* some chan's loops may disagree with sub_sent */
    struct rds_out *out_head, *out_tail;
    struct ws_redis_stats st;

    ws_redis_cb on_state;
    void *state_arg;
};

static void rds_connect(struct wsc__redis *r);

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* Lock held. Every name starts with the prefix: only the topic is compared. */
static struct rds_chan *chan_get(struct wsc__redis *r, const char *topic, size_t tlen,
                                 bool create)
{
    size_t len = r->prefix_len + tlen;
    struct rds_chan *ch;

    for (ch = r->chans; ch != NULL; ch = ch->next)
        if (ch->name_len == len && memcmp(ch->name + r->prefix_len, topic, tlen) == 0)
            return ch;
    if (!create || (ch = calloc(1, sizeof(*ch) + len + 1)) == NULL)
        return NULL;
    memcpy(ch->name, r->prefix, r->prefix_len);
    memcpy(ch->name + r->prefix_len, topic, tlen);
    ch->name_len = len;
    ch->next = r->chans;
    r->chans = ch;
    return ch;
}

static void peers_free(struct rds_chan *ch)
{
    while (ch->peers != NULL) {
        struct rds_peer *p = ch->peers;
        ch->peers = p->next;
        free(p);
    }
}

static void rds_set_up(struct wsc__redis *r, bool up)
{
    if (atomic_exchange(&r->up, up) == up)
        return;
    if (r->on_state != NULL && !r->freeing)
        r->on_state(r->srv, up ? 1 : 0, r->state_arg);
}

/* ---- receiving ----------------------------------------------------------- */

/* A message from another node: sequence check, then local delivery. */
static void rds_on_message(struct wsc__redis *r, const char *chan, size_t chan_len,
                           const uint8_t *msg, size_t len)
{
    struct rds_chan *ch;
    struct rds_peer *p;
    uint64_t node, seq;
    char topic[1100];
    size_t tlen;
    int op;
    bool deliver = false;

    if (len < RDS_HDR || memcmp(msg, RDS_MAGIC, 4) != 0 || chan_len < r->prefix_len ||
        (tlen = chan_len - r->prefix_len) >= sizeof(topic))
        return;
    node = get_be64(msg + 4);
    seq = get_be64(msg + 12);
    op = msg[20];
    memcpy(topic, chan + r->prefix_len, tlen);
    topic[tlen] = '\0';
    pthread_mutex_lock(&r->lock);
    ch = chan_get(r, topic, tlen, false);
    if (node == r->node) {
        r->st.own_ignored++;
    } else if (ch != NULL && ch->loops > 0) {
        for (p = ch->peers; p != NULL && p->node != node; p = p->next)
            ;
        if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL) {
            p->node = node;
            p->next = ch->peers;
            ch->peers = p;
        }
        if (p != NULL && p->last_seq != 0 && seq <= p->last_seq) {
            r->st.stale++;        /* a repeat: never delivered twice */
        } else {
            if (p != NULL && p->last_seq != 0)
                r->st.lost += seq - p->last_seq - 1;
            if (p != NULL)
                p->last_seq = seq;
            r->st.received++;
            deliver = true;
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (deliver && (op == WS_OP_TEXT || op == WS_OP_BINARY))
        wsc__server_fan_out(r->srv, topic, op, msg + RDS_HDR, len - RDS_HDR);
}

static void rds_on_sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct wsc__redis *r = priv;
    redisReply *rep = reply;
    const redisReply *chan;
    struct rds_chan *ch;

    wsc__loop_enter(r->srv->ep.loop); /* a libwsc event callback */
    if (rep == NULL || ac != r->sub || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING)
        return;
    chan = rep->element[1];
    if (strcmp(rep->element[0]->str, "message") == 0) {
        if (rep->element[2]->type == REDIS_REPLY_STRING)
            rds_on_message(r, chan->str, chan->len, (const uint8_t *)rep->element[2]->str,
                           rep->element[2]->len);
        return;
    }
    if (chan->len < r->prefix_len) /* not one of ours */
        return;
    pthread_mutex_lock(&r->lock);
    ch = chan_get(r, chan->str + r->prefix_len, chan->len - r->prefix_len, false);
    if (ch != NULL && strcmp(rep->element[0]->str, "subscribe") == 0 && !ch->confirmed) {
        ch->confirmed = true;
        r->st.subscriptions++;
    } else if (ch != NULL && strcmp(rep->element[0]->str, "unsubscribe") == 0 &&
               ch->confirmed) {
        ch->confirmed = false;
        r->st.subscriptions--;
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- loop 0: queue and subscriptions ------------------------------------- */

static void rds_on_pub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct wsc__redis *r = priv;
    redisReply *rep = reply;

    (void)ac;
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        pthread_mutex_lock(&r->lock);
        r->st.publish_errors++; /* handed over, then the link failed */
        pthread_mutex_unlock(&r->lock);
    }
}

/* Loop 0: hand queued publishes to Redis, (un)subscribe as needed. */
static void rds_sync(struct wsc__redis *r)
{
    struct rds_out *q;

    pthread_mutex_lock(&r->lock);
    q = r->out_head;
    r->out_head = r->out_tail = NULL;
    /* Only after a subscription change: a publish alone walks nothing. */
    if (r->subs_dirty && r->sub != NULL && r->sub_up) {
        r->subs_dirty = false;
        for (struct rds_chan *ch = r->chans; ch != NULL; ch = ch->next) {
            const char *argv[2] = { ch->loops > 0 ? "SUBSCRIBE" : "UNSUBSCRIBE", ch->name };
            size_t argl[2] = { strlen(argv[0]), ch->name_len };
            if ((ch->loops > 0) == ch->sub_sent)
                continue;
            if (ch->loops == 0)
                peers_free(ch); /* a later subscription starts afresh */
            ch->sub_sent = ch->loops > 0;
            redisAsyncCommandArgv(r->sub, rds_on_sub_reply, r, 2, argv, argl);
        }
    }
    pthread_mutex_unlock(&r->lock);
    while (q != NULL) {
        struct rds_out *next = q->next;
        if (r->pub == NULL || !r->pub_up ||
            redisAsyncFormattedCommand(r->pub, rds_on_pub_reply, r, q->data, q->len) !=
                REDIS_OK) {
            pthread_mutex_lock(&r->lock);
            r->st.publish_errors++;
            pthread_mutex_unlock(&r->lock);
        }
        free(q);
        q = next;
    }
}

static void rds_on_sync(evutil_socket_t fd, short what, void *arg)
{
    struct wsc__redis *r = arg;

    (void)fd;
    (void)what;
    wsc__loop_enter(r->srv->ep.loop);
    rds_sync(r);
}

/* ---- links: connect, lose, retry ----------------------------------------- */

/* One link is gone (hiredis frees it): drop the other too, retry later. */
static void rds_link_lost(struct wsc__redis *r)
{
    struct timeval tv;

    rds_set_up(r, false);
    if (r->freeing || evtimer_pending(r->retry_ev, NULL))
        return;
    tv.tv_sec = r->backoff_ms / 1000;
    tv.tv_usec = (r->backoff_ms % 1000) * 1000;
    evtimer_add(r->retry_ev, &tv);
    r->backoff_ms = r->backoff_ms * 2 > RDS_BACKOFF_MAX_MS ? RDS_BACKOFF_MAX_MS
                                                           : r->backoff_ms * 2;
}

static void rds_forget_subscriptions(struct wsc__redis *r)
{
    pthread_mutex_lock(&r->lock);
    for (struct rds_chan *ch = r->chans; ch != NULL; ch = ch->next)
        ch->sub_sent = ch->confirmed = false;
    r->st.subscriptions = 0;
    r->subs_dirty = true;
    pthread_mutex_unlock(&r->lock);
}

static void rds_on_connect(const redisAsyncContext *ac, int status)
{
    struct wsc__redis *r = ac->data;

    wsc__loop_enter(r->srv->ep.loop); /* a libwsc event callback */
    if (ac == r->pub)
        r->pub_up = status == REDIS_OK;
    else if (ac == r->sub)
        r->sub_up = status == REDIS_OK;
    if (status != REDIS_OK) {
        /* hiredis frees a context whose connect failed */
        if (ac == r->pub)
            r->pub = NULL;
        if (ac == r->sub)
            r->sub = NULL;
        rds_link_lost(r);
        return;
    }
    /* Named, so that an operator can tell the links apart (CLIENT LIST). */
    redisAsyncCommand((redisAsyncContext *)ac, NULL, NULL, "CLIENT SETNAME wsc-%s-%016llx",
                      ac == r->pub ? "pub" : "sub", (unsigned long long)r->node);
    if (r->pub_up && r->sub_up) {
        r->backoff_ms = RDS_BACKOFF_MIN_MS;
        rds_sync(r);              /* subscribe again to the live topics */
        rds_set_up(r, true);
    }
}

static void rds_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct wsc__redis *r = ac->data;

    wsc__loop_enter(r->srv->ep.loop); /* a libwsc event callback */
    (void)status;
    if (ac == r->pub) {
        r->pub = NULL;
        r->pub_up = false;
    } else if (ac == r->sub) {
        r->sub = NULL;
        r->sub_up = false;
        rds_forget_subscriptions(r);
    }
    rds_link_lost(r);
}

static redisAsyncContext *rds_link_new(struct wsc__redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);

    if (ac == NULL)
        return NULL;
    if (ac->err != 0) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = r;
    if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, rds_on_connect);
    redisAsyncSetDisconnectCallback(ac, rds_on_disconnect);
    return ac;
}

/* Start whichever link is missing; a failed start is retried later. */
static void rds_connect(struct wsc__redis *r)
{
    if (r->pub == NULL)
        r->pub = rds_link_new(r);
    if (r->sub == NULL)
        r->sub = rds_link_new(r);
    if (r->pub == NULL || r->sub == NULL)
        rds_link_lost(r);
}

static void rds_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct wsc__redis *r = arg;

    wsc__loop_enter(r->srv->ep.loop); /* a libwsc event callback */
    (void)fd;
    (void)what;
    pthread_mutex_lock(&r->lock);
    r->st.reconnects++;
    pthread_mutex_unlock(&r->lock);
    rds_connect(r);
}

/* ---- the hooks topic.c and ws_server_publish() use ----------------------- */

void wsc__redis_topic_loop(struct wsc__redis *r, const char *topic, size_t len, bool added)
{
    struct rds_chan *ch;

    pthread_mutex_lock(&r->lock);
    ch = chan_get(r, topic, len, added);
    if (ch != NULL) {
        if (added)
            ch->loops++;
        else if (ch->loops > 0)
            ch->loops--;
        r->subs_dirty = true;
    }
    pthread_mutex_unlock(&r->lock);
    if (!r->freeing)
        event_active(r->sync_ev, EV_READ, 0);
}

int wsc__redis_publish(struct wsc__redis *r, const char *topic, int op, const void *data,
                       size_t len)
{
    size_t tlen = strlen(topic), clen = r->prefix_len + tlen;
    char head[48], mid[32];       /* RESP: before the channel, before the message */
    size_t hlen, mlen;
    uint8_t *msg;
    struct rds_out *q;
    struct rds_chan *ch;
    int rc;

    if (!atomic_load(&r->up)) {
        pthread_mutex_lock(&r->lock);
        r->st.publish_errors++;
        pthread_mutex_unlock(&r->lock);
        return WS_EREDIS;
    }
    hlen = (size_t)snprintf(head, sizeof(head), "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n", clen);
    mlen = (size_t)snprintf(mid, sizeof(mid), "\r\n$%zu\r\n", RDS_HDR + len);
    q = malloc(sizeof(*q) + hlen + clen + mlen + RDS_HDR + len + 2);
    if (q == NULL)
        return WS_ENOMEM;
    q->next = NULL;
    q->len = hlen + clen + mlen + RDS_HDR + len + 2;
    memcpy(q->data, head, hlen);
    memcpy(q->data + hlen, r->prefix, r->prefix_len);
    memcpy(q->data + hlen + r->prefix_len, topic, tlen);
    memcpy(q->data + hlen + clen, mid, mlen);
    msg = (uint8_t *)q->data + hlen + clen + mlen;
    memcpy(msg, RDS_MAGIC, 4);
    put_be64(msg + 4, r->node);
    msg[20] = (uint8_t)op;
    if (len > 0)
        memcpy(msg + RDS_HDR, data, len);
    memcpy(msg + RDS_HDR + len, "\r\n", 2);

    /* Local subscribers first, directly (encoded once for the process). */
    rc = wsc__server_fan_out(r->srv, topic, op, data, len);
    if (rc < 0) {
        free(q);
        return rc;
    }
    pthread_mutex_lock(&r->lock);
    ch = chan_get(r, topic, tlen, true);
    if (ch == NULL) {
        pthread_mutex_unlock(&r->lock);
        free(q);
        return WS_ENOMEM;
    }
    put_be64(msg + 12, ++ch->pub_seq);
    if (r->out_tail != NULL)
        r->out_tail->next = q;
    else
        r->out_head = q;
    r->out_tail = q;
    r->st.published++;
    pthread_mutex_unlock(&r->lock);
    if (wsc__loop_is_owner(r->srv->ep.loop))
        rds_sync(r);
    else
        event_active(r->sync_ev, EV_READ, 0);
    return rc;
}

void wsc__redis_free(struct wsc__redis *r)
{
    if (r == NULL)
        return;
    r->freeing = true;
    if (r->pub != NULL)
        redisAsyncFree(r->pub);   /* its callbacks see freeing and stay quiet */
    if (r->sub != NULL)
        redisAsyncFree(r->sub);
    event_free(r->retry_ev);
    event_free(r->sync_ev);
    while (r->chans != NULL) {
        struct rds_chan *ch = r->chans;
        r->chans = ch->next;
        peers_free(ch);
        free(ch);
    }
    while (r->out_head != NULL) {
        struct rds_out *q = r->out_head;
        r->out_head = q->next;
        free(q);
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- public API ------------------------------------------------------------ */

/* "host:port" or "[v6]:port" into host and port number; 0 or WS_EADDR. */
static int rds_parse_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(addr, ':'), *h = addr, *hend = colon;
    char *end;
    long p;

    if (colon == NULL)
        return WS_EADDR;
    if (addr[0] == '[') {
        h = addr + 1;
        hend = colon - 1;
        if (hend < h || *hend != ']')
            return WS_EADDR;
    }
    p = strtol(colon + 1, &end, 10);
    if (hend == h || (size_t)(hend - h) >= hostlen || colon[1] == '\0' || *end != '\0' ||
        p <= 0 || p > 65535)
        return WS_EADDR;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    *port = (int)p;
    return 0;
}

/* The topics that already have local subscribers when the bridge starts. */
static int rds_adopt_topics(struct wsc__redis *r, struct wsc__endpoint *ep)
{
    for (size_t b = 0; b < ep->topic_buckets; b++)
        for (struct wsc__topic *t = ep->topics[b]; t != NULL; t = wsc__topic_chain_next(t)) {
            size_t len;
            const char *name = wsc__topic_name(t, &len);
            struct rds_chan *ch = chan_get(r, name, len, true);
            if (ch == NULL)
                return WS_ENOMEM;
            ch->loops++;
            r->subs_dirty = true;
        }
    return 0;
}

int ws_server_redis_attach(struct ws_server *srv, const char *addr, const char *prefix)
{
    struct wsc__redis *r;

    if (srv == NULL || addr == NULL)
        return WS_EINVAL;
    if (prefix == NULL)
        prefix = "wsc:";
    if (strlen(prefix) >= RDS_PREFIX_MAX)
        return WS_EINVAL;
    if (srv->redis != NULL || srv->running)
        return WS_ESTATE;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return WS_ENOMEM;
    if (rds_parse_addr(addr, r->host, sizeof(r->host), &r->port) != 0) {
        free(r);
        return WS_EADDR;
    }
    r->srv = srv;
    r->base = srv->ep.loop->base;
    r->prefix_len = strlen(prefix);
    memcpy(r->prefix, prefix, r->prefix_len + 1);
    r->backoff_ms = RDS_BACKOFF_MIN_MS;
    while (r->node == 0)
        if (RAND_bytes((unsigned char *)&r->node, sizeof(r->node)) != 1) {
            free(r);
            return WS_ENOMEM;
        }
    pthread_mutex_init(&r->lock, NULL);
    r->retry_ev = evtimer_new(r->base, rds_on_retry, r);
    r->sync_ev = event_new(r->base, -1, 0, rds_on_sync, r);
    if (r->retry_ev == NULL || r->sync_ev == NULL) {
        wsc__redis_free(r);
        return WS_EEVENT;
    }
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (rds_adopt_topics(r, i == 0 ? &srv->ep : &srv->workers[i - 1].ep) != 0) {
            wsc__redis_free(r);
            return WS_ENOMEM;
        }
    srv->redis = r;
    rds_connect(r);
    return 0;
}

void ws_server_handle_redis(struct ws_server *srv, ws_redis_cb cb, void *arg)
{
    if (srv == NULL || srv->redis == NULL)
        return;
    srv->redis->on_state = cb;
    srv->redis->state_arg = arg;
}

int ws_server_redis_stats(struct ws_server *srv, struct ws_redis_stats *out)
{
    struct wsc__redis *r;

    if (srv == NULL || out == NULL)
        return WS_EINVAL;
    if ((r = srv->redis) == NULL)
        return WS_ESTATE;
    pthread_mutex_lock(&r->lock);
    *out = r->st;
    pthread_mutex_unlock(&r->lock);
    out->up = atomic_load(&r->up) ? 1 : 0;
    out->node = r->node;
    return 0;
}

#else /* !HAVE_HIREDIS: the API is there, the bridge is not */

void wsc__redis_topic_loop(struct wsc__redis *r, const char *topic, size_t len, bool added)
{
    (void)r;
    (void)topic;
    (void)len;
    (void)added;
}

int wsc__redis_publish(struct wsc__redis *r, const char *topic, int op, const void *data,
                       size_t len)
{
    (void)r;
    (void)topic;
    (void)op;
    (void)data;
    (void)len;
    return WS_EUNSUPPORTED;
}

void wsc__redis_free(struct wsc__redis *r)
{
    (void)r;
}

int ws_server_redis_attach(struct ws_server *srv, const char *addr, const char *prefix)
{
    (void)prefix;
    if (srv == NULL || addr == NULL)
        return WS_EINVAL;
    return WS_EUNSUPPORTED;
}

void ws_server_handle_redis(struct ws_server *srv, ws_redis_cb cb, void *arg)
{
    (void)srv;
    (void)cb;
    (void)arg;
}

int ws_server_redis_stats(struct ws_server *srv, struct ws_redis_stats *out)
{
    if (srv == NULL || out == NULL)
        return WS_EINVAL;
    return WS_EUNSUPPORTED;
}

#endif /* HAVE_HIREDIS */
