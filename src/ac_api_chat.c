/* ac_api_chat: the routes that talk to the agent — messages, runs, /chat and
 * the per-agent routes. */
#include "ac_api_int.h"
#include "ac_json.h"
#include "ac_stream.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <string.h>

static ac_err_t *need_chat(route_ctx_t *rc)
{
    if (!rc->conf->chat) {
        return ac_err_make(rc->req->pool, 503, "model_not_configured",
                           "No model endpoint is configured on this server "
                           "(AgentChatOpenAIEndpoint).");
    }
    return NULL;
}

/* A user message: a non-empty string within the configured length. */
static ac_err_t *check_content(route_ctx_t *rc, json_t *v, const char *field, const char **out)
{
    apr_pool_t *p = rc->req->pool;
    apr_size_t max = rc->conf->chat->max_message_chars;
    const char *s = json_string_value(v);

    if (!v) {
        return ac_err_make(p, 422, "missing_field", "'%s' is required.", field);
    }
    if (!s) {
        return ac_err_make(p, 422, "invalid_field", "'%s' must be a string.", field);
    }
    if (!*s || strspn(s, " \t\r\n") == strlen(s)) {
        return ac_err_make(p, 422, "invalid_field", "'%s' must not be empty.", field);
    }
    if (ac_utf8_len(s) > max) {
        return ac_err_make(p, 422, "field_too_long", "'%s' is longer than %lu characters.", field,
                           (unsigned long)max);
    }
    *out = s;
    return NULL;
}

/* Does the client want SSE?  "stream": true, or an Accept that asks for it. */
static ac_err_t *want_stream(route_ctx_t *rc, json_t *body, int *stream)
{
    json_t *v = json_object_get(body, "stream");
    const char *accept = rc->req->accept;

    *stream = accept && strstr(accept, "text/event-stream") != NULL;
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            return ac_err_make(rc->req->pool, 422, "invalid_field", "'stream' must be a boolean.");
        }
        *stream = *stream || json_is_true(v);
    }
    if (*stream && !rc->req->sse) {
        return ac_err_make(rc->req->pool, 406, "streaming_unavailable",
                           "This server cannot stream responses.");
    }
    return NULL;
}

/* Ids of what was stored, attached to errors that come after the user's
 * message was accepted: the client knows nothing was lost. */
static void attach_ids(apr_pool_t *p, ac_err_t *e, const ac_chat_out_t *out)
{
    if (e && out->turn.run_id && out->turn.user_message) {
        e->extra = ac_json_own(p, json_pack("{sssssO}", "thread_id", out->turn.thread_id, "run_id",
                                            out->turn.run_id, "user_message_id",
                                            json_object_get(out->turn.user_message, "id")));
    }
}

ac_err_t *ac_api_messages_post(route_ctx_t *rc)
{
    static const char *const allowed[] = {"content", "stream", NULL};
    apr_pool_t *p = rc->req->pool;
    const char *content;
    json_t *body;
    ac_chat_out_t out;
    ac_err_t *e;
    int stream;

    if ((e = need_chat(rc)) || (e = ac_api_check_thread_id(rc, rc->seg[1])) ||
        (e = ac_api_read_body(rc, 1, &body)) || (e = ac_api_check_fields(p, body, allowed)) ||
        (e = check_content(rc, json_object_get(body, "content"), "content", &content)) ||
        (e = want_stream(rc, body, &stream))) {
        return e;
    }
    if (stream) {
        return ac_stream_turn(rc, rc->seg[1], content, AC_STREAM_NATIVE);
    }
    e = ac_chat_turn(rc->conf->chat, &rc->cosmos, rc->req->principal, rc->seg[1], content, NULL,
                     NULL, &out);
    if (e) {
        attach_ids(p, e, &out);
        return e;
    }
    rc->resp->status = 200;
    rc->resp->body = out.assistant;
    if (!out.assistant) {
        rc->resp->body = out.run;
    }
    return NULL;
}

