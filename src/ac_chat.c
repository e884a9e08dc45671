/* ac_chat: a chat turn from stored user message to stored answer. */
#include "ac_chat.h"
#include "ac_watch.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <string.h>

const ac_agent_t *ac_chat_find_agent(const ac_chat_conf_t *cc, const char *name)
{
    for (int i = 0; cc->agents && i < cc->agents->nelts; i++) {
        const ac_agent_t *a = APR_ARRAY_IDX(cc->agents, i, const ac_agent_t *);
        if (name && strcmp(a->name, name) == 0) {
            return a;
        }
    }
    return NULL;
}

/* The turn's state seen by the agent's callbacks, which it relays to the
 * caller's events after its own work (cancel polling). */
typedef struct {
    const ac_chat_conf_t *cc;
    ac_cosmos_ctx_t *ctx;
    const ac_turn_t *turn;
    const ac_chat_events_t *ev;
    void *baton;
    const char *stop_reason; /* "cancelled" | "client_disconnected" */
    ac_watch_t *watch;       /* cancel polling and follower checkpoints, off this thread */
} turn_state_t;

static int relay_token(void *b, const char *text, apr_size_t len)
{
    turn_state_t *t = b;
    ac_watch_text(t->watch, text, len);
    if (t->ev && t->ev->on_token && t->ev->on_token(t->baton, text, len)) {
        t->stop_reason = "client_disconnected";
        return 1;
    }
    return 0;
}

/* Trace events as the stream sends them, kept for followers and replays. */
json_t *ac_chat_trace_event(const ac_step_t *step, int end)
{
    json_t *args = json_loads(step->arguments ? step->arguments : "", JSON_DECODE_ANY, NULL);
    json_t *ev;

    if (!args) {
        args = json_string(step->arguments ? step->arguments : "");
    }
    if (!end) {
        ev = json_pack("{sssssssO}", "type", "trace_start", "step_id", step->id, "tool", step->tool,
                       "arguments", args);
    }
    else {
        ev = json_pack("{sssssssOsssI}", "type", "trace_end", "step_id", step->id, "tool",
                       step->tool, "result", step->result ? step->result : json_null(), "status",
                       step->status, "duration_ms", (json_int_t)apr_time_as_msec(step->duration));
    }
    json_decref(args);
    return ev;
}

static void relay_tool_start(void *b, const ac_step_t *step)
{
    turn_state_t *t = b;
    ac_watch_trace(t->watch, ac_chat_trace_event(step, 0));
    if (t->ev && t->ev->on_tool_start) {
        t->ev->on_tool_start(t->baton, step);
    }
}

static void relay_tool_end(void *b, const ac_step_t *step)
{
    turn_state_t *t = b;
    ac_watch_trace(t->watch, ac_chat_trace_event(step, 1));
    if (t->ev && t->ev->on_tool_end) {
        t->ev->on_tool_end(t->baton, step);
    }
}

static int relay_tick(void *b)
{
    turn_state_t *t = b;

    if (t->stop_reason) {
        return 1;
    }
    if (t->ev && t->ev->on_tick && t->ev->on_tick(t->baton)) {
        t->stop_reason = "client_disconnected";
        return 1;
    }
    if (ac_watch_cancelled(t->watch)) {
        t->stop_reason = "cancelled";
        return 1;
    }
    return 0;
}

ac_err_t *ac_chat_cancel(const ac_chat_conf_t *cc, ac_cosmos_ctx_t *ctx, const char *principal,
                         const char *thread_id, const char *run_id, json_t **run)
{
    apr_pool_t *p = ctx->pool;
    json_t *ops, *thread;
    ac_cosmos_res_t res;
    apr_status_t rv;
    ac_err_t *e;

    if ((e = ac_store_thread_read(cc->store, ctx, principal, thread_id, &thread))) {
        return e;
    }
    ops = ac_json_own(p, json_pack("[{sssssb}{ssssss}]", "op", "set", "path", "/cancel_requested",
                                   "value", 1, "op", "set", "path", "/cancel_requested_at", "value",
                                   ac_time_rfc3339(p, apr_time_now())));
    /* Only a run still in progress can be cancelled; the condition makes the
     * check and the flag one atomic step. */
    rv = ac_cosmos_patch_doc(ac_store_cosmos(cc->store), ctx, AC_COLL_MESSAGES, thread_id, run_id,
                             ops, "FROM c WHERE c.type = 'run' AND c.status = 'in_progress'", NULL,
                             &res);
    if (rv == APR_SUCCESS && res.status == 404) {
        return ac_err_make(p, 404, "run_not_found", "No run with id '%s' in this thread.", run_id);
    }
    if (rv == APR_SUCCESS && res.status == 412) {
        if ((e = ac_store_run_read(cc->store, ctx, principal, thread_id, run_id, run))) {
            return e;
        }
        e = ac_err_make(p, 409, "run_not_active", "The run is not in progress (status %s).",
                        ac_json_str(*run, "status") ? ac_json_str(*run, "status") : "?");
        return e;
    }
    if (rv != APR_SUCCESS || res.status != 200) {
        return ac_store_cosmos_err(p, rv, &res, "cancelling the run");
    }
    *run = ac_store_run_view(p, res.body);
    json_object_set_new(*run, "cancel_requested", json_true());
    return NULL;
}

