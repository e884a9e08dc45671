/* ac_store_run: the storage side of a chat turn — thread lock, user message and
 * run written together, history, the answer and final run written together.
 * Cosmos round trips for a plain turn: read thread, patch thread (lock),
 * batch (user message + run), history query, batch (answer + run), patch
 * thread (release) = 6. */
#include "ac_store.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <string.h>

#define PREVIEW_CHARS 120
#define TITLE_CHARS 60

static const char *const run_fields[] = {"id",
                                         "object",
                                         "thread_id",
                                         "status",
                                         "model",
                                         "agent",
                                         "usage",
                                         "time_to_first_token_ms",
                                         "duration_ms",
                                         "steps",
                                         "request_charge",
                                         "error",
                                         "finish_reason",
                                         "created_at",
                                         "started_at",
                                         "completed_at",
                                         "user_message_id",
                                         "assistant_message_id",
                                         NULL};

json_t *ac_store_run_view(apr_pool_t *p, const json_t *doc)
{
    json_t *out = ac_json_object(p);
    for (int i = 0; run_fields[i]; i++) {
        json_t *v = json_object_get(doc, run_fields[i]);
        if (v) {
            json_object_set(out, run_fields[i], v);
        }
    }
    return out;
}

/* A title from the first message: its first line, cut at a word near 60 chars. */
static const char *title_from(apr_pool_t *p, const char *content)
{
    char *t = ac_utf8_truncate(p, content, TITLE_CHARS), *nl;

    if ((nl = strpbrk(t, "\r\n"))) {
        *nl = '\0';
    }
    if (ac_utf8_len(content) > TITLE_CHARS) {
        char *sp = strrchr(t, ' ');
        if (sp && sp - t > TITLE_CHARS / 2) {
            *sp = '\0';
        }
        t = apr_pstrcat(p, t, "…", NULL);
    }
    while (*t == ' ') {
        t++;
    }
    return *t ? t : "New conversation";
}

static int run_is_live(const json_t *thread, apr_interval_time_t stale_after)
{
    const char *active = ac_json_str(thread, "active_run_id");
    const char *since = ac_json_str(thread, "active_run_started_at");
    apr_time_t t;

    if (!active) {
        return 0;
    }
    /* A server that died mid-run must not lock the thread forever. */
    if (since && (t = ac_time_parse_rfc3339(since)) > 0) {
        return apr_time_now() - t < stale_after;
    }
    return 1;
}

