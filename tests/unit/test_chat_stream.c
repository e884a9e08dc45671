/* Unit tests for ac_chat_stream: recorded-style upstream streams (Azure and
 * OpenAI shapes) give the same answer however the body is cut, limits and
 * upstream errors become clean errors, and memory stays flat on long streams. */
#include "unit.h"
#include "ac_chat_stream.h"
#include "ac_util.h"

#include <apr_file_io.h>
#include <apr_strings.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------- */

/* Per-test state: a pool and what on_token received. */
typedef struct {
    apr_pool_t *p;
    char buf[64 * 1024];
    apr_size_t len;
    int calls;
    int stop_after; /* 0: never */
} tokens_t;

static int setup(void **state)
{
    tokens_t *t = calloc(1, sizeof(*t));

    apr_pool_create(&t->p, NULL);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tokens_t *t = *state;

    apr_pool_destroy(t->p);
    free(t);
    return 0;
}

static int on_token(void *baton, const char *text, apr_size_t len)
{
    tokens_t *t = baton;

    assert_true(len > 0);
    assert_int_equal(text[len], '\0');
    if (t->len + len < sizeof(t->buf)) { /* the 20k test only counts */
        memcpy(t->buf + t->len, text, len);
        t->len += len;
        t->buf[t->len] = '\0';
    }
    t->calls++;
    return t->stop_after && t->calls >= t->stop_after;
}

static const ac_chat_stream_cb_t token_cb = {on_token};

static char *load_fixture(apr_pool_t *p, const char *name, apr_size_t *len)
{
    const char *dir = getenv("AC_FIXTURES"); /* default: run from the repository root */
    const char *path = apr_pstrcat(p, dir ? dir : "tests/fixtures/streams", "/", name, NULL);
    apr_file_t *f;
    apr_finfo_t fi;
    char *buf;

    if (apr_file_open(&f, path, APR_FOPEN_READ, 0, p) != APR_SUCCESS) {
        fail_msg("cannot open fixture %s", path);
    }
    assert_int_equal(apr_file_info_get(&fi, APR_FINFO_SIZE, f), APR_SUCCESS);
    buf = apr_palloc(p, (apr_size_t)fi.size + 1);
    assert_int_equal(apr_file_read_full(f, buf, (apr_size_t)fi.size, len), APR_SUCCESS);
    buf[*len] = '\0';
    return buf;
}

/* Everything a caller can observe, as one string, for whole-vs-split checks. */
static const char *summary(apr_pool_t *p, ac_chat_stream_t *cs, const tokens_t *t)
{
    ac_chat_stream_result_t r;
    const char *s;

    ac_chat_stream_result(cs, &r);
    s = apr_psprintf(p,
                     "tokens=%s\ncontent=%s\nfinish=%s\nmodel=%s\nusage=%d/%d/%d\n"
                     "done=%d events=%d status=%d\nerror=%s code=%s\ncalls=%d\n",
                     t->buf, r.content, r.finish_reason ? r.finish_reason : "-",
                     r.model ? r.model : "-", (int)r.prompt_tokens, (int)r.completion_tokens,
                     (int)r.total_tokens, r.done, r.events, r.status, r.error ? r.error : "-",
                     r.error_code ? r.error_code : "-", r.n_tool_calls);
    for (int i = 0; i < r.n_tool_calls; i++) {
        s = apr_psprintf(p, "%s[%s|%s|%s]\n", s, r.tool_calls[i].id, r.tool_calls[i].name,
                         r.tool_calls[i].arguments);
    }
    return s;
}

/* Feed text cut at ascending points (every slice_len bytes when slice_len > 0),
 * finish, and summarise into out. */