static json_int_t ms(apr_interval_time_t t)
{
    return t < 0 ? -1 : (json_int_t)apr_time_as_msec(t);
}

/* Arguments as an object when the model wrote valid JSON, else the raw text. */
static json_t *args_value(apr_pool_t *p, const char *text)
{
    json_t *j = text ? ac_json_parse(p, text, strlen(text), NULL) : NULL;
    return j ? json_incref(j) : json_string(text ? text : "");
}

/* A tool result as stored: large ones are cut to a preview so the message and
 * the run (each holds every result) stay far below Cosmos' 2 MB per document.
 * The model saw the whole result during the turn. */
#define STORED_RESULT_MAX (32 * 1024)

static json_t *stored_result(apr_pool_t *p, json_t *result)
{
    apr_size_t n;
    char *text = ac_json_dumpn(p, result ? result : json_null(), &n);

    if (n <= STORED_RESULT_MAX) {
        return json_incref(result ? result : json_null());
    }
    return json_pack("{sbsIss}", "truncated", 1, "bytes", (json_int_t)n, "preview",
                     ac_utf8_truncate(p, text, STORED_RESULT_MAX / 4));
}

static json_t *usage_json(const ac_agent_result_t *r)
{
    if (r->prompt_tokens < 0 && r->completion_tokens < 0) {
        return json_null();
    }
    return json_pack(
        "{sIsIsI}", "prompt_tokens", r->prompt_tokens < 0 ? 0 : r->prompt_tokens,
        "completion_tokens", r->completion_tokens < 0 ? 0 : r->completion_tokens, "total_tokens",
        r->total_tokens >= 0 ? r->total_tokens
                             : (r->prompt_tokens < 0 ? 0 : r->prompt_tokens) +
                                   (r->completion_tokens < 0 ? 0 : r->completion_tokens));
}

static json_t *build_assistant(apr_pool_t *p, const ac_turn_t *turn, const ac_agent_result_t *r,
                               const char *msg_id)
{
    json_t *calls = json_array();
    json_t *m;

    for (int i = 0; i < r->steps->nelts; i++) {
        const ac_step_t *s = &APR_ARRAY_IDX(r->steps, i, ac_step_t);
        json_array_append_new(calls, json_pack("{sssssososssI}", "id", s->id, "tool", s->tool,
                                               "arguments", args_value(p, s->arguments), "result",
                                               stored_result(p, s->result), "status", s->status,
                                               "duration_ms", ms(s->duration)));
    }
    m = ac_json_own(p, json_pack("{ss ss ss ss ss ss ss sI ss so so ss ss*}", "id", msg_id, "type",
                                 "message", "object", "thread.message", "thread_id",
                                 turn->thread_id, "role", "assistant", "content", r->content,
                                 "created_at", ac_time_rfc3339(p, apr_time_now()), "seq",
                                 turn->user_seq + 1, "run_id", turn->run_id, "tool_calls", calls,
                                 "usage", usage_json(r), "status",
                                 strcmp(r->status, "completed") == 0 ? "completed" : "incomplete",
                                 "finish_reason", r->finish_reason));
    return m;
}

static json_t *build_run(apr_pool_t *p, const ac_turn_t *turn, const ac_agent_result_t *r,
                         const char *msg_id, double charge)
{
    json_t *run = ac_json_own(p, json_deep_copy(turn->run));
    json_t *steps = json_array();

    for (int i = 0; i < r->steps->nelts; i++) {
        const ac_step_t *s = &APR_ARRAY_IDX(r->steps, i, ac_step_t);
        json_t *step = json_pack("{sssssssososssssIsi}", "id", s->id, "type", "tool_call", "tool",
                                 s->tool, "arguments", args_value(p, s->arguments), "output",
                                 stored_result(p, s->result), "status", s->status, "started_at",
                                 ac_time_rfc3339(p, s->started_at), "duration_ms", ms(s->duration),
                                 "round", s->round);
        if (s->error) {
            json_object_set_new(step, "error", json_string(s->error));
        }
        json_array_append_new(steps, step);
    }
    ac_json_set_str(run, "status", r->status);
    if (r->model) {
        ac_json_set_str(run, "model", r->model);
    }
    json_object_set_new(run, "usage", usage_json(r));
    json_object_set_new(run, "time_to_first_token_ms",
                        r->ttft >= 0 ? json_integer(ms(r->ttft)) : json_null());
    json_object_set_new(run, "duration_ms", json_integer(ms(r->duration)));
    json_object_set_new(run, "steps", steps);
    json_object_set_new(run, "rounds", json_integer(r->rounds));
    json_object_set_new(run, "request_charge", json_real(charge));
    ac_json_set_str(run, "finish_reason", r->finish_reason);
    ac_json_set_str(run, "completed_at", ac_time_rfc3339(p, apr_time_now()));
    ac_json_set_str(run, "assistant_message_id", msg_id);
    json_object_set_new(run, "error",
                        r->error_code
                            ? json_pack("{sssssb}", "code", r->error_code, "message",
                                        r->error ? r->error : "", "retryable", r->retryable)
                            : json_null());
    return run;
}

