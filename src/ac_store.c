/* ac_store: threads and messages persisted in Cosmos DB (see ac_store.h). */
#include "ac_store.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <string.h>

struct ac_store {
    ac_cosmos_t *cosmos;
    apr_interval_time_t stale_after; /* a run lock older than this no longer counts */
};

ac_store_t *ac_store_create(apr_pool_t *p, ac_cosmos_t *cosmos)
{
    ac_store_t *st = apr_pcalloc(p, sizeof(*st));
    st->cosmos = cosmos;
    st->stale_after = apr_time_from_sec(600);
    return st;
}

void ac_store_set_stale_after(ac_store_t *st, apr_interval_time_t t)
{
    st->stale_after = t;
}

ac_cosmos_t *ac_store_cosmos(ac_store_t *st)
{
    return st->cosmos;
}

apr_status_t ac_store_ensure_schema(ac_store_t *st, ac_cosmos_ctx_t *ctx)
{
    apr_status_t rv;
    /* Listing a user's threads orders by (updated_at, id): Azure needs a
     * composite index for a two-property ORDER BY. */
    json_t *thread_idx = ac_json_own(
        ctx->pool, json_pack("{ss sb s[{ss}] s[[{ssss}{ssss}][{ssss}{ssss}]]}", "indexingMode",
                             "consistent", "automatic", 1, "includedPaths", "path", "/*",
                             "compositeIndexes", "path", "/updated_at", "order", "descending",
                             "path", "/id", "order", "descending", "path", "/updated_at", "order",
                             "ascending", "path", "/id", "order", "ascending"));

    if ((rv = ac_cosmos_ensure_database(st->cosmos, ctx)) != APR_SUCCESS ||
        (rv = ac_cosmos_ensure_container(st->cosmos, ctx, AC_COLL_THREADS, "/user_id",
                                         thread_idx)) != APR_SUCCESS ||
        (rv = ac_cosmos_ensure_container(st->cosmos, ctx, AC_COLL_MESSAGES, "/thread_id", NULL)) !=
            APR_SUCCESS) {
        return rv;
    }
    return APR_SUCCESS;
}

ac_err_t *ac_store_cosmos_err(apr_pool_t *p, apr_status_t rv, const ac_cosmos_res_t *res,
                              const char *what)
{
    int status = ac_cosmos_http_status_for(rv, res);
    ac_err_t *e;

    ac_log(AC_LOG_ERR, rv, "storage failure while %s: %s", what,
           res && res->error ? res->error : "no answer");
    if (status == 504) {
        return ac_err_make(p, 504, "storage_timeout",
                           "The storage service did not answer in time "
                           "while %s.",
                           what);
    }
    if (status == 503) {
        e = ac_err_make(p, 503, "storage_unavailable",
                        "The storage service is unavailable or busy while %s; try again.", what);
        e->retry_after = 2;
        return e;
    }
    return ac_err_make(p, 502, "storage_error", "The storage service failed while %s.", what);
}

static const char *const thread_fields[] = {"id",         "object",        "title",
                                            "agent",      "metadata",      "created_at",
                                            "updated_at", "message_count", "last_message_preview",
                                            NULL};

static const char *const message_fields[] = {"id",      "object",     "thread_id",     "role",
                                             "content", "created_at", "run_id",        "tool_calls",
                                             "usage",   "status",     "finish_reason", NULL};

static json_t *view(apr_pool_t *p, const json_t *doc, const char *const *fields)
{
    json_t *out = ac_json_object(p);
    for (int i = 0; fields[i]; i++) {
        json_t *v = json_object_get(doc, fields[i]);
        if (v) {
            json_object_set(out, fields[i], v);
        }
    }
    return out;
}

json_t *ac_store_thread_view(apr_pool_t *p, const json_t *doc)
{
    return view(p, doc, thread_fields);
}

json_t *ac_store_message_view(apr_pool_t *p, const json_t *doc)
{
    return view(p, doc, message_fields);
}

