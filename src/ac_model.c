/* ac_model: streaming chat-completions client with retries before the first token. */
#include "ac_model.h"
#include "ac_json.h"
#include "ac_log.h"

#include <apr_strings.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct ac_model {
    ac_model_conf_t conf;
    ac_http_pool_t *http;
};

/* One attempt's state, shared with the streaming callbacks. */
typedef struct {
    ac_chat_stream_t *cs;
    const ac_chat_stream_cb_t *user_cb;
    void *user_baton;
    apr_time_t start;
    ac_model_result_t *out;
    int (*tick)(void *baton);
    void *tick_baton;
} attempt_t;

ac_model_t *ac_model_create(apr_pool_t *p, const ac_model_conf_t *conf, ac_http_pool_t *http)
{
    ac_model_t *m = apr_pcalloc(p, sizeof(*m));
    m->conf = *conf;
    m->http = http;
    if (m->conf.max_attempts <= 0) {
        m->conf.max_attempts = 4;
    }
    if (m->conf.retry_budget <= 0) {
        m->conf.retry_budget = apr_time_from_sec(30);
    }
    if (m->conf.timeout <= 0) {
        m->conf.timeout = apr_time_from_sec(300);
    }
    if (!m->conf.api_version) {
        m->conf.api_version = "2024-10-21";
    }
    return m;
}

const ac_model_conf_t *ac_model_conf(const ac_model_t *m)
{
    return &m->conf;
}

const char *ac_model_url(const ac_model_t *m, apr_pool_t *p, const char *model)
{
    if (m->conf.provider == AC_PROVIDER_AZURE) {
        return apr_pstrcat(p, m->conf.endpoint, "/openai/deployments/",
                           model ? model : m->conf.deployment,
                           "/chat/completions?api-version=", m->conf.api_version, NULL);
    }
    return apr_pstrcat(p, m->conf.endpoint, "/chat/completions", NULL);
}

json_t *ac_model_body(const ac_model_t *m, apr_pool_t *p, const ac_model_req_t *req)
{
    json_t *body = ac_json_object(p);

    if (m->conf.provider == AC_PROVIDER_OPENAI) {
        ac_json_set_str(body, "model", req->model ? req->model : m->conf.deployment);
    }
    json_object_set(body, "messages", req->messages);
    json_object_set_new(body, "stream", json_true());
    json_object_set_new(body, "stream_options", json_pack("{sb}", "include_usage", 1));
    if (req->tools && json_array_size(req->tools) > 0) {
        json_object_set(body, "tools", req->tools);
        ac_json_set_str(body, "tool_choice", "auto");
    }
    if (req->temperature >= 0) {
        json_object_set_new(body, "temperature", json_real(req->temperature));
    }
    return body;
}

static int relay_token(void *baton, const char *text, apr_size_t len)
{
    attempt_t *a = baton;
    if (!a->out->got_tokens) {
        a->out->got_tokens = 1;
        a->out->ttft = apr_time_now() - a->start;
    }
    return a->user_cb && a->user_cb->on_token ? a->user_cb->on_token(a->user_baton, text, len) : 0;
}

static int relay_tick(void *baton)
{
    attempt_t *a = baton;
    return a->tick(a->tick_baton);
}

static int relay_data(void *baton, const char *data, apr_size_t len)
{
    attempt_t *a = baton;
    /* A stream error (garbage, limits, abort) stops the transfer at once. */
    return ac_chat_stream_feed(a->cs, data, len) != APR_SUCCESS;
}

/* The upstream's own hint, in ms: retry-after-ms wins over Retry-After. */
static apr_interval_time_t retry_hint(apr_table_t *h)
{
    const char *v;
    if (!h) {
        return -1;
    }
    if ((v = apr_table_get(h, "retry-after-ms"))) {
        return apr_time_from_msec(atol(v));
    }
    if ((v = apr_table_get(h, "Retry-After")) && *v >= '0' && *v <= '9') {
        return apr_time_from_sec(atol(v));
    }
    return -1;
}

