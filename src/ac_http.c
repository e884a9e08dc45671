/* ac_http: outbound HTTP/1.1 over libcurl, the only file that includes curl.h.
 * Keeps a per-process, mutex-guarded stack of reset CURL easy handles so that
 * their connection caches give keep-alive reuse; maps CURLcode to apr_status_t;
 * collects response bodies into pool memory under a hard cap, or streams them.
 * Error texts never carry request headers or bodies (they hold credentials). */
#include "ac_http.h"
#include "ac_log.h"

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <curl/curl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* A collected body is never unbounded, even when the caller left the cap at 0. */
#define AC_HTTP_DEFAULT_MAX_RESPONSE ((apr_size_t)8 * 1024 * 1024)
/* Cumulative over all header blocks of one transfer (1xx, final, trailers). */
#define AC_HTTP_MAX_HEADER_BYTES ((apr_size_t)256 * 1024)
#define AC_HTTP_MAX_IDLE_LIMIT 1024

struct ac_http_pool {
    apr_thread_mutex_t *mutex;
    CURL **idle; /* stack of reset handles, most recently used on top */
    int nidle;
    int max_idle;
    pid_t pid; /* creator; any other process must not touch the stack */
    const char *ca_file;
    int verify_tls;
    long connect_timeout_ms;
};

/* State of one transfer, shared by the curl callbacks. */
typedef struct {
    const ac_http_req_t *req;
    apr_pool_t *p;
    CURL *curl;
    apr_table_t *headers;
    apr_size_t header_bytes;
    int status;  /* from the latest status line */
    int decided; /* stream-or-collect chosen at the first body byte */
    int streaming;
    char *buf;
    apr_size_t len, cap, max;
    apr_status_t abort_rv; /* why a callback stopped the transfer */
    apr_time_t next_tick;
    const char *abort_why;
} xfer_t;

#define SETOPT(h, opt, val)                                                                        \
    do {                                                                                           \
        if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK) {                                     \
            *why = "cannot set curl option " #opt;                                                 \
            rv = APR_EGENERAL;                                                                     \
            goto leave;                                                                            \
        }                                                                                          \
    } while (0)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init_once(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

apr_status_t ac_http_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_rc == CURLE_OK ? APR_SUCCESS : APR_EGENERAL;
}

static apr_status_t pool_cleanup(void *data)
{
    ac_http_pool_t *pool = data;

    /* A child that inherited the pool must not close the parent's connections:
     * curl would write a TLS close_notify into the parent's live session. */
    if (pool->pid == getpid()) {
        while (pool->nidle > 0) {
            curl_easy_cleanup(pool->idle[--pool->nidle]);
        }
    }
    pool->nidle = 0;
    return APR_SUCCESS;
}

apr_status_t ac_http_pool_create(ac_http_pool_t **ppool, apr_pool_t *p,
                                 const ac_http_pool_conf_t *conf)
{
    ac_http_pool_t *pool = apr_pcalloc(p, sizeof(*pool));
    apr_status_t rv;

    *ppool = NULL;
    pool->pid = getpid();
    pool->verify_tls = conf ? conf->verify_tls != 0 : 1;
    pool->ca_file = (conf && conf->ca_file) ? apr_pstrdup(p, conf->ca_file) : NULL;
    pool->max_idle = conf ? conf->max_idle : 16;
    if (pool->max_idle < 0) {
        pool->max_idle = 0;
    }
    else if (pool->max_idle > AC_HTTP_MAX_IDLE_LIMIT) {
        pool->max_idle = AC_HTTP_MAX_IDLE_LIMIT;
    }
    if (conf && conf->connect_timeout > 0) {
        pool->connect_timeout_ms = (long)((conf->connect_timeout + 999) / 1000);
    }
    pool->idle = apr_pcalloc(p, sizeof(CURL *) * (apr_size_t)(pool->max_idle + 1));
    if (APR_SUCCESS != (rv = apr_thread_mutex_create(&pool->mutex, APR_THREAD_MUTEX_DEFAULT, p))) {
        goto leave;
    }
    /* Registered after the mutex, so it runs before the mutex is destroyed. */
    apr_pool_cleanup_register(p, pool, pool_cleanup, apr_pool_cleanup_null);
    *ppool = pool;
leave:
    return rv;
}