ac_err_t *ac_store_thread_create(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                                 const char *title, json_t *metadata, const char *agent,
                                 json_t **thread)
{
    apr_pool_t *p = ctx->pool;
    const char *now = ac_time_rfc3339(p, apr_time_now());
    json_t *doc = ac_json_object(p);
    ac_cosmos_res_t res;
    apr_status_t rv;

    ac_json_set_str(doc, "id", ac_id_new(p, "thread"));
    ac_json_set_str(doc, "user_id", principal);
    ac_json_set_str(doc, "type", "thread");
    ac_json_set_str(doc, "object", "thread");
    ac_json_set_str(doc, "title", title);
    ac_json_set_str(doc, "agent", agent);
    json_object_set(doc, "metadata", metadata ? metadata : ac_json_object(p));
    ac_json_set_str(doc, "created_at", now);
    ac_json_set_str(doc, "updated_at", now);
    ac_json_set_int(doc, "message_count", 0);
    ac_json_set_str(doc, "last_message_preview", NULL);
    ac_json_set_int(doc, "last_seq", 0);
    ac_json_set_str(doc, "active_run_id", NULL);

    rv = ac_cosmos_create_doc(st->cosmos, ctx, AC_COLL_THREADS, principal, doc, &res);
    if (rv != APR_SUCCESS || (res.status != 201 && !res.ambiguous)) {
        return ac_store_cosmos_err(p, rv, &res, "creating the thread");
    }
    *thread = ac_store_thread_view(p, doc);
    return NULL;
}

ac_err_t *ac_store_thread_read(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                               const char *id, json_t **doc)
{
    apr_pool_t *p = ctx->pool;
    ac_cosmos_res_t res;
    apr_status_t rv;

    rv = ac_cosmos_read_doc(st->cosmos, ctx, AC_COLL_THREADS, principal, id, &res);
    if (rv == APR_SUCCESS && res.status == 404) {
        return ac_err_make(p, 404, "thread_not_found", "No thread with id '%s'.", id);
    }
    if (rv != APR_SUCCESS || res.status != 200 || !json_is_object(res.body)) {
        return ac_store_cosmos_err(p, rv, &res, "reading the thread");
    }
    /* Belt and braces: the partition key already isolates principals. */
    if (!ac_json_str(res.body, "user_id") ||
        strcmp(ac_json_str(res.body, "user_id"), principal) != 0 ||
        ac_json_bool(res.body, "deleting", 0)) {
        return ac_err_make(p, 404, "thread_not_found", "No thread with id '%s'.", id);
    }
    *doc = res.body;
    return NULL;
}

ac_err_t *ac_store_thread_update(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                                 const char *id, const char *title, json_t *metadata,
                                 json_t **thread)
{
    apr_pool_t *p = ctx->pool;
    json_t *ops = ac_json_array(p);
    ac_cosmos_res_t res;
    apr_status_t rv;

    /* A patch is one atomic round trip: no read-modify-write race with a run
     * that bumps message_count at the same time. */
    if (title) {
        json_array_append_new(ops,
                              json_pack("{ssssss}", "op", "set", "path", "/title", "value", title));
    }
    if (metadata) {
        json_array_append_new(
            ops, json_pack("{sssssO}", "op", "set", "path", "/metadata", "value", metadata));
    }
    json_array_append_new(ops, json_pack("{ssssss}", "op", "set", "path", "/updated_at", "value",
                                         ac_time_rfc3339(p, apr_time_now())));
    rv = ac_cosmos_patch_doc(st->cosmos, ctx, AC_COLL_THREADS, principal, id, ops,
                             "FROM c WHERE NOT IS_DEFINED(c.deleting)", NULL, &res);
    if (rv == APR_SUCCESS && (res.status == 404 || res.status == 412)) {
        return ac_err_make(p, 404, "thread_not_found", "No thread with id '%s'.", id);
    }
    if (rv != APR_SUCCESS || res.status != 200 || !json_is_object(res.body)) {
        return ac_store_cosmos_err(p, rv, &res, "updating the thread");
    }
    *thread = ac_store_thread_view(p, res.body);
    return NULL;
}

/* Delete every document of a thread's partition in batches of up to 100. */
static ac_err_t *delete_partition(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *thread_id)
{
    apr_pool_t *p = ctx->pool;
    json_t *params = ac_json_own(p, json_pack("[{ssss}]", "name", "@t", "value", thread_id));
    ac_cosmos_res_t res;
    apr_status_t rv;

    /* Bounded: 2,000 rounds of 100 documents is far beyond any thread limit. */
    for (int round = 0; round < 2000; round++) {
        json_t *ops, *doc;
        size_t i;

        rv = ac_cosmos_query(st->cosmos, ctx, AC_COLL_MESSAGES, thread_id,
                             "SELECT c.id FROM c WHERE c.thread_id = @t", params, 100, NULL, &res);
        if (rv != APR_SUCCESS || res.status != 200) {
            return ac_store_cosmos_err(p, rv, &res, "listing the thread's messages for deletion");
        }
        if (json_array_size(res.body) == 0) {
            return NULL;
        }
        ops = ac_json_array(p);
        json_array_foreach(res.body, i, doc)
        {
            json_array_append_new(
                ops, json_pack("{ssss}", "operationType", "Delete", "id", ac_json_str(doc, "id")));
        }
        rv = ac_cosmos_batch(st->cosmos, ctx, AC_COLL_MESSAGES, thread_id, ops, &res);
        if (rv == APR_SUCCESS && res.status == 200) {
            /* A short page was the last one: the thread is marked deleting,
             * so nothing new can arrive in its partition. */
            if (json_array_size(ops) < 100) {
                return NULL;
            }
            continue;
        }
        /* A document deleted concurrently makes the whole batch fail (404):
         * fall back to single deletes where 404 counts as done. */
        json_array_foreach(ops, i, doc)
        {
            rv = ac_cosmos_delete_doc(st->cosmos, ctx, AC_COLL_MESSAGES, thread_id,
                                      ac_json_str(doc, "id"), NULL, &res);
            if (rv != APR_SUCCESS || (res.status != 204 && res.status != 404)) {
                return ac_store_cosmos_err(p, rv, &res, "deleting the thread's messages");
            }
        }
    }
    return ac_err_make(p, 500, "delete_incomplete",
                       "The thread has too many documents to delete "
                       "in one request; repeat the request.");
}

