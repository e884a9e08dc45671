/* ac_model: the chat-completions client (Azure OpenAI or OpenAI-compatible).
 * Always streams upstream (stream: true, include_usage) and interprets the
 * stream with ac_chat_stream; a JSON reply to our client is the same stream
 * collected.  Retries 429/5xx/connection failures while no token has been
 * handed on yet, honouring retry-after-ms / Retry-After, within a budget. */
#ifndef AC_MODEL_H
#define AC_MODEL_H

#include "ac_chat_stream.h"
#include "ac_http.h"

#include <apr_pools.h>
#include <jansson.h>

typedef enum { AC_PROVIDER_AZURE = 0, AC_PROVIDER_OPENAI = 1 } ac_provider_e;

typedef struct {
    ac_provider_e provider;
    const char *endpoint;             /* https://RESOURCE.openai.azure.com or https://host/v1 */
    const char *deployment;           /* Azure deployment; OpenAI: the default model */
    const char *api_version;          /* Azure api-version */
    const char *api_key;              /* never logged */
    apr_interval_time_t timeout;      /* one attempt, whole stream */
    int max_attempts;                 /* before the first token */
    apr_interval_time_t retry_budget; /* total waiting between attempts */
} ac_model_conf_t;

typedef struct ac_model ac_model_t;

typedef struct {
    json_t *messages;   /* [{role, content, ...}] */
    json_t *tools;      /* [{type:function, function:{name, description, parameters}}] or NULL */
    const char *model;  /* deployment/model override, or NULL */
    double temperature; /* < 0: leave to the service */
    /* Called about every 100 ms while waiting on the upstream; non-zero stops
     * the call (error_code "aborted"). */
    int (*on_tick)(void *baton);
    void *tick_baton;
} ac_model_req_t;

typedef struct {
    ac_chat_stream_result_t stream; /* content, tool calls, finish_reason, usage */
    apr_interval_time_t ttft;       /* request start to first token; -1 if none */
    int attempts;
    int http_status; /* last upstream status (0: none) */
    int got_tokens;  /* at least one token was handed on */
    apr_status_t rv;
    const char *error;      /* short, safe for clients */
    const char *error_code; /* model_unavailable, model_timeout, model_error, model_rate_limited,
                               model_auth, model_bad_request, content_filter */
    int retryable;          /* would a later retry by the client likely work */
} ac_model_result_t;

ac_model_t *ac_model_create(apr_pool_t *p, const ac_model_conf_t *conf, ac_http_pool_t *http);
const ac_model_conf_t *ac_model_conf(const ac_model_t *m);

/* The request URL and body as sent (exposed for tests and debug logs). */
const char *ac_model_url(const ac_model_t *m, apr_pool_t *p, const char *model);
json_t *ac_model_body(const ac_model_t *m, apr_pool_t *p, const ac_model_req_t *req);

/* One completion.  cb->on_token sees text as it arrives.  Returns APR_SUCCESS
 * when the stream completed (any finish_reason); otherwise out->error says why. */
apr_status_t ac_model_complete(ac_model_t *m, apr_pool_t *p, const ac_model_req_t *req,
                               const ac_chat_stream_cb_t *cb, void *baton, ac_model_result_t *out);

#endif
