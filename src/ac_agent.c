/* ac_agent: the tool loop of one agent turn (see ac_agent.h). */
#include "ac_agent.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <string.h>

#define HISTORY_TOOL_RESULT_MAX 4096

typedef struct {
    const ac_agent_cb_t *cb;
    void *baton;
    apr_time_t start;
    ac_agent_result_t *out;
} turn_t;

static void append_history(apr_pool_t *p, json_t *msgs, json_t *m)
{
    const char *role = ac_json_str(m, "role"), *content = ac_json_str(m, "content");
    json_t *calls = json_object_get(m, "tool_calls"), *call;
    size_t i;

    if (!role || (strcmp(role, "user") && strcmp(role, "assistant"))) {
        return;
    }
    if (!strcmp(role, "assistant") && json_array_size(calls) > 0) {
        /* Replay the tool exchange so the model sees what it already learned. */
        json_t *tc = json_array();
        json_array_foreach(calls, i, call)
        {
            json_t *args = json_object_get(call, "arguments");
            const char *argtext = json_is_string(args) ? json_string_value(args)
                                                       : ac_json_dump(p, args ? args : json_null());
            json_array_append_new(tc, json_pack("{sssss{ssss}}", "id", ac_json_str(call, "id"),
                                                "type", "function", "function", "name",
                                                ac_json_str(call, "tool"), "arguments", argtext));
        }
        json_array_append_new(
            msgs, json_pack("{sssnso}", "role", "assistant", "content", "tool_calls", tc));
        json_array_foreach(calls, i, call)
        {
            json_t *res = json_object_get(call, "result");
            char *text = ac_json_dump(p, res ? res : json_null());
            if (strlen(text) > HISTORY_TOOL_RESULT_MAX) {
                /* by characters: a cut inside UTF-8 would make the message unsendable */
                text = ac_utf8_truncate(p, text, HISTORY_TOOL_RESULT_MAX / 4);
            }
            json_array_append_new(msgs, json_pack("{ssssss?}", "role", "tool", "tool_call_id",
                                                  ac_json_str(call, "id"), "content", text));
        }
    }
    if (content && *content) {
        json_array_append_new(msgs, json_pack("{ssss}", "role", role, "content", content));
    }
}

json_t *ac_agent_messages(apr_pool_t *p, const ac_agent_t *agent, json_t *history,
                          const char *user_content)
{
    json_t *msgs = ac_json_array(p), *m;
    size_t i;

    if (agent->instructions && *agent->instructions) {
        json_array_append_new(
            msgs, json_pack("{ssss}", "role", "system", "content", agent->instructions));
    }
    json_array_foreach(history, i, m)
    {
        append_history(p, msgs, m);
    }
    json_array_append_new(msgs, json_pack("{ssss}", "role", "user", "content", user_content));
    return msgs;
}

json_t *ac_agent_tools_json(apr_pool_t *p, const ac_agent_t *agent)
{
    json_t *tools = ac_json_array(p);

    for (int i = 0; agent->tools && i < agent->tools->nelts; i++) {
        const ac_tool_t *t = APR_ARRAY_IDX(agent->tools, i, const ac_tool_t *);
        json_t *params = json_loads(t->parameters_json, 0, NULL);
        if (!params) {
            ac_log(AC_LOG_ERR, 0, "tool '%s' has an invalid parameter schema; not offered",
                   t->name);
            continue;
        }
        json_array_append_new(tools, json_pack("{sss{sssssO}}", "type", "function", "function",
                                               "name", t->name, "description",
                                               t->description ? t->description : "", "parameters",
                                               params));
        json_decref(params);
    }
    return tools;
}

static const ac_tool_t *find_tool(const ac_agent_t *agent, const char *name)
{
    for (int i = 0; agent->tools && i < agent->tools->nelts; i++) {
        const ac_tool_t *t = APR_ARRAY_IDX(agent->tools, i, const ac_tool_t *);
        if (name && strcmp(t->name, name) == 0) {
            return t;
        }
    }
    return NULL;
}

