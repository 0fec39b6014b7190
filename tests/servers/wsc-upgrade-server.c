/*
 * wsc-upgrade-server - exercises the upgrade hook for tests/upgrade. The
 * request's query says what the hook does:
 *
 *   reject=<status>     refuse with that status, body "refused\n"
 *   proto=<name>        accept with that subprotocol (a refused choice
 *                       answers 400 with body "accept rc=<rc>")
 *   header=<v>          add "X-Upgrade-Test: <v>" to the response
 *   delay=<ms>          decide after ms on a timer (async), as above
 *   hold=1              keep the handle and never decide (abort expected)
 *   user=<s>            the connection's user pointer (reported at open)
 *   twice=1             decide again after the decision (prints SECOND rc=)
 *   abandon=1           with delay: drop the reference without deciding
 *   hdrname=<n>         add header n (prints ADDHDR rc=)
 *   keep=1              with delay: keep the handle past the abort; the
 *                       timer still decides (and gets WS_ECLOSED)
 *
 * Lines on stdout:
 *   LISTENING <port>
 *   UPGRADE path=<p> query=<q> origin=<o|-> protocols=<a,b|-> tls=<0|1> headers=<n>
 *   DECIDE <accept|reject> rc=<rc>          (an async decision)
 *   ABORT late_accept=<rc> late_reject=<rc> pending=<0|1>
 *   OPEN user=<s|-> proto=<p|->
 *   CLOSE code=<code>
 * An open connection echoes every message. SIGTERM stops it.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "wsc.h"

struct pending {
    struct ws_upgrade *up;
    struct event *timer;
    struct pending *next;
};

static struct ws_server *srv;
static struct pending *pendings; /* async decisions not made yet */

static void decide(struct ws_upgrade *up, const char *who)
{
    const struct ws_request *req = ws_upgrade_request(up);
    char status[16], proto[64], header[128], user[64];
    int rc;

    if (ws_request_query_param(req, "header", header, sizeof(header)) >= 0)
        ws_upgrade_add_header(up, "X-Upgrade-Test", header);
    if (ws_request_query_param(req, "hdrname", header, sizeof(header)) >= 0)
        printf("ADDHDR rc=%d\n", ws_upgrade_add_header(up, header, "v"));
    if (ws_request_query_param(req, "reject", status, sizeof(status)) >= 0) {
        rc = ws_upgrade_reject(up, atoi(status), "text/plain", "refused\n", 8);
        if (who != NULL)
            printf("DECIDE reject rc=%d\n", rc);
        return;
    }
    char *u = NULL;
    if (ws_request_query_param(req, "user", user, sizeof(user)) >= 0)
        u = strdup(user); /* freed at close */
    rc = ws_upgrade_accept(up, ws_request_query_param(req, "proto", proto, sizeof(proto)) >= 0
                                   ? proto : NULL, u);
    if (rc == WS_EINVAL) {
        char body[32];
        int n = snprintf(body, sizeof(body), "accept rc=%d\n", rc);
        free(u);
        ws_upgrade_reject(up, 400, "text/plain", body, (size_t)n);
    } else if (rc != 0) {
        free(u);
    }
    if (who != NULL)
        printf("DECIDE accept rc=%d\n", rc);
    if (ws_request_query_param(req, "twice", status, sizeof(status)) >= 0)
        printf("SECOND accept=%d reject=%d header=%d\n", ws_upgrade_accept(up, NULL, NULL),
               ws_upgrade_reject(up, 500, NULL, NULL, 0),
               ws_upgrade_add_header(up, "X-Late", "1"));
}

static void pending_remove(struct pending *p)
{
    for (struct pending **pp = &pendings; *pp != NULL; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    if (p->timer != NULL)
        event_free(p->timer);
    ws_upgrade_unref(p->up);
    free(p);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;

    char flag[4];

    (void)fd;
    (void)what;
    if (ws_request_query_param(ws_upgrade_request(p->up), "abandon", flag, sizeof(flag)) < 0)
        decide(p->up, "timer");
    else
        printf("ABANDON\n");
    pending_remove(p);
}

static void on_upgrade(struct ws_upgrade *up, void *arg)
{
    const struct ws_request *req = ws_upgrade_request(up);
    const char *origin = ws_request_origin(req);
    char delay[16], hold[4];
    size_t n = ws_request_subprotocol_count(req);

    (void)arg;
    printf("UPGRADE path=%s query=%s origin=%s protocols=", ws_request_path(req),
           ws_request_query(req), origin != NULL ? origin : "-");
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i > 0 ? "," : "", ws_request_subprotocol_at(req, i));
    printf("%s tls=%d headers=%zu\n", n == 0 ? "-" : "", ws_request_is_tls(req),
           ws_request_header_count(req));
    if (ws_request_query_param(req, "hold", hold, sizeof(hold)) >= 0 ||
        ws_request_query_param(req, "delay", delay, sizeof(delay)) >= 0) {
        struct pending *p = calloc(1, sizeof(*p));
        if (p == NULL)
            return; /* not kept: the library answers 500 */
        ws_upgrade_ref(up);
        p->up = up;
        ws_upgrade_set_data(up, p);
        p->next = pendings;
        pendings = p;
        if (ws_request_query_param(req, "delay", delay, sizeof(delay)) >= 0) {
            long ms = strtol(delay, NULL, 10);
            struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
            p->timer = evtimer_new(ws_server_event_base(srv), on_timer, p);
            evtimer_add(p->timer, &tv);
        }
        return;
    }
    decide(up, NULL);
}