ac_err_t *ac_chat_turn(const ac_chat_conf_t *cc, ac_cosmos_ctx_t *ctx, const char *principal,
                       const char *thread_id, const char *content, const ac_chat_events_t *ev,
                       void *baton, ac_chat_out_t *out)
{
    apr_pool_t *p = ctx->pool;
    ac_agent_cb_t acb = {relay_token, relay_tool_start, relay_tool_end, relay_tick};
    turn_state_t ts = {0};
    const ac_agent_t *agent;
    json_t *history, *messages, *assistant = NULL, *run;
    const char *msg_id = NULL;
    ac_err_t *e;

    apr_time_t started = apr_time_now(), agent_started = 0;

    memset(out, 0, sizeof(*out));
    if ((e = ac_store_turn_begin(cc->store, ctx, principal, thread_id, content,
                                 ac_model_conf(cc->env.model)->deployment, cc->stale_after,
                                 &out->turn))) {
        return e;
    }
    /* From here on the user's message is stored: every path finishes the run. */
    if (!(agent = ac_chat_find_agent(cc, out->turn.agent)) &&
        !(agent = ac_chat_find_agent(cc, cc->default_agent))) {
        e = ac_err_make(p, 500, "agent_missing", "The thread's agent is not configured.");
    }
    else if (!(e = ac_store_history(cc->store, ctx, thread_id, out->turn.user_seq,
                                    cc->history_messages, &history))) {
        if (ev && ev->on_begin) {
            ev->on_begin(baton, &out->turn);
        }
        messages = ac_agent_messages(p, agent, history, content);
        ts.cc = cc;
        ts.ctx = ctx;
        ts.turn = &out->turn;
        ts.ev = ev;
        ts.baton = baton;
        ts.watch = ac_watch_start(p, cc->store, thread_id, out->turn.run_id, cc->cancel_poll,
                                  cc->checkpoint_interval);
        agent_started = apr_time_now();
        if (ac_agent_run(&cc->env, agent, messages, &acb, &ts, p, &out->result) != APR_SUCCESS) {
            e = ac_err_make(p, out->result.http_status ? out->result.http_status : 502,
                            out->result.error_code ? out->result.error_code : "model_error", "%s",
                            out->result.error ? out->result.error : "The model call failed.");
            if (out->result.retryable) {
                e->retry_after = 2;
            }
        }
        ac_watch_stop(ts.watch, ctx);
    }
    if (out->result.status && !strcmp(out->result.status, "cancelled") && ts.stop_reason &&
        !strcmp(ts.stop_reason, "client_disconnected")) {
        /* AgentChatOnDisconnect abort: what was generated is kept, marked incomplete */
        out->result.status = "incomplete";
        out->result.finish_reason = "client_disconnected";
    }
    if (!out->result.steps) {
        /* The agent never ran: record why on the run. */
        out->result.steps = apr_array_make(p, 1, sizeof(ac_step_t));
        out->result.prompt_tokens = out->result.completion_tokens = -1;
        out->result.total_tokens = -1;
        out->result.ttft = -1;
        out->result.status = "failed";
        out->result.content = "";
        out->result.error_code = e ? e->code : "error";
        out->result.error = e ? e->message : "";
    }
    /* Timings count from when the request was accepted, not from the model
     * call: what the user waited for. */
    if (agent_started && out->result.ttft >= 0) {
        out->result.ttft += agent_started - started;
    }
    out->result.duration = apr_time_now() - started;
    if (*out->result.content || out->result.steps->nelts > 0) {
        msg_id = ac_id_new(p, "msg");
        assistant = build_assistant(p, &out->turn, &out->result, msg_id);
    }
    run = build_run(p, &out->turn, &out->result, msg_id, ctx->request_charge);
    {
        ac_err_t *fe = ac_store_turn_finish(cc->store, ctx, principal, &out->turn, assistant, run);
        if (fe && !e) {
            e = fe;
        }
    }
    out->assistant = assistant ? ac_store_message_view(p, assistant) : NULL;
    out->run = ac_store_run_view(p, run);
    ac_log(AC_LOG_INFO, 0,
           "run %s thread %s: %s, %d tool call(s), %d round(s), ttft %" APR_INT64_T_FMT
           " ms, %" APR_INT64_T_FMT " ms, %.2f RU",
           out->turn.run_id, thread_id, out->result.status, out->result.steps->nelts,
           out->result.rounds, (apr_int64_t)ms(out->result.ttft),
           (apr_int64_t)ms(out->result.duration), ctx->request_charge);
    return e;
}