static void run_tool(const ac_agent_env_t *env, const ac_agent_t *agent, apr_pool_t *p,
                     ac_step_t *step)
{
    const ac_tool_t *tool = find_tool(agent, step->tool);
    ac_tool_ctx_t ctx = {p, env->tool_timeout, env->http};
    json_t *args, *result = NULL;
    const char *err = NULL;
    apr_status_t rv;

    step->started_at = apr_time_now();
    if (!tool) {
        err = apr_psprintf(p, "unknown tool '%s'", step->tool ? step->tool : "");
    }
    else if (!(args = ac_json_parse(p, step->arguments, strlen(step->arguments), NULL)) ||
             !json_is_object(args)) {
        err = "the arguments are not a JSON object";
    }
    else if ((rv = tool->call(tool, &ctx, args, &result, &err)) != APR_SUCCESS || !result) {
        err = err ? err : "the tool failed";
        ac_log(AC_LOG_INFO, rv, "tool %s failed: %s", step->tool, err);
    }
    step->duration = apr_time_now() - step->started_at;
    if (err) {
        step->status = "failed";
        step->error = err;
        step->result = ac_json_own(p, json_pack("{ss}", "error", err));
    }
    else {
        step->status = "completed";
        step->result = result;
    }
}

/* The calls of one round are independent: run them on threads of their own,
 * each with a private pool (APR pools are not shared across threads), then
 * copy the results into p on this thread. */
typedef struct {
    const ac_agent_env_t *env;
    const ac_agent_t *agent;
    ac_step_t *step;
    apr_pool_t *pool;
    apr_thread_t *thread;
} tool_job_t;

static void *APR_THREAD_FUNC tool_thread(apr_thread_t *thd, void *data)
{
    tool_job_t *job = data;
    run_tool(job->env, job->agent, job->pool, job->step);
    apr_thread_exit(thd, APR_SUCCESS);
    return NULL;
}

static void run_tools(const ac_agent_env_t *env, const ac_agent_t *agent, apr_pool_t *p,
                      ac_step_t *steps, int n)
{
    tool_job_t *jobs = apr_pcalloc(p, sizeof(*jobs) * (apr_size_t)n);
    apr_status_t trv;

    for (int i = 0; i < n; i++) {
        apr_allocator_t *alloc = NULL;
        jobs[i].env = env;
        jobs[i].agent = agent;
        jobs[i].step = &steps[i];
        if (n == 1 || apr_allocator_create(&alloc) != APR_SUCCESS ||
            apr_pool_create_unmanaged_ex(&jobs[i].pool, NULL, alloc) != APR_SUCCESS) {
            if (alloc) {
                apr_allocator_destroy(alloc);
            }
            jobs[i].pool = NULL;
            run_tool(env, agent, p, &steps[i]); /* alone, or no memory for a thread */
            continue;
        }
        apr_allocator_owner_set(alloc, jobs[i].pool);
        /* The thread's own pool must not be a child of p: the thread destroys it
         * on exit while this thread may be allocating from p. */
        if (apr_thread_create(&jobs[i].thread, NULL, tool_thread, &jobs[i], jobs[i].pool) !=
            APR_SUCCESS) {
            jobs[i].thread = NULL;
            run_tool(env, agent, jobs[i].pool, &steps[i]);
        }
    }
    for (int i = 0; i < n; i++) {
        ac_step_t *st = &steps[i];
        if (!jobs[i].pool) {
            continue;
        }
        if (jobs[i].thread) {
            apr_thread_join(&trv, jobs[i].thread);
        }
        st->result = ac_json_own(p, json_deep_copy(st->result));
        st->error = st->error ? apr_pstrdup(p, st->error) : NULL;
        apr_pool_destroy(jobs[i].pool);
    }
}

static int on_token(void *baton, const char *text, apr_size_t len)
{
    turn_t *t = baton;
    if (t->out->ttft < 0) {
        t->out->ttft = apr_time_now() - t->start;
    }
    return t->cb && t->cb->on_token ? t->cb->on_token(t->baton, text, len) : 0;
}

static void add_usage(json_int_t *sum, json_int_t v)
{
    if (v >= 0) {
        *sum = (*sum < 0 ? 0 : *sum) + v;
    }
}

static void fail_from_model(ac_agent_result_t *out, const ac_model_result_t *mr)
{
    if (mr->error_code && !strcmp(mr->error_code, "aborted")) {
        out->status = "cancelled";
        out->finish_reason = "cancelled";
        return;
    }
    out->status = "failed";
    out->error_code = mr->error_code ? mr->error_code : "model_error";
    out->error = mr->error ? mr->error : "The model call failed.";
    out->retryable = mr->retryable;
    out->http_status = !strcmp(out->error_code, "model_timeout")        ? 504
                       : !strcmp(out->error_code, "model_rate_limited") ? 503
                                                                        : 502;
}

