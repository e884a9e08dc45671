/* ac_watch: cancel polling and follower checkpoints off the request thread. */
#include "ac_watch.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <stdlib.h>
#include <string.h>

#define FOLLOW_GRACE apr_time_from_sec(12) /* a follower refreshes its flag every 5 s */

struct ac_watch {
    ac_store_t *store;
    const char *thread_id, *run_id; /* copied into the watcher's own pool */
    apr_interval_time_t poll, checkpoint;
    apr_pool_t *pool;    /* the watcher's: unmanaged, own allocator */
    apr_pool_t *scratch; /* cleared after every Cosmos call; only the watcher uses it */
    apr_thread_t *thread;
    apr_thread_mutex_t *mutex; /* guards everything below */
    apr_thread_cond_t *wake;
    int stopping;
    int cancelled;
    char *text; /* malloc'd: grows with the answer, freed at stop */
    apr_size_t text_len, text_cap;
    json_t *traces;
    double charge;
    int round_trips;
};

static void add_cost(ac_watch_t *w, const ac_cosmos_ctx_t *c)
{
    apr_thread_mutex_lock(w->mutex);
    w->charge += c->request_charge;
    w->round_trips += c->round_trips;
    apr_thread_mutex_unlock(w->mutex);
}

/* One read of the run document: cancel flag and follower flag. */
static apr_time_t read_flags(ac_watch_t *w, apr_pool_t *scratch)
{
    ac_cosmos_ctx_t ctx = {scratch, 0, 0};
    ac_cosmos_res_t res;
    apr_time_t followed_until = 0;

    if (ac_cosmos_read_doc(ac_store_cosmos(w->store), &ctx, AC_COLL_MESSAGES, w->thread_id,
                           w->run_id, &res) == APR_SUCCESS &&
        res.status == 200) {
        const char *f = ac_json_str(res.body, "follow_requested_at");
        apr_time_t ft = f ? ac_time_parse_rfc3339(f) : 0;
        followed_until = ft ? ft + FOLLOW_GRACE : 0;
        if (ac_json_bool(res.body, "cancel_requested", 0)) {
            apr_thread_mutex_lock(w->mutex);
            if (!w->cancelled) {
                ac_log(AC_LOG_INFO, 0, "run %s: cancel requested; stopping", w->run_id);
            }
            w->cancelled = 1;
            apr_thread_mutex_unlock(w->mutex);
        }
    }
    add_cost(w, &ctx);
    return followed_until;
}

/* Write what the answer has become since the last checkpoint. */
static void write_checkpoint(ac_watch_t *w, apr_pool_t *scratch, apr_size_t *done_len,
                             size_t *done_traces)
{
    ac_cosmos_ctx_t ctx = {scratch, 0, 0};
    ac_cosmos_res_t res;
    json_t *ops = NULL, *traces;
    apr_size_t len;
    char *text;

    apr_thread_mutex_lock(w->mutex);
    len = w->text_len;
    if (len != *done_len || json_array_size(w->traces) != *done_traces) {
        text = apr_pstrmemdup(scratch, w->text ? w->text : "", len);
        traces = json_deep_copy(w->traces);
        ops = ac_json_own(scratch, json_pack("[{ssssss#}{sssssO}{ssssss}]", "op", "set", "path",
                                             "/partial_content", "value", text, (int)len, "op",
                                             "set", "path", "/partial_traces", "value", traces,
                                             "op", "set", "path", "/checkpoint_at", "value",
                                             ac_time_rfc3339(scratch, apr_time_now())));
        json_decref(traces);
    }
    apr_thread_mutex_unlock(w->mutex);
    if (!ops) {
        return;
    }
    if (ac_cosmos_patch_doc(ac_store_cosmos(w->store), &ctx, AC_COLL_MESSAGES, w->thread_id,
                            w->run_id, ops, NULL, NULL, &res) == APR_SUCCESS &&
        res.status == 200) {
        *done_len = len;
        *done_traces = json_array_size(json_object_get(json_array_get(ops, 1), "value"));
    }
    add_cost(w, &ctx);
}

