/* ac_api_int: what the route files share — the per-request route context and
 * the input helpers.  Not for use outside src/ac_api*.c. */
#ifndef AC_API_INT_H
#define AC_API_INT_H

#include "ac_api.h"

#define MAX_SEGMENTS 8

typedef struct {
    const ac_api_conf_t *conf;
    const ac_api_req_t *req;
    ac_api_resp_t *resp;
    ac_cosmos_ctx_t cosmos;
    const char *seg[MAX_SEGMENTS];
    int nseg;
    apr_table_t *args;
} route_ctx_t;

typedef ac_err_t *route_fn(route_ctx_t *rc);

typedef struct {
    const char *method;
    route_fn *fn;
} route_method_t;

typedef struct {
    const char *pattern; /* "threads/{thread}/messages" */
    route_method_t methods[4];
} route_t;

typedef ac_err_t *route_fn(route_ctx_t *rc);

ac_err_t *ac_api_read_body(route_ctx_t *rc, int required, json_t **out);
ac_err_t *ac_api_check_fields(apr_pool_t *p, json_t *body, const char *const *allowed);
ac_err_t *ac_api_check_thread_id(route_ctx_t *rc, const char *id);
ac_err_t *ac_api_page_args(route_ctx_t *rc, int default_desc, ac_page_req_t *pr);
json_t *ac_api_list_body(apr_pool_t *p, const ac_page_t *page);

/* ac_api_chat.c */
ac_err_t *ac_api_messages_post(route_ctx_t *rc);
ac_err_t *ac_api_run_get(route_ctx_t *rc);
ac_err_t *ac_api_run_cancel(route_ctx_t *rc);
ac_err_t *ac_api_run_events(route_ctx_t *rc);
ac_err_t *ac_api_agent_stream(route_ctx_t *rc);
ac_err_t *ac_api_chat_post(route_ctx_t *rc);
ac_err_t *ac_api_agents_list(route_ctx_t *rc);
ac_err_t *ac_api_agent_threads(route_ctx_t *rc);

#endif
