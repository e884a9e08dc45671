/* ac_stream: SSE delivery of a chat turn (see ac_stream.h). */
#include "ac_stream.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    route_ctx_t *rc;
    ac_stream_flavor_e flavor;
    const ac_sse_writer_t *w;
    apr_pool_t *scratch; /* cleared after every event: nothing piles up on long streams */
    const char *run_id;
    const char *thread_id;
    apr_size_t content_sent; /* bytes of answer text sent: part of every event id */
    long traces_sent;
    apr_time_t last_sent;
    int started;
    int gone; /* the client went away: keep running, stop writing */
} stream_t;

static void emit(stream_t *s, const char *name, json_t *data)
{
    apr_size_t len;
    char *text, *id;

    if (s->gone || !s->started || !data) {
        json_decref(data);
        return;
    }
    text = ac_json_dumpn(s->scratch, data, &len);
    /* The id is a position: answer bytes and trace events so far.  A client
     * that reconnects with Last-Event-ID resumes from exactly there. */
    id = s->run_id ? apr_psprintf(s->scratch, "%s:%" APR_SIZE_T_FMT ".%ld", s->run_id,
                                  s->content_sent, s->traces_sent)
                   : NULL;
    json_decref(data);
    s->last_sent = apr_time_now();
    if (s->w->event(s->w->baton, name ? id : NULL, name, text, len) != APR_SUCCESS ||
        (s->w->client_gone && s->w->client_gone(s->w->baton))) {
        s->gone = 1;
        ac_log(AC_LOG_INFO, 0, "%s: client disconnected",
               s->run_id ? s->run_id : "stateless stream");
    }
    apr_pool_clear(s->scratch);
}

static void on_begin(void *baton, const ac_turn_t *turn)
{
    stream_t *s = baton;
    const char *umid = ac_json_str(turn->user_message, "id");

    s->run_id = turn->run_id;
    if (s->w->start(s->w->baton) != APR_SUCCESS) {
        s->gone = 1;
    }
    s->started = 1;
    s->rc->resp->streamed = 1;
    if (s->flavor == AC_STREAM_CHAT) {
        emit(s, "metadata",
             json_pack("{ssssssss}", "type", "metadata", "thread_id", s->thread_id,
                       "conversation_id", s->thread_id, "run_id", turn->run_id));
        return;
    }
    emit(s, "metadata",
         json_pack("{ssssssss}", "type", "metadata", "thread_id", s->thread_id, "run_id",
                   turn->run_id, "user_message_id", umid));
}

static int on_token(void *baton, const char *text, apr_size_t len)
{
    stream_t *s = baton;
    json_t *c = json_stringn(text, len);

    if (!c) {
        return 0; /* the model split a UTF-8 sequence oddly; the full text is still stored */
    }
    s->content_sent += len;
    emit(
        s, s->flavor == AC_STREAM_CHAT ? "chunk" : "token",
        json_pack("{sssO}", "type", s->flavor == AC_STREAM_CHAT ? "chunk" : "token", "content", c));
    json_decref(c);
    return s->gone && s->rc->conf->disconnect_abort;
}

/* Silence is filled with heartbeats, so proxies and browsers keep the stream:
 * an event where ids matter, a comment on the stateless stream (an EventSource
 * "message" there would be read as text). */
static void maybe_heartbeat(stream_t *s)
{
    if (!s->started || s->gone || s->rc->conf->heartbeat <= 0 ||
        apr_time_now() - s->last_sent < s->rc->conf->heartbeat) {
        return;
    }
    if (!s->run_id) {
        s->w->comment(s->w->baton, "heartbeat");
        s->last_sent = apr_time_now();
        return;
    }
    emit(s, "heartbeat",
         json_pack("{ssss}", "type", "heartbeat", "timestamp",
                   ac_time_rfc3339(s->scratch, apr_time_now())));
}

static int on_tick(void *baton)
{
    stream_t *s = baton;

    maybe_heartbeat(s);
    if (!s->gone && s->started && s->w->client_gone && s->w->client_gone(s->w->baton)) {
        s->gone = 1;
    }
    return s->gone && s->rc->conf->disconnect_abort;
}

static void on_tool_start(void *baton, const ac_step_t *step)
{
    stream_t *s = baton;
    if (s->flavor == AC_STREAM_NATIVE) {
        s->traces_sent++;
        emit(s, "trace_start", ac_chat_trace_event(step, 0));
    }
}