apr_status_t ac_agent_run(const ac_agent_env_t *env, const ac_agent_t *agent, json_t *messages,
                          const ac_agent_cb_t *cb, void *baton, apr_pool_t *p,
                          ac_agent_result_t *out)
{
    json_t *tools = ac_agent_tools_json(p, agent);
    ac_chat_stream_cb_t scb = {on_token};
    turn_t t = {cb, baton, apr_time_now(), out};
    const char *content = "";
    int max_rounds = env->max_rounds >= 0 ? env->max_rounds : 5; /* 0: never offer tools */

    memset(out, 0, sizeof(*out));
    out->steps = apr_array_make(p, 4, sizeof(ac_step_t));
    out->prompt_tokens = out->completion_tokens = out->total_tokens = -1;
    out->ttft = -1;
    out->status = "completed";

    for (int round = 1; round <= max_rounds + 1; round++) {
        ac_model_req_t req = {messages,
                              round <= max_rounds ? tools : NULL,
                              agent->model,
                              agent->temperature,
                              cb ? cb->on_tick : NULL,
                              baton};
        ac_model_result_t mr;
        json_t *calls;
        apr_status_t rv;

        out->rounds = round;
        rv = ac_model_complete(env->model, p, &req, &scb, &t, &mr);
        add_usage(&out->prompt_tokens, mr.stream.prompt_tokens);
        add_usage(&out->completion_tokens, mr.stream.completion_tokens);
        add_usage(&out->total_tokens, mr.stream.total_tokens);
        if (mr.stream.model) {
            out->model = mr.stream.model;
        }
        content = apr_pstrcat(p, content, mr.stream.content ? mr.stream.content : "", NULL);
        if (rv != APR_SUCCESS) {
            fail_from_model(out, &mr);
            break;
        }
        if (cb && cb->on_tick && cb->on_tick(baton)) {
            /* cancelled as the stream ended: keep what arrived */
            out->status = "cancelled";
            out->finish_reason = "cancelled";
            break;
        }
        out->finish_reason = mr.stream.finish_reason ? mr.stream.finish_reason : "stop";
        if (mr.stream.n_tool_calls == 0) {
            if (!strcmp(out->finish_reason, "length") ||
                !strcmp(out->finish_reason, "content_filter")) {
                out->status = "incomplete";
            }
            break;
        }
        if (round > max_rounds) {
            /* Tools were not offered this time, yet the model asked again. */
            out->status = "incomplete";
            out->finish_reason = "max_tool_rounds";
            break;
        }
        /* The assistant's request, then each tool's result, go back to the model. */
        calls = json_array();
        for (int i = 0; i < mr.stream.n_tool_calls; i++) {
            const ac_chat_tool_call_t *c = &mr.stream.tool_calls[i];
            json_array_append_new(calls, json_pack("{sssss{ssss}}", "id", c->id, "type", "function",
                                                   "function", "name", c->name, "arguments",
                                                   c->arguments));
        }
        json_array_append_new(messages, json_pack("{ssss?so}", "role", "assistant", "content",
                                                  mr.stream.content_len ? mr.stream.content : NULL,
                                                  "tool_calls", calls));
        if (cb && cb->on_tick && cb->on_tick(baton)) {
            out->status = "cancelled";
            out->finish_reason = "cancelled";
            break;
        }
        {
            int first = out->steps->nelts, n = mr.stream.n_tool_calls;
            ac_step_t *steps;
            for (int i = 0; i < n; i++) {
                const ac_chat_tool_call_t *c = &mr.stream.tool_calls[i];
                ac_step_t *step = apr_array_push(out->steps);
                memset(step, 0, sizeof(*step));
                step->id = apr_pstrdup(p, c->id);
                step->tool = apr_pstrdup(p, c->name);
                step->arguments = apr_pstrdup(p, c->arguments);
                step->round = round;
            }
            steps = &APR_ARRAY_IDX(out->steps, first, ac_step_t);
            for (int i = 0; cb && cb->on_tool_start && i < n; i++) {
                cb->on_tool_start(baton, &steps[i]);
            }
            run_tools(env, agent, p, steps, n);
            for (int i = 0; i < n; i++) {
                if (cb && cb->on_tool_end) {
                    cb->on_tool_end(baton, &steps[i]);
                }
                json_array_append_new(messages, json_pack("{ssssss?}", "role", "tool",
                                                          "tool_call_id", steps[i].id, "content",
                                                          ac_json_dump(p, steps[i].result)));
            }
        }
        if (!strcmp(out->status, "cancelled")) {
            break;
        }
        if (round == max_rounds) {
            ac_log(AC_LOG_INFO, 0, "agent %s reached %d tool rounds; asking for a final answer",
                   agent->name, max_rounds);
        }
    }
    out->content = content;
    out->duration = apr_time_now() - t.start;
    return strcmp(out->status, "failed") == 0 ? APR_EGENERAL : APR_SUCCESS;
}
