/*
 * frame.c - close payloads and codes. Frame headers and masking run once
 * per frame on the hot path, so they are inline, in frame.h.
 */
#include <string.h>

#include "internal.h"

size_t wsc__frame_close_payload(uint8_t out[125], int code, const char *reason,
                                size_t reason_len)
{
    if (code == 0)
        return 0;
    if (reason_len > 123)
        reason_len = 123;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (reason_len > 0)
        memcpy(out + 2, reason, reason_len);
    return 2 + reason_len;
}

bool wsc__close_code_valid(int code)
{
    /* RFC 6455 7.4.1 plus IANA's 1012-1014; 1004-1006 and 1015 are never
     * sent on the wire; 3000-4999 belong to libraries and applications. */
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1014)
        return true;
    return code >= 3000 && code <= 4999;
}
