/* mod_agentchat_tool.h: the function-tool interface the agent offers to the model.
 * Built-in tools (src/tools/), HTTP tools from the config and tools that other
 * httpd modules register all look alike: a name, a description, a JSON-schema
 * for the arguments and a call that turns arguments into a JSON result.
 * Public: outside modules include it through mod_agentchat.h, the core through
 * src/ac_tool.h.  It needs only APR and jansson headers. */
#ifndef MOD_AGENTCHAT_TOOL_H
#define MOD_AGENTCHAT_TOOL_H

#include <apr_pools.h>
#include <apr_time.h>
#include <jansson.h>

/* Bumped when ac_tool_t or ac_tool_ctx_t change layout. */
#define AC_TOOL_INTERFACE_VERSION 1

typedef struct ac_tool ac_tool_t;

typedef struct {
    apr_pool_t *pool;            /* per-call pool; results may live here */
    apr_interval_time_t timeout; /* budget for this call */
    void *http;                  /* ac_http_pool_t * for tools that go out on the network */
} ac_tool_ctx_t;

/* Run the tool.  On success set *result (a reference released when ctx->pool
 * is cleared: the core uses ac_json_own, outside modules register a pool
 * cleanup that calls json_decref) and return APR_SUCCESS.  On failure return
 * an error status and set *error to a short message meant for the model (no
 * secrets, no internals).  Calls come from many threads at once. */
typedef apr_status_t ac_tool_call_fn(const ac_tool_t *tool, ac_tool_ctx_t *ctx, json_t *args,
                                     json_t **result, const char **error);

struct ac_tool {
    const char *name; /* ^[a-zA-Z0-9_-]{1,64}$ */
    const char *description;
    const char *parameters_json; /* JSON schema text of the arguments object */
    ac_tool_call_fn *call;
    void *baton; /* tool-specific state (index, endpoints, ...) */
};

#endif