static void *APR_THREAD_FUNC watch_thread(apr_thread_t *thd, void *data)
{
    ac_watch_t *w = data;
    apr_pool_t *scratch = w->scratch;
    apr_time_t next_poll = apr_time_now() + w->poll, next_cp = 0, followed_until = 0;
    apr_size_t done_len = 0;
    size_t done_traces = 0;

    apr_thread_mutex_lock(w->mutex);
    while (!w->stopping) {
        apr_time_t now = apr_time_now(), wait;
        if (now >= next_poll) {
            apr_thread_mutex_unlock(w->mutex);
            followed_until = read_flags(w, scratch);
            next_poll = apr_time_now() + w->poll;
            apr_pool_clear(scratch);
            apr_thread_mutex_lock(w->mutex);
            continue;
        }
        if (now < followed_until && now >= next_cp) {
            apr_thread_mutex_unlock(w->mutex);
            write_checkpoint(w, scratch, &done_len, &done_traces);
            next_cp = apr_time_now() + w->checkpoint;
            apr_pool_clear(scratch);
            apr_thread_mutex_lock(w->mutex);
            continue;
        }
        wait = next_poll - now;
        if (now < followed_until && next_cp - now < wait) {
            wait = next_cp > now ? next_cp - now : 0;
        }
        apr_thread_cond_timedwait(w->wake, w->mutex, wait);
    }
    apr_thread_mutex_unlock(w->mutex);
    apr_thread_exit(thd, APR_SUCCESS);
    return NULL;
}

ac_watch_t *ac_watch_start(apr_pool_t *p, ac_store_t *store, const char *thread_id,
                           const char *run_id, apr_interval_time_t poll,
                           apr_interval_time_t checkpoint)
{
    apr_allocator_t *alloc = NULL;
    apr_pool_t *wp = NULL;
    ac_watch_t *w;

    if (poll <= 0 || apr_allocator_create(&alloc) != APR_SUCCESS ||
        apr_pool_create_unmanaged_ex(&wp, NULL, alloc) != APR_SUCCESS) {
        if (alloc) {
            apr_allocator_destroy(alloc);
        }
        return NULL;
    }
    apr_allocator_owner_set(alloc, wp);
    w = apr_pcalloc(wp, sizeof(*w));
    w->pool = wp;
    w->store = store;
    w->thread_id = apr_pstrdup(wp, thread_id);
    w->run_id = apr_pstrdup(wp, run_id);
    w->poll = poll;
    w->checkpoint = checkpoint > 0 ? checkpoint : apr_time_from_sec(1);
    w->traces = ac_json_array(wp);
    /* every child pool of wp is made here, before the thread runs */
    if (apr_pool_create(&w->scratch, wp) != APR_SUCCESS ||
        apr_thread_mutex_create(&w->mutex, APR_THREAD_MUTEX_DEFAULT, wp) != APR_SUCCESS ||
        apr_thread_cond_create(&w->wake, wp) != APR_SUCCESS ||
        apr_thread_create(&w->thread, NULL, watch_thread, w, wp) != APR_SUCCESS) {
        ac_log(AC_LOG_ERR, 0, "run %s: no watcher thread; cancel and follow are unavailable",
               run_id);
        apr_pool_destroy(wp);
        return NULL;
    }
    return w;
}

void ac_watch_text(ac_watch_t *w, const char *text, apr_size_t len)
{
    if (!w) {
        return;
    }
    apr_thread_mutex_lock(w->mutex);
    if (w->text_len + len + 1 > w->text_cap) {
        apr_size_t cap = w->text_cap ? w->text_cap : 4096;
        char *n;
        while (cap < w->text_len + len + 1) {
            cap *= 2;
        }
        if ((n = realloc(w->text, cap))) {
            w->text = n;
            w->text_cap = cap;
        }
    }
    if (w->text_len + len + 1 <= w->text_cap) {
        memcpy(w->text + w->text_len, text, len);
        w->text_len += len;
        w->text[w->text_len] = '\0';
    }
    apr_thread_mutex_unlock(w->mutex);
}

void ac_watch_trace(ac_watch_t *w, json_t *event)
{
    if (!w) {
        json_decref(event);
        return;
    }
    apr_thread_mutex_lock(w->mutex);
    json_array_append_new(w->traces, event);
    apr_thread_mutex_unlock(w->mutex);
}

int ac_watch_cancelled(ac_watch_t *w)
{
    int c;
    if (!w) {
        return 0;
    }
    apr_thread_mutex_lock(w->mutex);
    c = w->cancelled;
    apr_thread_mutex_unlock(w->mutex);
    return c;
}

void ac_watch_stop(ac_watch_t *w, ac_cosmos_ctx_t *ctx)
{
    apr_status_t trv;

    if (!w) {
        return;
    }
    apr_thread_mutex_lock(w->mutex);
    w->stopping = 1;
    apr_thread_cond_signal(w->wake);
    apr_thread_mutex_unlock(w->mutex);
    apr_thread_join(&trv, w->thread);
    ctx->request_charge += w->charge;
    ctx->round_trips += w->round_trips;
    free(w->text);
    apr_pool_destroy(w->pool);
}
