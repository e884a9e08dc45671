/* ac_http: outbound HTTP for the core (Cosmos, model endpoint, tools).
 * The only header the rest of the core needs; ac_http.c is the only file that
 * includes curl.h.  Handles are pooled per process (keep-alive reuse) behind a
 * mutex; a pool created before fork is never used by the child. */
#ifndef AC_HTTP_H
#define AC_HTTP_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef struct ac_http_pool ac_http_pool_t;

typedef struct {
    const char *ca_file; /* NULL: system trust store */
    int verify_tls;      /* 1 by default; 0 only when the admin says so */
    int max_idle;        /* handles kept for reuse (keep-alive), e.g. 16 */
    apr_interval_time_t connect_timeout;
} ac_http_pool_conf_t;

/* Called for each piece of the response body as it arrives (streaming).
 * Return non-zero to abort the transfer (the request then ends APR_ECONNABORTED). */
typedef int ac_http_data_cb(void *baton, const char *data, apr_size_t len);

typedef struct {
    const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;
    apr_table_t *headers; /* request headers, may be NULL */
    const char *body;     /* may be NULL */
    apr_size_t body_len;
    apr_interval_time_t timeout; /* whole transfer; 0 = none */
    apr_size_t max_response;     /* cap on a collected body; over it -> APR_ENOSPC */
    ac_http_data_cb *on_data;    /* when set, a 2xx body is streamed here (others are collected) */
    void *baton;
    /* When set, called about every tick_interval while the transfer runs, also
     * while no byte moves (heartbeats, cancel checks); non-zero aborts the
     * transfer with APR_ECONNABORTED. */
    int (*on_tick)(void *baton);
    apr_interval_time_t tick_interval;
} ac_http_req_t;

typedef struct {
    int status;           /* HTTP status, 0 when no response arrived */
    apr_table_t *headers; /* response headers, names as received (apr tables are case-blind) */
    const char *body;     /* collected body, NUL-terminated (empty when streamed) */
    apr_size_t body_len;
} ac_http_resp_t;

/* Create a pool in p (call in child_init; destroyed with p). */
apr_status_t ac_http_pool_create(ac_http_pool_t **pool, apr_pool_t *p,
                                 const ac_http_pool_conf_t *conf);

/* Perform a request.  Returns APR_SUCCESS when a response (any status) arrived;
 * APR_TIMEUP on timeout, APR_ECONNREFUSED / APR_ECONNRESET / APR_EGENERAL on
 * transport failure, APR_ENOSPC when the body exceeded max_response,
 * APR_ECONNABORTED when on_data asked to stop.  *resp is allocated from p and
 * filled as far as the transfer got.  err (optional) gets a short reason. */
apr_status_t ac_http_perform(ac_http_pool_t *pool, const ac_http_req_t *req, apr_pool_t *p,
                             ac_http_resp_t **resp, const char **err);

/* One-time global init/cleanup (curl_global_init); call from the parent. */
apr_status_t ac_http_global_init(void);

#endif
