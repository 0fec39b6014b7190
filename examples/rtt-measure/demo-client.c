/*
 * demo-client.c - rtt-measure's demo clients: thin wrappers around
 * ws_client. Everything interesting (handshake, masking, answering pings,
 * the close handshake) happens in the library.
 */
#include "demo-client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wsc.h>

struct demo_client {
    struct ws_client *cl;
    unsigned index;
};

/* Called once the client has stopped for good. A graceful server stop ends
 * with a clean close (error 0); anything else is worth a line. */
static void on_give_up(struct ws_client *cl, int error, void *arg)
{
    struct demo_client *dc = arg;

    (void)cl;
    if (error != 0)
        fprintf(stderr, "demo client %u: %s\n", dc->index, ws_strerror(error));
}

struct demo_client *demo_client_start(struct event_base *base,
                                      const char *host, int port,
                                      unsigned index, int tls, const char *ca_file)
{
    struct demo_client *dc = calloc(1, sizeof(*dc));
    struct ws_config *cfg = ws_config_new();
    char url[300];
    int rc = WS_ENOMEM;

    /* An IPv6 literal needs brackets in a URL. */
    snprintf(url, sizeof(url),
             strchr(host, ':') != NULL ? "%s://[%s]:%d/" : "%s://%s:%d/", tls ? "wss" : "ws",
             host, port);
    if (dc != NULL && cfg != NULL) {
        /* Share the server's loop; its pings are all we want to see, so
         * our own heartbeat stays off. No reconnecting (the default). */
        ws_config_set_event_base(cfg, base);
        ws_config_set_ping_interval(cfg, 0);
        dc->index = index;
        dc->cl = ws_client_new(cfg);
    }
    if (dc != NULL && dc->cl != NULL) {
        ws_client_handle_give_up(dc->cl, on_give_up, dc);
        rc = ca_file != NULL ? ws_client_set_tls_ca_file(dc->cl, ca_file) : 0;
        if (rc == 0)
            rc = ws_client_connect(dc->cl, url);
    }
    ws_config_free(cfg);
    if (rc == 0)
        return dc;
    fprintf(stderr, "demo client %u: %s: %s\n", index, url, ws_strerror(rc));
    demo_client_stop(dc);
    return NULL;
}

void demo_client_stop(struct demo_client *dc)
{
    if (dc == NULL)
        return;
    /* The loop no longer runs: stop only makes sure nothing restarts, and
     * free drops a connection that is still there without callbacks. */
    ws_client_stop(dc->cl);
    ws_client_free(dc->cl);
    free(dc);
}