ac_err_t *ac_store_turn_begin(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                              const char *thread_id, const char *content, const char *model,
                              apr_interval_time_t stale_after, ac_turn_t *turn)
{
    apr_pool_t *p = ctx->pool;
    const char *now = ac_time_rfc3339(p, apr_time_now());
    const char *msg_id = ac_id_new(p, "msg");
    ac_cosmos_t *cosmos = ac_store_cosmos(st);
    json_t *thread = NULL, *locked = NULL, *ops, *batch;
    ac_cosmos_res_t res;
    apr_status_t rv;
    ac_err_t *e;
    int attempt;

    memset(turn, 0, sizeof(*turn));
    turn->thread_id = thread_id;
    turn->run_id = ac_id_new(p, "run");
    /* Take the thread with If-Match: two servers racing for the same thread
     * cannot both win, whatever process or machine they run on. */
    for (attempt = 0; attempt < 3; attempt++) {
        if ((e = ac_store_thread_read(st, ctx, principal, thread_id, &thread))) {
            return e;
        }
        if (attempt > 0 && ac_json_str(thread, "active_run_id") &&
            !strcmp(ac_json_str(thread, "active_run_id"), turn->run_id)) {
            /* our earlier patch landed but its answer was lost: the lock is ours */
            locked = thread;
            break;
        }
        if (run_is_live(thread, stale_after)) {
            e = ac_err_make(p, 409, "run_active",
                            "A run is already in progress on this thread; wait for it to finish "
                            "or cancel it.");
            return e;
        }
        ops = ac_json_own(p, json_pack("[{ssssss}{ssssss}{sssssI}{sssssI}{ssssss}{ssssss}]", "op",
                                       "set", "path", "/active_run_id", "value", turn->run_id, "op",
                                       "set", "path", "/active_run_started_at", "value", now, "op",
                                       "incr", "path", "/last_seq", "value", (json_int_t)2, "op",
                                       "incr", "path", "/message_count", "value", (json_int_t)1,
                                       "op", "set", "path", "/updated_at", "value", now, "op",
                                       "set", "path", "/last_message_preview", "value",
                                       ac_utf8_truncate(p, content, PREVIEW_CHARS)));
        if (!ac_json_str(thread, "title")) {
            json_array_append_new(ops, json_pack("{ssssss}", "op", "set", "path", "/title", "value",
                                                 title_from(p, content)));
        }
        rv = ac_cosmos_patch_doc(cosmos, ctx, AC_COLL_THREADS, principal, thread_id, ops, NULL,
                                 ac_json_str(thread, "_etag"), &res);
        if (rv == APR_SUCCESS && res.status == 412) {
            continue; /* someone else changed the thread: look again */
        }
        if (rv == APR_SUCCESS && res.status == 404) {
            return ac_err_make(p, 404, "thread_not_found", "No thread with id '%s'.", thread_id);
        }
        if (rv != APR_SUCCESS && rv != APR_ECONNRESET && rv != APR_TIMEUP) {
            return ac_store_cosmos_err(p, rv, &res, "starting the run");
        }
        if (rv == APR_SUCCESS && res.status != 200) {
            return ac_store_cosmos_err(p, rv, &res, "starting the run");
        }
        if (rv != APR_SUCCESS) {
            continue; /* no answer: it may have landed; the next read tells */
        }
        locked = res.body;
        break;
    }
    if (attempt == 3) {
        return ac_err_make(p, 409, "thread_busy",
                           "The thread is being changed by another "
                           "request; try again.");
    }
    turn->thread = thread;
    if (ac_json_str(thread, "active_run_id") &&
        strcmp(ac_json_str(thread, "active_run_id"), turn->run_id) != 0) {
        /* We took over a stale lock: the run that held it died with its server.
         * Close it so it does not read as in progress forever (best effort). */
        const char *old = ac_json_str(thread, "active_run_id");
        json_t *fail = ac_json_own(
            p, json_pack("[{ssssss}{sssss{ssss}}{ssssss}]", "op", "set", "path", "/status", "value",
                         "failed", "op", "set", "path", "/error", "value", "code", "abandoned",
                         "message", "The server running this turn stopped before it finished.",
                         "op", "set", "path", "/completed_at", "value", now));
        ac_cosmos_res_t r2;
        if (ac_id_valid(old, "run")) {
            ac_log(AC_LOG_WARN, 0, "thread %s: run %s was abandoned; marking it failed", thread_id,
                   old);
            ac_cosmos_patch_doc(cosmos, ctx, AC_COLL_MESSAGES, thread_id, old, fail,
                                "FROM c WHERE c.status = 'in_progress'", NULL, &r2);
        }
    }
    turn->agent = ac_json_str(thread, "agent");
    turn->user_seq = ac_json_int(locked, "last_seq", 0) - 1;

    turn->user_message = ac_json_own(
        p, json_pack("{ss ss ss ss ss ss ss sI ss}", "id", msg_id, "type", "message", "object",
                     "thread.message", "thread_id", thread_id, "role", "user", "content", content,
                     "created_at", now, "seq", turn->user_seq, "run_id", turn->run_id));
    turn->run = ac_json_own(
        p, json_pack("{ss ss ss ss ss ss ss? ss ss ss sI s[] so so}", "id", turn->run_id, "type",
                     "run", "object", "thread.run", "thread_id", thread_id, "user_id", principal,
                     "status", "in_progress", "agent", turn->agent, "model", model ? model : "",
                     "created_at", now, "started_at", now, "seq", turn->user_seq, "steps", "error",
                     json_null(), "usage", json_null()));
    json_object_set_new(turn->run, "user_message_id", json_string(msg_id));
    batch = ac_json_own(p, json_pack("[{sssO}{sssO}]", "operationType", "Create", "resourceBody",
                                     turn->user_message, "operationType", "Create", "resourceBody",
                                     turn->run));
    rv = ac_cosmos_batch(cosmos, ctx, AC_COLL_MESSAGES, thread_id, batch, &res);
    if (rv != APR_SUCCESS || res.status != 200) {
        /* A retried batch whose first attempt landed answers 409: if the
         * message is there, it was accepted and the turn goes on. */
        ac_cosmos_res_t r3;
        if (ac_cosmos_read_doc(cosmos, ctx, AC_COLL_MESSAGES, thread_id, msg_id, &r3) ==
                APR_SUCCESS &&
            r3.status == 200) {
            if (ac_cosmos_read_doc(cosmos, ctx, AC_COLL_MESSAGES, thread_id, turn->run_id, &r3) ==
                    APR_SUCCESS &&
                r3.status == 404) {
                ac_cosmos_upsert_doc(cosmos, ctx, AC_COLL_MESSAGES, thread_id, turn->run, NULL,
                                     &r3);
            }
            ac_log(AC_LOG_INFO, 0, "run %s: the message batch had landed after all", turn->run_id);
            return NULL;
        }
    }
    if (rv != APR_SUCCESS || res.status != 200) {
        /* Nothing was accepted: give the thread back before reporting. */
        json_t *rel = ac_json_own(p, json_pack("[{sssssn}{sssssI}]", "op", "set", "path",
                                               "/active_run_id", "value", "op", "incr", "path",
                                               "/message_count", "value", (json_int_t)-1));
        ac_cosmos_res_t r2;
        ac_cosmos_patch_doc(cosmos, ctx, AC_COLL_THREADS, principal, thread_id, rel, NULL, NULL,
                            &r2);
        return ac_store_cosmos_err(p, rv, &res, "storing the message");
    }
    return NULL;
}