static void on_abort(struct ws_upgrade *up, void *arg)
{
    struct pending *p = ws_upgrade_get_data(up);
    int pend = ws_upgrade_pending(up);
    int ra = ws_upgrade_accept(up, NULL, NULL);
    int rr = ws_upgrade_reject(up, 500, NULL, NULL, 0);

    char keep[4];

    (void)arg;
    printf("ABORT late_accept=%d late_reject=%d pending=%d\n", ra, rr, pend);
    if (p != NULL && p->timer != NULL &&
        ws_request_query_param(ws_upgrade_request(up), "keep", keep, sizeof(keep)) >= 0)
        return; /* the timer decides on a dead handle, then drops it */
    if (p != NULL)
        pending_remove(p); /* the last reference: the handle goes now */
}

static void on_open(struct ws_conn *c, void *arg)
{
    const char *user = ws_conn_get_user(c);
    const char *proto = ws_conn_subprotocol(c);

    (void)arg;
    printf("OPEN user=%s proto=%s\n", user != NULL ? user : "-",
           proto[0] != '\0' ? proto : "-");
}

static void on_data(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len,
                    void *arg)
{
    (void)arg;
    ws_conn_send(c, op, data, len);
}

static void on_close(struct ws_conn *c, const struct ws_close_info *info, void *arg)
{
    (void)arg;
    printf("CLOSE code=%d\n", info->code);
    free(ws_conn_get_user(c));
}

static int parse_uint(const char *s, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v > UINT_MAX)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "allowed-origins", required_argument, NULL, 'o' },
        { "handshake-timeout", required_argument, NULL, 't' },
        { "max-head", required_argument, NULL, 'm' },
        { "no-hook", no_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 }
    };
    struct ws_config *cfg = ws_config_new();
    const char *listen = "127.0.0.1:0";
    int hook = 1, ch, port, idx = 0;
    unsigned v;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (cfg == NULL)
        return 1;
    while ((ch = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        int rc = 0;
        switch (ch) {
        case 'l':
            listen = optarg;
            break;
        case 'o':
            rc = ws_config_set_allowed_origins(cfg, optarg);
            break;
        case 't':
            rc = parse_uint(optarg, &v) != 0 ? -1 : ws_config_set_handshake_timeout(cfg, v);
            break;
        case 'm':
            rc = parse_uint(optarg, &v) != 0 ? -1 : ws_config_set_max_head_size(cfg, v);
            break;
        case 'n':
            hook = 0;
            break;
        default:
            ws_config_free(cfg);
            return 2;
        }
        if (rc != 0) {
            fprintf(stderr, "bad --%s\n", opts[idx].name);
            ws_config_free(cfg);
            return 2;
        }
    }
    srv = ws_server_new(cfg);
    ws_config_free(cfg);
    if (srv == NULL)
        return 1;
    if (hook) {
        ws_server_handle_upgrade(srv, on_upgrade, NULL);
        ws_server_handle_upgrade_abort(srv, on_abort, NULL);
    }
    ws_server_handle_open(srv, on_open, NULL);
    ws_server_handle_data(srv, on_data, NULL);
    ws_server_handle_close(srv, on_close, NULL);
    port = ws_server_listen(srv, listen);
    if (port < 0) {
        fprintf(stderr, "listen: %s\n", ws_strerror(port));
        ws_server_free(srv);
        return 1;
    }
    printf("LISTENING %d\n", port);
    ws_server_run(srv);
    while (pendings != NULL) /* stopped with decisions outstanding */
        pending_remove(pendings);
    ws_server_free(srv);
    printf("STOPPED\n");
    return 0;
}
