/* ac_sse_parse: incremental Server-Sent-Events parser (see ac_sse_parse.h).
 * A byte-driven line splitter feeding the spec's per-line field rules; all
 * state that must survive a slice boundary lives in the parser struct. */
#include "ac_sse_parse.h"

#include <string.h>

/* A growable byte buffer reused for the whole stream: reset, never freed. */
typedef struct {
    char *data;
    apr_size_t len, cap;
} sse_buf_t;

struct ac_sse_parser {
    apr_pool_t *pool;
    ac_sse_event_cb *cb;
    void *baton;
    apr_size_t max_event;
    sse_buf_t line;  /* a line cut by a slice boundary, waiting for its end */
    sse_buf_t data;  /* data lines of the current event, each followed by LF */
    sse_buf_t event; /* "event:" of the current event */
    sse_buf_t id;    /* last event id; survives dispatch, as the spec says */
    apr_int64_t retry;
    int bom;      /* bytes of a leading BOM matched so far; -1 once past it */
    int after_cr; /* last line ended in CR: an LF next is part of that end */
    int skipping; /* inside a comment line, whose bytes are dropped */
    apr_status_t status;
};

static const unsigned char utf8_bom[3] = {0xEF, 0xBB, 0xBF};

#define SSE_BUF_MIN 256

/* Room for extra bytes plus a NUL.  Doubling keeps the abandoned smaller
 * blocks (pool memory is only returned when the pool goes) below the final
 * capacity, and capacity itself is bounded by max_event by the callers. */
static void buf_reserve(apr_pool_t *p, sse_buf_t *b, apr_size_t extra)
{
    apr_size_t need = b->len + extra + 1, cap = b->cap ? b->cap : SSE_BUF_MIN;
    char *n;

    if (need <= b->cap) {
        return;
    }
    while (cap < need) {
        cap *= 2;
    }
    n = apr_palloc(p, cap);
    if (b->len) {
        memcpy(n, b->data, b->len);
    }
    b->data = n;
    b->cap = cap;
}

