/* ac_cosmos: a small Azure Cosmos DB (NoSQL, REST gateway) client.
 * Signs requests (master key), retries what may be retried (429/449 honouring
 * x-ms-retry-after-ms, 408/503/connection errors with bounded backoff), keeps the
 * session token per container, and adds up request charge per caller context.
 * Every query is parameterised and targets one partition. */
#ifndef AC_COSMOS_H
#define AC_COSMOS_H

#include "ac_http.h"

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>

typedef struct ac_cosmos ac_cosmos_t;

typedef struct {
    const char *endpoint;     /* https://account.documents.azure.com:443 (no trailing slash) */
    const unsigned char *key; /* decoded master key */
    apr_size_t key_len;
    const char *database;
    apr_interval_time_t timeout;      /* per attempt */
    int max_attempts;                 /* including the first, e.g. 5 */
    apr_interval_time_t retry_budget; /* total time spent waiting between attempts */
    apr_size_t max_response;          /* cap on one response body */
} ac_cosmos_conf_t;

/* Per-caller accounting: one per API request. */
typedef struct {
    apr_pool_t *pool;
    double request_charge; /* RU spent, summed over responses */
    int round_trips;       /* HTTP exchanges, retries included */
} ac_cosmos_ctx_t;

typedef struct {
    int status;   /* Cosmos HTTP status (0: none) */
    json_t *body; /* parsed body (NULL when empty or not JSON) */
    const char *etag;
    const char *continuation; /* queries: next page token or NULL */
    int ambiguous;            /* a write whose earlier attempt may have landed */
    const char *error;        /* short reason when the call failed */
} ac_cosmos_res_t;

/* Status classes for callers: a Cosmos failure becomes 502, 503 or 504. */
int ac_cosmos_http_status_for(apr_status_t rv, const ac_cosmos_res_t *res);

apr_status_t ac_cosmos_create(ac_cosmos_t **cosmos, apr_pool_t *p, const ac_cosmos_conf_t *conf,
                              ac_http_pool_t *http);

/* Create the database and a container (partition key path) when missing.
 * indexing_policy may be NULL (the service default). */
apr_status_t ac_cosmos_ensure_database(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx);
apr_status_t ac_cosmos_ensure_container(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                        const char *pk_path, json_t *indexing_policy);

/* Document operations.  Return APR_SUCCESS when Cosmos gave a definite answer
 * (res->status says which: 2xx, 404, 409, 412, 400...); an error status when it
 * could not be reached or kept refusing within the retry budget. */
apr_status_t ac_cosmos_create_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                  const char *pk, json_t *doc, ac_cosmos_res_t *res);
apr_status_t ac_cosmos_upsert_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                  const char *pk, json_t *doc, const char *if_match,
                                  ac_cosmos_res_t *res);
apr_status_t ac_cosmos_read_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                const char *pk, const char *id, ac_cosmos_res_t *res);
apr_status_t ac_cosmos_replace_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                   const char *pk, const char *id, json_t *doc,
                                   const char *if_match, ac_cosmos_res_t *res);
/* ops: a JSON array of {"op":"set"|"incr"|"remove"|"add"|"replace","path":..,"value":..};
 * condition: optional "FROM c WHERE ..." predicate (no parameters allowed by
 * Cosmos here, so only constants the module itself writes). */
apr_status_t ac_cosmos_patch_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                 const char *pk, const char *id, json_t *ops, const char *condition,
                                 const char *if_match, ac_cosmos_res_t *res);
apr_status_t ac_cosmos_delete_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                  const char *pk, const char *id, const char *if_match,
                                  ac_cosmos_res_t *res);

/* One page of a single-partition parameterised query.  params: JSON array of
 * {"name":"@x","value":...}.  res->body is the array of documents. */
apr_status_t ac_cosmos_query(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll, const char *pk,
                             const char *sql, json_t *params, int max_items,
                             const char *continuation, ac_cosmos_res_t *res);

/* Up to `want` documents, following continuation pages (bounded). */
apr_status_t ac_cosmos_query_all(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                 const char *pk, const char *sql, json_t *params, int want,
                                 ac_cosmos_res_t *res);

/* Transactional batch (same partition, at most 100 operations): ops is a JSON
 * array of {"operationType":"Create"|"Upsert"|"Replace"|"Delete"|"Read"|"Patch",
 * "id"?, "resourceBody"?, "ifMatch"?}.  res->body is the per-operation result
 * array; res->status is 200 only when every operation succeeded. */
apr_status_t ac_cosmos_batch(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll, const char *pk,
                             json_t *ops, ac_cosmos_res_t *res);

#endif