ac_err_t *ac_api_run_get(route_ctx_t *rc)
{
    json_t *run;
    ac_err_t *e;

    if ((e = ac_api_check_thread_id(rc, rc->seg[1]))) {
        return e;
    }
    if (!ac_id_valid(rc->seg[3], "run")) {
        return ac_err_make(rc->req->pool, 404, "run_not_found", "No run with that id.");
    }
    if ((e = ac_store_run_read(rc->conf->store, &rc->cosmos, rc->req->principal, rc->seg[1],
                               rc->seg[3], &run))) {
        return e;
    }
    rc->resp->status = 200;
    rc->resp->body = run;
    return NULL;
}

ac_err_t *ac_api_run_cancel(route_ctx_t *rc)
{
    json_t *run;
    ac_err_t *e;

    if ((e = need_chat(rc)) || (e = ac_api_check_thread_id(rc, rc->seg[1]))) {
        return e;
    }
    if (!ac_id_valid(rc->seg[3], "run")) {
        return ac_err_make(rc->req->pool, 404, "run_not_found", "No run with that id.");
    }
    if ((e = ac_chat_cancel(rc->conf->chat, &rc->cosmos, rc->req->principal, rc->seg[1], rc->seg[3],
                            &run))) {
        return e;
    }
    rc->resp->status = 202;
    rc->resp->body = run;
    return NULL;
}

/* POST /chat and POST /agents/{agent}/chat: {"message", "thread_id"?, "stream"?}.
 * The thread is created when none is given. */
ac_err_t *ac_api_chat_post(route_ctx_t *rc)
{
    static const char *const allowed[] = {"message", "thread_id", "stream", NULL};
    apr_pool_t *p = rc->req->pool;
    const char *agent_name = rc->nseg == 3    ? rc->seg[1]
                             : rc->conf->chat ? rc->conf->chat->default_agent
                                              : NULL;
    const char *message, *thread_id = NULL;
    json_t *body, *v, *thread;
    ac_chat_out_t out;
    ac_err_t *e;
    int stream;

    if ((e = need_chat(rc))) {
        return e;
    }
    if (!ac_chat_find_agent(rc->conf->chat, agent_name)) {
        return ac_err_make(p, 404, "agent_not_found", "There is no agent named '%s'.",
                           ac_utf8_truncate(p, agent_name ? agent_name : "", 64));
    }
    if ((e = ac_api_read_body(rc, 1, &body)) || (e = ac_api_check_fields(p, body, allowed)) ||
        (e = check_content(rc, json_object_get(body, "message"), "message", &message)) ||
        (e = want_stream(rc, body, &stream))) {
        return e;
    }
    if ((v = json_object_get(body, "thread_id")) && !json_is_null(v)) {
        if (!json_is_string(v)) {
            return ac_err_make(p, 422, "invalid_field", "'thread_id' must be a string.");
        }
        thread_id = json_string_value(v);
        if ((e = ac_api_check_thread_id(rc, thread_id)) ||
            (e = ac_store_thread_read(rc->conf->store, &rc->cosmos, rc->req->principal, thread_id,
                                      &thread))) {
            return e;
        }
        if (rc->nseg == 3 &&
            strcmp(ac_json_str(thread, "agent") ? ac_json_str(thread, "agent") : "", agent_name) !=
                0) {
            return ac_err_make(p, 422, "agent_mismatch", "That thread belongs to another agent.");
        }
    }
    else {
        if ((e = ac_store_thread_create(rc->conf->store, &rc->cosmos, rc->req->principal, NULL,
                                        NULL, agent_name, &thread))) {
            return e;
        }
        thread_id = ac_json_str(thread, "id");
    }
    if (stream) {
        return ac_stream_turn(rc, thread_id, message, AC_STREAM_CHAT);
    }
    e = ac_chat_turn(rc->conf->chat, &rc->cosmos, rc->req->principal, thread_id, message, NULL,
                     NULL, &out);
    if (e) {
        attach_ids(p, e, &out);
        return e;
    }
    rc->resp->status = 200;
    rc->resp->body = ac_json_own(
        p,
        json_pack("{sssssOsssOsO}", "thread_id", thread_id, "run_id", out.turn.run_id, "message_id",
                  out.assistant ? json_object_get(out.assistant, "id") : json_null(), "response",
                  out.result.content, "usage", json_object_get(out.run, "usage"), "message",
                  out.assistant ? out.assistant : json_null()));
    return NULL;
}