/* Take an idle handle or make a new one.  *reusable says whether it may go back. */
static CURL *handle_get(ac_http_pool_t *pool, int *reusable)
{
    CURL *h = NULL;

    /* Over fork the stack (and the mutex state) belongs to another process. */
    *reusable = (pool->pid == getpid());
    if (*reusable && pool->max_idle > 0 && apr_thread_mutex_lock(pool->mutex) == APR_SUCCESS) {
        if (pool->nidle > 0) {
            h = pool->idle[--pool->nidle];
        }
        apr_thread_mutex_unlock(pool->mutex);
    }
    return h ? h : curl_easy_init();
}

/* Return a handle after a clean transfer; anything else is destroyed. */
static void handle_put(ac_http_pool_t *pool, CURL *h, int reusable)
{
    if (reusable && pool->max_idle > 0) {
        /* reset drops options and callbacks but keeps the connection cache */
        curl_easy_reset(h);
        if (apr_thread_mutex_lock(pool->mutex) == APR_SUCCESS) {
            if (pool->nidle < pool->max_idle) {
                pool->idle[pool->nidle++] = h;
                h = NULL;
            }
            apr_thread_mutex_unlock(pool->mutex);
        }
    }
    if (h) {
        curl_easy_cleanup(h);
    }
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *baton)
{
    xfer_t *x = baton;
    size_t len = size * nmemb, end = len, i;
    const char *colon, *v, *ve;

    x->header_bytes += len;
    if (x->header_bytes > AC_HTTP_MAX_HEADER_BYTES) {
        x->abort_rv = APR_ENOSPC;
        x->abort_why = "response headers too large";
        return 0;
    }
    while (end > 0 && (data[end - 1] == '\r' || data[end - 1] == '\n')) {
        end--;
    }
    if (end >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new status line (after 1xx or a proxy answer): only the final
         * response's headers count. */
        apr_table_clear(x->headers);
        x->status = 0;
        for (i = 5; i < end && data[i] != ' '; i++) {
        }
        if (i + 4 <= end && is_digit(data[i + 1]) && is_digit(data[i + 2]) &&
            is_digit(data[i + 3])) {
            x->status = (data[i + 1] - '0') * 100 + (data[i + 2] - '0') * 10 + (data[i + 3] - '0');
        }
        return len;
    }
    if (end == 0 || data[0] == ' ' || data[0] == '\t') {
        return len; /* end of block, or obsolete line folding (RFC 9112 lets us drop it) */
    }
    colon = memchr(data, ':', end);
    if (!colon || colon == data) {
        return len; /* not a header line; curl has already judged the response */
    }
    v = colon + 1;
    ve = data + end;
    while (v < ve && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
        ve--;
    }
    apr_table_addn(x->headers, apr_pstrmemdup(x->p, data, (apr_size_t)(colon - data)),
                   apr_pstrmemdup(x->p, v, (apr_size_t)(ve - v)));
    return len;
}

/* Choose, at the first body byte, whether to stream or collect.  Error bodies
 * are collected even when streaming so the caller can report them. */
static int body_decide(xfer_t *x)
{
    curl_off_t clen = -1;

    x->decided = 1;
    x->streaming = x->req->on_data && x->status >= 200 && x->status < 300;
    if (x->streaming) {
        return 1;
    }
    if (curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen) == CURLE_OK &&
        clen >= 0) {
        if ((apr_uint64_t)clen > x->max) {
            return 0; /* refuse up front rather than after reading x->max bytes */
        }
        x->cap = (apr_size_t)clen + 1;
        x->buf = apr_palloc(x->p, x->cap);
    }
    return 1;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *baton)
{
    xfer_t *x = baton;
    size_t len = size * nmemb;
    apr_size_t ncap;
    char *nbuf;

    if (!x->decided && !body_decide(x)) {
        goto too_big;
    }
    if (x->streaming) {
        if (len > 0 && x->req->on_data(x->req->baton, data, len) != 0) {
            x->abort_rv = APR_ECONNABORTED;
            x->abort_why = "transfer stopped by the receiver";
            return 0;
        }
        return len;
    }
    if (len > x->max - x->len) {
        goto too_big;
    }
    if (x->len + len + 1 > x->cap) {
        /* Doubling bounds the pool memory thrown away to about the final size. */
        ncap = x->cap ? x->cap * 2 : 4096;
        if (ncap < x->len + len + 1) {
            ncap = x->len + len + 1;
        }
        if (ncap > x->max + 1) {
            ncap = x->max + 1;
        }
        nbuf = apr_palloc(x->p, ncap);
        if (x->len) {
            memcpy(nbuf, x->buf, x->len);
        }
        x->buf = nbuf;
        x->cap = ncap;
    }
    memcpy(x->buf + x->len, data, len);
    x->len += len;
    return len;
too_big:
    x->abort_rv = APR_ENOSPC;
    x->abort_why = "response body larger than the allowed maximum";
    return 0;
}