static const char *run_cuts(apr_pool_t *out, const char *text, apr_size_t len,
                            const apr_size_t *cuts, int n, apr_size_t slice_len)
{
    static tokens_t t;
    apr_pool_t *p;
    ac_chat_stream_t *cs;
    apr_size_t at = 0, to;
    const char *s;

    t.len = 0;
    t.buf[0] = '\0';
    t.calls = 0;
    apr_pool_create(&p, NULL);
    cs = ac_chat_stream_create(p, NULL, &token_cb, &t);
    for (int i = 0; at < len; i++) {
        to = slice_len ? at + slice_len : i < n ? cuts[i] : len;
        to = to < len ? to : len;
        ac_chat_stream_feed(cs, text + at, to - at);
        at = to;
    }
    ac_chat_stream_finish(cs);
    s = summary(out, cs, &t);
    apr_pool_destroy(p);
    return s;
}

/* Parse a fixture whole; the result lives in the test's pool. */
static ac_chat_stream_result_t parse_fixture(tokens_t *t, const char *name, apr_status_t want)
{
    apr_size_t len;
    const char *text = load_fixture(t->p, name, &len);
    ac_chat_stream_t *cs = ac_chat_stream_create(t->p, NULL, &token_cb, t);
    ac_chat_stream_result_t r;

    ac_chat_stream_feed(cs, text, len);
    assert_int_equal(ac_chat_stream_finish(cs), want);
    ac_chat_stream_result(cs, &r);
    assert_int_equal(r.status, want);
    assert_string_equal(t->buf, r.content); /* what was streamed is what is kept */
    return r;
}

/* ---- the recorded-style fixtures -------------------------------------------- */

static void test_azure_text(void **state)
{
    tokens_t *t = *state;
    ac_chat_stream_result_t r;

    r = parse_fixture(t, "azure_text_crlf.txt", APR_SUCCESS);
    assert_string_equal(r.content, "Bonjour ! La tour Eiffel mesure environ 330 m\xc3\xa8tres, "
                                   "antenne comprise. \xf0\x9f\x97\xbc Elle a \xc3\xa9t\xc3\xa9 "
                                   "achev\xc3\xa9"
                                   "e en 1889.");
    assert_int_equal(t->calls, 21);
    assert_string_equal(r.finish_reason, "stop");
    assert_string_equal(r.model, "gpt-4o-2024-08-06");
    assert_int_equal(r.prompt_tokens, 31);
    assert_int_equal(r.completion_tokens, 24);
    assert_int_equal(r.total_tokens, 55);
    assert_int_equal(r.n_tool_calls, 0);
    assert_true(r.done);
    assert_null(r.error);
}

static void test_parallel_tools(void **state)
{
    tokens_t *t = *state;
    ac_chat_stream_result_t r;

    r = parse_fixture(t, "openai_parallel_tools.txt", APR_SUCCESS);
    assert_int_equal(t->calls, 0);
    assert_string_equal(r.content, "");
    assert_int_equal(r.n_tool_calls, 2);
    assert_string_equal(r.tool_calls[0].id, "call_Yq3vL8bN2kXw9TzR1mPdS0Hc");
    assert_string_equal(r.tool_calls[0].name, "get_weather");
    assert_string_equal(r.tool_calls[0].arguments,
                        "{\"location\":\"Paris, France\",\"unit\":\"celsius\"}");
    assert_int_equal(r.tool_calls[0].arguments_len, strlen(r.tool_calls[0].arguments));
    assert_string_equal(r.tool_calls[1].id, "call_Jm7cF4aQ6uWn2hXe8bVtK5Lr");
    assert_string_equal(r.tool_calls[1].name, "calculate");
    assert_string_equal(r.tool_calls[1].arguments, "{\"expression\":\"(21 - 32) * 5 / 9\"}");
    assert_string_equal(r.finish_reason, "tool_calls");
    assert_int_equal(r.prompt_tokens, 112);
    assert_int_equal(r.completion_tokens, 58);
    assert_int_equal(r.total_tokens, 170);
    assert_string_equal(r.model, "gpt-4o-mini-2024-07-18");
    assert_true(r.done);
}

