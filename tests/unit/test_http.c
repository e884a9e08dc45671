/* Unit tests for ac_http against a tiny in-process HTTP/1.1 server on loopback.
 * The server is one poll() loop in a thread, so stalled or kept-alive
 * connections never block it; it ends when told to, or at a hard deadline. */
#include "unit.h"
#include "ac_http.h"

#include <apr_strings.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 32
#define CONN_BUF 16384
#define SERVER_DEADLINE_MS 20000

typedef struct {
    int fd; /* -1: free slot */
    int id;
    int stalled;
    size_t len;
    char buf[CONN_BUF];
} conn_t;

typedef struct {
    int lfd, port;
    int stop[2];
    conn_t *conns; /* owned by the server thread; here so a forked child still reaches it */
    pthread_t thr;
    pthread_mutex_t mu; /* guards the fields below */
    int accepts, requests;
    char last_method[16];
    char last_headers[4096];
    char last_cl[32]; /* Content-Length as received, "-" when absent */
} srv_t;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0) {
            return; /* the client went away: fine for the abort tests */
        }
        data += n;
        len -= (size_t)n;
    }
}

/* Value of header `name` in a raw header block, "-" when absent. */
static void header_of(const char *hdrs, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *line = hdrs;

    snprintf(out, outlen, "-");
    while (line && *line) {
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ') {
                v++;
            }
            snprintf(out, outlen, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
            return;
        }
        line = strstr(line, "\r\n");
        line = line ? line + 2 : NULL;
    }
}

static void respond(srv_t *s, conn_t *c, const char *method, const char *path, const char *hdrs,
                    const char *body, size_t blen)
{
    char head[1024], test[256], expect[64], ctype[128];
    int i;

    if (!strcmp(path, "/echo")) {
        header_of(hdrs, "X-Test", test, sizeof(test));
        header_of(hdrs, "Expect", expect, sizeof(expect));
        header_of(hdrs, "Content-Type", ctype, sizeof(ctype));
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nX-Echo-Method: %s\r\nX-Mixed-Case: Yes\r\nX-Got-Test: %s\r\n"
                 "X-Got-Expect: %s\r\nX-Got-Ctype: %s\r\nX-Conn: %d\r\nContent-Length: %zu\r\n\r\n",
                 method, test, expect, ctype, c->id, blen);
        send_all(c->fd, head, strlen(head));
        send_all(c->fd, body, blen);
    } else if (!strcmp(path, "/missing")) {
        const char *r = "HTTP/1.1 404 Not Found\r\nContent-Length: 8\r\n\r\nnot here";
        send_all(c->fd, r, strlen(r));
    } else if (!strcmp(path, "/ratelimited")) {
        const char *r =
            "HTTP/1.1 429 Too Many\r\nContent-Length: 21\r\n\r\n{\"error\":\"slow down\"}";
        send_all(c->fd, r, strlen(r));
    } else if (!strcmp(path, "/early")) {
        const char *r = "HTTP/1.1 103 Early Hints\r\nX-Early: 1\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 2\r\n\r\nok";
        send_all(c->fd, r, strlen(r));
    } else if (!strcmp(path, "/big")) {
        static char big[10000];
        memset(big, 'b', sizeof(big));
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", sizeof(big));
        send_all(c->fd, head, strlen(head));
        send_all(c->fd, big, sizeof(big));
    } else if (!strcmp(path, "/bigchunked") || !strcmp(path, "/stream")) {
        int big = !strcmp(path, "/bigchunked");
        const char *parts[] = {"one,", "two,", "three"};
        char chunk[1100];
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        send_all(c->fd, head, strlen(head));
        for (i = 0; i < (big ? 10 : 3); i++) {
            if (big) {
                memcpy(chunk, "3e8\r\n", 5);
                memset(chunk + 5, 'c', 1000);
                memcpy(chunk + 1005, "\r\n", 2);
                send_all(c->fd, chunk, 1007);
            } else {
                snprintf(chunk, sizeof(chunk), "%zx\r\n%s\r\n", strlen(parts[i]), parts[i]);
                send_all(c->fd, chunk, strlen(chunk));
            }
        }
        send_all(c->fd, "0\r\n\r\n", 5);
    } else if (!strcmp(path, "/stall")) {
        const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial";
        send_all(c->fd, r, strlen(r));
        c->stalled = 1; /* never sends the rest; waits for the client to give up */
    } else {
        const char *r = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        send_all(c->fd, r, strlen(r));
    }
    (void)s;
}

