/* ac_api: route dispatch, input validation and response shapes. */
#include "ac_api.h"
#include "ac_api_int.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATH_LEN 2048

void ac_api_conf_defaults(ac_api_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->max_body = 1024 * 1024;
    conf->max_title_chars = 256;
    conf->max_metadata_keys = 16;
    conf->max_metadata_key_chars = 64;
    conf->max_metadata_value_chars = 512;
    conf->default_agent = "default";
    conf->heartbeat = apr_time_from_sec(15);
}

void ac_api_set_error(apr_pool_t *p, ac_api_resp_t *resp, const ac_err_t *e, const char *request_id)
{
    resp->status = e->status;
    resp->body = ac_json_own(p, json_pack("{s{ssssss}}", "error", "code", e->code, "message",
                                          e->message, "request_id", request_id ? request_id : ""));
    if (!resp->headers) {
        resp->headers = apr_table_make(p, 2);
    }
    if (!resp->body) {
        /* the message echoed something that is not UTF-8: say less, but say it */
        resp->body = ac_json_own(p, json_pack("{s{ssssss}}", "error", "code", e->code, "message",
                                              "The request could not be served.", "request_id",
                                              request_id ? request_id : ""));
    }
    if (e->extra) {
        json_object_update(json_object_get(resp->body, "error"), e->extra);
    }
    if (e->retry_after > 0) {
        apr_table_setn(resp->headers, "Retry-After", apr_itoa(p, e->retry_after));
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Decode %XX and '+' (in query strings); NULL on a bad escape or NUL byte. */
static char *url_decode(apr_pool_t *p, const char *s, apr_size_t n, int plus)
{
    char *out = apr_palloc(p, n + 1), *o = out;
    for (apr_size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= n) {
                return NULL;
            }
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        }
        else {
            *o++ = (plus && s[i] == '+') ? ' ' : s[i];
        }
    }
    *o = '\0';
    return out;
}

apr_table_t *ac_api_parse_args(apr_pool_t *p, const char *args)
{
    apr_table_t *t = apr_table_make(p, 4);
    const char *s = args;

    while (s && *s) {
        const char *amp = strchr(s, '&'), *eq;
        apr_size_t len = amp ? (apr_size_t)(amp - s) : strlen(s);
        char *k, *v;

        eq = memchr(s, '=', len);
        k = url_decode(p, s, eq ? (apr_size_t)(eq - s) : len, 1);
        v = eq ? url_decode(p, eq + 1, len - (apr_size_t)(eq - s) - 1, 1) : "";
        if (!k || !v) {
            return NULL;
        }
        if (*k) {
            apr_table_set(t, k, v);
        }
        s = amp ? amp + 1 : NULL;
    }
    return t;
}

/* ---- input helpers ---------------------------------------------------------- */

ac_err_t *ac_api_read_body(route_ctx_t *rc, int required, json_t **out)
{
    apr_pool_t *p = rc->req->pool;
    const char *ct = rc->req->content_type;
    const char *err = NULL;
    json_t *j;

    *out = NULL;
    if (!rc->req->body || rc->req->body_len == 0) {
        if (required) {
            return ac_err_make(p, 400, "missing_body", "This request needs a JSON object body.");
        }
        return NULL;
    }
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
        return ac_err_make(p, 415, "unsupported_media_type", "Send the body as application/json.");
    }
    if (!ac_utf8_valid(rc->req->body, rc->req->body_len)) {
        return ac_err_make(p, 400, "invalid_utf8", "The body is not valid UTF-8.");
    }
    if (!(j = ac_json_parse(p, rc->req->body, rc->req->body_len, &err))) {
        return ac_err_make(p, 400, "invalid_json", "The body is not valid JSON: %s.", err);
    }
    if (!json_is_object(j)) {
        return ac_err_make(p, 400, "invalid_json", "The body must be a JSON object.");
    }
    *out = j;
    return NULL;
}

/* Reject fields the route does not know: a typo should not pass silently. */
ac_err_t *ac_api_check_fields(apr_pool_t *p, json_t *body, const char *const *allowed)
{
    const char *key;
    json_t *v;

    json_object_foreach(body, key, v)
    {
        int ok = 0;
        for (int i = 0; allowed[i]; i++) {
            ok |= strcmp(key, allowed[i]) == 0;
        }
        if (!ok) {
            return ac_err_make(p, 422, "unknown_field", "Unknown field '%s'.",
                               ac_utf8_truncate(p, key, 64));
        }
    }
    return NULL;
}

