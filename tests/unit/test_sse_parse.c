/* Unit tests for ac_sse_parse: line endings, fields, BOM, limits, stop, and
 * the same events whatever the slice boundaries. */
#include "unit.h"
#include "ac_sse_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Events recorded as "<event>|<id>|<data>\x1e" into a fixed buffer. */
typedef struct {
    char buf[64 * 1024];
    apr_size_t len;
    int n;
    int stop_after; /* 0: never stop */
} rec_t;

static void rec_put(rec_t *r, const char *s, apr_size_t n)
{
    assert_true(r->len + n < sizeof(r->buf));
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    r->buf[r->len] = '\0';
}

static int on_event(void *baton, const char *event, const char *data, apr_size_t len,
                    const char *id)
{
    rec_t *r = baton;

    assert_int_equal(data[len], '\0');
    rec_put(r, event ? event : "-", strlen(event ? event : "-"));
    rec_put(r, "|", 1);
    rec_put(r, id ? id : "-", strlen(id ? id : "-"));
    rec_put(r, "|", 1);
    rec_put(r, data, len);
    rec_put(r, "\x1e", 1);
    r->n++;
    return r->stop_after && r->n >= r->stop_after;
}

/* Parse text fed whole (len -1: strlen), return the parser for further checks. */
static ac_sse_parser_t *parse(apr_pool_t *p, rec_t *r, const char *text, apr_size_t len,
                              apr_status_t want)
{
    ac_sse_parser_t *ps = ac_sse_parser_create(p, 0, on_event, r);
    if (len == (apr_size_t)-1) {
        len = strlen(text);
    }
    assert_int_equal(ac_sse_parser_feed(ps, text, len), want);
    return ps;
}

static void expect(const char *text, const char *events)
{
    apr_pool_t *p;
    rec_t *r = calloc(1, sizeof(*r));

    apr_pool_create(&p, NULL);
    parse(p, r, text, strlen(text), APR_SUCCESS);
    assert_string_equal(r->buf, events);
    free(r);
    apr_pool_destroy(p);
}

static void test_basic(void **state)
{
    expect("data: hello\n\n", "-|-|hello\x1e");
    expect("data: a\n\ndata: b\n\n", "-|-|a\x1e-|-|b\x1e");
    expect("event: token\ndata: {\"x\":1}\n\n", "token|-|{\"x\":1}\x1e");
    expect("data: no blank line yet\n", "");
}

static void test_line_endings(void **state)
{
    expect("data: a\r\n\r\ndata: b\r\n\r\n", "-|-|a\x1e-|-|b\x1e");
    expect("data: a\r\rdata: b\r\r", "-|-|a\x1e-|-|b\x1e");
    expect("data: a\r\ndata: b\rdata: c\n\r\n", "-|-|a\nb\nc\x1e");
    /* CR CR is two line ends: the second is the blank line */
    expect("data: x\r\r\n", "-|-|x\x1e");
}

/* A CRLF cut between two feeds is one line end, not two. */
static void test_crlf_split(void **state)
{
    apr_pool_t *p;
    rec_t *r = calloc(1, sizeof(*r));
    ac_sse_parser_t *ps;

    apr_pool_create(&p, NULL);
    ps = ac_sse_parser_create(p, 0, on_event, r);
    assert_int_equal(ac_sse_parser_feed(ps, "data: a\r", 8), APR_SUCCESS);
    assert_int_equal(ac_sse_parser_feed(ps, "\ndata: b\r", 9), APR_SUCCESS);
    assert_int_equal(r->n, 0);
    assert_int_equal(ac_sse_parser_feed(ps, "\n\r", 2), APR_SUCCESS);
    assert_int_equal(r->n, 1); /* the lone CR already ends the blank line */
    assert_int_equal(ac_sse_parser_feed(ps, "\n", 1), APR_SUCCESS);
    assert_int_equal(ac_sse_parser_feed(ps, "", 0), APR_SUCCESS);
    assert_string_equal(r->buf, "-|-|a\nb\x1e");
    assert_int_equal(ac_sse_parser_finish(ps), APR_SUCCESS);
    free(r);
    apr_pool_destroy(p);
}