ac_err_t *ac_store_thread_delete(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                                 const char *id)
{
    apr_pool_t *p = ctx->pool;
    json_t *ops = ac_json_own(
        p, json_pack("[{ssssso}]", "op", "set", "path", "/deleting", "value", json_true()));
    ac_cosmos_res_t res;
    apr_status_t rv;
    ac_err_t *e;

    /* A run still writing to the thread would recreate documents after we
     * removed them: refuse while one is live (a stale lock does not count). */
    rv = ac_cosmos_read_doc(st->cosmos, ctx, AC_COLL_THREADS, principal, id, &res);
    if (rv == APR_SUCCESS && res.status == 200 && ac_json_str(res.body, "active_run_id")) {
        const char *since = ac_json_str(res.body, "active_run_started_at");
        apr_time_t t = since ? ac_time_parse_rfc3339(since) : 0;
        if (!t || apr_time_now() - t < st->stale_after) {
            return ac_err_make(p, 409, "run_active",
                               "A run is in progress on this thread; cancel it or wait, then "
                               "delete.");
        }
    }
    /* Mark first: the thread disappears for readers at once, and if removing
     * its messages fails half-way, repeating the DELETE finishes the job. */
    rv =
        ac_cosmos_patch_doc(st->cosmos, ctx, AC_COLL_THREADS, principal, id, ops, NULL, NULL, &res);
    if (rv == APR_SUCCESS && res.status == 404) {
        return ac_err_make(p, 404, "thread_not_found", "No thread with id '%s'.", id);
    }
    if (rv != APR_SUCCESS || res.status != 200) {
        return ac_store_cosmos_err(p, rv, &res, "deleting the thread");
    }
    if ((e = delete_partition(st, ctx, id))) {
        return e;
    }
    rv = ac_cosmos_delete_doc(st->cosmos, ctx, AC_COLL_THREADS, principal, id, NULL, &res);
    if (rv != APR_SUCCESS || (res.status != 204 && res.status != 404)) {
        return ac_store_cosmos_err(p, rv, &res, "deleting the thread");
    }
    return NULL;
}

/* Cursors are base64url(JSON) of the last item's sort key, so a page boundary
 * is exact whatever the storage's own continuation tokens look like. */
static const char *cursor_make(apr_pool_t *p, json_t *key)
{
    apr_size_t n;
    const char *s = ac_json_dumpn(p, key, &n);
    return ac_base64url_encode(p, (const unsigned char *)s, n);
}

static json_t *cursor_parse(apr_pool_t *p, const char *cursor)
{
    apr_size_t n;
    unsigned char *raw;

    if (strlen(cursor) > 1024 || !(raw = ac_base64url_decode(p, cursor, &n))) {
        return NULL;
    }
    return ac_json_parse(p, (const char *)raw, n, NULL);
}

static ac_err_t *bad_cursor(apr_pool_t *p)
{
    return ac_err_make(p, 400, "invalid_cursor",
                       "The cursor is not one this API returned (or it belongs to another listing "
                       "or order).");
}

static void page_finish(apr_pool_t *p, json_t *docs, int limit, ac_page_t *page,
                        json_t *(*viewfn)(apr_pool_t *, const json_t *),
                        json_t *(*keyfn)(apr_pool_t *, const json_t *, int), int desc)
{
    size_t i;
    json_t *doc;

    page->data = ac_json_array(p);
    page->has_more = (int)json_array_size(docs) > limit;
    page->next_cursor = NULL;
    json_array_foreach(docs, i, doc)
    {
        if ((int)i >= limit) {
            break;
        }
        json_array_append(page->data, viewfn(p, doc));
        if (page->has_more && (int)i == limit - 1) {
            page->next_cursor = cursor_make(p, keyfn(p, doc, desc));
        }
    }
}