static ac_err_t *check_title(route_ctx_t *rc, json_t *v, const char **title)
{
    apr_pool_t *p = rc->req->pool;
    if (!json_is_string(v)) {
        return ac_err_make(p, 422, "invalid_field", "'title' must be a string.");
    }
    if ((int)ac_utf8_len(json_string_value(v)) > rc->conf->max_title_chars) {
        return ac_err_make(p, 422, "field_too_long", "'title' is longer than %d characters.",
                           rc->conf->max_title_chars);
    }
    *title = json_string_value(v);
    return NULL;
}

static ac_err_t *check_metadata(route_ctx_t *rc, json_t *v)
{
    apr_pool_t *p = rc->req->pool;
    const char *key;
    json_t *val;

    if (!json_is_object(v)) {
        return ac_err_make(p, 422, "invalid_field", "'metadata' must be an object of strings.");
    }
    if ((int)json_object_size(v) > rc->conf->max_metadata_keys) {
        return ac_err_make(p, 422, "field_too_long", "'metadata' has more than %d keys.",
                           rc->conf->max_metadata_keys);
    }
    json_object_foreach(v, key, val)
    {
        if (!*key || (int)ac_utf8_len(key) > rc->conf->max_metadata_key_chars) {
            return ac_err_make(p, 422, "field_too_long",
                               "'metadata' keys must be 1 to %d characters.",
                               rc->conf->max_metadata_key_chars);
        }
        if (!json_is_string(val)) {
            return ac_err_make(p, 422, "invalid_field", "'metadata' values must be strings.");
        }
        if ((int)ac_utf8_len(json_string_value(val)) > rc->conf->max_metadata_value_chars) {
            return ac_err_make(p, 422, "field_too_long",
                               "'metadata' values must be at most %d characters.",
                               rc->conf->max_metadata_value_chars);
        }
    }
    return NULL;
}

ac_err_t *ac_api_check_thread_id(route_ctx_t *rc, const char *id)
{
    if (!ac_id_valid(id, "thread")) {
        return ac_err_make(rc->req->pool, 404, "thread_not_found",
                           "No thread with that id (thread ids look like 'thread_...').");
    }
    return NULL;
}

ac_err_t *ac_api_page_args(route_ctx_t *rc, int default_desc, ac_page_req_t *pr)
{
    apr_pool_t *p = rc->req->pool;
    const char *limit = apr_table_get(rc->args, "limit");
    const char *order = apr_table_get(rc->args, "order");
    const char *cursor = apr_table_get(rc->args, "cursor");

    memset(pr, 0, sizeof(*pr));
    pr->limit = 20;
    pr->descending = default_desc;
    if (limit) {
        char *end;
        long n = strtol(limit, &end, 10);
        if (!*limit || *end || n < 1 || n > 100) {
            return ac_err_make(p, 422, "invalid_parameter",
                               "'limit' must be an integer from 1 to 100.");
        }
        pr->limit = (int)n;
    }
    if (order) {
        if (strcmp(order, "asc") == 0) {
            pr->descending = 0;
        }
        else if (strcmp(order, "desc") == 0) {
            pr->descending = 1;
        }
        else {
            return ac_err_make(p, 422, "invalid_parameter", "'order' must be 'asc' or 'desc'.");
        }
    }
    if (cursor && *cursor) {
        pr->cursor = cursor;
    }
    return NULL;
}

json_t *ac_api_list_body(apr_pool_t *p, const ac_page_t *page)
{
    json_t *j = ac_json_object(p);
    ac_json_set_str(j, "object", "list");
    json_object_set(j, "data", page->data);
    json_object_set_new(j, "has_more", json_boolean(page->has_more));
    ac_json_set_str(j, "next_cursor", page->next_cursor);
    return j;
}

/* ---- routes ------------------------------------------------------------------ */

static ac_err_t *threads_create(route_ctx_t *rc)
{
    static const char *const allowed[] = {"title", "metadata", "agent", NULL};
    apr_pool_t *p = rc->req->pool;
    const char *title = NULL, *agent = rc->conf->default_agent;
    json_t *body, *v, *metadata = NULL, *thread;
    ac_err_t *e;

    if ((e = ac_api_read_body(rc, 0, &body))) {
        return e;
    }
    if (body) {
        if ((e = ac_api_check_fields(p, body, allowed))) {
            return e;
        }
        if ((v = json_object_get(body, "title")) && !json_is_null(v) &&
            (e = check_title(rc, v, &title))) {
            return e;
        }
        if ((v = json_object_get(body, "metadata")) && !json_is_null(v)) {
            if ((e = check_metadata(rc, v))) {
                return e;
            }
            metadata = v;
        }
        if ((v = json_object_get(body, "agent")) && !json_is_null(v)) {
            if (!json_is_string(v) || !*json_string_value(v) || strlen(json_string_value(v)) > 64) {
                return ac_err_make(p, 422, "invalid_field", "'agent' must be an agent name.");
            }
            agent = json_string_value(v);
            if (rc->conf->agent_known && !rc->conf->agent_known(rc->conf->agent_baton, agent)) {
                return ac_err_make(p, 422, "unknown_agent", "There is no agent named '%s'.",
                                   ac_utf8_truncate(p, agent, 64));
            }
        }
    }
    if ((e = ac_store_thread_create(rc->conf->store, &rc->cosmos, rc->req->principal, title,
                                    metadata, agent, &thread))) {
        return e;
    }
    rc->resp->status = 201;
    rc->resp->body = thread;
    return NULL;
}