static void test_comments(void **state)
{
    apr_pool_t *p;
    rec_t *r = calloc(1, sizeof(*r));
    ac_sse_parser_t *ps;
    char big[600];

    expect(": ping\n\n", "");
    expect(":\n: keep-alive\r\ndata: x\n: inside an event\ndata: y\n\n", "-|-|x\ny\x1e");
    /* a comment longer than the event limit is skipped, never buffered */
    apr_pool_create(&p, NULL);
    ps = ac_sse_parser_create(p, 64, on_event, r);
    memset(big, 'c', sizeof(big));
    big[0] = ':';
    for (int i = 0; i < 50; i++) {
        assert_int_equal(ac_sse_parser_feed(ps, big, sizeof(big)), APR_SUCCESS);
    }
    assert_int_equal(ac_sse_parser_feed(ps, "\ndata: ok\n\n", 11), APR_SUCCESS);
    assert_string_equal(r->buf, "-|-|ok\x1e");
    assert_true(ac_sse_parser_footprint(ps) <= 4 * 256);
    free(r);
    apr_pool_destroy(p);
}

static void test_fields(void **state)
{
    expect("data:x\n\n", "-|-|x\x1e");      /* no space */
    expect("data:  x\n\n", "-|-| x\x1e");   /* only one space is dropped */
    expect("data\n\n", "-|-|\x1e");         /* no colon: empty value */
    expect("data:\n\n", "-|-|\x1e");        /* empty data is still data */
    expect("data\ndata\n\n", "-|-|\n\x1e"); /* two empty lines joined */
    expect("data: a\ndata: b\ndata: c\n\n", "-|-|a\nb\nc\x1e");
    expect("foo: bar\ndata: x\nDATA: y\n\n", "-|-|x\x1e"); /* unknown, case-sensitive */
    expect("event: a\nevent: b\ndata: x\n\n", "b|-|x\x1e");
    expect("data: a:b: c\n\n", "-|-|a:b: c\x1e");
    expect("event\ndata: x\n\n", "-|-|x\x1e"); /* empty event name: the default */
}

static void test_no_data_not_dispatched(void **state)
{
    expect("event: ping\n\n", "");
    expect("id: 7\n\n", "");
    /* the type of a dropped event must not leak into the next one */
    expect("event: ping\n\ndata: x\n\n", "-|-|x\x1e");
}

static void test_id_retry(void **state)
{
    apr_pool_t *p;
    rec_t *r = calloc(1, sizeof(*r));
    ac_sse_parser_t *ps;
    static const char s[] = "retry: 2500\nid: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"
                            "id: 9\nretry: 12x\ndata: d\n\nid: bad\0id\ndata: e\n\n";

    apr_pool_create(&p, NULL);
    ps = parse(p, r, s, sizeof(s) - 1, APR_SUCCESS);
    /* ids persist, an empty id resets, an id containing NUL is ignored */
    assert_memory_equal(r->buf, "-|1|a\x1e-|1|b\x1e-|-|c\x1e-|9|d\x1e-|9|e\x1e", r->len);
    assert_int_equal(ac_sse_parser_retry(ps), 2500); /* "12x" was ignored */
    free(r);
    apr_pool_destroy(p);
}

static void test_bom(void **state)
{
    apr_pool_t *p;
    rec_t *r = calloc(1, sizeof(*r));
    ac_sse_parser_t *ps;
    static const char s[] = "\xEF\xBB\xBF"
                            "data: a\n\n";

    expect(s, "-|-|a\x1e");
    /* only at the very start: later it is part of a field name */
    expect("data: a\n\n\xEF\xBB\xBF"
           "data: b\n\n",
           "-|-|a\x1e");
    /* a partial BOM is ordinary bytes */
    expect("\xEF"
           "data: a\n\ndata: b\n\n",
           "-|-|b\x1e");
    expect("\xEF\xBB\n\ndata: b\n\n", "-|-|b\x1e");

    apr_pool_create(&p, NULL);
    ps = ac_sse_parser_create(p, 0, on_event, r);
    for (apr_size_t i = 0; i < sizeof(s) - 1; i++) {
        assert_int_equal(ac_sse_parser_feed(ps, s + i, 1), APR_SUCCESS);
    }
    assert_string_equal(r->buf, "-|-|a\x1e");
    free(r);
    apr_pool_destroy(p);
}