static void test_proxy_comments_multiline(void **state)
{
    tokens_t *t = *state;
    ac_chat_stream_result_t r;

    r = parse_fixture(t, "proxy_comments_multiline.txt", APR_SUCCESS);
    assert_string_equal(r.content, "Line one\nline two \xe2\x80\x94 caf\xc3\xa9 au lait");
    assert_string_equal(r.finish_reason, "stop");
    assert_string_equal(r.model, "openai/gpt-4o");
    assert_int_equal(r.total_tokens, 27); /* usage inside a chunk with choices */
    assert_true(r.done);
}

static void test_length_and_filter(void **state)
{
    tokens_t *t = *state;
    ac_chat_stream_result_t r;

    r = parse_fixture(t, "openai_length.txt", APR_SUCCESS);
    assert_string_equal(r.finish_reason, "length");
    assert_string_equal(r.content, "Once upon a time, in a kingdom far away, there lived");
    assert_int_equal(r.completion_tokens, 16);
    t->len = 0;
    t->buf[0] = '\0';
    r = parse_fixture(t, "azure_content_filter.txt", APR_SUCCESS);
    assert_string_equal(r.finish_reason, "content_filter");
    assert_string_equal(r.content, "The battle scene begins as");
    assert_int_equal(r.total_tokens, 47);
    assert_true(r.done);
}

static void test_error_midstream(void **state)
{
    tokens_t *t = *state;
    ac_chat_stream_result_t r;

    r = parse_fixture(t, "openai_error_midstream.txt", APR_EGENERAL);
    assert_string_equal(r.content, "Here is the");
    assert_string_equal(r.error, "The server had an error while processing your request. "
                                 "Sorry about that! Retry later."); /* newline sanitised */
    assert_string_equal(r.error_code, "server_error");
    assert_null(r.finish_reason);
    assert_false(r.done);
    assert_int_equal(r.total_tokens, -1);
}

static const char *const fixtures[] = {
    "azure_text_crlf.txt", "openai_parallel_tools.txt", "proxy_comments_multiline.txt",
    "openai_length.txt",   "azure_content_filter.txt",  "openai_error_midstream.txt",
};

/* The key property: every cut of the body gives the same observable result.
 * AC_SPLIT_STRIDE=n tries every n-th cut only (for slow runs under valgrind). */
static void test_all_splits(void **state)
{
    apr_pool_t *p = ((tokens_t *)*state)->p, *it;
    unsigned int seed = 7;
    const char *env = getenv("AC_SPLIT_STRIDE");
    apr_size_t stride = env && atoi(env) > 0 ? (apr_size_t)atoi(env) : 1;

    apr_pool_create(&it, p);
    for (size_t f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
        apr_size_t len, cuts[2];
        const char *text = load_fixture(p, fixtures[f], &len);
        const char *whole = run_cuts(p, text, len, NULL, 0, 0);

        for (apr_size_t i = 0; i <= len; i += stride) {
            assert_string_equal(run_cuts(it, text, len, &i, 1, 0), whole);
            apr_pool_clear(it);
        }
        for (int k = 0; k < 400; k++) { /* 3-way: a fixed pseudo-random sample */
            seed = seed * 1103515245u + 12345u;
            cuts[0] = (seed >> 4) % (len + 1);
            seed = seed * 1103515245u + 12345u;
            cuts[1] = cuts[0] + (seed >> 4) % (len + 1 - cuts[0]);
            assert_string_equal(run_cuts(it, text, len, cuts, 2, 0), whole);
            apr_pool_clear(it);
        }
        for (apr_size_t slice = 1; slice <= 13; slice += 6) { /* 1, 7, 13 bytes at a time */
            assert_string_equal(run_cuts(it, text, len, NULL, 0, slice), whole);
            apr_pool_clear(it);
        }
    }
}

/* ---- synthetic streams -------------------------------------------------------- */

#define CHOICE(delta, fr)                                                                          \
    "data: {\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" fr "}]}\n\n"
#define CALLS(frags) CHOICE("{\"tool_calls\":[" frags "]}", "null")
#define TEXT(s) CHOICE("{\"content\":\"" s "\"}", "null")
#define STOP CHOICE("{}", "\"stop\"")
#define DONE "data: [DONE]\n\n"