ac_err_t *ac_store_history(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *thread_id,
                           json_int_t before_seq, int n, json_t **messages)
{
    apr_pool_t *p = ctx->pool;
    json_t *params = ac_json_own(p, json_pack("[{ssss}{sssI}]", "name", "@t", "value", thread_id,
                                              "name", "@s", "value", before_seq));
    json_t *out = ac_json_array(p);
    ac_cosmos_res_t res;
    apr_status_t rv;

    if (n <= 0) {
        *messages = out;
        return NULL;
    }
    rv = ac_cosmos_query_all(ac_store_cosmos(st), ctx, AC_COLL_MESSAGES, thread_id,
                             "SELECT * FROM c WHERE c.thread_id = @t AND c.type = 'message' AND "
                             "c.seq < @s ORDER BY c.seq DESC",
                             params, n, &res);
    if (rv != APR_SUCCESS || res.status != 200) {
        return ac_store_cosmos_err(p, rv, &res, "reading the conversation history");
    }
    for (size_t i = json_array_size(res.body); i > 0; i--) {
        json_array_append(out, ac_store_message_view(p, json_array_get(res.body, i - 1)));
    }
    *messages = out;
    return NULL;
}

ac_err_t *ac_store_turn_finish(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                               const ac_turn_t *turn, json_t *assistant, json_t *run)
{
    apr_pool_t *p = ctx->pool;
    ac_cosmos_t *cosmos = ac_store_cosmos(st);
    const char *now = ac_time_rfc3339(p, apr_time_now());
    json_t *batch = ac_json_array(p), *ops;
    ac_cosmos_res_t res;
    apr_status_t rv;
    ac_err_t *e = NULL;

    if (assistant) {
        json_array_append_new(
            batch, json_pack("{sssO}", "operationType", "Create", "resourceBody", assistant));
    }
    json_array_append_new(batch, json_pack("{sssssO}", "operationType", "Replace", "id",
                                           turn->run_id, "resourceBody", run));
    rv = ac_cosmos_batch(cosmos, ctx, AC_COLL_MESSAGES, turn->thread_id, batch, &res);
    if (rv != APR_SUCCESS || res.status != 200) {
        /* The batch may have half-landed on a non-atomic store: write each
         * document on its own with upserts, which are safe to repeat. */
        ac_cosmos_res_t r2;
        apr_status_t rv2 = APR_SUCCESS;
        ac_log(AC_LOG_WARN, rv, "run %s: finishing batch failed (%s); writing documents singly",
               turn->run_id, res.error ? res.error : "error");
        if (assistant) {
            rv2 = ac_cosmos_upsert_doc(cosmos, ctx, AC_COLL_MESSAGES, turn->thread_id, assistant,
                                       NULL, &r2);
        }
        if (rv2 == APR_SUCCESS && (!assistant || r2.status < 300)) {
            rv2 = ac_cosmos_upsert_doc(cosmos, ctx, AC_COLL_MESSAGES, turn->thread_id, run, NULL,
                                       &r2);
        }
        if (rv2 != APR_SUCCESS || r2.status >= 300) {
            e = ac_store_cosmos_err(p, rv2, &r2, "storing the answer");
        }
    }
    ops = ac_json_own(p, json_pack("[{sssssn}{ssssss}]", "op", "set", "path", "/active_run_id",
                                   "value", "op", "set", "path", "/updated_at", "value", now));
    if (assistant) {
        json_array_append_new(ops, json_pack("{sssssI}", "op", "incr", "path", "/message_count",
                                             "value", (json_int_t)1));
        json_array_append_new(
            ops, json_pack("{ssssss}", "op", "set", "path", "/last_message_preview", "value",
                           ac_utf8_truncate(p, ac_json_str(assistant, "content"), PREVIEW_CHARS)));
    }
    /* Release only our own lock: a stale-lock takeover may have happened. */
    rv = ac_cosmos_patch_doc(cosmos, ctx, AC_COLL_THREADS, principal, turn->thread_id, ops,
                             apr_psprintf(p, "FROM c WHERE c.active_run_id = '%s'", turn->run_id),
                             NULL, &res);
    if (rv != APR_SUCCESS || (res.status != 200 && res.status != 412 && res.status != 404)) {
        ac_log(AC_LOG_ERR, rv, "run %s: could not release thread %s: %s", turn->run_id,
               turn->thread_id, res.error ? res.error : "error");
        if (!e) {
            e = ac_store_cosmos_err(p, rv, &res, "finishing the run");
        }
    }
    return e;
}

ac_err_t *ac_store_run_read(ac_store_t *st, ac_cosmos_ctx_t *ctx, const char *principal,
                            const char *thread_id, const char *run_id, json_t **run)
{
    apr_pool_t *p = ctx->pool;
    json_t *thread;
    ac_cosmos_res_t res;
    apr_status_t rv;
    ac_err_t *e;

    if ((e = ac_store_thread_read(st, ctx, principal, thread_id, &thread))) {
        return e;
    }
    rv = ac_cosmos_read_doc(ac_store_cosmos(st), ctx, AC_COLL_MESSAGES, thread_id, run_id, &res);
    if (rv == APR_SUCCESS && res.status == 404) {
        return ac_err_make(p, 404, "run_not_found", "No run with id '%s' in this thread.", run_id);
    }
    if (rv != APR_SUCCESS || res.status != 200 || !json_is_object(res.body)) {
        return ac_store_cosmos_err(p, rv, &res, "reading the run");
    }
    if (strcmp(ac_json_str(res.body, "type") ? ac_json_str(res.body, "type") : "", "run") != 0) {
        return ac_err_make(p, 404, "run_not_found", "No run with id '%s' in this thread.", run_id);
    }
    *run = ac_store_run_view(p, res.body);
    return NULL;
}
