/* ac_cosmos: Cosmos DB REST client — signing, retries, session tokens, charge. */
#include "ac_cosmos.h"
#include "ac_cosmos_auth.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <stdlib.h>
#include <string.h>

#define AC_COSMOS_API_VERSION "2020-07-15"
#define SESSION_SLOTS 4

struct ac_cosmos {
    apr_pool_t *pool;
    ac_cosmos_conf_t conf;
    ac_http_pool_t *http;
    apr_thread_mutex_t *mutex;
    struct {
        char coll[64];
        char token[512];
    } session[SESSION_SLOTS];
};

/* What one REST call is: the verb, what it signs, where it goes. */
typedef struct {
    const char *verb;
    const char *rtype; /* "dbs", "colls", "docs" */
    const char *rlink; /* link signed (parent link for feeds) */
    const char *path;  /* URL path after the endpoint */
    const char *coll;  /* container for session tokens, or NULL */
    const char *pk;    /* partition key value, or NULL */
    const char *body;
    apr_size_t body_len;
    const char *content_type;
    apr_table_t *extra; /* extra headers */
    int is_create;      /* a POST whose replay may 409 */
} cosmos_call_t;

int ac_cosmos_http_status_for(apr_status_t rv, const ac_cosmos_res_t *res)
{
    if (rv == APR_TIMEUP || (res && res->status == 408)) {
        return 504;
    }
    if (rv == APR_ECONNREFUSED || rv == APR_EAGAIN ||
        (res && (res->status == 429 || res->status == 503))) {
        return 503;
    }
    return 502;
}