static void on_tool_end(void *baton, const ac_step_t *step)
{
    stream_t *s = baton;
    if (s->flavor == AC_STREAM_NATIVE) {
        s->traces_sent++;
        emit(s, "trace_end", ac_chat_trace_event(step, 1));
    }
}

ac_err_t *ac_stream_turn(route_ctx_t *rc, const char *thread_id, const char *content,
                         ac_stream_flavor_e flavor)
{
    apr_pool_t *p = rc->req->pool;
    ac_chat_events_t ev = {on_begin, on_token, on_tool_start, on_tool_end, on_tick};
    stream_t s = {0};
    ac_chat_out_t out;
    ac_err_t *e;

    s.rc = rc;
    s.flavor = flavor;
    s.w = rc->req->sse;
    s.thread_id = thread_id;
    apr_pool_create(&s.scratch, p);

    e = ac_chat_turn(rc->conf->chat, &rc->cosmos, rc->req->principal, thread_id, content, &ev, &s,
                     &out);
    if (!s.started) {
        return e; /* nothing streamed yet: an ordinary JSON error */
    }
    if (e) {
        /* the user's message is stored: say where, so nothing looks lost */
        emit(&s, "error",
             json_pack("{sssssssbssss}", "type", "error", "code", e->code, "message", e->message,
                       "retryable", out.result.retryable, "thread_id", thread_id, "run_id",
                       out.turn.run_id));
        return e;
    }
    if (flavor == AC_STREAM_CHAT) {
        emit(&s, "done",
             json_pack("{sssssssssssO}", "type", "done", "thread_id", thread_id, "run_id",
                       out.turn.run_id, "full_response", out.result.content, "timestamp",
                       ac_time_rfc3339(s.scratch, apr_time_now()), "usage",
                       json_object_get(out.run, "usage")));
        return NULL;
    }
    emit(&s, "done",
         json_pack("{ssssssss?sOss}", "type", "done", "run_id", out.turn.run_id, "thread_id",
                   thread_id, "message_id", out.assistant ? ac_json_str(out.assistant, "id") : NULL,
                   "usage", json_object_get(out.run, "usage"), "finish_reason",
                   out.result.finish_reason ? out.result.finish_reason : "stop"));
    return NULL;
}

/* ---- replay and live follow of a run (GET .../runs/{run_id}/events) --------------- */

#define FOLLOW_POLL_MS 1000
#define FOLLOW_FLAG_REFRESH_S 5

/* Last-Event-ID "run_x:123.4" -> 123 bytes of text and 4 trace events already
 * seen.  Returns 1 when the id named a position of this run. */
static int parse_position(stream_t *s, const char *last)
{
    apr_size_t rl = strlen(s->run_id);
    unsigned long long c = 0;
    long t = 0;
    if (last && strncmp(last, s->run_id, rl) == 0 && last[rl] == ':' &&
        sscanf(last + rl + 1, "%llu.%ld", &c, &t) == 2 && t >= 0) {
        s->content_sent = (apr_size_t)c;
        s->traces_sent = t;
        return 1;
    }
    return 0;
}

static json_t *read_run_doc(route_ctx_t *rc, apr_pool_t *p, const char *thread_id,
                            const char *run_id)
{
    ac_cosmos_ctx_t sctx = {p, 0, 0};
    ac_cosmos_res_t res;
    json_t *doc = NULL;

    if (ac_cosmos_read_doc(ac_store_cosmos(rc->conf->store), &sctx, AC_COLL_MESSAGES, thread_id,
                           run_id, &res) == APR_SUCCESS &&
        res.status == 200 && json_is_object(res.body)) {
        doc = res.body;
    }
    rc->cosmos.request_charge += sctx.request_charge;
    rc->cosmos.round_trips += sctx.round_trips;
    return doc;
}

/* Send what the client has not seen yet: trace events past traces_sent, text
 * past content_sent. */
static void catch_up(stream_t *s, json_t *traces, const char *text)
{
    size_t n = json_array_size(traces);
    apr_size_t len = text ? strlen(text) : 0;

    while (!s->gone && (size_t)s->traces_sent < n) {
        json_t *ev = json_array_get(traces, (size_t)s->traces_sent);
        const char *type = ac_json_str(ev, "type");
        s->traces_sent++;
        emit(s, type ? type : "trace", json_incref(ev));
    }
    if (!s->gone && len > s->content_sent) {
        const char *rest = text + s->content_sent;
        apr_size_t rlen = len - s->content_sent;
        s->content_sent = len;
        emit(s, "token", json_pack("{ssss#}", "type", "token", "content", rest, (int)rlen));
    }
}