/* Serve every complete request in c->buf; returns 0 when the connection must close. */
static int serve(srv_t *s, conn_t *c)
{
    char method[16], path[256], cl[32];
    char *hend, *hdrs;
    size_t hlen, blen;

    if (c->len > 0 && (unsigned char)c->buf[0] == 0x16) {
        /* A TLS ClientHello: answer in plain text so the handshake fails fast. */
        send_all(c->fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
        return 0;
    }
    while (!c->stalled && (hend = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL) {
        hlen = (size_t)(hend - c->buf) + 4;
        hend[2] = '\0'; /* the header block ends with its last CRLF */
        if (sscanf(c->buf, "%15s %255s", method, path) != 2) {
            return 0;
        }
        hdrs = strstr(c->buf, "\r\n") + 2;
        header_of(hdrs, "Content-Length", cl, sizeof(cl));
        blen = strcmp(cl, "-") ? strtoul(cl, NULL, 10) : 0;
        if (blen > CONN_BUF - hlen) {
            return 0;
        }
        if (c->len < hlen + blen) {
            hend[2] = '\r';
            return 1; /* body not complete yet */
        }
        pthread_mutex_lock(&s->mu);
        s->requests++;
        snprintf(s->last_method, sizeof(s->last_method), "%s", method);
        snprintf(s->last_headers, sizeof(s->last_headers), "%s", hdrs);
        snprintf(s->last_cl, sizeof(s->last_cl), "%s", cl);
        pthread_mutex_unlock(&s->mu);
        respond(s, c, method, path, hdrs, c->buf + hlen, blen);
        memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
        c->len -= hlen + blen;
    }
    return 1;
}

static void *srv_main(void *arg)
{
    srv_t *s = arg;
    conn_t *conns = s->conns = calloc(MAX_CONNS, sizeof(*conns));
    struct pollfd pfd[MAX_CONNS + 2];
    int map[MAX_CONNS + 2], i, n, nopen = 0, next_id = 1;
    long deadline = now_ms() + SERVER_DEADLINE_MS;

    if (!conns) {
        return NULL;
    }
    for (i = 0; i < MAX_CONNS; i++) {
        conns[i].fd = -1;
    }
    while (now_ms() < deadline) {
        n = 0;
        pfd[n++] = (struct pollfd){.fd = s->stop[0], .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = nopen < MAX_CONNS ? s->lfd : -1, .events = POLLIN};
        for (i = 0; i < MAX_CONNS; i++) {
            if (conns[i].fd >= 0) {
                map[n] = i;
                pfd[n++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
            }
        }
        if (poll(pfd, (nfds_t)n, (int)(deadline - now_ms())) < 0 && errno != EINTR) {
            break;
        }
        if (pfd[0].revents) {
            break;
        }
        for (i = 2; i < n; i++) {
            conn_t *c = &conns[map[i]];
            ssize_t got;
            if (!pfd[i].revents) {
                continue;
            }
            got = recv(c->fd, c->buf + c->len, CONN_BUF - c->len, 0);
            if (got > 0 && c->stalled) {
                continue;
            }
            if (got > 0) {
                c->len += (size_t)got;
            }
            if (got <= 0 || !serve(s, c) || c->len == CONN_BUF) {
                close(c->fd);
                c->fd = -1;
                nopen--;
            }
        }
        if (pfd[1].revents & POLLIN) {
            int fd = accept(s->lfd, NULL, NULL);
            for (i = 0; fd >= 0 && i < MAX_CONNS; i++) {
                if (conns[i].fd < 0) {
                    conns[i] = (conn_t){.fd = fd, .id = next_id++};
                    nopen++;
                    pthread_mutex_lock(&s->mu);
                    s->accepts++;
                    pthread_mutex_unlock(&s->mu);
                    break;
                }
            }
        }
    }
    for (i = 0; i < MAX_CONNS; i++) {
        if (conns[i].fd >= 0) {
            close(conns[i].fd);
        }
    }
    free(conns);
    s->conns = NULL;
    return NULL;
}

static void srv_start(srv_t *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);

    /* a proxy from the environment must not intercept loopback traffic */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    unsetenv("all_proxy");
    assert_int_equal(ac_http_global_init(), APR_SUCCESS);
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 64), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pipe(s->stop), 0);
    assert_int_equal(pthread_create(&s->thr, NULL, srv_main, s), 0);
}