/* A fresh stream fed body whole; expects the feed status. */
static ac_chat_stream_t *stream_of(tokens_t *t, const ac_chat_stream_limits_t *lim,
                                   const char *body, apr_status_t want)
{
    ac_chat_stream_t *cs = ac_chat_stream_create(t->p, lim, &token_cb, t);
    assert_int_equal(ac_chat_stream_feed(cs, body, strlen(body)), want);
    return cs;
}

static void test_interleaved_missing_id(void **state)
{
    tokens_t *t = *state;
    ac_chat_stream_t *cs;
    ac_chat_stream_result_t r, again;
    static const char body[] =
        CHOICE("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":1,\"id\":"
               "\"call_B\",\"type\":\"function\",\"function\":{\"name\":\"calculate\","
               "\"arguments\":\"{\\\"expr\"}}]}",
               "null")
        /* index 0 arrives second and without an id */
        CHOICE("{\"tool_calls\":[{\"index\":0,\"type\":\"function\",\"function\":{\"name\":"
               "\"get_time\",\"arguments\":\"\"}}]}",
               "null")
        /* two fragments in one chunk, for different calls; a repeated name */
        CHOICE("{\"tool_calls\":[{\"index\":1,\"function\":{\"name\":\"calculate\","
               "\"arguments\":\"ession\\\":\\\"1+1\\\"}\"}},{\"index\":0,\"function\":"
               "{\"arguments\":\"{}\"}}]}",
               "null")
        /* a third call, arguments sent as an object by a lax server */
        CHOICE("{\"tool_calls\":[{\"index\":2,\"id\":\"call_C\",\"function\":{\"name\":\"noop\","
               "\"arguments\":{\"a\":1}}}]}",
               "null") CHOICE("{}", "\"tool_calls\"") DONE;

    cs = stream_of(t, NULL, body, APR_SUCCESS);
    assert_int_equal(ac_chat_stream_finish(cs), APR_SUCCESS);
    ac_chat_stream_result(cs, &r);
    assert_int_equal(r.n_tool_calls, 3);
    assert_true(ac_id_valid(r.tool_calls[0].id, "call"));
    assert_string_equal(r.tool_calls[0].name, "get_time");
    assert_string_equal(r.tool_calls[0].arguments, "{}");
    assert_string_equal(r.tool_calls[1].id, "call_B");
    assert_string_equal(r.tool_calls[1].name, "calculate");
    assert_string_equal(r.tool_calls[1].arguments, "{\"expression\":\"1+1\"}");
    assert_string_equal(r.tool_calls[2].arguments, "{\"a\":1}");
    assert_string_equal(r.finish_reason, "tool_calls");
    ac_chat_stream_result(cs, &again); /* the generated id is stable */
    assert_string_equal(again.tool_calls[0].id, r.tool_calls[0].id);
}