static json_t *thread_key(apr_pool_t *p, const json_t *doc, int desc)
{
    return ac_json_own(p, json_pack("[sss]", desc ? "td" : "ta", ac_json_str(doc, "updated_at"),
                                    ac_json_str(doc, "id")));
}

ac_err_t *ac_store_thread_list(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                               const ac_page_req_t *req, ac_page_t *page)
{
    apr_pool_t *p = ctx->pool;
    const char *dir = req->descending ? "DESC" : "ASC", *cmp = req->descending ? "<" : ">";
    json_t *params = ac_json_own(p, json_pack("[{ssss}]", "name", "@u", "value", principal));
    const char *where = "c.user_id = @u AND NOT IS_DEFINED(c.deleting)", *sql;
    ac_cosmos_res_t res;
    apr_status_t rv;

    if (req->agent) {
        where = apr_pstrcat(p, where, " AND c.agent = @a", NULL);
        json_array_append_new(params, json_pack("{ssss}", "name", "@a", "value", req->agent));
    }
    if (req->cursor) {
        json_t *key = cursor_parse(p, req->cursor);
        const char *kind = json_string_value(json_array_get(key, 0));
        const char *ts = json_string_value(json_array_get(key, 1));
        const char *id = json_string_value(json_array_get(key, 2));
        if (!kind || !ts || !id || json_array_size(key) != 3 ||
            strcmp(kind, req->descending ? "td" : "ta") != 0) {
            return bad_cursor(p);
        }
        where = apr_pstrcat(p, where, " AND (c.updated_at ", cmp, " @ts OR (c.updated_at = @ts",
                            " AND c.id ", cmp, " @id))", NULL);
        json_array_append_new(params, json_pack("{ssss}", "name", "@ts", "value", ts));
        json_array_append_new(params, json_pack("{ssss}", "name", "@id", "value", id));
    }
    sql = apr_pstrcat(p, "SELECT * FROM c WHERE ", where, " ORDER BY c.updated_at ", dir, ", c.id ",
                      dir, NULL);
    rv = ac_cosmos_query_all(st->cosmos, ctx, AC_COLL_THREADS, principal, sql, params,
                             req->limit + 1, &res);
    if (rv != APR_SUCCESS || res.status != 200) {
        return ac_store_cosmos_err(p, rv, &res, "listing threads");
    }
    page_finish(p, res.body, req->limit, page, ac_store_thread_view, thread_key, req->descending);
    return NULL;
}

static json_t *message_key(apr_pool_t *p, const json_t *doc, int desc)
{
    return ac_json_own(p, json_pack("[sI]", desc ? "md" : "ma", ac_json_int(doc, "seq", 0)));
}

ac_err_t *ac_store_message_list(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                                const char *thread_id, const ac_page_req_t *req, ac_page_t *page)
{
    apr_pool_t *p = ctx->pool;
    const char *dir = req->descending ? "DESC" : "ASC";
    const char *where = "c.thread_id = @t AND c.type = 'message'", *sql;
    json_t *params = ac_json_own(p, json_pack("[{ssss}]", "name", "@t", "value", thread_id));
    json_t *thread;
    ac_cosmos_res_t res;
    apr_status_t rv;
    ac_err_t *e;

    if (req->cursor) {
        json_t *key = cursor_parse(p, req->cursor);
        const char *kind = json_string_value(json_array_get(key, 0));
        json_t *seq = json_array_get(key, 1);
        if (!kind || !json_is_integer(seq) || json_array_size(key) != 2 ||
            strcmp(kind, req->descending ? "md" : "ma") != 0) {
            return bad_cursor(p);
        }
        where =
            apr_pstrcat(p, where, req->descending ? " AND c.seq < @s" : " AND c.seq > @s", NULL);
        json_array_append_new(params, json_pack("{sssO}", "name", "@s", "value", seq));
    }
    /* Ownership first: the messages partition is keyed by thread, not user. */
    if ((e = ac_store_thread_read(st, ctx, principal, thread_id, &thread))) {
        return e;
    }
    sql = apr_pstrcat(p, "SELECT * FROM c WHERE ", where, " ORDER BY c.seq ", dir, NULL);
    rv = ac_cosmos_query_all(st->cosmos, ctx, AC_COLL_MESSAGES, thread_id, sql, params,
                             req->limit + 1, &res);
    if (rv != APR_SUCCESS || res.status != 200) {
        return ac_store_cosmos_err(p, rv, &res, "listing messages");
    }
    page_finish(p, res.body, req->limit, page, ac_store_message_view, message_key, req->descending);
    return NULL;
}
