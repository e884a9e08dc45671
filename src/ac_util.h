/* ac_util: small helpers with no other home: ids, timestamps, UTF-8 checks,
 * base64url, constant-time comparison, secret loading. */
#ifndef AC_UTIL_H
#define AC_UTIL_H

#include <apr_pools.h>
#include <apr_time.h>

/* "prefix_" + 24 lowercase base32 characters of fresh randomness. */
const char *ac_id_new(apr_pool_t *p, const char *prefix);
/* True if s is prefix followed by 1..64 characters of [A-Za-z0-9_-]. */
int ac_id_valid(const char *s, const char *prefix);

/* RFC 3339 UTC with milliseconds: 2026-11-21T15:49:33.123Z */
const char *ac_time_rfc3339(apr_pool_t *p, apr_time_t t);
/* Parse what ac_time_rfc3339 writes (also without fraction); 0 when invalid. */
apr_time_t ac_time_parse_rfc3339(const char *s);
/* RFC 1123 date for x-ms-date, lower-cased as Cosmos signs it is the caller's job. */
const char *ac_time_rfc1123(apr_pool_t *p, apr_time_t t);

/* Strict UTF-8 validation (no overlongs, no surrogates, no > U+10FFFF). */
int ac_utf8_valid(const char *s, apr_size_t len);
/* Number of code points in a valid UTF-8 string. */
apr_size_t ac_utf8_len(const char *s);
/* Copy of s cut to at most max_chars code points (never splits a character). */
char *ac_utf8_truncate(apr_pool_t *p, const char *s, apr_size_t max_chars);

char *ac_base64url_encode(apr_pool_t *p, const unsigned char *data, apr_size_t len);
/* Returns NULL on any invalid input. */
unsigned char *ac_base64url_decode(apr_pool_t *p, const char *s, apr_size_t *len);

/* Constant-time equality over the longer of the two lengths. */
int ac_ct_equal(const void *a, apr_size_t alen, const void *b, apr_size_t blen);

/* A secret directive value: the value itself or "file:/path" (trimmed).
 * Returns an error message (never containing the secret) or NULL. */
const char *ac_secret_load(apr_pool_t *p, const char *arg, const char **out);

#endif