static void srv_stop(srv_t *s)
{
    assert_int_equal(write(s->stop[1], "x", 1), 1);
    pthread_join(s->thr, NULL);
    close(s->stop[0]);
    close(s->stop[1]);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
}

/* Counters and the last Content-Length, read under the lock (asserts come after). */
static int srv_accepts(srv_t *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->accepts;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static int srv_requests(srv_t *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static const char *srv_last_cl(apr_pool_t *p, srv_t *s)
{
    pthread_mutex_lock(&s->mu);
    const char *cl = apr_pstrdup(p, s->last_cl);
    pthread_mutex_unlock(&s->mu);
    return cl;
}

static const char *url(apr_pool_t *p, const srv_t *s, const char *path)
{
    return apr_psprintf(p, "http://127.0.0.1:%d%s", s->port, path);
}

static ac_http_pool_t *make_pool(apr_pool_t *p, int max_idle)
{
    ac_http_pool_conf_t conf = {NULL, 1, max_idle, apr_time_from_sec(2)};
    ac_http_pool_t *hp;
    assert_int_equal(ac_http_pool_create(&hp, p, &conf), APR_SUCCESS);
    return hp;
}

/* A request with a generous timeout, so no test can hang. */
static ac_http_req_t req_of(const char *method, const char *u)
{
    ac_http_req_t r = {.method = method, .url = u, .timeout = apr_time_from_sec(5)};
    return r;
}

static void test_get_post_roundtrip(void **state)
{
    static const char body[] = "a\0b\r\nc\xff"; /* any bytes, NUL included */
    const char *methods[] = {"PUT", "PATCH", "DELETE"};
    apr_pool_t *p;
    srv_t s;
    ac_http_resp_t *resp;
    const char *err;
    ac_http_req_t r;
    int i;

    apr_pool_create(&p, NULL);
    srv_start(&s);
    ac_http_pool_t *hp = make_pool(p, 4);
    r = req_of("GET", url(p, &s, "/echo"));
    r.headers = apr_table_make(p, 2);
    apr_table_set(r.headers, "X-Test", "hello");
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_SUCCESS);
    assert_null(err);
    assert_int_equal(resp->status, 200);
    assert_string_equal(apr_table_get(resp->headers, "X-Echo-Method"), "GET");
    assert_string_equal(apr_table_get(resp->headers, "X-Got-Test"), "hello");
    assert_int_equal(resp->body_len, 0);
    assert_string_equal(resp->body, "");

    apr_table_set(r.headers, "X-Test", ""); /* sent empty, not dropped */
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_SUCCESS);
    assert_string_equal(apr_table_get(resp->headers, "X-Got-Test"), "");

    r = req_of("POST", url(p, &s, "/echo"));
    r.headers = apr_table_make(p, 2);
    apr_table_set(r.headers, "X-Test", "posted");
    r.body = body;
    r.body_len = sizeof(body) - 1;
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_SUCCESS);
    assert_int_equal(resp->status, 200);
    assert_string_equal(apr_table_get(resp->headers, "X-Echo-Method"), "POST");
    assert_string_equal(apr_table_get(resp->headers, "X-Got-Test"), "posted");
    assert_string_equal(apr_table_get(resp->headers, "X-Got-Expect"), "-");
    assert_string_equal(apr_table_get(resp->headers, "X-Got-Ctype"), "-"); /* no form default */
    assert_int_equal(resp->body_len, sizeof(body) - 1);
    assert_memory_equal(resp->body, body, sizeof(body) - 1);
    assert_int_equal(resp->body[resp->body_len], '\0');

    for (i = 0; i < 3; i++) {
        r = req_of(methods[i], url(p, &s, "/echo"));
        r.headers = apr_table_make(p, 2);
        apr_table_set(r.headers, "Content-Type", "application/json");
        assert_int_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_SUCCESS);
        assert_string_equal(apr_table_get(resp->headers, "X-Echo-Method"), methods[i]);
        assert_string_equal(apr_table_get(resp->headers, "X-Got-Ctype"), "application/json");
        /* PUT/PATCH announce an empty body; a bodyless DELETE sends none */
        assert_string_equal(srv_last_cl(p, &s), i < 2 ? "0" : "-");
    }
    apr_pool_destroy(p);
    srv_stop(&s);
}

