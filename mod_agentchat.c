/* mod_agentchat: httpd glue — module record, hooks and the `agentchat` handler
 * that hands requests to the core (src/ac_api.c).  Directives live in
 * mod_agentchat_config.c, the SSE writer in mod_agentchat_sse.c. */
#include "mod_agentchat_glue.h"

#include "ap_expr.h"

#define srv_conf ac_glue_srv_conf

/* ---- logging seam ------------------------------------------------------------ */

static int ac_to_aplog(ac_log_level_e l)
{
    switch (l) {
    case AC_LOG_ERR:
        return APLOG_ERR;
    case AC_LOG_WARN:
        return APLOG_WARNING;
    case AC_LOG_NOTICE:
        return APLOG_NOTICE;
    case AC_LOG_INFO:
        return APLOG_INFO;
    default:
        return APLOG_DEBUG;
    }
}

static void log_to_httpd(void *baton, ac_log_level_e level, apr_status_t rv, const char *msg)
{
    server_rec *s = baton;
    ap_log_error(APLOG_MARK, ac_to_aplog(level), rv, s, "%s", msg);
}

/* ---- lifecycle --------------------------------------------------------------- */

/* The optional function other modules call to add a tool (include/mod_agentchat.h). */
static apr_status_t agentchat_register_tool(const ac_tool_t *tool)
{
    return ac_tool_registry_add(tool);
}

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    ac_tool_registry_init(pconf);
    return OK;
}

static int check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    for (server_rec *v = s; v; v = v->next) {
        srv_conf_t *c = srv_conf(v);
        if (!c->configured) {
            continue;
        }
        if (!c->cosmos_endpoint) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, v,
                         "agentchat is configured for %s:%u but " AC_DIR_COSMOS_ENDPOINT
                         " is missing",
                         v->server_hostname ? v->server_hostname : "?", (unsigned)v->port);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!c->cosmos_key) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, v,
                         AC_DIR_COSMOS_ENDPOINT " is set but " AC_DIR_COSMOS_KEY " is missing");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (c->openai_endpoint && !c->openai_deployment) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, v,
                         AC_DIR_OPENAI_ENDPOINT " is set but " AC_DIR_OPENAI_DEPLOYMENT
                                                " (the deployment or model name) is missing");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (c->default_agent && c->agents->nelts) {
            int found = 0;
            for (int i = 0; i < c->agents->nelts; i++) {
                found |= !strcmp(APR_ARRAY_IDX(c->agents, i, agent_conf_t).name, c->default_agent);
            }
            if (!found) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, v,
                             AC_DIR_DEFAULT_AGENT " '%s' names no <AgentChatAgent> block",
                             c->default_agent);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }
    return OK;
}

