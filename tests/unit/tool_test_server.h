/* tool_test_server.h: a one-thread HTTP/1.1 server on 127.0.0.1:0 for the tool
 * unit tests.  One connection at a time, Connection: close, a handler callback
 * picks the answer.  Every wait is a poll() that also watches the stop pipe and
 * is bounded by a deadline, so a confused client can never hang the tests. */
#ifndef TOOL_TEST_SERVER_H
#define TOOL_TEST_SERVER_H

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
#include <time.h>
#include <unistd.h>

#define TS_FN static __attribute__((unused))
#define TS_BUF (512 * 1024) /* request head + body */
#define TS_CONN_MS 5000     /* per connection, reading or stalling */
#define TS_SERVER_MS 60000  /* whole server lifetime (valgrind is slow) */

typedef struct {
    char method[16];
    char target[4096]; /* path?query as sent */
    char ctype[128];   /* Content-Type, "" when absent */
    const char *body;  /* NUL-terminated */
    size_t body_len;
} ts_req_t;

typedef struct {
    int status;
    const char *ctype; /* default application/json */
    const char *body;  /* default "" */
    size_t body_len;   /* 0: strlen(body) */
    int stall;         /* answer nothing; wait until the client gives up */
} ts_resp_t;

typedef void ts_handler_fn(void *baton, const ts_req_t *req, ts_resp_t *resp);

typedef struct {
    int lfd, port, stop[2];
    pthread_t thr;
    ts_handler_fn *handler;
    void *baton;
    char url[64];
    char *buf;
    pthread_mutex_t mu; /* guards the record of the last request */
    int requests;
    ts_req_t last;
    char *last_body;
} ts_server_t;

static long ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Wait until fd is ready (1), the stop pipe fires or the deadline passes (0). */
static int ts_wait(ts_server_t *s, int fd, short events, long deadline)
{
    struct pollfd pf[2] = {{fd, events, 0}, {s->stop[0], POLLIN, 0}};
    long left;

    while ((left = deadline - ts_now_ms()) > 0) {
        int n = poll(pf, 2, (int)left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0 || pf[1].revents) {
            return 0;
        }
        return 1;
    }
    return 0;
}

static void ts_send(ts_server_t *s, int fd, const char *data, size_t len, long deadline)
{
    while (len > 0 && ts_wait(s, fd, POLLOUT, deadline)) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (n <= 0) {
            return; /* the client went away: expected in the size-cap tests */
        }
        data += n;
        len -= (size_t)n;
    }
}

static void ts_header(const char *head, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *line = strstr(head, "\r\n");

    out[0] = '\0';
    while (line && line[2] != '\r') {
        line += 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ') {
                v++;
            }
            snprintf(out, outlen, "%.*s", (int)(e ? (size_t)(e - v) : strlen(v)), v);
            return;
        }
        line = strstr(line, "\r\n");
    }
}

/* Read one request into s->buf; 0 when the client sent nothing usable. */
static int ts_read_request(ts_server_t *s, int fd, ts_req_t *req, long deadline)
{
    size_t len = 0, need = 0;
    char *end = NULL, cl[32];

    memset(req, 0, sizeof(*req));
    while (len < TS_BUF - 1 && (!end || len < need) && ts_wait(s, fd, POLLIN, deadline)) {
        ssize_t n = recv(fd, s->buf + len, TS_BUF - 1 - len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (n <= 0) {
            return 0;
        }
        len += (size_t)n;
        s->buf[len] = '\0';
        if (!end && (end = strstr(s->buf, "\r\n\r\n"))) {
            ts_header(s->buf, "Content-Length", cl, sizeof(cl));
            need = (size_t)(end + 4 - s->buf) + (size_t)strtoul(cl, NULL, 10);
        }
    }
    if (!end || len < need) {
        return 0;
    }
    ts_header(s->buf, "Content-Type", req->ctype, sizeof(req->ctype));
    *end = '\0';
    if (sscanf(s->buf, "%15s %4095s", req->method, req->target) != 2) {
        return 0;
    }
    req->body = end + 4;
    req->body_len = need - (size_t)(end + 4 - s->buf);
    s->buf[need] = '\0';
    return 1;
}

static void ts_serve_one(ts_server_t *s, int fd)
{
    long deadline = ts_now_ms() + TS_CONN_MS;
    ts_resp_t resp = {200, NULL, NULL, 0, 0};
    char head[256], drain[256];
    ts_req_t req;
    size_t blen;

    if (!ts_read_request(s, fd, &req, deadline)) {
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->requests++;
    s->last = req;
    free(s->last_body);
    s->last_body = malloc(req.body_len + 1);
    memcpy(s->last_body, req.body, req.body_len + 1);
    s->last.body = s->last_body;
    pthread_mutex_unlock(&s->mu);
    s->handler(s->baton, &req, &resp);
    if (resp.stall) {
        /* until the client hangs up (EOF), the test ends or the deadline */
        while (ts_wait(s, fd, POLLIN, deadline) && recv(fd, drain, sizeof(drain), 0) > 0) {
        }
        return;
    }
    resp.body = resp.body ? resp.body : "";
    blen = resp.body_len ? resp.body_len : strlen(resp.body);
    snprintf(
        head, sizeof(head),
        "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
        resp.status, resp.ctype ? resp.ctype : "application/json", blen);
    ts_send(s, fd, head, strlen(head), deadline);
    ts_send(s, fd, resp.body, blen, deadline);
}

static void *ts_main(void *arg)
{
    ts_server_t *s = arg;
    long deadline = ts_now_ms() + TS_SERVER_MS;

    while (ts_wait(s, s->lfd, POLLIN, deadline)) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd >= 0) {
            ts_serve_one(s, fd);
            close(fd);
        }
    }
    return NULL;
}

/* 0 on success; the base URL is then in s->url ("http://127.0.0.1:PORT"). */
TS_FN int ts_start(ts_server_t *s, ts_handler_fn *handler, void *baton)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);

    memset(s, 0, sizeof(*s));
    s->handler = handler;
    s->baton = baton;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!(s->buf = malloc(TS_BUF)) || pipe(s->stop) != 0 ||
        (s->lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 16) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &alen) != 0) {
        return -1;
    }
    s->port = ntohs(a.sin_port);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
    pthread_mutex_init(&s->mu, NULL);
    return pthread_create(&s->thr, NULL, ts_main, s) == 0 ? 0 : -1;
}

TS_FN void ts_stop(ts_server_t *s)
{
    if (write(s->stop[1], "x", 1) != 1) {
        return; /* cannot happen with a fresh pipe; the deadline ends the thread anyway */
    }
    pthread_join(s->thr, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    pthread_mutex_destroy(&s->mu);
    free(s->last_body);
    free(s->buf);
}

/* A copy of the last request (body in a buffer the caller frees). */
TS_FN ts_req_t ts_last(ts_server_t *s, char **body)
{
    ts_req_t r;

    pthread_mutex_lock(&s->mu);
    r = s->last;
    *body = strdup(s->last_body ? s->last_body : "");
    pthread_mutex_unlock(&s->mu);
    r.body = *body;
    return r;
}

TS_FN int ts_requests(ts_server_t *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* A loopback port that refuses connections: bound, never listening. */
TS_FN int ts_refusing_port(int *fd)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((*fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        bind(*fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(*fd, (struct sockaddr *)&a, &alen) != 0) {
        return -1;
    }
    return ntohs(a.sin_port);
}

#endif
