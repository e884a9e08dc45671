/* ac_api: the HTTP API's routes, independent of httpd.
 * The glue turns a request_rec into an ac_api_req_t and writes back the
 * ac_api_resp_t; everything about paths, methods, validation and JSON shapes
 * lives here, so it can be tested without a server. */
#ifndef AC_API_H
#define AC_API_H

#include "ac_err.h"
#include "ac_chat.h"
#include "ac_store.h"

#include <apr_tables.h>
#include <jansson.h>

/* How a route streams Server-Sent Events through the host (httpd glue). */
typedef struct {
    /* Send the status line and headers (text/event-stream, no caching, no
     * compression).  Nothing may be sent after a failure. */
    apr_status_t (*start)(void *baton);
    /* Write one event and flush it to the client at once. data is one line of JSON. */
    apr_status_t (*event)(void *baton, const char *id, const char *name, const char *data,
                          apr_size_t len);
    /* Write a comment line (": ...") and flush: keeps proxies from timing out. */
    apr_status_t (*comment)(void *baton, const char *text);
    int (*client_gone)(void *baton);
    void *baton;
} ac_sse_writer_t;

typedef struct {
    ac_store_t *store;
    const ac_chat_conf_t *chat;    /* NULL: chat routes answer 503 */
    apr_interval_time_t heartbeat; /* SSE heartbeat after this much silence */
    int disconnect_abort;          /* stop generating when a streaming client leaves */
    apr_size_t max_body;           /* request body cap (413 above) */
    int max_title_chars;           /* thread title */
    int max_metadata_keys;
    int max_metadata_key_chars;
    int max_metadata_value_chars;
    const char *default_agent;
    /* Is this an agent the server knows?  NULL: any well-formed name. */
    int (*agent_known)(void *baton, const char *name);
    void *agent_baton;
} ac_api_conf_t;

typedef struct {
    apr_pool_t *pool;
    const char *method;
    const char *path;         /* below the mount point, already percent-decoded once */
    const char *args;         /* raw query string or NULL */
    const char *content_type; /* request Content-Type or NULL */
    const char *body;         /* NULL when none */
    apr_size_t body_len;
    const char *principal;
    const char *request_id;
    const char *accept;         /* Accept header or NULL */
    const char *last_event_id;  /* Last-Event-ID header or NULL */
    const ac_sse_writer_t *sse; /* NULL when the host cannot stream */
} ac_api_req_t;

typedef struct {
    int status;
    json_t *body;         /* NULL: no body (204) */
    apr_table_t *headers; /* extra headers: Allow, Retry-After, Location */
    int streamed;         /* the route already wrote the whole response as SSE */
    double request_charge;
    int round_trips;
} ac_api_resp_t;

void ac_api_conf_defaults(ac_api_conf_t *conf);

/* Handle one request; always fills resp (errors included). */
void ac_api_handle(const ac_api_conf_t *conf, const ac_api_req_t *req, ac_api_resp_t *resp);

/* Fill resp with the JSON error for e (also used by the glue for errors it
 * detects itself: auth, body size). */
void ac_api_set_error(apr_pool_t *p, ac_api_resp_t *resp, const ac_err_t *e,
                      const char *request_id);

/* Does path ("/threads/...") start with one of the API's route roots? */
int ac_api_is_route_root(const char *path);

/* Parse a query string into a table (URL-decoded); NULL on malformed escapes. */
apr_table_t *ac_api_parse_args(apr_pool_t *p, const char *args);

#endif