static void build_runtime_conf(srv_conf_t *c, ac_http_pool_conf_t *hc, ac_cosmos_conf_t *cc,
                               apr_pool_t *p)
{
    memset(hc, 0, sizeof(*hc));
    hc->ca_file = c->ca_file;
    hc->verify_tls = c->tls_verify != 0;
    hc->max_idle = c->pool_size != UNSET ? c->pool_size : AC_DEFAULT_POOL_SIZE;
    hc->connect_timeout = apr_time_from_sec(
        c->connect_timeout != UNSET ? c->connect_timeout : AC_DEFAULT_CONNECT_TIMEOUT);
    memset(cc, 0, sizeof(*cc));
    cc->endpoint = c->cosmos_endpoint;
    cc->key = ac_cosmos_key_decode(p, c->cosmos_key, &cc->key_len);
    cc->database = c->cosmos_database ? c->cosmos_database : AC_DEFAULT_DATABASE;
    cc->timeout = apr_time_from_sec(c->cosmos_timeout != UNSET ? c->cosmos_timeout
                                                               : AC_DEFAULT_COSMOS_TIMEOUT);
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    ac_log_set(log_to_httpd, s,
               (ac_log_level_e)ap_get_server_module_loglevel(s, APLOG_MODULE_INDEX));
    if (ac_http_global_init() != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "agentchat: libcurl failed to initialise");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_table_t *seen = apr_table_make(ptemp, 4);

    for (server_rec *v = s; v; v = v->next) {
        srv_conf_t *c = srv_conf(v);
        ac_http_pool_conf_t hc;
        ac_cosmos_conf_t cc;
        ac_http_pool_t *http;
        const char *seen_key, *seen_val;
        ac_cosmos_t *cosmos;
        ac_cosmos_ctx_t ctx = {ptemp, 0, 0};
        apr_status_t rv;

        if (c->kb_dir && !c->kb) {
            const char *err = NULL;
            apr_time_t t0 = apr_time_now();
            if (!(c->kb = ac_kb_load(pconf, c->kb_dir, &err))) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, v, AC_DIR_KNOWLEDGE_BASE " %s: %s",
                             c->kb_dir, err ? err : "cannot index");
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, v,
                         "agentchat: indexed knowledge base %s in %" APR_TIME_T_FMT " ms",
                         c->kb_dir, (apr_time_t)apr_time_as_msec(apr_time_now() - t0));
        }
        if (!c->cosmos_endpoint || c->schema_ready) {
            continue;
        }
        if (c->tls_verify == 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, v,
                         AC_DIR_TLS_VERIFY " Off: outbound TLS certificates are NOT verified");
        }
        if (c->api_keys->nelts == 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, v,
                         "agentchat: no " AC_DIR_API_KEY " configured; requests that httpd did "
                         "not authenticate all share the principal 'anonymous'");
        }
        /* Virtual hosts sharing an account and database are prepared once. */
        seen_key = apr_pstrcat(ptemp, c->cosmos_endpoint, " ",
                               c->cosmos_database ? c->cosmos_database : AC_DEFAULT_DATABASE, NULL);
        if ((seen_val = apr_table_get(seen, seen_key))) {
            c->schema_ready = seen_val[0] == '1';
            continue;
        }
        /* Create the schema once in the parent so every child starts ready;
         * if Cosmos is unreachable now, children retry on first use. */
        build_runtime_conf(c, &hc, &cc, ptemp);
        /* Startup must not hang on an unresponsive Cosmos: short and few tries. */
        cc.retry_budget = apr_time_from_sec(1);
        cc.max_attempts = 2;
        if (cc.timeout > apr_time_from_sec(5)) {
            cc.timeout = apr_time_from_sec(5);
        }
        if ((rv = ac_http_pool_create(&http, ptemp, &hc)) == APR_SUCCESS &&
            (rv = ac_cosmos_create(&cosmos, ptemp, &cc, http)) == APR_SUCCESS &&
            (rv = ac_store_ensure_schema(ac_store_create(ptemp, cosmos), &ctx)) == APR_SUCCESS) {
            c->schema_ready = 1;
            apr_table_setn(seen, seen_key, "1");
        }
        else {
            apr_table_setn(seen, seen_key, "0");
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, v,
                         "agentchat: could not prepare Cosmos database '%s' at %s now; "
                         "will retry on first request",
                         cc.database, cc.endpoint);
        }
    }
    return OK;
}

static void child_init(apr_pool_t *pchild, server_rec *s)
{
    for (server_rec *v = s; v; v = v->next) {
        srv_conf_t *c = srv_conf(v);
        ac_http_pool_conf_t hc;
        ac_cosmos_conf_t cc;
        apr_status_t rv;

        if (!c->cosmos_endpoint) {
            continue;
        }
        build_runtime_conf(c, &hc, &cc, pchild);
        if ((rv = ac_http_pool_create(&c->http, pchild, &hc)) != APR_SUCCESS ||
            (rv = ac_cosmos_create(&c->cosmos, pchild, &cc, c->http)) != APR_SUCCESS ||
            (rv = apr_thread_mutex_create(&c->schema_mutex, APR_THREAD_MUTEX_DEFAULT, pchild)) !=
                APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, v, "agentchat: cannot set up process state");
            c->cosmos = NULL;
            continue;
        }
        ac_api_conf_defaults(&c->api);
        c->api.store = ac_store_create(pchild, c->cosmos);
        if (c->max_body != UNSET) {
            c->api.max_body = (apr_size_t)c->max_body;
        }
        if (c->openai_endpoint) {
            ac_glue_build_chat(c, v, pchild);
        }
    }
}

/* ---- request handling -------------------------------------------------------- */

static const char *request_id(request_rec *r)
{
    const char *id = apr_table_get(r->subprocess_env, "UNIQUE_ID");
    return id ? id : ac_id_new(r->pool, "req");
}

static int copy_header(void *rv, const char *key, const char *val)
{
    apr_table_set(((request_rec *)rv)->headers_out, key, val);
    return 1;
}

static int send_response(request_rec *r, const ac_api_resp_t *resp, const char *rid)
{
    apr_table_do(copy_header, r, resp->headers, NULL);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    r->status = resp->status;
    if (resp->status >= 500) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "agentchat: %d for request %s", resp->status,
                      rid);
    }
    if (resp->body) {
        apr_size_t len;
        char *text = ac_json_dumpn(r->pool, resp->body, &len);
        ap_set_content_type(r, "application/json; charset=utf-8");
        ap_set_content_length(r, (apr_off_t)len);
        if (!r->header_only) {
            ap_rwrite(text, (int)len, r);
        }
    }
    return OK;
}