static void set_error(ac_model_result_t *out, apr_pool_t *p, const char *code, int retryable,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_error(ac_model_result_t *out, apr_pool_t *p, const char *code, int retryable,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out->error = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    out->error_code = code;
    out->retryable = retryable;
}

/* Classify a non-2xx answer; returns 1 when another attempt makes sense. */
static int classify_status(ac_model_result_t *out, apr_pool_t *p, const ac_http_resp_t *resp)
{
    json_t *j = resp->body_len ? ac_json_parse(p, resp->body, resp->body_len, NULL) : NULL;
    json_t *err = json_object_get(j, "error");
    const char *ucode = json_string_value(json_object_get(err, "code"));
    const char *umsg = json_string_value(json_object_get(err, "message"));
    int st = resp->status;

    ac_log(AC_LOG_WARN, 0, "model endpoint answered HTTP %d%s%s: %.200s", st, ucode ? " code=" : "",
           ucode ? ucode : "", umsg ? umsg : "(no message)");
    if (st == 429) {
        set_error(out, p, "model_rate_limited", 1,
                  "The model endpoint is rate limiting (HTTP 429).");
        return 1;
    }
    if (st == 408 || st >= 500) {
        set_error(out, p, "model_unavailable", 1, "The model endpoint failed (HTTP %d).", st);
        return 1;
    }
    if (st == 401 || st == 403) {
        set_error(out, p, "model_auth", 0,
                  "The model endpoint rejected the configured credentials (HTTP %d).", st);
    }
    else if (ucode && strcmp(ucode, "content_filter") == 0) {
        set_error(out, p, "content_filter", 0, "The request was blocked by the content filter.");
    }
    else if (st == 404) {
        set_error(out, p, "model_not_found", 0,
                  "The model endpoint does not know the configured deployment or model.");
    }
    else {
        set_error(out, p, "model_bad_request", 0,
                  "The model endpoint refused the request (HTTP %d).", st);
    }
    return 0;
}

apr_status_t ac_model_complete(ac_model_t *m, apr_pool_t *p, const ac_model_req_t *req,
                               const ac_chat_stream_cb_t *cb, void *baton, ac_model_result_t *out)
{
    apr_table_t *hdrs = apr_table_make(p, 4);
    apr_interval_time_t waited = 0;
    apr_time_t start = apr_time_now();
    ac_chat_stream_cb_t relay = {relay_token};
    ac_http_req_t hreq = {0};
    apr_size_t body_len;
    const char *body = ac_json_dumpn(p, ac_model_body(m, p, req), &body_len);
    apr_status_t rv = APR_EGENERAL;
    ac_chat_stream_limits_t limits = {0, 1024 * 1024, 0, 0};

    memset(out, 0, sizeof(*out));
    out->ttft = -1;
    apr_table_setn(hdrs, "Content-Type", "application/json");
    apr_table_setn(hdrs, "Accept", "text/event-stream");
    if (m->conf.provider == AC_PROVIDER_AZURE) {
        apr_table_setn(hdrs, "api-key", m->conf.api_key ? m->conf.api_key : "");
    }
    else if (m->conf.api_key) {
        apr_table_setn(hdrs, "Authorization", apr_pstrcat(p, "Bearer ", m->conf.api_key, NULL));
    }
    hreq.method = "POST";
    hreq.url = ac_model_url(m, p, req->model);
    hreq.headers = hdrs;
    hreq.body = body;
    hreq.body_len = body_len;
    hreq.timeout = m->conf.timeout;
    hreq.max_response = 256 * 1024; /* error bodies; the stream itself is not collected */
    hreq.on_data = relay_data;
    hreq.on_tick = req->on_tick ? relay_tick : NULL;
    hreq.tick_interval = apr_time_from_msec(100);

    for (int attempt = 1; attempt <= m->conf.max_attempts; attempt++) {
        apr_pool_t *ap;
        attempt_t a = {0};
        ac_http_resp_t *resp = NULL;
        const char *herr = NULL;
        int again = 0;
        apr_interval_time_t hint = -1;

        apr_pool_create(&ap, p);
        /* One answer must fit a Cosmos document (2 MB) with its run alongside. */
        a.cs = ac_chat_stream_create(ap, &limits, &relay, &a);
        a.user_cb = cb;
        a.user_baton = baton;
        a.start = start;
        a.out = out;
        hreq.baton = &a;
        if (req->on_tick) {
            a.tick = req->on_tick;
            a.tick_baton = req->tick_baton;
        }
        out->attempts = attempt;

        rv = ac_http_perform(m->http, &hreq, ap, &resp, &herr);
        out->http_status = resp ? resp->status : 0;
        ac_chat_stream_result(a.cs, &out->stream);
        if (rv == APR_SUCCESS && resp->status >= 200 && resp->status < 300) {
            rv = ac_chat_stream_finish(a.cs);
            ac_chat_stream_result(a.cs, &out->stream);
            if (rv == APR_SUCCESS) {
                out->rv = APR_SUCCESS;
                out->error = NULL;
                out->error_code = NULL;
                return APR_SUCCESS; /* ap lives on in p: the result points into it */
            }
            if (out->stream.status == APR_ECONNABORTED) {
                set_error(out, p, "aborted", 0, "Generation was stopped.");
                break;
            }
            set_error(out, p, "model_error", 1, "The model stream was invalid: %s",
                      out->stream.error ? out->stream.error : "unexpected end");
            again = !out->got_tokens && out->stream.n_tool_calls == 0 &&
                    out->stream.status == APR_INCOMPLETE;
        }
        else if (rv == APR_SUCCESS) {
            again = classify_status(out, p, resp);
            hint = retry_hint(resp->headers);
            rv = APR_EGENERAL;
        }
        else if (rv == APR_ECONNABORTED && out->stream.status == APR_SUCCESS) {
            set_error(out, p, "aborted", 0, "Generation was stopped.");
            break;
        }
        else if (rv == APR_ECONNABORTED && out->stream.status != APR_SUCCESS) {
            /* our stream interpreter stopped the transfer */
            if (out->stream.status == APR_ECONNABORTED) {
                set_error(out, p, "aborted", 0, "Generation was stopped.");
                break;
            }
            set_error(out, p, "model_error", 0, "The model stream was invalid: %s",
                      out->stream.error ? out->stream.error : "error");
        }
        else {
            ac_log(AC_LOG_WARN, rv, "model endpoint request failed: %s", herr ? herr : "error");
            if (rv == APR_TIMEUP) {
                set_error(out, p, "model_timeout", 1, "The model endpoint did not answer in time.");
            }
            else {
                set_error(out, p,
                          out->got_tokens ? "model_stream_interrupted" : "model_unavailable", 1,
                          "The connection to the model endpoint failed.");
            }
            again = !out->got_tokens;
        }
        out->rv = rv;
        if (!again || out->got_tokens || attempt == m->conf.max_attempts) {
            break;
        }
        {
            apr_interval_time_t d = hint >= 0 ? hint : apr_time_from_msec(250) << (attempt - 1);
            if (d > apr_time_from_sec(20) || waited + d > m->conf.retry_budget) {
                break;
            }
            ac_log(AC_LOG_INFO, rv,
                   "model attempt %d failed (%s); retrying in %" APR_TIME_T_FMT " ms", attempt,
                   out->error_code, (apr_time_t)apr_time_as_msec(d));
            apr_pool_destroy(ap);
            apr_sleep(d);
            waited += d;
        }
    }
    return rv == APR_SUCCESS ? APR_EGENERAL : rv;
}