static void test_status_and_headers(void **state)
{
    apr_pool_t *p;
    srv_t s;
    ac_http_resp_t *resp;
    ac_http_req_t r;

    apr_pool_create(&p, NULL);
    srv_start(&s);
    ac_http_pool_t *hp = make_pool(p, 4);
    r = req_of("GET", url(p, &s, "/missing"));
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, NULL), APR_SUCCESS);
    assert_int_equal(resp->status, 404);
    assert_string_equal(resp->body, "not here");

    r = req_of("GET", url(p, &s, "/echo"));
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, NULL), APR_SUCCESS);
    assert_string_equal(apr_table_get(resp->headers, "x-mixed-case"), "Yes");
    assert_string_equal(apr_table_get(resp->headers, "X-MIXED-CASE"), "Yes");
    assert_string_equal(apr_table_get(resp->headers, "content-length"), "0");

    /* headers of an interim 1xx response are not the final response's */
    r = req_of("GET", url(p, &s, "/early"));
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, NULL), APR_SUCCESS);
    assert_int_equal(resp->status, 200);
    assert_null(apr_table_get(resp->headers, "X-Early"));
    assert_string_equal(apr_table_get(resp->headers, "X-Final"), "1");
    assert_string_equal(resp->body, "ok");
    apr_pool_destroy(p);
    srv_stop(&s);
}

static void test_max_response(void **state)
{
    apr_pool_t *p;
    srv_t s;
    ac_http_resp_t *resp;
    const char *err;
    ac_http_req_t r;

    apr_pool_create(&p, NULL);
    srv_start(&s);
    ac_http_pool_t *hp = make_pool(p, 4);
    r = req_of("GET", url(p, &s, "/big")); /* Content-Length known up front */
    r.max_response = 1000;
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_ENOSPC);
    assert_non_null(err);
    assert_true(resp->body_len <= 1000);

    r = req_of("GET", url(p, &s, "/bigchunked")); /* length only known as it arrives */
    r.max_response = 5000;
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_ENOSPC);
    assert_true(resp->body_len <= 5000);

    r = req_of("GET", url(p, &s, "/bigchunked"));
    r.max_response = 10000; /* exactly the size: allowed */
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_SUCCESS);
    assert_int_equal(resp->body_len, 10000);
    assert_int_equal(resp->body[10000], '\0');
    apr_pool_destroy(p);
    srv_stop(&s);
}

typedef struct {
    char got[64];
    size_t len;
    int calls;
    int abort_after;
} sink_t;

static int sink_cb(void *baton, const char *data, apr_size_t len)
{
    sink_t *k = baton;
    if (k->len + len < sizeof(k->got)) {
        memcpy(k->got + k->len, data, len);
        k->len += len;
    }
    return ++k->calls >= k->abort_after;
}