apr_status_t ac_cosmos_create(ac_cosmos_t **cosmos, apr_pool_t *p, const ac_cosmos_conf_t *conf,
                              ac_http_pool_t *http)
{
    ac_cosmos_t *c = apr_pcalloc(p, sizeof(*c));
    apr_status_t rv;

    c->pool = p;
    c->conf = *conf;
    c->http = http;
    if (c->conf.max_attempts <= 0) {
        c->conf.max_attempts = 5;
    }
    if (c->conf.retry_budget <= 0) {
        c->conf.retry_budget = apr_time_from_sec(10);
    }
    if (c->conf.max_response == 0) {
        c->conf.max_response = 16 * 1024 * 1024;
    }
    if ((rv = apr_thread_mutex_create(&c->mutex, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS) {
        return rv;
    }
    *cosmos = c;
    return APR_SUCCESS;
}

static const char *session_get(ac_cosmos_t *c, apr_pool_t *p, const char *coll)
{
    const char *tok = NULL;
    apr_thread_mutex_lock(c->mutex);
    for (int i = 0; i < SESSION_SLOTS; i++) {
        if (c->session[i].token[0] && strcmp(c->session[i].coll, coll) == 0) {
            tok = apr_pstrdup(p, c->session[i].token);
            break;
        }
    }
    apr_thread_mutex_unlock(c->mutex);
    return tok;
}

static void session_put(ac_cosmos_t *c, const char *coll, const char *tok)
{
    int free_slot = -1;
    if (!tok || strlen(tok) >= sizeof(c->session[0].token) ||
        strlen(coll) >= sizeof(c->session[0].coll)) {
        return;
    }
    apr_thread_mutex_lock(c->mutex);
    for (int i = 0; i < SESSION_SLOTS; i++) {
        if (strcmp(c->session[i].coll, coll) == 0) {
            free_slot = i;
            break;
        }
        if (free_slot < 0 && !c->session[i].coll[0]) {
            free_slot = i;
        }
    }
    if (free_slot >= 0) {
        apr_cpystrn(c->session[free_slot].coll, coll, sizeof(c->session[0].coll));
        apr_cpystrn(c->session[free_slot].token, tok, sizeof(c->session[0].token));
    }
    apr_thread_mutex_unlock(c->mutex);
}

/* Backoff before attempt n (1-based retry count), with jitter; the server's
 * own hint wins when it gave one. */
static apr_interval_time_t retry_delay(int n, int status, apr_table_t *hdrs)
{
    const char *hint = hdrs ? apr_table_get(hdrs, "x-ms-retry-after-ms") : NULL;
    apr_interval_time_t d;
    unsigned char j = 0;

    if (hint && (status == 429 || status == 449)) {
        long ms = strtol(hint, NULL, 10);
        if (ms < 0) {
            ms = 0;
        }
        if (ms > 5000) {
            ms = 5000;
        }
        return apr_time_from_msec(ms);
    }
    d = apr_time_from_msec(100) << (n > 5 ? 5 : n - 1);
    if (d > apr_time_from_sec(2)) {
        d = apr_time_from_sec(2);
    }
    apr_generate_random_bytes(&j, 1);
    return d / 2 + (d / 2) * j / 255;
}

static int retryable_status(int status)
{
    return status == 408 || status == 429 || status == 449 || status == 503;
}

static int retryable_transport(apr_status_t rv)
{
    return rv == APR_ECONNREFUSED || rv == APR_ECONNRESET || rv == APR_TIMEUP || rv == APR_EGENERAL;
}

static apr_status_t cosmos_call(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const cosmos_call_t *call,
                                ac_cosmos_res_t *res)
{
    apr_pool_t *p = ctx->pool;
    apr_interval_time_t waited = 0;
    apr_status_t rv = APR_EGENERAL;
    int transport_failed = 0;

    memset(res, 0, sizeof(*res));
    for (int attempt = 1; attempt <= c->conf.max_attempts; attempt++) {
        ac_http_req_t req = {0};
        ac_http_resp_t *resp = NULL;
        const char *date = ac_time_rfc1123(p, apr_time_now()), *err = NULL, *v;
        apr_table_t *h = apr_table_make(p, 12);

        apr_table_setn(h, "x-ms-date", date);
        apr_table_setn(h, "x-ms-version", AC_COSMOS_API_VERSION);
        apr_table_setn(h, "Accept", "application/json");
        apr_table_setn(h, "authorization",
                       ac_cosmos_auth_master(p, c->conf.key, c->conf.key_len, call->verb,
                                             call->rtype, call->rlink, date));
        if (call->pk) {
            json_t *arr = ac_json_own(p, json_pack("[s]", call->pk));
            apr_table_setn(h, "x-ms-documentdb-partitionkey", ac_json_dump(p, arr));
        }
        if (call->coll && (v = session_get(c, p, call->coll))) {
            apr_table_setn(h, "x-ms-session-token", v);
        }
        if (call->content_type) {
            apr_table_setn(h, "Content-Type", call->content_type);
        }
        if (call->extra) {
            h = apr_table_overlay(p, h, call->extra);
        }
        req.method = call->verb;
        req.url = apr_pstrcat(p, c->conf.endpoint, call->path, NULL);
        req.headers = h;
        req.body = call->body;
        req.body_len = call->body_len;
        req.timeout = c->conf.timeout;
        req.max_response = c->conf.max_response;

        ctx->round_trips++;
        rv = ac_http_perform(c->http, &req, p, &resp, &err);
        if (rv == APR_SUCCESS) {
            res->status = resp->status;
            if ((v = apr_table_get(resp->headers, "x-ms-request-charge"))) {
                ctx->request_charge += strtod(v, NULL);
            }
            if (call->coll && (v = apr_table_get(resp->headers, "x-ms-session-token"))) {
                session_put(c, call->coll, v);
            }
            res->etag = apr_table_get(resp->headers, "etag");
            res->continuation = apr_table_get(resp->headers, "x-ms-continuation");
            res->body = resp->body_len ? ac_json_parse(p, resp->body, resp->body_len, NULL) : NULL;
            if (!retryable_status(resp->status)) {
                if (resp->status >= 400) {
                    const char *msg = res->body ? ac_json_str(res->body, "message") : NULL;
                    res->error = apr_psprintf(p, "Cosmos answered %d%s%.200s", resp->status,
                                              msg ? ": " : "", msg ? msg : "");
                }
                if (resp->status == 409 && call->is_create && transport_failed) {
                    res->ambiguous = 1;
                }
                return APR_SUCCESS;
            }
            res->error = apr_psprintf(p, "Cosmos answered %d", resp->status);
            rv = APR_EAGAIN;
        }
        else {
            if (!retryable_transport(rv)) {
                res->error = apr_psprintf(p, "Cosmos request failed: %s", err ? err : "error");
                break;
            }
            transport_failed = 1;
            res->status = 0;
            res->error = apr_psprintf(p, "Cosmos unreachable: %s", err ? err : "error");
        }
        if (attempt < c->conf.max_attempts) {
            apr_interval_time_t d = retry_delay(attempt, res->status, resp ? resp->headers : NULL);
            if (waited + d > c->conf.retry_budget) {
                break;
            }
            ac_log(AC_LOG_INFO, rv, "cosmos %s %s: %s; retry %d in %" APR_TIME_T_FMT " ms",
                   call->verb, call->rtype, res->error, attempt, (apr_time_t)apr_time_as_msec(d));
            apr_sleep(d);
            waited += d;
        }
    }
    ac_log(AC_LOG_WARN, rv, "cosmos %s %s gave up: %s", call->verb, call->rtype,
           res->error ? res->error : "unknown");
    return rv == APR_SUCCESS ? APR_EGENERAL : rv;
}

static const char *db_link(ac_cosmos_t *c, apr_pool_t *p)
{
    return apr_pstrcat(p, "dbs/", c->conf.database, NULL);
}

static const char *coll_link(ac_cosmos_t *c, apr_pool_t *p, const char *coll)
{
    return apr_pstrcat(p, "dbs/", c->conf.database, "/colls/", coll, NULL);
}

static const char *doc_link(ac_cosmos_t *c, apr_pool_t *p, const char *coll, const char *id)
{
    return apr_pstrcat(p, coll_link(c, p, coll), "/docs/", id, NULL);
}

/* URL path of a link: ids the module generates are URL-safe already, but
 * escape anyway so no caller can smuggle path syntax. */
static const char *link_path(apr_pool_t *p, const char *link)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(link) * 3 + 2), *o = out;
    *o++ = '/';
    for (; *link; link++) {
        unsigned char ch = (unsigned char)*link;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '/') {
            *o++ = (char)ch;
        }
        else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o = '\0';
    return out;
}