/* The trace events of a finished run, rebuilt from its steps in the order the
 * live stream sent them: per round, every trace_start, then every trace_end
 * (the calls of a round run together).  Same order, same positions. */
static json_t *traces_from_steps(json_t *steps)
{
    json_t *out = json_array(), *st;
    size_t i, n = json_array_size(steps), begin = 0;

    while (begin < n) {
        json_int_t round = ac_json_int(json_array_get(steps, begin), "round", 0);
        size_t end = begin;
        while (end < n && ac_json_int(json_array_get(steps, end), "round", 0) == round) {
            end++;
        }
        for (i = begin; i < end; i++) {
            st = json_array_get(steps, i);
            json_array_append_new(out, json_pack("{sssOsOsO}", "type", "trace_start", "step_id",
                                                 json_object_get(st, "id"), "tool",
                                                 json_object_get(st, "tool"), "arguments",
                                                 json_object_get(st, "arguments")));
        }
        for (i = begin; i < end; i++) {
            st = json_array_get(steps, i);
            json_array_append_new(out, json_pack("{sssOsOsOsOsO}", "type", "trace_end", "step_id",
                                                 json_object_get(st, "id"), "tool",
                                                 json_object_get(st, "tool"), "result",
                                                 json_object_get(st, "output"), "status",
                                                 json_object_get(st, "status"), "duration_ms",
                                                 json_object_get(st, "duration_ms")));
        }
        begin = end;
    }
    return out;
}

static void finish_replay(stream_t *s, json_t *doc, apr_pool_t *p)
{
    route_ctx_t *rc = s->rc;
    const char *mid = ac_json_str(doc, "assistant_message_id");
    const char *text = ac_json_str(doc, "partial_content");
    json_t *traces = traces_from_steps(json_object_get(doc, "steps"));
    json_t *err = json_object_get(doc, "error");

    if (mid) {
        ac_cosmos_ctx_t sctx = {p, 0, 0};
        ac_cosmos_res_t res;
        if (ac_cosmos_read_doc(ac_store_cosmos(rc->conf->store), &sctx, AC_COLL_MESSAGES,
                               s->thread_id, mid, &res) == APR_SUCCESS &&
            res.status == 200) {
            text = ac_json_str(res.body, "content");
        }
        rc->cosmos.request_charge += sctx.request_charge;
        rc->cosmos.round_trips += sctx.round_trips;
    }
    catch_up(s, traces, text);
    json_decref(traces);
    if (!strcmp(ac_json_str(doc, "status") ? ac_json_str(doc, "status") : "", "failed") &&
        json_is_object(err)) {
        emit(s, "error",
             json_pack("{sssOsOsb}", "type", "error", "code", json_object_get(err, "code"),
                       "message", json_object_get(err, "message"), "retryable",
                       ac_json_bool(err, "retryable", 0)));
        return;
    }
    emit(s, "done",
         json_pack("{ssssssss?sOss}", "type", "done", "run_id", s->run_id, "thread_id",
                   s->thread_id, "message_id", mid, "usage",
                   json_object_get(doc, "usage") ? json_object_get(doc, "usage") : json_null(),
                   "finish_reason",
                   ac_json_str(doc, "finish_reason") ? ac_json_str(doc, "finish_reason") : "stop"));
}