static void buf_append(apr_pool_t *p, sse_buf_t *b, const char *s, apr_size_t n)
{
    buf_reserve(p, b, n);
    if (n) {
        memcpy(b->data + b->len, s, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_set(apr_pool_t *p, sse_buf_t *b, const char *s, apr_size_t n)
{
    b->len = 0;
    buf_append(p, b, s, n);
}

ac_sse_parser_t *ac_sse_parser_create(apr_pool_t *p, apr_size_t max_event, ac_sse_event_cb *cb,
                                      void *baton)
{
    ac_sse_parser_t *ps = apr_pcalloc(p, sizeof(*ps));

    ps->pool = p;
    ps->cb = cb;
    ps->baton = baton;
    ps->max_event = max_event ? max_event : AC_SSE_DEFAULT_MAX_EVENT;
    ps->retry = -1;
    ps->status = APR_SUCCESS;
    return ps;
}

static apr_status_t dispatch(ac_sse_parser_t *ps)
{
    int stop;

    if (ps->data.len == 0) {
        /* no data lines: the spec drops the event (and its type) silently */
        ps->event.len = 0;
        return APR_SUCCESS;
    }
    ps->data.len--; /* the LF after the last data line is not part of the data */
    ps->data.data[ps->data.len] = '\0';
    stop = ps->cb(ps->baton, ps->event.len ? ps->event.data : NULL, ps->data.data, ps->data.len,
                  ps->id.len ? ps->id.data : NULL);
    ps->data.len = 0;
    ps->event.len = 0;
    return stop ? APR_ECONNABORTED : APR_SUCCESS;
}

static int field_is(const char *f, apr_size_t flen, const char *name)
{
    return flen == strlen(name) && memcmp(f, name, flen) == 0;
}

static void set_retry(ac_sse_parser_t *ps, const char *v, apr_size_t n)
{
    apr_int64_t ms = 0;
    apr_size_t i;

    if (n == 0 || n > 15) { /* 15 digits: no overflow, and beyond any sane delay */
        return;
    }
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return; /* the spec ignores a non-numeric retry */
        }
        ms = ms * 10 + (v[i] - '0');
    }
    ps->retry = ms;
}

/* One complete line, without its terminator. */
static apr_status_t process_line(ac_sse_parser_t *ps, const char *line, apr_size_t n)
{
    const char *colon, *value;
    apr_size_t flen, vlen;

    if (n == 0) {
        return dispatch(ps);
    }
    if (line[0] == ':') {
        return APR_SUCCESS; /* comment */
    }
    colon = memchr(line, ':', n);
    if (colon) {
        flen = (apr_size_t)(colon - line);
        value = colon + 1;
        vlen = n - flen - 1;
        if (vlen && *value == ' ') {
            value++;
            vlen--;
        }
    }
    else {
        flen = n; /* the whole line is the field name, the value is empty */
        value = "";
        vlen = 0;
    }

    if (field_is(line, flen, "data")) {
        if (ps->data.len + vlen + 1 > ps->max_event) {
            return APR_ENOSPC;
        }
        buf_append(ps->pool, &ps->data, value, vlen);
        buf_append(ps->pool, &ps->data, "\n", 1);
    }
    else if (field_is(line, flen, "event")) {
        buf_set(ps->pool, &ps->event, value, vlen);
    }
    else if (field_is(line, flen, "id")) {
        if (!memchr(value, '\0', vlen)) { /* the spec ignores an id with NUL */
            buf_set(ps->pool, &ps->id, value, vlen);
        }
    }
    else if (field_is(line, flen, "retry")) {
        set_retry(ps, value, vlen);
    }
    /* any other field is ignored */
    return APR_SUCCESS;
}

/* Split bytes (BOM already handled) into lines. */
static apr_status_t process_bytes(ac_sse_parser_t *ps, const char *p, const char *end)
{
    apr_status_t rv = APR_SUCCESS;

    while (p < end) {
        const char *q;
        apr_size_t n;

        if (ps->after_cr) {
            ps->after_cr = 0;
            if (*p == '\n') {
                p++;
                continue;
            }
        }
        for (q = p; q < end && *q != '\n' && *q != '\r'; q++) {
        }
        n = (apr_size_t)(q - p);
        if (!ps->skipping && ps->line.len == 0 && n > 0 && *p == ':') {
            ps->skipping = 1;
        }
        if (!ps->skipping && ps->data.len + ps->line.len + n > ps->max_event) {
            return APR_ENOSPC;
        }
        if (q == end) {
            /* the line goes on in the next slice: keep what we have */
            if (!ps->skipping) {
                buf_append(ps->pool, &ps->line, p, n);
            }
            return APR_SUCCESS;
        }
        if (ps->skipping) {
            ps->skipping = 0;
        }
        else if (ps->line.len) {
            buf_append(ps->pool, &ps->line, p, n);
            rv = process_line(ps, ps->line.data, ps->line.len);
            ps->line.len = 0;
        }
        else {
            rv = process_line(ps, p, n); /* whole line in this slice: no copy */
        }
        ps->after_cr = (*q == '\r');
        p = q + 1;
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

apr_status_t ac_sse_parser_feed(ac_sse_parser_t *ps, const char *data, apr_size_t len)
{
    const char *p = data, *end = data + len;

    if (ps->status != APR_SUCCESS) {
        return ps->status;
    }
    /* The BOM may itself be cut by a slice boundary: match it byte by byte. */
    while (ps->bom >= 0 && p < end) {
        if ((unsigned char)*p == utf8_bom[ps->bom]) {
            p++;
            if (++ps->bom == 3) {
                ps->bom = -1;
            }
        }
        else {
            /* not a BOM after all: the matched bytes are ordinary line bytes */
            buf_append(ps->pool, &ps->line, (const char *)utf8_bom, (apr_size_t)ps->bom);
            ps->bom = -1;
        }
    }
    ps->status = process_bytes(ps, p, end);
    return ps->status;
}

apr_status_t ac_sse_parser_finish(ac_sse_parser_t *ps)
{
    if (ps->status != APR_SUCCESS) {
        return ps->status;
    }
    if (ps->line.len || ps->data.len || ps->bom > 0) {
        ps->line.len = 0;
        ps->data.len = 0;
        ps->event.len = 0;
        return APR_INCOMPLETE;
    }
    return APR_SUCCESS;
}

apr_int64_t ac_sse_parser_retry(const ac_sse_parser_t *ps)
{
    return ps->retry;
}

apr_size_t ac_sse_parser_footprint(const ac_sse_parser_t *ps)
{
    return ps->line.cap + ps->data.cap + ps->event.cap + ps->id.cap;
}