static int send_error(request_rec *r, const char *rid, int status, const char *code,
                      const char *msg)
{
    ac_api_resp_t resp = {0};
    ac_err_t *e = ac_err_make(r->pool, status, code, "%s", msg);
    resp.headers = apr_table_make(r->pool, 2);
    ac_api_set_error(r->pool, &resp, e, rid);
    return send_response(r, &resp, rid);
}

/* Who is asking: an API key's principal, httpd's authenticated user, or the
 * shared anonymous principal when neither is configured. */
static int find_principal(request_rec *r, srv_conf_t *c, const char **principal)
{
    const char *given;
    api_key_t *keys = (api_key_t *)c->api_keys->elts;
    const char *match = NULL;

    if (c->api_keys->nelts == 0) {
        *principal = r->user ? r->user : "anonymous";
        return OK;
    }
    if (!(given = apr_table_get(r->headers_in, "X-API-Key"))) {
        return HTTP_UNAUTHORIZED;
    }
    /* Compare against every key, without an early exit, so timing does not
     * tell how many keys or which one came close. */
    for (int i = 0; i < c->api_keys->nelts; i++) {
        if (ac_ct_equal(given, strlen(given), keys[i].key, strlen(keys[i].key)) && !match) {
            match = keys[i].principal;
        }
    }
    if (!match) {
        return HTTP_UNAUTHORIZED;
    }
    *principal = match;
    return OK;
}

/* Read the whole body, up to max bytes; 413 past that. */
static int read_body(request_rec *r, apr_size_t max, const char **body, apr_size_t *len)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    char *buf;
    apr_size_t got = 0, cap;
    long n;
    int rc;

    *body = NULL;
    *len = 0;
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) {
        return rc;
    }
    if (cl && apr_atoi64(cl) > (apr_int64_t)max) {
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    if (!ap_should_client_block(r)) {
        return OK;
    }
    /* Room for what Content-Length announces (chunked: start small and double),
     * never more than the limit plus the byte that proves it was exceeded. */
    cap = cl ? (apr_size_t)apr_atoi64(cl) + 1 : 16384;
    cap = cap > max + 1 ? max + 1 : cap;
    buf = apr_palloc(r->pool, cap + 1);
    for (;;) {
        if (got == cap) {
            apr_size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nbuf;
            if (ncap == cap) {
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            nbuf = apr_palloc(r->pool, ncap + 1);
            memcpy(nbuf, buf, got);
            buf = nbuf;
            cap = ncap;
        }
        if ((n = ap_get_client_block(r, buf + got, cap - got)) <= 0) {
            break;
        }
        got += (apr_size_t)n;
        if (got > max) {
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    if (n < 0) {
        return HTTP_BAD_REQUEST;
    }
    buf[got] = '\0';
    *body = buf;
    *len = got;
    return OK;
}

static apr_status_t ensure_schema(srv_conf_t *c, apr_pool_t *p)
{
    ac_cosmos_ctx_t ctx = {p, 0, 0};
    apr_status_t rv = APR_SUCCESS;

    if (c->schema_ready) {
        return APR_SUCCESS;
    }
    apr_thread_mutex_lock(c->schema_mutex);
    if (!c->schema_ready && (rv = ac_store_ensure_schema(c->api.store, &ctx)) == APR_SUCCESS) {
        c->schema_ready = 1;
    }
    apr_thread_mutex_unlock(c->schema_mutex);
    return rv;
}

/* Routes are relative to where the admin mounted the handler: the path of the
 * <Location> that holds SetHandler, which core keeps in its per-dir config. */
static const char *handler_mount(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    const char *d = cd ? cd->d : NULL;
    apr_size_t n;

    if (!d || d[0] != '/' || cd->r || cd->d_is_fnmatch) {
        return NULL;
    }
    n = strlen(d);
    while (n > 0 && d[n - 1] == '/') {
        n--;
    }
    return apr_pstrmemdup(r->pool, d, n);
}

static int agentchat_handler(request_rec *r)
{
    srv_conf_t *c;
    const char *mount;
    ac_api_req_t req = {0};
    ac_api_resp_t resp = {0};
    ac_glue_sse_t sse;
    ac_sse_writer_t writer;
    const char *rid, *path;
    int rc;

    if (!r->handler || strcmp(r->handler, AC_HANDLER) != 0) {
        return DECLINED;
    }
    c = srv_conf(r->server);
    rid = request_id(r);
    apr_table_setn(r->headers_out, "X-Request-Id", rid);

    if (!c->cosmos) {
        return send_error(r, rid, 503, "not_configured",
                          "The chat API is not configured on this server.");
    }
    if ((rc = find_principal(r, c, &req.principal)) != OK) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "agentchat: missing or unknown API key");
        return send_error(r, rid, 401, "unauthorized",
                          "A valid API key is required in the X-API-Key header.");
    }
    if (strlen(req.principal) > 256) {
        return send_error(r, rid, 403, "forbidden", "The authenticated user name is too long.");
    }
    if ((rc = read_body(r, c->api.max_body, &req.body, &req.body_len)) != OK) {
        if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
            return send_error(r, rid, 413, "request_too_large",
                              apr_psprintf(r->pool, "The request body is larger than %lu bytes.",
                                           (unsigned long)c->api.max_body));
        }
        return send_error(r, rid, 400, "bad_body", "The request body could not be read.");
    }
    if (ensure_schema(c, r->pool) != APR_SUCCESS) {
        resp.headers = apr_table_make(r->pool, 2);
        ac_err_t *e = ac_err_make(r->pool, 503, "storage_unavailable",
                                  "The storage service is not reachable; try again.");
        e->retry_after = 5;
        ac_api_set_error(r->pool, &resp, e, rid);
        return send_response(r, &resp, rid);
    }

    path = r->uri;
    if ((mount = handler_mount(r)) && strncmp(path, mount, strlen(mount)) == 0 &&
        ac_api_is_route_root(path + strlen(mount))) {
        path += strlen(mount);
    }
    else {
        /* Another <Location> (nested, or "/" after ours) set the section path:
         * find where the API's own routes begin instead. */
        for (const char *s = path; (s = strchr(s, '/')); s++) {
            if (ac_api_is_route_root(s)) {
                path = s;
                break;
            }
        }
    }
    req.pool = r->pool;
    req.method = r->header_only ? "GET" : r->method;
    req.path = path;
    req.args = r->args;
    req.content_type = apr_table_get(r->headers_in, "Content-Type");
    req.request_id = rid;
    req.accept = apr_table_get(r->headers_in, "Accept");
    req.last_event_id = apr_table_get(r->headers_in, "Last-Event-ID");
    ac_glue_sse_writer(r, &sse, &writer);
    /* HEAD is answered like GET, but never by starting a model run or a follow */
    req.sse = r->header_only ? NULL : &writer;
    ac_api_handle(&c->api, &req, &resp);
    if (resp.streamed) {
        return OK;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "agentchat: %s %.200s -> %d (cosmos: %d round trips, %.2f RU)", r->method, path,
                  resp.status, resp.round_trips, resp.request_charge);
    apr_table_setn(r->notes, "agentchat-cosmos-ru",
                   apr_psprintf(r->pool, "%.2f", resp.request_charge));
    apr_table_setn(r->notes, "agentchat-cosmos-round-trips", apr_itoa(r->pool, resp.round_trips));
    return send_response(r, &resp, rid);
}