ac_err_t *ac_stream_run_events(route_ctx_t *rc, const char *thread_id, const char *run_id)
{
    apr_pool_t *p = rc->req->pool, *poll;
    stream_t s = {0};
    json_t *thread, *doc;
    apr_time_t flagged = 0, deadline;
    int resumed;
    ac_err_t *e;

    if ((e = ac_store_thread_read(rc->conf->store, &rc->cosmos, rc->req->principal, thread_id,
                                  &thread))) {
        return e;
    }
    apr_pool_create(&poll, p);
    if (!(doc = read_run_doc(rc, poll, thread_id, run_id)) ||
        strcmp(ac_json_str(doc, "type") ? ac_json_str(doc, "type") : "", "run") != 0) {
        return ac_err_make(p, 404, "run_not_found", "No run with id '%s' in this thread.", run_id);
    }
    s.rc = rc;
    s.flavor = AC_STREAM_NATIVE;
    s.w = rc->req->sse;
    s.thread_id = thread_id;
    s.run_id = run_id;
    apr_pool_create(&s.scratch, p);
    resumed = parse_position(&s, rc->req->last_event_id);
    if (s.w->start(s.w->baton) != APR_SUCCESS) {
        s.gone = 1;
    }
    s.started = 1;
    s.last_sent = apr_time_now();
    rc->resp->streamed = 1;
    if (!resumed) {
        emit(&s, "metadata",
             json_pack("{ssssssss?}", "type", "metadata", "thread_id", thread_id, "run_id", run_id,
                       "user_message_id", ac_json_str(doc, "user_message_id")));
    }
    /* Bounded by the age after which a run no longer counts as running. */
    deadline =
        apr_time_now() + (rc->conf->chat ? rc->conf->chat->stale_after : apr_time_from_sec(600));
    while (!s.gone && apr_time_now() < deadline) {
        const char *status = ac_json_str(doc, "status");
        if (!status || strcmp(status, "in_progress") != 0) {
            finish_replay(&s, doc, poll);
            break;
        }
        if (apr_time_now() - flagged >= apr_time_from_sec(FOLLOW_FLAG_REFRESH_S)) {
            /* Tell the streaming server someone is watching: it starts writing
             * checkpoints on its next poll, and stops when we stop asking. */
            ac_cosmos_ctx_t sctx = {poll, 0, 0};
            ac_cosmos_res_t res;
            json_t *ops = ac_json_own(poll, json_pack("[{ssssss}]", "op", "set", "path",
                                                      "/follow_requested_at", "value",
                                                      ac_time_rfc3339(poll, apr_time_now())));
            ac_cosmos_patch_doc(ac_store_cosmos(rc->conf->store), &sctx, AC_COLL_MESSAGES,
                                thread_id, run_id, ops, NULL, NULL, &res);
            flagged = apr_time_now();
        }
        catch_up(&s, json_object_get(doc, "partial_traces"), ac_json_str(doc, "partial_content"));
        maybe_heartbeat(&s);
        apr_sleep(apr_time_from_msec(FOLLOW_POLL_MS));
        if (s.w->client_gone && s.w->client_gone(s.w->baton)) {
            break;
        }
        apr_pool_clear(poll);
        if (!(doc = read_run_doc(rc, poll, thread_id, run_id))) {
            emit(&s, "error",
                 json_pack("{sssssssb}", "type", "error", "code", "storage_error", "message",
                           "The run could not be read.", "retryable", 1));
            break;
        }
    }
    return NULL;
}

/* ---- stateless stream (/agent/stream): nothing stored ---------------------------- */

static int stateless_token(void *baton, const char *text, apr_size_t len)
{
    stream_t *s = baton;
    json_t *c = json_stringn(text, len);
    if (c) {
        emit(s, NULL, json_pack("{sO}", "text", c));
        json_decref(c);
    }
    return s->gone;
}

static int stateless_tick(void *baton)
{
    stream_t *s = baton;
    maybe_heartbeat(s);
    return s->gone || (s->w->client_gone && s->w->client_gone(s->w->baton));
}

ac_err_t *ac_stream_stateless(route_ctx_t *rc, const char *message)
{
    apr_pool_t *p = rc->req->pool;
    const ac_chat_conf_t *cc = rc->conf->chat;
    const ac_agent_t *agent = ac_chat_find_agent(cc, cc->default_agent);
    ac_agent_cb_t cb = {stateless_token, NULL, NULL, stateless_tick};
    ac_agent_result_t res;
    stream_t s = {0};

    if (!agent) {
        return ac_err_make(p, 500, "agent_missing", "No default agent is configured.");
    }
    s.rc = rc;
    s.flavor = AC_STREAM_CHAT;
    s.w = rc->req->sse;
    s.run_id = NULL; /* nothing to resume: events carry no id */
    apr_pool_create(&s.scratch, p);
    if (s.w->start(s.w->baton) != APR_SUCCESS) {
        return NULL;
    }
    s.started = 1;
    s.last_sent = apr_time_now();
    rc->resp->streamed = 1;
    if (ac_agent_run(&cc->env, agent, ac_agent_messages(p, agent, NULL, message), &cb, &s, p,
                     &res) != APR_SUCCESS) {
        emit(&s, "error",
             json_pack("{sssssb}", "code", res.error_code ? res.error_code : "error", "message",
                       res.error ? res.error : "The model call failed.", "retryable",
                       res.retryable));
        return NULL;
    }
    /* An EventSource reconnects when a stream just ends: "done" tells it to stop. */
    emit(&s, "done",
         json_pack("{ss}", "finish_reason", res.finish_reason ? res.finish_reason : "stop"));
    return NULL;
}