static void set_body(apr_pool_t *p, cosmos_call_t *call, const json_t *j)
{
    call->body = ac_json_dumpn(p, j, &call->body_len);
    call->content_type = "application/json";
}

apr_status_t ac_cosmos_ensure_database(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx)
{
    apr_pool_t *p = ctx->pool;
    cosmos_call_t call = {0};
    ac_cosmos_res_t res;
    apr_status_t rv;

    call.verb = "GET";
    call.rtype = "dbs";
    call.rlink = db_link(c, p);
    call.path = link_path(p, call.rlink);
    if ((rv = cosmos_call(c, ctx, &call, &res)) != APR_SUCCESS) {
        return rv;
    }
    if (res.status == 200) {
        return APR_SUCCESS;
    }
    if (res.status != 404) {
        ac_log(AC_LOG_ERR, 0, "reading Cosmos database '%s': %s", c->conf.database, res.error);
        return APR_EGENERAL;
    }
    memset(&call, 0, sizeof(call));
    call.verb = "POST";
    call.rtype = "dbs";
    call.rlink = "";
    call.path = "/dbs";
    set_body(p, &call, ac_json_own(p, json_pack("{ss}", "id", c->conf.database)));
    if ((rv = cosmos_call(c, ctx, &call, &res)) != APR_SUCCESS) {
        return rv;
    }
    if (res.status != 201 && res.status != 409) {
        ac_log(AC_LOG_ERR, 0, "creating Cosmos database '%s': %s", c->conf.database, res.error);
        return APR_EGENERAL;
    }
    ac_log(AC_LOG_NOTICE, 0, "created Cosmos database '%s'", c->conf.database);
    return APR_SUCCESS;
}

apr_status_t ac_cosmos_ensure_container(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                        const char *pk_path, json_t *indexing_policy)
{
    apr_pool_t *p = ctx->pool;
    cosmos_call_t call = {0};
    ac_cosmos_res_t res;
    apr_status_t rv;
    json_t *body;

    call.verb = "GET";
    call.rtype = "colls";
    call.rlink = coll_link(c, p, coll);
    call.path = link_path(p, call.rlink);
    if ((rv = cosmos_call(c, ctx, &call, &res)) != APR_SUCCESS) {
        return rv;
    }
    if (res.status == 200) {
        return APR_SUCCESS;
    }
    if (res.status != 404) {
        ac_log(AC_LOG_ERR, 0, "reading Cosmos container '%s': %s", coll, res.error);
        return APR_EGENERAL;
    }
    body = ac_json_own(p, json_pack("{ss s{s[s]ss}}", "id", coll, "partitionKey", "paths", pk_path,
                                    "kind", "Hash"));
    if (indexing_policy) {
        json_object_set(body, "indexingPolicy", indexing_policy);
    }
    memset(&call, 0, sizeof(call));
    call.verb = "POST";
    call.rtype = "colls";
    call.rlink = db_link(c, p);
    call.path = link_path(p, apr_pstrcat(p, call.rlink, "/colls", NULL));
    set_body(p, &call, body);
    if ((rv = cosmos_call(c, ctx, &call, &res)) != APR_SUCCESS) {
        return rv;
    }
    if (res.status != 201 && res.status != 409) {
        ac_log(AC_LOG_ERR, 0, "creating Cosmos container '%s': %s", coll, res.error);
        return APR_EGENERAL;
    }
    ac_log(AC_LOG_NOTICE, 0, "created Cosmos container '%s' (partition key %s)", coll, pk_path);
    return APR_SUCCESS;
}