/* API requests map to no file.  Claiming them at translation skips core's
 * filename mapping and directory walk, which would answer a long id with an
 * HTML "File name too long" 403 before the handler runs. */
static int is_api_request(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    const char *h, *err = NULL;

    if (!cd || !cd->expr_handler) {
        return 0;
    }
    /* SetHandler is stored as an expression; a plain name evaluates to itself. */
    h = ap_expr_str_exec(r, cd->expr_handler, &err);
    return h && !err && !strcmp(h, AC_HANDLER);
}

static int translate_name(request_rec *r)
{
    if (!is_api_request(r)) {
        return DECLINED;
    }
    r->filename = apr_pstrcat(r->pool, AC_HANDLER ":", r->uri, NULL);
    return OK;
}

/* httpd resets the per-dir config before this hook, so recognise our
 * requests by the filename translate_name gave them (as mod_proxy does). */
static int map_to_storage(request_rec *r)
{
    return r->filename && !strncmp(r->filename, AC_HANDLER ":", sizeof(AC_HANDLER)) ? OK : DECLINED;
}

static void register_hooks(apr_pool_t *p)
{
    APR_REGISTER_OPTIONAL_FN(agentchat_register_tool);
    ap_hook_pre_config(pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_LAST);
    ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* After mod_rewrite and mod_alias (Redirect, RewriteRule [F]) had their say,
     * before core maps the URI to a file. */
    ap_hook_translate_name(translate_name, NULL, NULL, APR_HOOK_LAST);
    ap_hook_map_to_storage(map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(agentchat_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(agentchat) = {
    STANDARD20_MODULE_STUFF, NULL,         NULL,           ac_glue_create_srv_conf,
    ac_glue_merge_srv_conf,  ac_glue_cmds, register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_NONE,
#endif
};
