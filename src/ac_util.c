/* ac_util: ids, timestamps, UTF-8, base64url, constant-time compare, secrets. */
#include "ac_util.h"

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

const char *ac_id_new(apr_pool_t *p, const char *prefix)
{
    unsigned char rnd[15]; /* 120 bits -> 24 base32 characters */
    char out[25];
    int i, bits = 0, o = 0;
    unsigned int acc = 0;

    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        /* apr's generator failing is not recoverable; fall back to time+pid mixing */
        apr_uint64_t t = (apr_uint64_t)apr_time_now() ^ ((apr_uint64_t)(apr_uintptr_t)p << 16);
        for (i = 0; i < (int)sizeof(rnd); i++) {
            t = t * 6364136223846793005ULL + 1442695040888963407ULL;
            rnd[i] = (unsigned char)(t >> 56);
        }
    }
    for (i = 0; i < (int)sizeof(rnd); i++) {
        acc = (acc << 8) | rnd[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = b32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    out[o] = '\0';
    return apr_pstrcat(p, prefix, "_", out, NULL);
}

int ac_id_valid(const char *s, const char *prefix)
{
    apr_size_t plen = strlen(prefix), n = 0;

    if (!s || strncmp(s, prefix, plen) != 0 || s[plen] != '_') {
        return 0;
    }
    for (s += plen + 1; *s; s++, n++) {
        if (n >= 64 || !(isalnum((unsigned char)*s) || *s == '_' || *s == '-')) {
            return 0;
        }
    }
    return n > 0;
}

const char *ac_time_rfc3339(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t x;

    apr_time_exp_gmt(&x, t);
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", x.tm_year + 1900, x.tm_mon + 1,
                        x.tm_mday, x.tm_hour, x.tm_min, x.tm_sec, x.tm_usec / 1000);
}

apr_time_t ac_time_parse_rfc3339(const char *s)
{
    apr_time_exp_t x = {0};
    apr_time_t t;
    int y, mo, d, h, mi, sec, n = 0, ms = 0;

    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
        n != 19) {
        return 0;
    }
    s += n;
    if (*s == '.') {
        int digits = 0;
        for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
            if (digits < 3) {
                ms = ms * 10 + (*s - '0');
            }
        }
        for (; digits < 3; digits++) {
            ms *= 10;
        }
    }
    if (strcmp(s, "Z") != 0) {
        return 0;
    }
    x.tm_year = y - 1900;
    x.tm_mon = mo - 1;
    x.tm_mday = d;
    x.tm_hour = h;
    x.tm_min = mi;
    x.tm_sec = sec;
    if (apr_time_exp_gmt_get(&t, &x) != APR_SUCCESS) {
        return 0;
    }
    return t + apr_time_from_msec(ms);
}

const char *ac_time_rfc1123(apr_pool_t *p, apr_time_t t)
{
    char *buf = apr_palloc(p, APR_RFC822_DATE_LEN);
    apr_rfc822_date(buf, t);
    return buf;
}

int ac_utf8_valid(const char *str, apr_size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;

    while (s < end) {
        unsigned int c = *s, cp;
        int n;
        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        }
        else {
            return 0;
        }
        if (end - s <= n) {
            return 0;
        }
        for (int i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        s += n + 1;
    }
    return 1;
}

apr_size_t ac_utf8_len(const char *s)
{
    apr_size_t n = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

char *ac_utf8_truncate(apr_pool_t *p, const char *s, apr_size_t max_chars)
{
    apr_size_t n = 0;
    const char *c = s;

    for (; *c; c++) {
        if (((unsigned char)*c & 0xC0) != 0x80) {
            if (n == max_chars) {
                break;
            }
            n++;
        }
    }
    return apr_pstrmemdup(p, s, (apr_size_t)(c - s));
}

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *ac_base64url_encode(apr_pool_t *p, const unsigned char *d, apr_size_t len)
{
    char *out = apr_palloc(p, (len + 2) / 3 * 4 + 1), *o = out;
    apr_size_t i;

    for (i = 0; i + 2 < len; i += 3) {
        *o++ = b64u[d[i] >> 2];
        *o++ = b64u[((d[i] & 3) << 4) | (d[i + 1] >> 4)];
        *o++ = b64u[((d[i + 1] & 15) << 2) | (d[i + 2] >> 6)];
        *o++ = b64u[d[i + 2] & 63];
    }
    if (i < len) {
        *o++ = b64u[d[i] >> 2];
        if (i + 1 < len) {
            *o++ = b64u[((d[i] & 3) << 4) | (d[i + 1] >> 4)];
            *o++ = b64u[(d[i + 1] & 15) << 2];
        }
        else {
            *o++ = b64u[(d[i] & 3) << 4];
        }
    }
    *o = '\0';
    return out;
}

unsigned char *ac_base64url_decode(apr_pool_t *p, const char *s, apr_size_t *len)
{
    apr_size_t n = strlen(s), i, o = 0;
    unsigned char *out;
    unsigned int acc = 0;
    int bits = 0;

    if (n % 4 == 1) {
        return NULL;
    }
    out = apr_palloc(p, n * 3 / 4 + 1);
    for (i = 0; i < n; i++) {
        const char *pos = s[i] ? strchr(b64u, s[i]) : NULL;
        if (!pos) {
            return NULL;
        }
        acc = (acc << 6) | (unsigned int)(pos - b64u);
        bits += 6;
        if (bits >= 8) {
            out[o++] = (unsigned char)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

int ac_ct_equal(const void *a, apr_size_t alen, const void *b, apr_size_t blen)
{
    const volatile unsigned char *x = a, *y = b;
    apr_size_t n = alen > blen ? alen : blen, i;
    unsigned char diff = (unsigned char)(alen != blen);

    for (i = 0; i < n; i++) {
        unsigned char cx = i < alen ? x[i] : 0, cy = i < blen ? y[i] : 0;
        diff |= cx ^ cy;
    }
    return diff == 0;
}

const char *ac_secret_load(apr_pool_t *p, const char *arg, const char **out)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    char *buf;
    apr_status_t rv;

    if (strncmp(arg, "file:", 5) != 0) {
        *out = arg;
        return NULL;
    }
    arg += 5;
    if ((rv = apr_file_open(&f, arg, APR_FOPEN_READ, 0, p)) != APR_SUCCESS) {
        return apr_psprintf(p, "cannot open secret file '%s'", arg);
    }
    if (apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS || fi.size > 65536) {
        apr_file_close(f);
        return apr_psprintf(p, "secret file '%s' is unreadable or larger than 64 KiB", arg);
    }
    n = (apr_size_t)fi.size;
    buf = apr_palloc(p, n + 1);
    rv = apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        return apr_psprintf(p, "cannot read secret file '%s'", arg);
    }
    buf[n] = '\0';
    while (n > 0 && isspace((unsigned char)buf[n - 1])) {
        buf[--n] = '\0';
    }
    while (*buf && isspace((unsigned char)*buf)) {
        buf++;
    }
    if (!*buf) {
        return apr_psprintf(p, "secret file '%s' is empty", arg);
    }
    *out = buf;
    return NULL;
}
