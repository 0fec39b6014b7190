/* conn_ext.c - state most connections never need, behind one pointer
 * allocated on demand: the permessage-deflate parameters and streams
 * (while the extension is negotiated) and a message being assembled (while
 * one is). An idle connection without deflate holds none (idle memory,
 * issue 14). Loop thread only. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct wsc__conn_ext *wsc__conn_ext(struct ws_conn *c)
{
    if (c->ext == NULL)
        c->ext = calloc(1, sizeof(*c->ext));
    return c->ext;
}

/* Nothing left in it: give it back. */
static void ext_trim(struct ws_conn *c)
{
    struct wsc__conn_ext *e = c->ext;

    if (e != NULL && !e->pmd_on && e->msg.buf == NULL && e->inflater == NULL &&
        e->deflater == NULL) {
        free(e);
        c->ext = NULL;
    }
}

int wsc__conn_pmd_set(struct ws_conn *c, const struct wsc__pmd *params)
{
    struct wsc__conn_ext *e;

    if (!params->enabled) {       /* declined (again, on a keep-alive request) */
        if (c->ext != NULL) {
            wsc__inflater_free(c->ext->inflater);
            wsc__deflater_free(c->ext->deflater);
            c->ext->inflater = c->ext->deflater = NULL;
            c->ext->pmd_on = false;
            ext_trim(c);
        }
        return 0;
    }
    if ((e = wsc__conn_ext(c)) == NULL)
        return WS_ENOMEM;
    e->params = *params;
    e->pmd_on = true;
    return 0;
}

void wsc__conn_ext_msg_done(struct ws_conn *c)
{
    if (c->ext == NULL)
        return;
    free(c->ext->msg.buf);
    memset(&c->ext->msg, 0, sizeof(c->ext->msg));
    ext_trim(c);
}

void wsc__conn_ext_free(struct ws_conn *c)
{
    if (c->ext == NULL)
        return;
    free(c->ext->msg.buf);
    wsc__inflater_free(c->ext->inflater);
    wsc__deflater_free(c->ext->deflater);
    free(c->ext);
    c->ext = NULL;
}