static void test_oversize(void **state)
{
    apr_pool_t *p;
    rec_t *r = calloc(1, sizeof(*r));
    ac_sse_parser_t *ps;
    char line[100];

    apr_pool_create(&p, NULL);
    /* many data lines, each small, adding up past the limit */
    ps = ac_sse_parser_create(p, 256, on_event, r);
    assert_int_equal(ac_sse_parser_feed(ps, "data: ok\n\n", 10), APR_SUCCESS);
    for (int i = 0; i < 20; i++) {
        apr_status_t rv = ac_sse_parser_feed(ps, "data: 0123456789abcdef\n", 23);
        /* 17 bytes of data per line: the 15th line would take it past 256 */
        assert_int_equal(rv, i < 14 ? APR_SUCCESS : APR_ENOSPC);
    }
    assert_int_equal(ac_sse_parser_feed(ps, "\n", 1), APR_ENOSPC); /* sticky */
    assert_int_equal(ac_sse_parser_finish(ps), APR_ENOSPC);
    assert_int_equal(r->n, 1);

    /* one endless line, no line end ever: refused before it is buffered */
    ps = ac_sse_parser_create(p, 256, on_event, r);
    memset(line, 'x', sizeof(line));
    memcpy(line, "data: ", 6);
    assert_int_equal(ac_sse_parser_feed(ps, line, sizeof(line)), APR_SUCCESS);
    memset(line, 'y', sizeof(line));
    assert_int_equal(ac_sse_parser_feed(ps, line, sizeof(line)), APR_SUCCESS);
    assert_int_equal(ac_sse_parser_feed(ps, line, sizeof(line)), APR_ENOSPC);
    assert_true(ac_sse_parser_footprint(ps) <= 2 * 256 + 256);
    free(r);
    apr_pool_destroy(p);
}

static void test_stop(void **state)
{
    apr_pool_t *p;
    rec_t *r = calloc(1, sizeof(*r));
    ac_sse_parser_t *ps;

    apr_pool_create(&p, NULL);
    r->stop_after = 1;
    ps = parse(p, r, "data: a\n\ndata: b\n\n", (apr_size_t)-1, APR_ECONNABORTED);
    assert_int_equal(r->n, 1);
    assert_int_equal(ac_sse_parser_feed(ps, "data: c\n\n", 9), APR_ECONNABORTED);
    assert_int_equal(r->n, 1);
    free(r);
    apr_pool_destroy(p);
}

static void test_finish(void **state)
{
    apr_pool_t *p;
    rec_t *r = calloc(1, sizeof(*r));
    ac_sse_parser_t *ps;

    apr_pool_create(&p, NULL);
    ps = parse(p, r, "data: a\n\ndata: cut", (apr_size_t)-1, APR_SUCCESS);
    assert_int_equal(ac_sse_parser_finish(ps), APR_INCOMPLETE);
    ps = parse(p, r, "data: a\n\ndata: b\n", (apr_size_t)-1, APR_SUCCESS);
    assert_int_equal(ac_sse_parser_finish(ps), APR_INCOMPLETE); /* no blank line: dropped */
    ps = parse(p, r, "data: a\n\n: bye", (apr_size_t)-1, APR_SUCCESS);
    assert_int_equal(ac_sse_parser_finish(ps), APR_SUCCESS);
    assert_string_equal(r->buf, "-|-|a\x1e-|-|a\x1e-|-|a\x1e");
    free(r);
    apr_pool_destroy(p);
}

/* Reusing buffers: a long stream costs what its largest event costs. */
static void test_buffer_reuse(void **state)
{
    apr_pool_t *p;
    rec_t *r = calloc(1, sizeof(*r));
    ac_sse_parser_t *ps;
    char ev[2100];
    apr_size_t fp = 0;
    unsigned int seed = 12345;

    apr_pool_create(&p, NULL);
    ps = ac_sse_parser_create(p, 0, on_event, r);
    for (int i = 0; i < 20000; i++) {
        int n, dl;
        seed = seed * 1103515245u + 12345u;
        dl = i == 0 ? 1999 : (int)((seed >> 8) % 1000); /* the largest comes first */
        n = snprintf(ev, sizeof(ev), "id: %d\ndata: ", i);
        memset(ev + n, 'a' + i % 26, (size_t)dl);
        memcpy(ev + n + dl, "\n\n", 2);
        assert_int_equal(ac_sse_parser_feed(ps, ev, (apr_size_t)(n + dl + 2)), APR_SUCCESS);
        if (i == 0) {
            fp = ac_sse_parser_footprint(ps);
        }
        r->len = 0; /* only the count matters here */
    }
    assert_int_equal(r->n, 20000);
    assert_int_equal(ac_sse_parser_footprint(ps), fp);
    assert_true(fp <= 4 * 2048);
    free(r);
    apr_pool_destroy(p);
}