static void test_limits(void **state)
{
    tokens_t *t = *state;
    ac_chat_stream_t *cs;
    ac_chat_stream_result_t r;
    ac_chat_stream_limits_t lim = {0};
    char *body = NULL;

    lim.max_tool_calls = 2;
    cs = stream_of(t, &lim,
                   CALLS("{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"x\"}},"
                         "{\"index\":1,\"id\":\"b\",\"function\":{\"name\":\"x\"}}")
                       CALLS("{\"index\":2,\"id\":\"c\"}"),
                   APR_ENOSPC);
    ac_chat_stream_result(cs, &r);
    assert_string_equal(r.error, "upstream requested more than 2 tool calls");
    assert_int_equal(ac_chat_stream_finish(cs), APR_ENOSPC);

    /* the default cap: 16 calls */
    for (int i = 0; i < 17; i++) {
        body =
            apr_psprintf(t->p, "%s" CALLS("{\"index\":%d,\"id\":\"c%d\"}"), body ? body : "", i, i);
    }
    cs = stream_of(t, NULL, body, APR_ENOSPC);

    lim.max_tool_calls = 0;
    lim.max_arguments = 16;
#define TEN_BYTES CALLS("{\"index\":0,\"function\":{\"arguments\":\"0123456789\"}}")
    cs = stream_of(t, &lim, TEN_BYTES TEN_BYTES, APR_ENOSPC);
    ac_chat_stream_result(cs, &r);
    assert_string_equal(r.error, "upstream tool call arguments exceed 16 bytes");

    lim.max_arguments = 0;
    lim.max_content = 10;
    cs = stream_of(t, &lim, TEXT("hello") TEXT("world") TEXT("!") STOP DONE, APR_ENOSPC);
    ac_chat_stream_result(cs, &r);
    assert_string_equal(r.content, "helloworld");
    assert_int_equal(t->calls, 2); /* nothing past the cap reaches the client */
    assert_string_equal(r.error, "upstream answer exceeds 10 bytes");

    lim.max_content = 0;
    lim.max_event = 128;
    body = apr_psprintf(t->p, TEXT("ok") "data: {\"pad\":\"%0200d\"}\n\n", 0);
    cs = stream_of(t, &lim, body, APR_ENOSPC);
    ac_chat_stream_result(cs, &r);
    assert_string_equal(r.error, "upstream stream event exceeds 128 bytes");
    assert_int_equal(ac_chat_stream_feed(cs, DONE, strlen(DONE)), APR_ENOSPC); /* sticky */
}

static void test_garbage(void **state)
{
    tokens_t *t = *state;
    ac_chat_stream_t *cs;
    ac_chat_stream_result_t r;

    cs = stream_of(t, NULL, TEXT("ok") "data: {not json at all\n\n" TEXT("more") STOP DONE,
                   APR_EINVAL);
    ac_chat_stream_result(cs, &r);
    assert_string_equal(r.content, "ok"); /* parsing stopped at the bad chunk */
    assert_int_equal(t->calls, 1);
    assert_string_equal(r.error, "upstream sent invalid JSON in stream event 2 (16 bytes)");
    assert_null(strstr(r.error, "not json")); /* the input is not echoed */
    assert_int_equal(ac_chat_stream_feed(cs, TEXT("x"), strlen(TEXT("x"))), APR_EINVAL);
    assert_int_equal(ac_chat_stream_finish(cs), APR_EINVAL);

    cs = stream_of(t, NULL, "data: [1,2]\n\n", APR_EINVAL);
    ac_chat_stream_result(cs, &r);
    assert_string_equal(r.error,
                        "upstream sent JSON that is not an object in stream event 1 (5 bytes)");
}

static void test_error_variants(void **state)
{
    tokens_t *t = *state;
    ac_chat_stream_t *cs;
    ac_chat_stream_result_t r;
    char msg[1001], *body;

    /* long, with JSON-escaped control characters: cut to 300, no controls */
    memset(msg, 'A', 1000);
    msg[1000] = '\0';
    body = apr_psprintf(t->p,
                        "data: {\"error\":{\"message\":\"\\u0001bad\\t\\u001b[31m%s\","
                        "\"code\":500}}\n\n",
                        msg);
    cs = stream_of(t, NULL, body, APR_EGENERAL);
    ac_chat_stream_result(cs, &r);
    assert_int_equal(strlen(r.error), 300);
    assert_memory_equal(r.error, " bad  [31mAAA", 13);
    assert_string_equal(r.error_code, "500");

    cs = stream_of(t, NULL, "event: error\ndata: {\"message\":\"Overloaded\"}\n\n", APR_EGENERAL);
    ac_chat_stream_result(cs, &r);
    assert_string_equal(r.error, "Overloaded");
    assert_null(r.error_code);

    cs = stream_of(t, NULL, "data: {\"error\":{\"type\":\"rate_limit_exceeded\"}}\n\n",
                   APR_EGENERAL);
    ac_chat_stream_result(cs, &r);
    assert_string_equal(r.error, "upstream reported an error");
    assert_string_equal(r.error_code, "rate_limit_exceeded");

    /* "error": null is no error */
    cs = stream_of(t, NULL, "data: {\"error\":null,\"choices\":[]}\n\n" STOP DONE, APR_SUCCESS);
}

