/* ac_store: threads and messages as documents in Cosmos DB.
 *   threads  (partition key /user_id):   one document per thread
 *   messages (partition key /thread_id): messages ("type":"message") and runs
 *                                        ("type":"run"), ordered by a per-thread seq
 * Every function takes the caller's principal: a thread of another principal is
 * in another partition and is simply not found. */
#ifndef AC_STORE_H
#define AC_STORE_H

#include "ac_cosmos.h"
#include "ac_err.h"

#include <jansson.h>

#define AC_COLL_THREADS "threads"
#define AC_COLL_MESSAGES "messages"

typedef struct ac_store ac_store_t;

typedef struct {
    int limit;          /* 1..100 */
    const char *cursor; /* opaque, from a previous page; NULL for the first */
    int descending;     /* order */
    const char *agent;  /* threads: only this agent's, or NULL */
} ac_page_req_t;

typedef struct {
    json_t *data; /* array of API-shaped objects */
    int has_more;
    const char *next_cursor;
} ac_page_t;

ac_store_t *ac_store_create(apr_pool_t *p, ac_cosmos_t *cosmos);
ac_cosmos_t *ac_store_cosmos(ac_store_t *st);
/* Age after which a run's lock on its thread no longer counts (AgentChatRunTimeout). */
void ac_store_set_stale_after(ac_store_t *st, apr_interval_time_t t);

/* Create the database and containers when missing (idempotent). */
apr_status_t ac_store_ensure_schema(ac_store_t *st, ac_cosmos_ctx_t *ctx);

/* Threads.  *thread receives the API shape. */
ac_err_t *ac_store_thread_create(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                                 const char *title, json_t *metadata, const char *agent,
                                 json_t **thread);
/* The stored document (with user_id, _etag...); use ac_store_thread_view for clients. */
ac_err_t *ac_store_thread_read(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                               const char *id, json_t **doc);
json_t *ac_store_thread_view(apr_pool_t *p, const json_t *doc);
/* title: NULL = unchanged; metadata: NULL = unchanged (else replaces the map). */
ac_err_t *ac_store_thread_update(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                                 const char *id, const char *title, json_t *metadata,
                                 json_t **thread);
ac_err_t *ac_store_thread_delete(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                                 const char *id);
ac_err_t *ac_store_thread_list(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                               const ac_page_req_t *req, ac_page_t *page);

/* Messages of a thread the principal owns, in exact seq order. */
ac_err_t *ac_store_message_list(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                                const char *thread_id, const ac_page_req_t *req, ac_page_t *page);
json_t *ac_store_message_view(apr_pool_t *p, const json_t *doc);

/* Map a failed Cosmos call to the error the client sees. */
ac_err_t *ac_store_cosmos_err(apr_pool_t *p, apr_status_t rv, const ac_cosmos_res_t *res,
                              const char *what);

/* ---- runs (ac_store_run.c) ------------------------------------------------------ */

/* What a turn reserved when it began. */
typedef struct {
    const char *thread_id;
    const char *run_id;
    const char *agent;
    json_int_t user_seq;  /* the user message's seq; the answer gets user_seq + 1 */
    json_t *user_message; /* stored document */
    json_t *run;          /* stored document (in_progress) */
    json_t *thread;       /* the thread document as read before the turn */
} ac_turn_t;

/* Lock the thread for a run (409 when another run is active and not stale),
 * reserve two seq numbers, then store the user message and the in-progress
 * run together.  Once this returns NULL the user's message is stored. */
ac_err_t *ac_store_turn_begin(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                              const char *thread_id, const char *content, const char *model,
                              apr_interval_time_t stale_after, ac_turn_t *turn);

/* The last n messages before seq, oldest first (API shape, tool calls kept). */
ac_err_t *ac_store_history(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *thread_id,
                           json_int_t before_seq, int n, json_t **messages);

/* Store the answer (assistant may be NULL when there is none) and the final
 * run together, then release the thread.  Writes are retried; a failure is
 * logged and returned. */
ac_err_t *ac_store_turn_finish(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                               const ac_turn_t *turn, json_t *assistant, json_t *run);

/* A run of a thread the principal owns (API shape). */
ac_err_t *ac_store_run_read(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                            const char *thread_id, const char *run_id, json_t **run);
json_t *ac_store_run_view(apr_pool_t *p, const json_t *doc);

#endif
