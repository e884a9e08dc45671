/* ac_chat_stream: chat-completions stream interpreter (see ac_chat_stream.h).
 * SSE events in, answer text / tool calls / finish reason / usage out. */
#include "ac_chat_stream.h"
#include "ac_json.h"
#include "ac_sse_parse.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <limits.h>
#include <string.h>

#define CS_DEFAULT_MAX_CONTENT ((apr_size_t)4 << 20)
#define CS_DEFAULT_MAX_ARGUMENTS ((apr_size_t)64 << 10)
#define CS_DEFAULT_MAX_CALLS 16
#define CS_MAX_IDENT 256       /* a call's id or function name; real ones are ~64 */
#define CS_MAX_ERROR_CHARS 300 /* upstream error text passed on */
#define CS_MAX_INDEX 4096      /* tool-call indexes are small; anything else is junk */
#define CS_HEAD_MAX 16384      /* body kept until the first event: a JSON error reply */

/* A doubling buffer in the stream's pool: amortised appends, and the blocks
 * it abandons add up to less than its final capacity, which a cap bounds. */
typedef struct {
    char *data;
    apr_size_t len, cap;
} cs_buf_t;

typedef struct {
    json_int_t index; /* upstream index; the calls array is kept sorted by it */
    const char *id;
    const char *name;
    cs_buf_t args;
} cs_call_t;

struct ac_chat_stream {
    apr_pool_t *pool;
    apr_pool_t *chunk_pool; /* one chunk's JSON, cleared after each chunk */
    ac_sse_parser_t *sse;
    ac_chat_stream_cb_t cb;
    void *baton;
    ac_chat_stream_limits_t lim;
    cs_buf_t content;
    cs_buf_t head;    /* start of a body that had no events yet (non-2xx replies) */
    cs_call_t *calls; /* lim.max_tool_calls slots */
    int n_calls;
    ac_chat_tool_call_t *out_calls;
    char finish_reason[32]; /* fixed: an upstream repeating fields costs nothing */
    char model[128];
    json_int_t usage[3]; /* prompt, completion, total */
    int done;
    int events;
    apr_status_t status;
    const char *error;
    const char *error_code;
};