static ac_err_t *threads_list(route_ctx_t *rc)
{
    ac_page_req_t pr;
    ac_page_t page;
    ac_err_t *e;

    if ((e = ac_api_page_args(rc, 1, &pr)) ||
        (e = ac_store_thread_list(rc->conf->store, &rc->cosmos, rc->req->principal, &pr, &page))) {
        return e;
    }
    rc->resp->status = 200;
    rc->resp->body = ac_api_list_body(rc->req->pool, &page);
    return NULL;
}

static ac_err_t *thread_get(route_ctx_t *rc)
{
    json_t *doc;
    ac_err_t *e;

    if ((e = ac_api_check_thread_id(rc, rc->seg[1])) ||
        (e = ac_store_thread_read(rc->conf->store, &rc->cosmos, rc->req->principal, rc->seg[1],
                                  &doc))) {
        return e;
    }
    rc->resp->status = 200;
    rc->resp->body = ac_store_thread_view(rc->req->pool, doc);
    return NULL;
}

static ac_err_t *thread_patch(route_ctx_t *rc)
{
    static const char *const allowed[] = {"title", "metadata", NULL};
    apr_pool_t *p = rc->req->pool;
    const char *title = NULL;
    json_t *body, *v, *metadata = NULL, *thread;
    ac_err_t *e;

    if ((e = ac_api_check_thread_id(rc, rc->seg[1])) || (e = ac_api_read_body(rc, 1, &body)) ||
        (e = ac_api_check_fields(p, body, allowed))) {
        return e;
    }
    if ((v = json_object_get(body, "title")) && (e = check_title(rc, v, &title))) {
        return e;
    }
    if ((v = json_object_get(body, "metadata"))) {
        if ((e = check_metadata(rc, v))) {
            return e;
        }
        metadata = v;
    }
    if (!title && !metadata) {
        return ac_err_make(p, 422, "nothing_to_update", "Give 'title' and/or 'metadata'.");
    }
    if ((e = ac_store_thread_update(rc->conf->store, &rc->cosmos, rc->req->principal, rc->seg[1],
                                    title, metadata, &thread))) {
        return e;
    }
    rc->resp->status = 200;
    rc->resp->body = thread;
    return NULL;
}

static ac_err_t *thread_delete(route_ctx_t *rc)
{
    ac_err_t *e;

    if ((e = ac_api_check_thread_id(rc, rc->seg[1])) ||
        (e = ac_store_thread_delete(rc->conf->store, &rc->cosmos, rc->req->principal,
                                    rc->seg[1]))) {
        return e;
    }
    rc->resp->status = 204;
    rc->resp->body = NULL;
    return NULL;
}

static ac_err_t *messages_list(route_ctx_t *rc)
{
    ac_page_req_t pr;
    ac_page_t page;
    ac_err_t *e;

    if ((e = ac_api_check_thread_id(rc, rc->seg[1])) || (e = ac_api_page_args(rc, 0, &pr)) ||
        (e = ac_store_message_list(rc->conf->store, &rc->cosmos, rc->req->principal, rc->seg[1],
                                   &pr, &page))) {
        return e;
    }
    rc->resp->status = 200;
    rc->resp->body = ac_api_list_body(rc->req->pool, &page);
    return NULL;
}

static const route_t routes[] = {
    {"threads", {{"GET", threads_list}, {"POST", threads_create}}},
    {"threads/{}", {{"GET", thread_get}, {"PATCH", thread_patch}, {"DELETE", thread_delete}}},
    {"threads/{}/messages", {{"GET", messages_list}, {"POST", ac_api_messages_post}}},
    {"threads/{}/runs/{}", {{"GET", ac_api_run_get}}},
    {"threads/{}/runs/{}/cancel", {{"POST", ac_api_run_cancel}}},
    {"threads/{}/runs/{}/events", {{"GET", ac_api_run_events}}},
    {"agent/stream", {{"GET", ac_api_agent_stream}, {"POST", ac_api_agent_stream}}},
    {"chat", {{"POST", ac_api_chat_post}}},
    {"agents", {{"GET", ac_api_agents_list}}},
    {"agents/{}/chat", {{"POST", ac_api_chat_post}}},
    {"agents/{}/threads", {{"GET", ac_api_agent_threads}}},
    {NULL, {{NULL, NULL}}},
};

