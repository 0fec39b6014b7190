/* handshake.c - RFC 6455 section 4.2: validating the upgrade, the accept key. */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "internal.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int wsc__handshake_accept(const char *key, size_t key_len,
                          char out[WSC__ACCEPT_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    if (md == NULL)
        return WS_ENOMEM;
    ok = EVP_DigestInit_ex(md, EVP_sha1(), NULL) == 1 &&
         EVP_DigestUpdate(md, key, key_len) == 1 &&
         EVP_DigestUpdate(md, ws_guid, sizeof(ws_guid) - 1) == 1 &&
         EVP_DigestFinal_ex(md, digest, &digest_len) == 1 && digest_len == 20;
    EVP_MD_CTX_free(md);
    if (!ok)
        return WS_ENOMEM;
    EVP_EncodeBlock((unsigned char *)out, digest, 20);
    out[WSC__ACCEPT_LEN] = '\0';
    return 0;
}

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

bool wsc__handshake_key_valid(const char *key, size_t key_len)
{
    /* 16 bytes encode to 22 characters plus "==" (RFC 6455 4.1 item 7). */
    if (key_len != 24 || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!is_base64_char(key[i]))
            return false;
    return true;
}

static bool slice_equals(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

static size_t header_count(const struct wsc__http_request *req, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < req->num_headers; i++)
        if (req->headers[i].name_len == strlen(name) &&
            strncasecmp(req->headers[i].name, name, strlen(name)) == 0)
            n++;
    return n;
}

enum wsc__upgrade_verdict wsc__handshake_check(const struct wsc__http_request *req,
                                               const struct wsc__http_header **key)
{
    const struct wsc__http_header *version, *k;

    if (!wsc__http_header_has_token(req, "Upgrade", "websocket"))
        return WSC__NOT_UPGRADE;
    if (!slice_equals(req->method, req->method_len, "GET"))
        return WSC__UPGRADE_METHOD;
    version = wsc__http_find_header(req, "Sec-WebSocket-Version");
    if (version == NULL || !slice_equals(version->value, version->value_len, "13"))
        return WSC__UPGRADE_VERSION;
    if (req->minor_version < 1 || wsc__http_find_header(req, "Host") == NULL ||
        !wsc__http_header_has_token(req, "Connection", "upgrade"))
        return WSC__UPGRADE_BAD;
    k = wsc__http_find_header(req, "Sec-WebSocket-Key");
    if (k == NULL || header_count(req, "Sec-WebSocket-Key") != 1 ||
        !wsc__handshake_key_valid(k->value, k->value_len))
        return WSC__UPGRADE_BAD;
    *key = k;
    return WSC__UPGRADE_OK;
}