static apr_status_t buf_append(apr_pool_t *p, cs_buf_t *b, const char *s, apr_size_t n,
                               apr_size_t max)
{
    apr_size_t need, cap;

    if (n > max - b->len) { /* b->len <= max always holds */
        return APR_ENOSPC;
    }
    need = b->len + n + 1;
    if (need > b->cap) {
        char *nd;
        cap = b->cap ? b->cap : 256;
        while (cap < need) {
            cap *= 2;
        }
        nd = apr_palloc(p, cap);
        if (b->len) {
            memcpy(nd, b->data, b->len);
        }
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return APR_SUCCESS;
}

/* First error wins: later ones are consequences. */
static apr_status_t fail(ac_chat_stream_t *cs, apr_status_t rv, const char *msg)
{
    if (cs->status == APR_SUCCESS) {
        cs->status = rv;
        cs->error = msg;
    }
    return cs->status;
}

/* Upstream text bound for logs and clients: at most max_chars code points,
 * no control characters, valid UTF-8 (jansson already insists on that, but a
 * message must never carry bytes a log or client could choke on). */
static const char *sanitize(apr_pool_t *p, const char *s, apr_size_t max_chars)
{
    char *c = ac_utf8_truncate(p, s, max_chars), *q;
    int valid = ac_utf8_valid(c, strlen(c));

    for (q = c; *q; q++) {
        unsigned char u = (unsigned char)*q;
        if (u < 0x20 || u == 0x7f) {
            *q = ' ';
        }
        else if (u >= 0x80 && !valid) {
            *q = '?';
        }
    }
    return c;
}

/* Short ASCII tokens (finish_reason, model) into a fixed field. */
static void copy_token(char *dst, apr_size_t size, const char *src)
{
    apr_size_t i;

    for (i = 0; i + 1 < size && src[i]; i++) {
        unsigned char u = (unsigned char)src[i];
        dst[i] = (u > 0x20 && u < 0x7f) ? (char)u : '_';
    }
    dst[i] = '\0';
}

static apr_status_t upstream_error(ac_chat_stream_t *cs, json_t *err)
{
    const char *msg = json_is_string(err) ? json_string_value(err) : ac_json_str(err, "message");
    json_t *code = json_object_get(err, "code");
    const char *c = NULL;

    if (json_is_string(code) && *json_string_value(code)) {
        c = json_string_value(code);
    }
    else if (json_is_integer(code)) {
        c = apr_psprintf(cs->chunk_pool, "%" APR_INT64_T_FMT,
                         (apr_int64_t)json_integer_value(code));
    }
    else {
        c = ac_json_str(err, "type");
    }
    if (c && *c) {
        cs->error_code = sanitize(cs->pool, c, 64);
    }
    return fail(
        cs, APR_EGENERAL,
        sanitize(cs->pool, msg && *msg ? msg : "upstream reported an error", CS_MAX_ERROR_CHARS));
}

/* The slot for upstream index idx, added in index order when new. */
static cs_call_t *call_slot(ac_chat_stream_t *cs, json_int_t idx)
{
    int i, at;

    for (at = 0; at < cs->n_calls && cs->calls[at].index < idx; at++) {
    }
    if (at < cs->n_calls && cs->calls[at].index == idx) {
        return &cs->calls[at];
    }
    if (cs->n_calls >= cs->lim.max_tool_calls) {
        return NULL;
    }
    for (i = cs->n_calls; i > at; i--) {
        cs->calls[i] = cs->calls[i - 1];
    }
    memset(&cs->calls[at], 0, sizeof(cs->calls[at]));
    cs->calls[at].index = idx;
    cs->n_calls++;
    return &cs->calls[at];
}

/* id or name: set once, from the first fragment that carries it. */
static apr_status_t set_ident(ac_chat_stream_t *cs, const char **slot, const char *val)
{
    if (!val || !*val || *slot) {
        return APR_SUCCESS; /* repeats in later fragments are ignored */
    }
    if (strlen(val) > CS_MAX_IDENT) {
        return fail(cs, APR_ENOSPC, "upstream tool call id or name is too long");
    }
    *slot = apr_pstrdup(cs->pool, val);
    return APR_SUCCESS;
}

static apr_status_t tool_fragment(ac_chat_stream_t *cs, json_t *frag, apr_size_t pos)
{
    json_t *iv = json_object_get(frag, "index"), *fn = json_object_get(frag, "function");
    json_t *args = json_object_get(fn, "arguments");
    /* servers that omit index send one call per fragment list: use its position */
    json_int_t idx = json_is_integer(iv) ? json_integer_value(iv) : (json_int_t)pos;
    const char *a = NULL;
    apr_size_t alen = 0;
    cs_call_t *call;
    apr_status_t rv;

    if (!json_is_object(frag) || idx < 0 || idx > CS_MAX_INDEX) {
        return fail(cs, APR_EINVAL, "upstream sent an invalid tool call fragment");
    }
    if (!(call = call_slot(cs, idx))) {
        return fail(cs, APR_ENOSPC,
                    apr_psprintf(cs->pool, "upstream requested more than %d tool calls",
                                 cs->lim.max_tool_calls));
    }
    if ((rv = set_ident(cs, &call->id, ac_json_str(frag, "id"))) != APR_SUCCESS ||
        (rv = set_ident(cs, &call->name, ac_json_str(fn, "name"))) != APR_SUCCESS) {
        return rv;
    }
    if (json_is_string(args)) {
        a = json_string_value(args);
        alen = json_string_length(args);
    }
    else if (json_is_object(args)) { /* some compatible servers send an object */
        a = ac_json_dumpn(cs->chunk_pool, args, &alen);
    }
    if (a && buf_append(cs->pool, &call->args, a, alen, cs->lim.max_arguments) != APR_SUCCESS) {
        return fail(cs, APR_ENOSPC,
                    apr_psprintf(cs->pool,
                                 "upstream tool call arguments exceed %" APR_SIZE_T_FMT " bytes",
                                 cs->lim.max_arguments));
    }
    return APR_SUCCESS;
}

static apr_status_t handle_choice(ac_chat_stream_t *cs, json_t *choice)
{
    json_t *delta = json_object_get(choice, "delta");
    json_t *text = json_object_get(delta, "content");
    json_t *calls = json_object_get(delta, "tool_calls"), *frag;
    const char *fr = ac_json_str(choice, "finish_reason");
    apr_size_t i;
    apr_status_t rv;

    if (json_is_string(text) && json_string_length(text) > 0) {
        const char *t = json_string_value(text);
        apr_size_t n = json_string_length(text);
        if (buf_append(cs->pool, &cs->content, t, n, cs->lim.max_content) != APR_SUCCESS) {
            return fail(cs, APR_ENOSPC,
                        apr_psprintf(cs->pool, "upstream answer exceeds %" APR_SIZE_T_FMT " bytes",
                                     cs->lim.max_content));
        }
        if (cs->cb.on_token && cs->cb.on_token(cs->baton, t, n)) {
            return fail(cs, APR_ECONNABORTED, "stream stopped by the caller");
        }
    }
    json_array_foreach(calls, i, frag)
    {
        if ((rv = tool_fragment(cs, frag, i)) != APR_SUCCESS) {
            return rv;
        }
    }
    if (fr && *fr) {
        copy_token(cs->finish_reason, sizeof(cs->finish_reason), fr);
    }
    return APR_SUCCESS;
}

static apr_status_t handle_chunk(ac_chat_stream_t *cs, const char *event, const char *data,
                                 apr_size_t len)
{
    apr_status_t rv = APR_SUCCESS;
    json_t *j = ac_json_parse(cs->chunk_pool, data, len, NULL), *v, *choice;
    const char *model;
    json_t *choices;
    apr_size_t i;

    if (!json_is_object(j)) {
        /* jansson's reason quotes the input; say where instead */
        rv = fail(cs, APR_EINVAL,
                  apr_psprintf(cs->pool,
                               "upstream sent %s in stream event %d (%" APR_SIZE_T_FMT " bytes)",
                               j ? "JSON that is not an object" : "invalid JSON", cs->events, len));
        goto leave;
    }
    v = json_object_get(j, "error");
    if ((v && !json_is_null(v)) || (event && strcmp(event, "error") == 0)) {
        rv = upstream_error(cs, v && !json_is_null(v) ? v : j);
        goto leave;
    }
    model = ac_json_str(j, "model");
    if (model && *model) { /* Azure's filter-results chunk has "model": "" */
        copy_token(cs->model, sizeof(cs->model), model);
    }
    v = json_object_get(j, "usage"); /* null in every chunk but the last */
    if (json_is_object(v)) {
        cs->usage[0] = ac_json_int(v, "prompt_tokens", -1);
        cs->usage[1] = ac_json_int(v, "completion_tokens", -1);
        cs->usage[2] = ac_json_int(v, "total_tokens", -1);
    }
    /* "choices": [] (Azure's first chunk, the usage chunk) simply has no entries */
    choices = json_object_get(j, "choices");
    json_array_foreach(choices, i, choice)
    {
        if (ac_json_int(choice, "index", 0) != 0) {
            continue; /* we ask for one choice; others are not ours */
        }
        if ((rv = handle_choice(cs, choice)) != APR_SUCCESS) {
            goto leave;
        }
    }
leave:
    apr_pool_clear(cs->chunk_pool); /* memory stays flat however long the stream */
    return rv;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* SSE callback: one event's data.  Non-zero stops the SSE parser. */
static int on_event(void *baton, const char *event, const char *data, apr_size_t len,
                    const char *id)
{
    ac_chat_stream_t *cs = baton;
    const char *b = data, *e = data + len;

    (void)id; /* ids matter for resuming a stream, not for reading one */
    while (b < e && is_space(*b)) {
        b++;
    }
    while (e > b && is_space(e[-1])) {
        e--;
    }
    if (b == e) {
        return 0; /* an empty "data:" some proxies send as keep-alive */
    }
    if (cs->events < INT_MAX) {
        cs->events++;
    }
    if (e - b == 6 && memcmp(b, "[DONE]", 6) == 0) {
        cs->done = 1;
        return 1; /* nothing after [DONE] is ours to read */
    }
    return handle_chunk(cs, event, data, len) != APR_SUCCESS;
}

ac_chat_stream_t *ac_chat_stream_create(apr_pool_t *p, const ac_chat_stream_limits_t *limits,
                                        const ac_chat_stream_cb_t *cb, void *baton)
{
    ac_chat_stream_t *cs = apr_pcalloc(p, sizeof(*cs));

    cs->pool = p;
    if (limits) {
        cs->lim = *limits;
    }
    if (!cs->lim.max_event) {
        cs->lim.max_event = AC_SSE_DEFAULT_MAX_EVENT;
    }
    if (!cs->lim.max_content) {
        cs->lim.max_content = CS_DEFAULT_MAX_CONTENT;
    }
    if (!cs->lim.max_arguments) {
        cs->lim.max_arguments = CS_DEFAULT_MAX_ARGUMENTS;
    }
    if (cs->lim.max_tool_calls <= 0) {
        cs->lim.max_tool_calls = CS_DEFAULT_MAX_CALLS;
    }
    if (cb) {
        cs->cb = *cb;
    }
    cs->baton = baton;
    apr_pool_create(&cs->chunk_pool, p);
    cs->sse = ac_sse_parser_create(p, cs->lim.max_event, on_event, cs);
    cs->calls = apr_pcalloc(p, sizeof(*cs->calls) * (apr_size_t)cs->lim.max_tool_calls);
    cs->out_calls = apr_pcalloc(p, sizeof(*cs->out_calls) * (apr_size_t)cs->lim.max_tool_calls);
    cs->usage[0] = cs->usage[1] = cs->usage[2] = -1;
    cs->status = APR_SUCCESS;
    return cs;
}

apr_status_t ac_chat_stream_feed(ac_chat_stream_t *cs, const char *data, apr_size_t len)
{
    apr_status_t rv;

    if (cs->status != APR_SUCCESS || cs->done) {
        return cs->status;
    }
    if (cs->events == 0 && cs->head.len < CS_HEAD_MAX) {
        apr_size_t n = CS_HEAD_MAX - cs->head.len;
        buf_append(cs->pool, &cs->head, data, len < n ? len : n, CS_HEAD_MAX);
    }
    rv = ac_sse_parser_feed(cs->sse, data, len);
    if (rv == APR_SUCCESS || cs->done || cs->status != APR_SUCCESS) {
        return cs->status; /* [DONE] or a chunk error stopped the parser */
    }
    if (rv == APR_ENOSPC) {
        return fail(cs, rv,
                    apr_psprintf(cs->pool,
                                 "upstream stream event exceeds %" APR_SIZE_T_FMT " bytes",
                                 cs->lim.max_event));
    }
    return fail(cs, rv, "upstream stream could not be parsed");
}

/* A body without events: an error reply ({"error": {...}}, as a 4xx/5xx
 * carries) tells the caller why; anything else is just not a stream. */
static apr_status_t no_events(ac_chat_stream_t *cs)
{
    apr_status_t rv;
    json_t *j = NULL, *err;

    if (cs->head.len && cs->head.len < CS_HEAD_MAX) {
        j = ac_json_parse(cs->chunk_pool, cs->head.data, cs->head.len, NULL);
    }
    err = json_object_get(j, "error");
    if (err && !json_is_null(err)) {
        rv = upstream_error(cs, err);
        goto leave;
    }
    rv = fail(cs, APR_INCOMPLETE, "upstream response contained no stream events");
leave:
    apr_pool_clear(cs->chunk_pool);
    return rv;
}

apr_status_t ac_chat_stream_finish(ac_chat_stream_t *cs)
{
    if (cs->status != APR_SUCCESS || cs->done) {
        return cs->status;
    }
    /* a truncated last event is dropped; it matters only if nothing said "finished" */
    (void)ac_sse_parser_finish(cs->sse);
    if (cs->finish_reason[0]) {
        return APR_SUCCESS; /* the choice is complete, only [DONE] (and maybe usage) is missing */
    }
    if (cs->events == 0) {
        return no_events(cs);
    }
    return fail(cs, APR_INCOMPLETE, "upstream stream ended before the answer was complete");
}

void ac_chat_stream_result(ac_chat_stream_t *cs, ac_chat_stream_result_t *out)
{
    int i;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < cs->n_calls; i++) {
        cs_call_t *c = &cs->calls[i];
        if (!c->id) { /* the caller must echo an id back with the tool result */
            c->id = ac_id_new(cs->pool, "call");
        }
        cs->out_calls[i].id = c->id;
        cs->out_calls[i].name = c->name ? c->name : "";
        cs->out_calls[i].arguments = c->args.data ? c->args.data : "";
        cs->out_calls[i].arguments_len = c->args.len;
    }
    out->content = cs->content.data ? cs->content.data : "";
    out->content_len = cs->content.len;
    out->tool_calls = cs->out_calls;
    out->n_tool_calls = cs->n_calls;
    out->finish_reason = cs->finish_reason[0] ? cs->finish_reason : NULL;
    out->model = cs->model[0] ? cs->model : NULL;
    out->prompt_tokens = cs->usage[0];
    out->completion_tokens = cs->usage[1];
    out->total_tokens = cs->usage[2];
    out->done = cs->done;
    out->events = cs->events;
    out->status = cs->status;
    out->error = cs->error;
    out->error_code = cs->error_code;
}
