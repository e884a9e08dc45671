/* ac_agent: one agent turn — the model decides which tools to call, the tools
 * run, their results go back to the model, until it answers or the round
 * limit is reached.  No storage here: the caller persists what comes out. */
#ifndef AC_AGENT_H
#define AC_AGENT_H

#include "ac_model.h"
#include "ac_tool.h"

#include <apr_tables.h>
#include <jansson.h>

typedef struct {
    const char *name;
    const char *description;
    const char *instructions;  /* system message */
    const char *model;         /* deployment/model override, or NULL */
    double temperature;        /* < 0: service default */
    apr_array_header_t *tools; /* const ac_tool_t * */
} ac_agent_t;

typedef struct {
    ac_model_t *model;
    void *http;                       /* ac_http_pool_t * for tools */
    int max_rounds;                   /* model calls that may request tools */
    apr_interval_time_t tool_timeout; /* per tool call */
} ac_agent_env_t;

/* One tool call of the turn. */
typedef struct {
    const char *id; /* the model's tool_call id */
    const char *tool;
    const char *arguments; /* as the model wrote them (JSON text) */
    json_t *result;        /* tool output (or {"error": ...}) */
    const char *status;    /* "completed" | "failed" */
    const char *error;
    apr_time_t started_at;
    apr_interval_time_t duration;
    int round;
} ac_step_t;

typedef struct {
    /* Answer text; return non-zero to stop the turn (client gone, cancelled). */
    int (*on_token)(void *baton, const char *text, apr_size_t len);
    void (*on_tool_start)(void *baton, const ac_step_t *step);
    void (*on_tool_end)(void *baton, const ac_step_t *step);
    /* Periodic while waiting (model calls) and between tool calls; non-zero
     * stops the turn as cancelled. */
    int (*on_tick)(void *baton);
} ac_agent_cb_t;

typedef struct {
    const char *content;       /* final answer text ("" when none) */
    apr_array_header_t *steps; /* ac_step_t */
    json_int_t prompt_tokens;  /* summed over model calls; -1 when upstream gave none */
    json_int_t completion_tokens;
    json_int_t total_tokens;
    const char *finish_reason; /* last call's, or "max_tool_rounds", "cancelled" */
    const char *status;        /* "completed" | "incomplete" | "failed" | "cancelled" */
    const char *model;         /* as the upstream reported it */
    apr_interval_time_t ttft;  /* turn start to first answer token; -1 if none */
    apr_interval_time_t duration;
    int rounds;
    const char *error_code; /* when failed */
    const char *error;
    int retryable;
    int http_status; /* what the client should see for a failure */
} ac_agent_result_t;

/* The system + history + user messages for the model.  history: API-shaped
 * messages, oldest first (assistant ones may carry tool_calls). */
json_t *ac_agent_messages(apr_pool_t *p, const ac_agent_t *agent, json_t *history,
                          const char *user_content);

/* The agent's tools in the chat-completions "tools" shape. */
json_t *ac_agent_tools_json(apr_pool_t *p, const ac_agent_t *agent);

apr_status_t ac_agent_run(const ac_agent_env_t *env, const ac_agent_t *agent, json_t *messages,
                          const ac_agent_cb_t *cb, void *baton, apr_pool_t *p,
                          ac_agent_result_t *out);

#endif