static void test_truncated_and_done(void **state)
{
    tokens_t *t = *state;
    ac_chat_stream_t *cs;
    ac_chat_stream_result_t r;

    cs = stream_of(t, NULL, TEXT("partial") "data: {\"choi", APR_SUCCESS);
    assert_int_equal(ac_chat_stream_finish(cs), APR_INCOMPLETE);
    ac_chat_stream_result(cs, &r);
    assert_string_equal(r.error, "upstream stream ended before the answer was complete");
    assert_string_equal(r.content, "partial");

    /* finished choice, [DONE] and usage lost: the answer is still whole */
    cs = stream_of(t, NULL, TEXT("a") STOP "data: {\"choices\":[],\"usa", APR_SUCCESS);
    assert_int_equal(ac_chat_stream_finish(cs), APR_SUCCESS);
    ac_chat_stream_result(cs, &r);
    assert_false(r.done);
    assert_int_equal(r.prompt_tokens, -1);

    /* a server that ignored stream:true */
    cs = stream_of(t, NULL, "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}", APR_SUCCESS);
    assert_int_equal(ac_chat_stream_finish(cs), APR_INCOMPLETE);
    ac_chat_stream_result(cs, &r);
    assert_string_equal(r.error, "upstream response contained no stream events");

    /* a 4xx error reply streamed here: Azure's prompt filter, pretty-printed */
    cs = stream_of(t, NULL,
                   "{\n  \"error\": {\n    \"message\": \"The response was filtered\",\n"
                   "    \"param\": \"prompt\",\n    \"code\": \"content_filter\",\n"
                   "    \"status\": 400\n  }\n}\n",
                   APR_SUCCESS);
    assert_int_equal(ac_chat_stream_finish(cs), APR_EGENERAL);
    ac_chat_stream_result(cs, &r);
    assert_string_equal(r.error, "The response was filtered");
    assert_string_equal(r.error_code, "content_filter");

    /* keep-alive data is not an event; anything after [DONE] is not read */
    cs = stream_of(t, NULL, "data:\n\ndata: \n\n" TEXT("x") STOP DONE "data: {garbage\n\n",
                   APR_SUCCESS);
    assert_int_equal(ac_chat_stream_feed(cs, "data: {junk\n\n", 13), APR_SUCCESS);
    assert_int_equal(ac_chat_stream_finish(cs), APR_SUCCESS);
    ac_chat_stream_result(cs, &r);
    assert_true(r.done);
    assert_int_equal(r.events, 3);
}

static void test_stop_by_callback(void **state)
{
    tokens_t *t = *state;
    ac_chat_stream_t *cs;
    ac_chat_stream_result_t r;

    t->stop_after = 2;
    cs = stream_of(t, NULL, TEXT("a") TEXT("b") TEXT("c") STOP DONE, APR_ECONNABORTED);
    ac_chat_stream_result(cs, &r);
    assert_int_equal(t->calls, 2);
    assert_string_equal(r.content, "ab");
    assert_int_equal(r.status, APR_ECONNABORTED);
}

/* ---- memory stays flat over a long stream ------------------------------------ */

/* jansson's allocations counted, to prove each chunk's JSON is released. */
static apr_size_t json_live, json_live_max;

static void *count_malloc(size_t n)
{
    size_t *h = malloc(n + 16); /* 16: keeps jansson's alignment */

    assert_non_null(h);
    h[0] = n;
    json_live += n;
    json_live_max = json_live > json_live_max ? json_live : json_live_max;
    return (char *)h + 16;
}

static void count_free(void *ptr)
{
    size_t *h = ptr ? (size_t *)(void *)((char *)ptr - 16) : NULL;

    if (h) {
        json_live -= h[0];
        free(h);
    }
}

