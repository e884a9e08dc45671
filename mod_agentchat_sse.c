/* mod_agentchat_sse.c: Server-Sent Events through httpd's output filters.
 * Every event is followed by a FLUSH bucket so each filter (mod_deflate,
 * mod_http2, the core) sends it on at once; compression is switched off. */
#include "mod_agentchat_glue.h"

/* ---- Server-Sent Events through the output filter chain -------------------------- */

static apr_status_t sse_pass(ac_glue_sse_t *s, const char *data, apr_size_t len)
{
    conn_rec *c = s->r->connection;
    apr_status_t rv;

    if (c->aborted) {
        return APR_ECONNABORTED;
    }
    if (len) {
        APR_BRIGADE_INSERT_TAIL(s->bb, apr_bucket_transient_create(data, len, c->bucket_alloc));
    }
    /* The FLUSH makes every filter (deflate, h2, core) send what it holds now. */
    APR_BRIGADE_INSERT_TAIL(s->bb, apr_bucket_flush_create(c->bucket_alloc));
    rv = ap_pass_brigade(s->r->output_filters, s->bb);
    apr_brigade_cleanup(s->bb);
    return rv != APR_SUCCESS ? rv : (c->aborted ? APR_ECONNABORTED : APR_SUCCESS);
}

static apr_status_t sse_start(void *baton)
{
    ac_glue_sse_t *s = baton;
    request_rec *r = s->r;

    r->status = HTTP_OK;
    ap_set_content_type(r, "text/event-stream; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache, no-transform");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    apr_table_unset(r->headers_out, "Content-Length");
    /* mod_deflate (and brotli) step aside when these are set. */
    apr_table_setn(r->subprocess_env, "no-gzip", "1");
    apr_table_setn(r->subprocess_env, "no-brotli", "1");
    return sse_pass(s, ": stream open\n\n", 15);
}

static apr_status_t sse_event(void *baton, const char *id, const char *name, const char *data,
                              apr_size_t len)
{
    ac_glue_sse_t *s = baton;
    struct iovec vec[8];
    int n = 0;
    apr_status_t rv;

#define VEC(p, l) (vec[n].iov_base = (void *)(p), vec[n].iov_len = (l), n++)
    /* id and event lines are left out for plain "message" events */
    if (id) {
        VEC("id: ", 4);
        VEC(id, strlen(id));
        VEC("\n", 1);
    }
    if (name) {
        VEC("event: ", 7);
        VEC(name, strlen(name));
        VEC("\n", 1);
    }
    VEC("data: ", 6);
    VEC(data, len);
#undef VEC
    if (s->r->connection->aborted) {
        return APR_ECONNABORTED;
    }
    if ((rv = apr_brigade_writev(s->bb, NULL, NULL, vec, (apr_size_t)n)) != APR_SUCCESS ||
        (rv = apr_brigade_write(s->bb, NULL, NULL, "\n\n", 2)) != APR_SUCCESS) {
        return rv;
    }
    return sse_pass(s, NULL, 0);
}

static apr_status_t sse_comment(void *baton, const char *text)
{
    ac_glue_sse_t *s = baton;
    apr_brigade_printf(s->bb, NULL, NULL, ": %s\n\n", text);
    return sse_pass(s, NULL, 0);
}

static int sse_client_gone(void *baton)
{
    return ((ac_glue_sse_t *)baton)->r->connection->aborted;
}

void ac_glue_sse_writer(request_rec *r, ac_glue_sse_t *s, ac_sse_writer_t *w)
{
    s->r = r;
    s->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    w->start = sse_start;
    w->event = sse_event;
    w->comment = sse_comment;
    w->client_gone = sse_client_gone;
    w->baton = s;
}