static void doc_feed_call(ac_cosmos_t *c, apr_pool_t *p, cosmos_call_t *call, const char *coll,
                          const char *pk)
{
    call->verb = "POST";
    call->rtype = "docs";
    call->rlink = coll_link(c, p, coll);
    call->path = link_path(p, apr_pstrcat(p, call->rlink, "/docs", NULL));
    call->coll = coll;
    call->pk = pk;
    call->extra = apr_table_make(p, 4);
}

static void doc_item_call(ac_cosmos_t *c, apr_pool_t *p, cosmos_call_t *call, const char *verb,
                          const char *coll, const char *pk, const char *id)
{
    call->verb = verb;
    call->rtype = "docs";
    call->rlink = doc_link(c, p, coll, id);
    call->path = link_path(p, call->rlink);
    call->coll = coll;
    call->pk = pk;
    call->extra = apr_table_make(p, 4);
}

apr_status_t ac_cosmos_create_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                  const char *pk, json_t *doc, ac_cosmos_res_t *res)
{
    cosmos_call_t call = {0};
    doc_feed_call(c, ctx->pool, &call, coll, pk);
    call.is_create = 1;
    set_body(ctx->pool, &call, doc);
    return cosmos_call(c, ctx, &call, res);
}

apr_status_t ac_cosmos_upsert_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                  const char *pk, json_t *doc, const char *if_match,
                                  ac_cosmos_res_t *res)
{
    cosmos_call_t call = {0};
    doc_feed_call(c, ctx->pool, &call, coll, pk);
    apr_table_setn(call.extra, "x-ms-documentdb-is-upsert", "True");
    if (if_match) {
        apr_table_setn(call.extra, "If-Match", if_match);
    }
    set_body(ctx->pool, &call, doc);
    return cosmos_call(c, ctx, &call, res);
}

apr_status_t ac_cosmos_read_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                const char *pk, const char *id, ac_cosmos_res_t *res)
{
    cosmos_call_t call = {0};
    doc_item_call(c, ctx->pool, &call, "GET", coll, pk, id);
    /* The SDKs send this on point reads; the local emulator needs it to answer
     * 404 (not 500) for a missing document, and Azure ignores it here. */
    apr_table_setn(call.extra, "x-ms-documentdb-query-enablecrosspartition", "true");
    return cosmos_call(c, ctx, &call, res);
}

apr_status_t ac_cosmos_replace_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                   const char *pk, const char *id, json_t *doc,
                                   const char *if_match, ac_cosmos_res_t *res)
{
    cosmos_call_t call = {0};
    doc_item_call(c, ctx->pool, &call, "PUT", coll, pk, id);
    if (if_match) {
        apr_table_setn(call.extra, "If-Match", if_match);
    }
    set_body(ctx->pool, &call, doc);
    return cosmos_call(c, ctx, &call, res);
}

apr_status_t ac_cosmos_patch_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                 const char *pk, const char *id, json_t *ops, const char *condition,
                                 const char *if_match, ac_cosmos_res_t *res)
{
    cosmos_call_t call = {0};
    json_t *body = ac_json_own(ctx->pool, json_pack("{sO}", "operations", ops));

    if (condition) {
        json_object_set_new(body, "condition", json_string(condition));
    }
    doc_item_call(c, ctx->pool, &call, "PATCH", coll, pk, id);
    if (if_match) {
        apr_table_setn(call.extra, "If-Match", if_match);
    }
    set_body(ctx->pool, &call, body);
    call.content_type = "application/json_patch+json";
    return cosmos_call(c, ctx, &call, res);
}