/* Private data size of the process (heap and anonymous mappings), or 0. */
static size_t data_bytes(void)
{
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f && fscanf(f, "%*u %*u %*u %*u %*u %lu", &pages) != 1) {
        pages = 0;
    }
    if (f) {
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void test_memory_flat_20k(void **state)
{
    enum { CHUNKS = 20000, SLICE = 7 };
    tokens_t *t = *state;
    apr_pool_t *sp;
    ac_chat_stream_t *cs;
    ac_chat_stream_result_t r;
    char *body, *w;
    apr_size_t len, at;
    size_t mem_warm = 0, mem_end;

    /* installed while no jansson value is alive: every value below is counted */
    json_set_alloc_funcs(count_malloc, count_free);
    body = w = apr_palloc(t->p, (apr_size_t)CHUNKS * 200 + 400);
    for (int i = 0; i < CHUNKS; i++) {
        w += sprintf(w,
                     "data: {\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\","
                     "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                     "\"w%05d \"},\"finish_reason\":null}],\"usage\":null}\n\n",
                     i);
    }
    w += sprintf(w, "%s",
                 STOP "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
                      "\"completion_tokens\":20000,\"total_tokens\":20005}}\n\n" DONE);
    len = (apr_size_t)(w - body);

    apr_pool_create(&sp, NULL);
    cs = ac_chat_stream_create(sp, NULL, &token_cb, t);
    for (at = 0; at < len; at += SLICE) {
        assert_int_equal(ac_chat_stream_feed(cs, body + at, len - at < SLICE ? len - at : SLICE),
                         APR_SUCCESS);
        assert_int_equal(json_live, 0); /* the chunk's sub-pool was cleared */
        if (!mem_warm && t->calls == 1000) {
            mem_warm = data_bytes();
        }
    }
    mem_end = data_bytes();
    assert_int_equal(ac_chat_stream_finish(cs), APR_SUCCESS);
    ac_chat_stream_result(cs, &r);
    assert_int_equal(t->calls, CHUNKS);
    assert_int_equal(r.content_len, (apr_size_t)CHUNKS * 7);
    assert_memory_equal(r.content + 7 * 12345, "w12345 ", 7);
    assert_int_equal(r.completion_tokens, 20000);
    assert_true(json_live_max > 0); /* the counting did see the chunks */
    /* Native runs only (under valgrind the process's memory is valgrind's):
     * after warm-up the process grows by the answer buffer's doubling, never
     * per chunk.  Pool memory is mmapped by APR's allocator, so look at the
     * process's data size rather than malloc statistics. */
    if (mallinfo2().uordblks && mem_warm && mem_end) {
        size_t grown = mem_end > mem_warm ? mem_end - mem_warm : 0;
        print_message("data size growth over %d chunks: %zu bytes (answer %zu bytes)\n",
                      CHUNKS - 1000, grown, (size_t)r.content_len);
        assert_true(grown <= 4 * r.content_len + 512 * 1024);
    }
    apr_pool_destroy(sp);
    assert_int_equal(json_live, 0);
    json_set_alloc_funcs(malloc, free);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_azure_text, setup, teardown),
    cmocka_unit_test_setup_teardown(test_parallel_tools, setup, teardown),
    cmocka_unit_test_setup_teardown(test_proxy_comments_multiline, setup, teardown),
    cmocka_unit_test_setup_teardown(test_length_and_filter, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_midstream, setup, teardown),
    cmocka_unit_test_setup_teardown(test_all_splits, setup, teardown),
    cmocka_unit_test_setup_teardown(test_interleaved_missing_id, setup, teardown),
    cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
    cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_variants, setup, teardown),
    cmocka_unit_test_setup_teardown(test_truncated_and_done, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stop_by_callback, setup, teardown),
    cmocka_unit_test_setup_teardown(test_memory_flat_20k, setup, teardown),
};
AC_UNIT_MAIN(tests)