static void test_streaming(void **state)
{
    apr_pool_t *p;
    srv_t s;
    ac_http_resp_t *resp;
    ac_http_req_t r;
    sink_t k = {.abort_after = 1000};

    apr_pool_create(&p, NULL);
    srv_start(&s);
    ac_http_pool_t *hp = make_pool(p, 4);
    r = req_of("GET", url(p, &s, "/stream"));
    r.on_data = sink_cb;
    r.baton = &k;
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, NULL), APR_SUCCESS);
    assert_string_equal(k.got, "one,two,three");
    assert_int_equal(resp->body_len, 0);
    assert_string_equal(resp->body, "");

    k = (sink_t){.abort_after = 1};
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, NULL), APR_ECONNABORTED);
    assert_int_equal(k.calls, 1);

    /* an error status is collected, so the caller can read why */
    k = (sink_t){.abort_after = 1};
    r.url = url(p, &s, "/ratelimited");
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, NULL), APR_SUCCESS);
    assert_int_equal(resp->status, 429);
    assert_string_equal(resp->body, "{\"error\":\"slow down\"}");
    assert_int_equal(k.calls, 0);
    apr_pool_destroy(p);
    srv_stop(&s);
}

static void test_transport_errors(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    apr_pool_t *p;
    srv_t s;
    ac_http_resp_t *resp;
    const char *err;
    ac_http_req_t r;
    int fd;
    long t0;

    apr_pool_create(&p, NULL);
    srv_start(&s);
    ac_http_pool_t *hp = make_pool(p, 4);

    /* a bound but not listening port refuses connections */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    r = req_of("POST", apr_psprintf(p, "http://127.0.0.1:%d/x", ntohs(sa.sin_port)));
    r.headers = apr_table_make(p, 2);
    apr_table_set(r.headers, "Authorization", "Bearer secret-token");
    r.body = "secret-body";
    r.body_len = strlen(r.body);
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_ECONNREFUSED);
    close(fd);
    assert_non_null(err);
    assert_null(strstr(err, "secret"));
    assert_int_equal(resp->status, 0);

    /* a server that stops mid-body hits the whole-transfer timeout */
    r = req_of("GET", url(p, &s, "/stall"));
    r.timeout = apr_time_from_msec(300);
    t0 = now_ms();
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_TIMEUP);
    assert_true(now_ms() - t0 < 3000);
    assert_int_equal(resp->status, 200);

    /* TLS towards a plain-text server fails the handshake */
    r = req_of("GET", apr_psprintf(p, "https://127.0.0.1:%d/echo", s.port));
    r.timeout = apr_time_from_sec(60);
    /* curl counts the handshake (and CA store loading, slow under valgrind)
     * against the connect timeout */
    ac_http_pool_conf_t slow = {NULL, 1, 1, apr_time_from_sec(60)};
    ac_http_pool_t *tls;
    assert_int_equal(ac_http_pool_create(&tls, p, &slow), APR_SUCCESS);
    assert_int_equal(ac_http_perform(tls, &r, p, &resp, &err), APR_EGENERAL);
    assert_non_null(strstr(err, "TLS"));

    /* bad input never reaches the wire */
    r = req_of("GET", url(p, &s, "/echo"));
    r.headers = apr_table_make(p, 2);
    apr_table_set(r.headers, "X-Test", "a\r\nX-Injected: 1");
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_EINVAL);
    assert_null(strstr(err, "Injected"));
    r = req_of("TRACE", url(p, &s, "/echo"));
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_EINVAL);
    r = req_of("GET", "file:///etc/passwd");
    assert_int_not_equal(ac_http_perform(hp, &r, p, &resp, &err), APR_SUCCESS);
    assert_int_equal(srv_requests(&s), 1); /* only the stalled one */
    apr_pool_destroy(p);
    srv_stop(&s);
}