ac_err_t *ac_api_agents_list(route_ctx_t *rc)
{
    apr_pool_t *p = rc->req->pool;
    json_t *data = ac_json_array(p);
    const ac_chat_conf_t *cc = rc->conf->chat;

    for (int i = 0; cc && cc->agents && i < cc->agents->nelts; i++) {
        const ac_agent_t *a = APR_ARRAY_IDX(cc->agents, i, const ac_agent_t *);
        json_t *tools = json_array();
        for (int t = 0; a->tools && t < a->tools->nelts; t++) {
            json_array_append_new(tools,
                                  json_string(APR_ARRAY_IDX(a->tools, t, const ac_tool_t *)->name));
        }
        json_array_append_new(
            data,
            json_pack("{sssssssoso}", "name", a->name, "description",
                      a->description ? a->description : "", "model",
                      a->model ? a->model : ac_model_conf(cc->env.model)->deployment, "tools",
                      tools, "default", json_boolean(strcmp(a->name, cc->default_agent) == 0)));
    }
    rc->resp->status = 200;
    rc->resp->body = ac_json_own(
        p, json_pack("{sssOsbsn}", "object", "list", "data", data, "has_more", 0, "next_cursor"));
    return NULL;
}

ac_err_t *ac_api_agent_threads(route_ctx_t *rc)
{
    ac_page_req_t pr;
    ac_page_t page;
    ac_err_t *e;

    if (!rc->conf->chat || !ac_chat_find_agent(rc->conf->chat, rc->seg[1])) {
        return ac_err_make(rc->req->pool, 404, "agent_not_found", "There is no agent named '%s'.",
                           ac_utf8_truncate(rc->req->pool, rc->seg[1], 64));
    }
    if ((e = ac_api_page_args(rc, 1, &pr))) {
        return e;
    }
    pr.agent = rc->seg[1];
    if ((e = ac_store_thread_list(rc->conf->store, &rc->cosmos, rc->req->principal, &pr, &page))) {
        return e;
    }
    rc->resp->status = 200;
    rc->resp->body = ac_api_list_body(rc->req->pool, &page);
    return NULL;
}

ac_err_t *ac_api_run_events(route_ctx_t *rc)
{
    ac_err_t *e;

    if ((e = ac_api_check_thread_id(rc, rc->seg[1]))) {
        return e;
    }
    if (!ac_id_valid(rc->seg[3], "run")) {
        return ac_err_make(rc->req->pool, 404, "run_not_found", "No run with that id.");
    }
    if (!rc->req->sse) {
        return ac_err_make(rc->req->pool, 406, "streaming_unavailable",
                           "This server cannot stream responses.");
    }
    return ac_stream_run_events(rc, rc->seg[1], rc->seg[3]);
}

/* GET /agent/stream?message=... (EventSource) or POST {"message"}: stateless. */
ac_err_t *ac_api_agent_stream(route_ctx_t *rc)
{
    static const char *const allowed[] = {"message", "stream", NULL};
    apr_pool_t *p = rc->req->pool;
    const char *message;
    json_t *body = NULL, *v;
    ac_err_t *e;

    if ((e = need_chat(rc))) {
        return e;
    }
    if (!strcmp(rc->req->method, "GET")) {
        const char *m = apr_table_get(rc->args, "message");
        if (m && !ac_utf8_valid(m, strlen(m))) {
            return ac_err_make(p, 400, "invalid_utf8", "'message' is not valid UTF-8.");
        }
        v = m ? ac_json_own(p, json_string(m)) : NULL;
    }
    else {
        if ((e = ac_api_read_body(rc, 1, &body)) || (e = ac_api_check_fields(p, body, allowed))) {
            return e;
        }
        v = json_object_get(body, "message");
    }
    if ((e = check_content(rc, v, "message", &message))) {
        return e;
    }
    if (!rc->req->sse) {
        return ac_err_make(p, 406, "streaming_unavailable", "This server cannot stream responses.");
    }
    return ac_stream_stateless(rc, message);
}