/* Split "/a/b/c" into segments.  The host hands over the path already
 * percent-decoded once (httpd's r->uri); decoding again would let
 * "thread_%2577" turn into "thread_w", so segments are taken as they are. */
static ac_err_t *split_path(route_ctx_t *rc)
{
    apr_pool_t *p = rc->req->pool;
    const char *s = rc->req->path ? rc->req->path : "";

    if (strlen(s) > MAX_PATH_LEN) {
        return ac_err_make(p, 414, "uri_too_long", "The path is too long.");
    }
    rc->nseg = 0;
    while (*s) {
        const char *slash;
        apr_size_t len;
        while (*s == '/') {
            s++;
        }
        if (!*s) {
            break;
        }
        slash = strchr(s, '/');
        len = slash ? (apr_size_t)(slash - s) : strlen(s);
        if (rc->nseg == MAX_SEGMENTS) {
            return ac_err_make(p, 404, "not_found", "No such route.");
        }
        rc->seg[rc->nseg++] = apr_pstrmemdup(p, s, len);
        s += len;
    }
    return NULL;
}

static int pattern_match(const char *pattern, route_ctx_t *rc)
{
    int i = 0;
    const char *s = pattern;

    while (*s) {
        const char *slash = strchr(s, '/');
        apr_size_t len = slash ? (apr_size_t)(slash - s) : strlen(s);
        if (i >= rc->nseg) {
            return 0;
        }
        if (!(len == 2 && s[0] == '{') &&
            (strlen(rc->seg[i]) != len || strncmp(rc->seg[i], s, len) != 0)) {
            return 0;
        }
        i++;
        s += len + (slash ? 1 : 0);
    }
    return i == rc->nseg;
}

int ac_api_is_route_root(const char *path)
{
    static const char *const roots[] = {"threads", "chat", "agents", "agent", NULL};
    if (!path || *path != '/') {
        return 0;
    }
    path++;
    for (int i = 0; roots[i]; i++) {
        apr_size_t n = strlen(roots[i]);
        if (!strncmp(path, roots[i], n) && (path[n] == '/' || path[n] == '\0')) {
            return 1;
        }
    }
    return 0;
}

void ac_api_handle(const ac_api_conf_t *conf, const ac_api_req_t *req, ac_api_resp_t *resp)
{
    apr_pool_t *p = req->pool;
    route_ctx_t rc = {0};
    ac_err_t *e = NULL;
    const route_t *rt;

    rc.conf = conf;
    rc.req = req;
    rc.resp = resp;
    rc.cosmos.pool = p;
    resp->headers = apr_table_make(p, 4);
    resp->status = 500;
    resp->body = NULL;

    if ((e = split_path(&rc))) {
        goto leave;
    }
    if (!(rc.args = ac_api_parse_args(p, req->args))) {
        e = ac_err_make(p, 400, "invalid_query", "The query string has a malformed escape.");
        goto leave;
    }
    for (rt = routes; rt->pattern; rt++) {
        if (pattern_match(rt->pattern, &rc)) {
            break;
        }
    }
    if (!rt->pattern) {
        e = ac_err_make(p, 404, "not_found", "No such route: %s %s", req->method,
                        ac_utf8_truncate(p, req->path, 200));
        goto leave;
    }
    for (int i = 0; rt->methods[i].method; i++) {
        if (strcmp(rt->methods[i].method, req->method) == 0) {
            e = rt->methods[i].fn(&rc);
            goto leave;
        }
    }
    {
        const char *allow = NULL;
        for (int i = 0; rt->methods[i].method; i++) {
            allow = allow ? apr_pstrcat(p, allow, ", ", rt->methods[i].method, NULL)
                          : rt->methods[i].method;
        }
        apr_table_setn(resp->headers, "Allow", allow);
        e = ac_err_make(p, 405, "method_not_allowed", "%s is not allowed here; use %s.",
                        req->method, allow);
    }
leave:
    if (e && !resp->streamed) {
        ac_api_set_error(p, resp, e, req->request_id);
    }
    resp->request_charge = rc.cosmos.request_charge;
    resp->round_trips = rc.cosmos.round_trips;
}