static void test_keepalive_and_fork(void **state)
{
    apr_pool_t *p;
    srv_t s;
    ac_http_resp_t *resp;
    ac_http_req_t r;
    const char *conn1;
    pid_t pid;
    int status;

    apr_pool_create(&p, NULL);
    srv_start(&s);
    ac_http_pool_t *hp = make_pool(p, 4);
    r = req_of("GET", url(p, &s, "/echo"));
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, NULL), APR_SUCCESS);
    conn1 = apr_table_get(resp->headers, "X-Conn");
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, NULL), APR_SUCCESS);
    assert_string_equal(apr_table_get(resp->headers, "X-Conn"), conn1);
    assert_int_equal(srv_accepts(&s), 1);

    /* A child must not use the parent's pooled handle or its connection. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        apr_pool_t *cp;
        int ok;
        apr_pool_create(&cp, NULL);
        ok = ac_http_perform(hp, &r, cp, &resp, NULL) == APR_SUCCESS && resp->status == 200 &&
             strcmp(apr_table_get(resp->headers, "X-Conn"), conn1) != 0;
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* and the parent's connection is still intact afterwards */
    assert_int_equal(ac_http_perform(hp, &r, p, &resp, NULL), APR_SUCCESS);
    assert_string_equal(apr_table_get(resp->headers, "X-Conn"), conn1);
    assert_int_equal(srv_accepts(&s), 2);
    apr_pool_destroy(p);
    srv_stop(&s);
}

#define NTHREADS 4
#define PER_THREAD 25

typedef struct {
    ac_http_pool_t *hp;
    apr_pool_t *p;
    const char *url;
    int id, ok;
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        ac_http_req_t r = req_of("POST", w->url);
        ac_http_resp_t *resp;
        apr_pool_t *ip;
        apr_pool_create(&ip, w->p);
        r.body = apr_psprintf(ip, "thread %d request %d", w->id, i);
        r.body_len = strlen(r.body);
        if (ac_http_perform(w->hp, &r, ip, &resp, NULL) == APR_SUCCESS && resp->status == 200 &&
            resp->body_len == r.body_len && !memcmp(resp->body, r.body, r.body_len)) {
            w->ok++;
        }
        apr_pool_destroy(ip);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    apr_pool_t *p;
    srv_t s;
    pthread_t thr[NTHREADS];
    worker_t w[NTHREADS];
    int i;

    apr_pool_create(&p, NULL);
    srv_start(&s);
    ac_http_pool_t *hp = make_pool(p, 2); /* fewer idle slots than threads: some handles die */
    for (i = 0; i < NTHREADS; i++) {
        w[i] = (worker_t){.hp = hp, .url = url(p, &s, "/echo"), .id = i};
        /* like an httpd worker: a pool on an allocator of the thread's own */
        apr_allocator_t *a;
        assert_int_equal(apr_allocator_create(&a), APR_SUCCESS);
        assert_int_equal(apr_pool_create_ex(&w[i].p, NULL, NULL, a), APR_SUCCESS);
        apr_allocator_owner_set(a, w[i].p);
        assert_int_equal(pthread_create(&thr[i], NULL, worker, &w[i]), 0);
    }
    for (i = 0; i < NTHREADS; i++) {
        pthread_join(thr[i], NULL);
        assert_int_equal(w[i].ok, PER_THREAD);
        apr_pool_destroy(w[i].p);
    }
    assert_int_equal(srv_requests(&s), NTHREADS * PER_THREAD);
    assert_true(srv_accepts(&s) < NTHREADS * PER_THREAD); /* connections were reused */
    apr_pool_destroy(p);
    srv_stop(&s);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_get_post_roundtrip), cmocka_unit_test(test_status_and_headers),
    cmocka_unit_test(test_max_response),       cmocka_unit_test(test_streaming),
    cmocka_unit_test(test_transport_errors),   cmocka_unit_test(test_keepalive_and_fork),
    cmocka_unit_test(test_concurrent),
};

AC_UNIT_MAIN(tests)
