/* ac_stream: SSE delivery of a chat turn (see ac_stream.h). */
#include "ac_stream.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <string.h>

typedef struct {
    route_ctx_t *rc;
    ac_stream_flavor_e flavor;
    const ac_sse_writer_t *w;
    apr_pool_t *scratch; /* cleared after every event: nothing piles up on long streams */
    const char *run_id;
    const char *thread_id;
    long seq;
    apr_time_t last_sent;
    int started;
    int gone; /* the client went away: keep running, stop writing */
} stream_t;

static void emit(stream_t *s, const char *name, json_t *data)
{
    apr_size_t len;
    char *text, *id;

    if (s->gone || !s->started) {
        json_decref(data);
        return;
    }
    text = ac_json_dumpn(s->scratch, data, &len);
    id = apr_psprintf(s->scratch, "%s:%ld", s->run_id, ++s->seq);
    json_decref(data);
    s->last_sent = apr_time_now();
    if (s->w->event(s->w->baton, id, name, text, len) != APR_SUCCESS ||
        (s->w->client_gone && s->w->client_gone(s->w->baton))) {
        s->gone = 1;
        ac_log(AC_LOG_INFO, 0, "run %s: client disconnected; the run continues", s->run_id);
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
        emit(s, "metadata", json_pack("{ssssssss}", "type", "metadata", "thread_id",
                                      s->thread_id, "conversation_id", s->thread_id, "run_id",
                                      turn->run_id));
        return;
    }
    emit(s, "metadata", json_pack("{ssssssss}", "type", "metadata", "thread_id", s->thread_id,
                                  "run_id", turn->run_id, "user_message_id", umid));
}

static int on_token(void *baton, const char *text, apr_size_t len)
{
    stream_t *s = baton;
    json_t *c = json_stringn(text, len);

    if (!c) {
        return 0; /* the model split a UTF-8 sequence oddly; the full text is still stored */
    }
    emit(s, s->flavor == AC_STREAM_CHAT ? "chunk" : "token",
         json_pack("{sssO}", "type", s->flavor == AC_STREAM_CHAT ? "chunk" : "token", "content",
                   c));
    json_decref(c);
    return s->gone && s->rc->conf->disconnect_abort;
}

/* Silence is filled with heartbeats, so proxies and browsers keep the stream. */
static int on_tick(void *baton)
{
    stream_t *s = baton;

    if (s->started && !s->gone && s->rc->conf->heartbeat > 0 &&
        apr_time_now() - s->last_sent >= s->rc->conf->heartbeat) {
        emit(s, "heartbeat", json_pack("{ssss}", "type", "heartbeat", "timestamp",
                                       ac_time_rfc3339(s->scratch, apr_time_now())));
    }
    if (!s->gone && s->started && s->w->client_gone && s->w->client_gone(s->w->baton)) {
        s->gone = 1;
    }
    return s->gone && s->rc->conf->disconnect_abort;
}

static void on_tool_start(void *baton, const ac_step_t *step)
{
    stream_t *s = baton;
    if (s->flavor == AC_STREAM_NATIVE) {
        emit(s, "trace_start", json_pack("{ssssssss}", "type", "trace_start", "step_id", step->id,
                                         "tool", step->tool, "arguments", step->arguments));
    }
}

static void on_tool_end(void *baton, const ac_step_t *step)
{
    stream_t *s = baton;
    if (s->flavor == AC_STREAM_NATIVE) {
        emit(s, "trace_end",
             json_pack("{sssssssOsssI}", "type", "trace_end", "step_id", step->id, "tool",
                       step->tool, "result", step->result, "status", step->status, "duration_ms",
                       (json_int_t)apr_time_as_msec(step->duration)));
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
        emit(&s, "error", json_pack("{sssssssb}", "type", "error", "code", e->code, "message",
                                    e->message, "retryable", out.result.retryable));
        return e;
    }
    if (flavor == AC_STREAM_CHAT) {
        emit(&s, "done", json_pack("{sssssssssO}", "type", "done", "thread_id", thread_id,
                                   "run_id", out.turn.run_id, "full_response",
                                   out.result.content, "timestamp",
                                   ac_time_rfc3339(s.scratch, apr_time_now()), "usage",
                                   json_object_get(out.run, "usage")));
        return NULL;
    }
    emit(&s, "done",
         json_pack("{sssssss?sOss}", "type", "done", "run_id", out.turn.run_id, "thread_id",
                   thread_id, "message_id",
                   out.assistant ? ac_json_str(out.assistant, "id") : NULL, "usage",
                   json_object_get(out.run, "usage"), "finish_reason",
                   out.result.finish_reason ? out.result.finish_reason : "stop"));
    return NULL;
}