apr_status_t ac_cosmos_delete_doc(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                  const char *pk, const char *id, const char *if_match,
                                  ac_cosmos_res_t *res)
{
    cosmos_call_t call = {0};
    doc_item_call(c, ctx->pool, &call, "DELETE", coll, pk, id);
    if (if_match) {
        apr_table_setn(call.extra, "If-Match", if_match);
    }
    return cosmos_call(c, ctx, &call, res);
}

apr_status_t ac_cosmos_query(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll, const char *pk,
                             const char *sql, json_t *params, int max_items,
                             const char *continuation, ac_cosmos_res_t *res)
{
    apr_pool_t *p = ctx->pool;
    cosmos_call_t call = {0};
    json_t *body = ac_json_own(p, json_pack("{ss}", "query", sql));
    apr_status_t rv;

    if (params) {
        json_object_set(body, "parameters", params);
    }
    doc_feed_call(c, p, &call, coll, pk);
    apr_table_setn(call.extra, "x-ms-documentdb-isquery", "True");
    apr_table_setn(call.extra, "x-ms-max-item-count", apr_itoa(p, max_items > 0 ? max_items : 100));
    if (continuation) {
        apr_table_setn(call.extra, "x-ms-continuation", continuation);
    }
    set_body(p, &call, body);
    call.content_type = "application/query+json";
    if ((rv = cosmos_call(c, ctx, &call, res)) != APR_SUCCESS) {
        return rv;
    }
    if (res->status == 200) {
        json_t *docs = json_object_get(res->body, "Documents");
        if (!json_is_array(docs)) {
            res->error = "Cosmos query answer has no Documents array";
            return APR_EGENERAL;
        }
        res->body = docs;
    }
    return APR_SUCCESS;
}

apr_status_t ac_cosmos_query_all(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll,
                                 const char *pk, const char *sql, json_t *params, int want,
                                 ac_cosmos_res_t *res)
{
    json_t *all = ac_json_array(ctx->pool);
    const char *cont = NULL;
    apr_status_t rv;

    /* Pages may come back short; follow continuations, but never forever. */
    for (int page = 0; page < 100; page++) {
        int left = want - (int)json_array_size(all);
        if ((rv = ac_cosmos_query(c, ctx, coll, pk, sql, params, left, cont, res)) != APR_SUCCESS) {
            return rv;
        }
        if (res->status != 200) {
            return APR_SUCCESS;
        }
        json_array_extend(all, res->body);
        cont = res->continuation;
        if (!cont || !*cont || (int)json_array_size(all) >= want) {
            break;
        }
    }
    res->body = all;
    res->continuation = cont;
    return APR_SUCCESS;
}

apr_status_t ac_cosmos_batch(ac_cosmos_t *c, ac_cosmos_ctx_t *ctx, const char *coll, const char *pk,
                             json_t *ops, ac_cosmos_res_t *res)
{
    apr_pool_t *p = ctx->pool;
    cosmos_call_t call = {0};
    apr_status_t rv;
    size_t i;
    json_t *op;

    if (json_array_size(ops) == 0 || json_array_size(ops) > 100) {
        res->error = "batch must hold 1 to 100 operations";
        return APR_EINVAL;
    }
    /* Every operation carries the partition key too (as the SDKs send it). */
    json_array_foreach(ops, i, op)
    {
        json_object_set_new(op, "partitionKey",
                            json_string(ac_json_dump(p, ac_json_own(p, json_pack("[s]", pk)))));
    }
    doc_feed_call(c, p, &call, coll, pk);
    apr_table_setn(call.extra, "x-ms-cosmos-is-batch-request", "True");
    apr_table_setn(call.extra, "x-ms-cosmos-batch-atomic", "True");
    apr_table_setn(call.extra, "x-ms-cosmos-batch-continue-on-error", "False");
    set_body(p, &call, ops);
    if ((rv = cosmos_call(c, ctx, &call, res)) != APR_SUCCESS) {
        return rv;
    }
    /* Azure answers 207 for a failed atomic batch; the emulator answers 200
     * with per-operation statuses.  Either way report the first real failure
     * (424 only means "not attempted because another failed"). */
    if ((res->status == 200 || res->status == 207) && json_is_array(res->body)) {
        json_array_foreach(res->body, i, op)
        {
            int st = (int)ac_json_int(op, "statusCode", 0);
            if (st >= 400 && st != 424) {
                res->status = st;
                res->error = apr_psprintf(p, "batch operation %d failed with %d", (int)i, st);
                break;
            }
        }
    }
    return APR_SUCCESS;
}
