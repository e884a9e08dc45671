/* ac_tool_http: POST the arguments as JSON, take the JSON reply as the result.
 * Error messages for the model never name the URL (it may carry a token); the
 * log line names the tool, so the admin can find which endpoint misbehaved. */
#include "ac_tool_http.h"

#include "ac_http.h"
#include "ac_json.h"
#include "ac_log.h"

#include <apr_file_io.h>
#include <apr_strings.h>
#include <string.h>
#include <strings.h>

#define AC_TOOL_HTTP_NO_PARAMETERS "{\"type\":\"object\",\"properties\":{}}"

typedef struct {
    const char *url;
    apr_size_t max_response;
} http_tool_conf_t;

const char *ac_tool_http_load_schema(apr_pool_t *p, const char *path, const char **schema_json)
{
    apr_pool_t *tmp = NULL;
    apr_file_t *f = NULL;
    apr_size_t len = AC_TOOL_HTTP_MAX_SCHEMA + 1;
    const char *msg = NULL, *why = NULL;
    char *buf = NULL, ebuf[128];
    apr_status_t rv;
    json_t *schema;

    *schema_json = NULL;
    if (!path || !*path) {
        msg = "no JSON schema file given";
        goto leave;
    }
    /* Parsed in a scratch pool: only the compact text outlives this call. */
    if (APR_SUCCESS != (rv = apr_pool_create(&tmp, p))) {
        msg = "out of memory";
        goto leave;
    }
    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, APR_OS_DEFAULT, tmp);
    if (rv == APR_SUCCESS) {
        buf = apr_palloc(tmp, len);
        rv = apr_file_read_full(f, buf, len, &len);
    }
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        msg = apr_psprintf(p, "cannot read JSON schema file %s: %s", path,
                           apr_strerror(rv, ebuf, sizeof(ebuf)));
        goto leave;
    }
    if (len > AC_TOOL_HTTP_MAX_SCHEMA) {
        msg = apr_psprintf(p, "JSON schema file %s is larger than 64 KiB", path);
        goto leave;
    }
    if (!(schema = ac_json_parse(tmp, buf, len, &why))) {
        msg = apr_psprintf(p, "JSON schema file %s is not valid JSON: %s", path, why);
        goto leave;
    }
    if (!json_is_object(schema) || !ac_json_str(schema, "type") ||
        strcmp(ac_json_str(schema, "type"), "object") != 0) {
        msg = apr_psprintf(p, "JSON schema file %s must be a JSON object with \"type\": \"object\"",
                           path);
        goto leave;
    }
    *schema_json = ac_json_dump(p, schema);
leave:
    if (f) {
        apr_file_close(f);
    }
    if (tmp) {
        apr_pool_destroy(tmp);
    }
    return msg;
}

/* Parse any JSON value, not only containers (ac_json_parse takes objects and
 * arrays): "[body]" is an array of exactly one element iff body is exactly one
 * JSON value, since the outer brackets then enclose the whole text. */
static json_t *http_tool_parse_any(apr_pool_t *p, const char *body, apr_size_t len,
                                   const char **why)
{
    char *wrapped = apr_palloc(p, len + 2);
    json_t *arr;

    wrapped[0] = '[';
    memcpy(wrapped + 1, body, len);
    wrapped[len + 1] = ']';
    arr = ac_json_parse(p, wrapped, len + 2, why);
    if (json_array_size(arr) != 1) {
        *why = arr ? "more than one JSON value" : *why;
        return NULL;
    }
    return json_array_get(arr, 0); /* kept alive by arr, which p owns */
}

/* The reply as a result object: objects as they are, anything else wrapped. */
static json_t *http_tool_result(apr_pool_t *p, json_t *reply)
{
    json_t *res;

    if (json_is_object(reply)) {
        return reply;
    }
    res = ac_json_object(p);
    json_object_set(res, "result", reply ? reply : json_null());
    return res;
}

static apr_status_t http_tool_call(const ac_tool_t *tool, ac_tool_ctx_t *ctx, json_t *args,
                                   json_t **result, const char **error)
{
    const http_tool_conf_t *conf = tool->baton;
    ac_http_resp_t *resp = NULL;
    const char *why = NULL;
    apr_status_t rv = APR_EINVAL;
    ac_http_req_t req;
    json_t *reply = NULL;

    *result = NULL;
    *error = NULL;
    if (args && !json_is_object(args)) {
        *error = "arguments must be a JSON object";
        goto leave;
    }
    if (!ctx->http) {
        *error = "tool endpoint not configured";
        rv = APR_EINIT;
        goto leave;
    }
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = conf->url;
    req.headers = apr_table_make(ctx->pool, 2);
    apr_table_setn(req.headers, "Content-Type", "application/json");
    apr_table_setn(req.headers, "Accept", "application/json");
    req.body = ac_json_dumpn(ctx->pool, args ? args : ac_json_object(ctx->pool), &req.body_len);
    req.timeout = ctx->timeout > 0 ? ctx->timeout : AC_TOOL_HTTP_DEFAULT_TIMEOUT;
    req.max_response = conf->max_response;
    rv = ac_http_perform(ctx->http, &req, ctx->pool, &resp, &why);
    if (rv != APR_SUCCESS) {
        ac_log(AC_LOG_WARN, rv, "tool %s: request failed: %s", tool->name, why ? why : "error");
        *error = rv == APR_TIMEUP   ? "tool endpoint timed out"
                 : rv == APR_ENOSPC ? "tool endpoint answer too large"
                                    : "tool endpoint unreachable";
        goto leave;
    }
    if (resp->status < 200 || resp->status > 299) {
        ac_log(AC_LOG_WARN, 0, "tool %s: endpoint answered HTTP %d", tool->name, resp->status);
        *error = apr_psprintf(ctx->pool, "tool endpoint answered HTTP %d", resp->status);
        rv = APR_EGENERAL;
        goto leave;
    }
    if (resp->status != 204 && resp->body_len > 0 &&
        !(reply = http_tool_parse_any(ctx->pool, resp->body, resp->body_len, &why))) {
        ac_log(AC_LOG_WARN, 0, "tool %s: endpoint sent invalid JSON: %s", tool->name, why);
        *error = "tool endpoint sent invalid JSON";
        rv = APR_EGENERAL;
        goto leave;
    }
    *result = http_tool_result(ctx->pool, reply);
leave:
    return rv;
}

const ac_tool_t *ac_tool_http(apr_pool_t *p, const char *name, const char *url,
                              const char *schema_json, const char *description,
                              apr_size_t max_response)
{
    http_tool_conf_t *conf;
    ac_tool_t *t;

    if (!ac_tool_name_valid(name) || !url ||
        (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)) {
        return NULL;
    }
    conf = apr_pcalloc(p, sizeof(*conf));
    conf->url = apr_pstrdup(p, url);
    conf->max_response = max_response ? max_response : AC_TOOL_HTTP_DEFAULT_MAX_RESPONSE;
    t = apr_pcalloc(p, sizeof(*t));
    t->name = apr_pstrdup(p, name);
    t->description = apr_pstrdup(p, description ? description : "");
    t->parameters_json = apr_pstrdup(p, schema_json ? schema_json : AC_TOOL_HTTP_NO_PARAMETERS);
    t->call = http_tool_call;
    t->baton = conf;
    return t;
}