typedef struct {
    struct curl_slist *list;
    apr_pool_t *p;
    apr_status_t rv;
    int has_ctype;
} hdr_build_t;

static int header_ok(const char *name, const char *value)
{
    const char *c;

    if (!name || !*name || !value) {
        return 0;
    }
    for (c = name; *c; c++) {
        if (*c <= ' ' || *c == ':' || *c == 0x7f) {
            return 0;
        }
    }
    /* CR or LF in a value would let it smuggle extra headers or requests. */
    return strpbrk(value, "\r\n") == NULL;
}

static int header_append(hdr_build_t *hb, const char *line)
{
    struct curl_slist *n = curl_slist_append(hb->list, line);

    if (!n) {
        hb->rv = APR_ENOMEM;
        return 0;
    }
    hb->list = n;
    return 1;
}

static int header_add(void *baton, const char *name, const char *value)
{
    hdr_build_t *hb = baton;

    if (!header_ok(name, value)) {
        hb->rv = APR_EINVAL;
        return 0;
    }
    if (strcasecmp(name, "Content-Type") == 0) {
        hb->has_ctype = 1;
    }
    /* curl reads a blank "Name:" as "remove this header"; "Name;" sends it empty. */
    return header_append(hb, value[strspn(value, " \t")]
                                 ? apr_pstrcat(hb->p, name, ": ", value, NULL)
                                 : apr_pstrcat(hb->p, name, ";", NULL));
}

static apr_status_t build_headers(const ac_http_req_t *req, apr_pool_t *p, struct curl_slist **out,
                                  const char **why)
{
    hdr_build_t hb = {NULL, p, APR_SUCCESS, 0};

    if (req->headers) {
        apr_table_do(header_add, &hb, req->headers, NULL);
    }
    if (hb.rv == APR_EINVAL) {
        *why = "invalid request header name or value";
        goto leave;
    }
    /* No 100-continue round trip; and no curl default form content type. */
    if (hb.rv == APR_SUCCESS && header_append(&hb, "Expect:") && req->body && !hb.has_ctype) {
        header_append(&hb, "Content-Type:");
    }
    if (hb.rv != APR_SUCCESS) {
        *why = "out of memory building request headers";
    }
leave:
    *out = hb.list; /* caller frees, also on error */
    return hb.rv;
}

