/* conn_pmd.c - a connection's permessage-deflate state, allocated only when
 * the extension is negotiated: most connections never compress, and the
 * parameters and two stream pointers would cost every one of them (idle
 * memory, issue 14). */
#include <stdlib.h>

#include "internal.h"

int wsc__conn_pmd_set(struct ws_conn *c, const struct wsc__pmd *params)
{
    if (!params->enabled) {       /* declined (again, on a keep-alive request) */
        wsc__conn_pmd_free(c);
        return 0;
    }
    if (c->pmd == NULL && (c->pmd = calloc(1, sizeof(*c->pmd))) == NULL)
        return WS_ENOMEM;
    c->pmd->params = *params;
    return 0;
}

void wsc__conn_pmd_free(struct ws_conn *c)
{
    if (c->pmd == NULL)
        return;
    wsc__inflater_free(c->pmd->inflater);
    wsc__deflater_free(c->pmd->deflater);
    free(c->pmd);
    c->pmd = NULL;
}
