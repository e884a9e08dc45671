/* ac_cosmos_auth: HMAC-SHA256 master-key signature for Cosmos DB (OpenSSL). */
#include "ac_cosmos_auth.h"

#include <apr_base64.h>
#include <apr_strings.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

unsigned char *ac_cosmos_key_decode(apr_pool_t *p, const char *b64, apr_size_t *len)
{
    apr_size_t n = strlen(b64), i;
    unsigned char *out;
    int dlen;

    if (n == 0 || n % 4 != 0) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        char c = b64[i];
        if (!(isalnum((unsigned char)c) || c == '+' || c == '/' || (c == '=' && i >= n - 2))) {
            return NULL;
        }
    }
    out = apr_palloc(p, (apr_size_t)apr_base64_decode_len(b64));
    dlen = apr_base64_decode_binary(out, b64);
    if (dlen <= 0) {
        return NULL;
    }
    *len = (apr_size_t)dlen;
    return out;
}

static char *lower(apr_pool_t *p, const char *s)
{
    char *r = apr_pstrdup(p, s), *c;
    for (c = r; *c; c++) {
        *c = (char)tolower((unsigned char)*c);
    }
    return r;
}

/* Percent-encode everything outside the unreserved set, as the SDKs do. */
static char *url_encode(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

const char *ac_cosmos_auth_master(apr_pool_t *p, const unsigned char *key, apr_size_t key_len,
                                  const char *verb, const char *resource_type,
                                  const char *resource_link, const char *date)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char *text, *sig;

    text = apr_pstrcat(p, lower(p, verb), "\n", lower(p, resource_type), "\n", resource_link, "\n",
                       lower(p, date), "\n\n", NULL);
    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)text, strlen(text), mac,
              &mac_len)) {
        return NULL;
    }
    sig = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)mac_len));
    apr_base64_encode_binary(sig, mac, (int)mac_len);
    return url_encode(p, apr_pstrcat(p, "type=master&ver=1.0&sig=", sig, NULL));
}