static apr_status_t set_method(CURL *h, const ac_http_req_t *req, const char **why)
{
    apr_status_t rv = APR_SUCCESS;
    const char *m = req->method;
    int bodyless = !strcmp(m, "GET") || !strcmp(m, "HEAD");

    if (bodyless && req->body) {
        *why = "a GET or HEAD request cannot carry a body";
        rv = APR_EINVAL;
        goto leave;
    }
    if (!strcmp(m, "GET")) {
        SETOPT(h, CURLOPT_HTTPGET, 1L);
    }
    else if (!strcmp(m, "HEAD")) {
        SETOPT(h, CURLOPT_NOBODY, 1L);
    }
    else if (!strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH") ||
             !strcmp(m, "DELETE")) {
        if (strcmp(m, "POST") != 0) {
            SETOPT(h, CURLOPT_CUSTOMREQUEST, m);
        }
        /* A bodyless DELETE stays bodyless; the others always send a
         * Content-Length (0 when empty).  The explicit size lets bodies hold NULs. */
        if (req->body || strcmp(m, "DELETE") != 0) {
            SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
            SETOPT(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        }
    }
    else {
        *why = "unsupported HTTP method";
        rv = APR_EINVAL;
    }
leave:
    return rv;
}

/* curl calls this often while data flows and about once a second when idle. */
static int on_progress(void *baton, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    xfer_t *x = baton;
    apr_time_t now = apr_time_now();

    if (now < x->next_tick) {
        return 0;
    }
    x->next_tick = now + x->req->tick_interval;
    if (x->req->on_tick(x->req->baton) != 0) {
        x->abort_rv = APR_ECONNABORTED;
        x->abort_why = "stopped by the caller";
        return 1;
    }
    return 0;
}

static apr_status_t set_options(ac_http_pool_t *pool, CURL *h, const ac_http_req_t *req,
                                struct curl_slist *hdrs, xfer_t *x, char *errbuf, const char **why)
{
    apr_status_t rv = APR_SUCCESS;
    long timeout_ms = req->timeout > 0 ? (long)((req->timeout + 999) / 1000) : 0;

    SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(h, CURLOPT_URL, req->url);
    /* never file://, ftp:// etc.; the bitmask form is deprecated since 7.85 */
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(h, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM in a threaded server */
    SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(h, CURLOPT_SSL_VERIFYPEER, pool->verify_tls ? 1L : 0L);
    SETOPT(h, CURLOPT_SSL_VERIFYHOST, pool->verify_tls ? 2L : 0L);
    if (pool->ca_file) {
        SETOPT(h, CURLOPT_CAINFO, pool->ca_file);
    }
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, pool->connect_timeout_ms);
    SETOPT(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L); /* long idle streams behind NATs */
    SETOPT(h, CURLOPT_HTTPHEADER, hdrs);
    SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(h, CURLOPT_HEADERDATA, x);
    SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(h, CURLOPT_WRITEDATA, x);
    if (req->on_tick) {
        x->next_tick = apr_time_now() + req->tick_interval;
        SETOPT(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        SETOPT(h, CURLOPT_XFERINFODATA, x);
        SETOPT(h, CURLOPT_NOPROGRESS, 0L);
    }
    rv = set_method(h, req, why);
leave:
    return rv;
}

static apr_status_t map_curl_error(CURLcode cc, const xfer_t *x, const char *errbuf, apr_pool_t *p,
                                   const char **why)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(cc);

    *why = detail;
    switch (cc) {
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_WRITE_ERROR:
        if (x->abort_rv != APR_SUCCESS) {
            *why = x->abort_why;
            return x->abort_rv;
        }
        return APR_EGENERAL;
    case CURLE_OPERATION_TIMEDOUT:
        return APR_TIMEUP;
    case CURLE_COULDNT_CONNECT:
        return APR_ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return APR_EHOSTUNREACH;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return APR_ECONNRESET;
    case CURLE_OUT_OF_MEMORY:
        return APR_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return APR_EINVAL;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
#if LIBCURL_VERSION_NUM >= 0x074900 /* 7.73 */
    case CURLE_SSL_CLIENTCERT:
#endif
    case CURLE_USE_SSL_FAILED:
        *why = apr_pstrcat(p, "TLS verification/handshake failed: ", detail, NULL);
        return APR_EGENERAL;
    default:
        return APR_EGENERAL;
    }
}

apr_status_t ac_http_perform(ac_http_pool_t *pool, const ac_http_req_t *req, apr_pool_t *p,
                             ac_http_resp_t **presp, const char **err)
{
    apr_status_t rv = APR_SUCCESS;
    ac_http_resp_t *resp = apr_pcalloc(p, sizeof(*resp));
    char *errbuf = apr_pcalloc(p, CURL_ERROR_SIZE);
    struct curl_slist *hdrs = NULL;
    const char *why = NULL;
    CURL *h = NULL;
    int reusable = 0;
    CURLcode cc;
    xfer_t x;

    memset(&x, 0, sizeof(x));
    resp->headers = apr_table_make(p, 16);
    resp->body = "";
    *presp = resp;
    if (!pool || !req || !req->url || !req->method) {
        why = "incomplete request";
        rv = APR_EINVAL;
        goto leave;
    }
    x.req = req;
    x.p = p;
    x.headers = resp->headers;
    x.max = req->max_response ? req->max_response : AC_HTTP_DEFAULT_MAX_RESPONSE;
    if (APR_SUCCESS != (rv = build_headers(req, p, &hdrs, &why))) {
        goto leave;
    }
    if (!(x.curl = h = handle_get(pool, &reusable))) {
        why = "cannot create a curl handle";
        rv = APR_ENOMEM;
        goto leave;
    }
    if (APR_SUCCESS != (rv = set_options(pool, h, req, hdrs, &x, errbuf, &why))) {
        goto leave;
    }
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        rv = map_curl_error(cc, &x, errbuf, p, &why);
    }
    /* Only a final (non-1xx) status line counts as a response. */
    resp->status = x.status >= 200 ? x.status : 0;
    if (x.buf) {
        x.buf[x.len] = '\0';
        resp->body = x.buf;
        resp->body_len = x.len;
    }
leave:
    if (h) {
        handle_put(pool, h, reusable && rv == APR_SUCCESS);
    }
    curl_slist_free_all(hdrs);
    if (rv != APR_SUCCESS) {
        /* method and reason only: URLs may carry tokens, headers and bodies secrets */
        ac_log(AC_LOG_DEBUG, rv, "http %s failed: %s", req && req->method ? req->method : "-",
               why ? why : "error");
    }
    if (err) {
        *err = rv == APR_SUCCESS ? NULL : (why ? why : "HTTP transfer failed");
    }
    return rv;
}