/* ---- every split of recorded streams gives the same events ------------------ */

static char *load_fixture(apr_pool_t *p, const char *name, apr_size_t *len)
{
    const char *dir = getenv("AC_FIXTURES") ? getenv("AC_FIXTURES") : "tests/fixtures/streams";
    char path[512];
    FILE *f;
    long n;
    char *buf;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f) {
        fail_msg("cannot open fixture %s (run from the repository root)", path);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = apr_palloc(p, (apr_size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (apr_size_t)n;
    return buf;
}

static const char *const fixtures[] = {
    "azure_text_crlf.txt", "openai_parallel_tools.txt", "proxy_comments_multiline.txt",
    "openai_length.txt",   "azure_content_filter.txt",  "openai_error_midstream.txt",
};

/* Feed text cut at the given points (ascending, may repeat) into a fresh parser. */
static void feed_cuts(rec_t *r, const char *text, apr_size_t len, const apr_size_t *cuts, int n)
{
    apr_pool_t *p;
    ac_sse_parser_t *ps;
    apr_size_t at = 0;

    apr_pool_create(&p, NULL);
    r->len = 0;
    r->n = 0;
    r->buf[0] = '\0';
    ps = ac_sse_parser_create(p, 0, on_event, r);
    for (int i = 0; i <= n; i++) {
        apr_size_t to = i < n ? cuts[i] : len;
        assert_int_equal(ac_sse_parser_feed(ps, text + at, to - at), APR_SUCCESS);
        at = to;
    }
    assert_int_equal(ac_sse_parser_finish(ps), APR_SUCCESS);
    apr_pool_destroy(p);
}

static void test_all_splits(void **state)
{
    apr_pool_t *p;
    rec_t *whole = calloc(1, sizeof(*whole)), *r = calloc(1, sizeof(*r));
    unsigned int seed = 42;

    apr_pool_create(&p, NULL);
    for (size_t f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
        apr_size_t len, cuts[2];
        const char *text = load_fixture(p, fixtures[f], &len);
        ac_sse_parser_t *ps;

        feed_cuts(whole, text, len, NULL, 0);
        assert_true(whole->n > 3);
        for (apr_size_t i = 0; i <= len; i++) {
            feed_cuts(r, text, len, &i, 1);
            assert_int_equal(r->len, whole->len);
            assert_memory_equal(r->buf, whole->buf, whole->len);
        }
        for (int k = 0; k < 500; k++) {
            seed = seed * 1103515245u + 12345u;
            cuts[0] = (seed >> 4) % (len + 1);
            seed = seed * 1103515245u + 12345u;
            cuts[1] = (seed >> 4) % (len + 1);
            if (cuts[0] > cuts[1]) {
                apr_size_t t = cuts[0];
                cuts[0] = cuts[1];
                cuts[1] = t;
            }
            feed_cuts(r, text, len, cuts, 2);
            assert_int_equal(r->len, whole->len);
            assert_memory_equal(r->buf, whole->buf, whole->len);
        }
        /* byte at a time */
        r->len = 0;
        r->n = 0;
        ps = ac_sse_parser_create(p, 0, on_event, r);
        for (apr_size_t i = 0; i < len; i++) {
            assert_int_equal(ac_sse_parser_feed(ps, text + i, 1), APR_SUCCESS);
        }
        assert_int_equal(r->len, whole->len);
        assert_memory_equal(r->buf, whole->buf, whole->len);
    }
    free(whole);
    free(r);
    apr_pool_destroy(p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_basic),      cmocka_unit_test(test_line_endings),
    cmocka_unit_test(test_crlf_split), cmocka_unit_test(test_comments),
    cmocka_unit_test(test_fields),     cmocka_unit_test(test_no_data_not_dispatched),
    cmocka_unit_test(test_id_retry),   cmocka_unit_test(test_bom),
    cmocka_unit_test(test_oversize),   cmocka_unit_test(test_stop),
    cmocka_unit_test(test_finish),     cmocka_unit_test(test_buffer_reuse),
    cmocka_unit_test(test_all_splits),
};
AC_UNIT_MAIN(tests)
