/* Unit tests for config-declared HTTP tools: arguments POSTed as JSON reach an
 * echo endpoint on loopback intact; replies, errors, caps and timeouts become
 * results or short tool errors; schema files are checked on load. */
#include "unit.h"
#include "tool_test_server.h"
#include "ac_http.h"
#include "ac_json.h"
#include "ac_log.h"
#include "tools/ac_tool_http.h"

#include <apr_file_io.h>
#include <apr_strings.h>

typedef struct {
    apr_pool_t *p;
    ts_server_t srv;
    ac_http_pool_t *http;
} fx_t;

static char big_reply[10000];

static void echo_handler(void *baton, const ts_req_t *req, ts_resp_t *resp)
{
    const char *path = req->target;

    if (!strcmp(path, "/echo")) {
        resp->body = req->body;
        resp->body_len = req->body_len;
    } else if (!strcmp(path, "/array")) {
        resp->body = "[1,2,3]";
    } else if (!strcmp(path, "/number")) {
        resp->body = "42";
    } else if (!strcmp(path, "/nocontent")) {
        resp->status = 204;
    } else if (!strcmp(path, "/fail")) {
        resp->status = 500;
        resp->body = "{\"error\":\"boom\"}";
    } else if (!strcmp(path, "/string")) {
        resp->body = " \"done\"\n";
    } else if (!strcmp(path, "/two")) {
        resp->body = "1 2";
    } else if (!strcmp(path, "/sneaky")) {
        resp->body = "1],[2";
    } else if (!strcmp(path, "/html")) {
        resp->ctype = "text/html";
        resp->body = "<html>nope</html>";
    } else if (!strcmp(path, "/big")) {
        memset(big_reply, 'x', sizeof(big_reply) - 1);
        memcpy(big_reply, "{\"data\":\"", 9);
        memcpy(big_reply + sizeof(big_reply) - 3, "\"}", 3);
        resp->body = big_reply;
    } else if (!strcmp(path, "/stall")) {
        resp->stall = 1;
    } else {
        resp->status = 404;
        resp->body = "{}";
    }
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    ac_http_pool_conf_t conf = {NULL, 1, 4, apr_time_from_sec(2)};

    apr_pool_create(&fx->p, NULL);
    if (ts_start(&fx->srv, echo_handler, NULL) != 0 || ac_http_global_init() != APR_SUCCESS ||
        ac_http_pool_create(&fx->http, fx->p, &conf) != APR_SUCCESS) {
        return -1;
    }
    ac_log_set(NULL, NULL, AC_LOG_ERR); /* the expected warnings would only be noise */
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;

    ts_stop(&fx->srv);
    apr_pool_destroy(fx->p);
    free(fx);
    ac_log_set(NULL, NULL, AC_LOG_WARN);
    return 0;
}

static const ac_tool_t *tool_at(fx_t *fx, const char *path, apr_size_t max_response)
{
    return ac_tool_http(fx->p, "lookup_order", apr_pstrcat(fx->p, fx->srv.url, path, NULL), NULL,
                        "Look up an order", max_response);
}

static apr_status_t call(fx_t *fx, const ac_tool_t *tool, const char *args,
                         apr_interval_time_t timeout, json_t **res, const char **err)
{
    ac_tool_ctx_t ctx = {fx->p, timeout, fx->http};
    json_t *jargs = args ? ac_json_parse(fx->p, args, strlen(args), NULL) : NULL;

    *err = NULL;
    return tool->call(tool, &ctx, jargs, res, err);
}

static void test_echo(void **state)
{
    fx_t *fx = *state;
    const char *args = "{\"city\":\"Z\\u00fcrich\",\"n\":3,\"deep\":{\"list\":[1,2.5,true,null]},"
                       "\"quote\":\"a\\\"b\\\\c\\n\",\"emoji\":\"\xf0\x9f\x98\x80\"}";
    json_t *res, *sent = ac_json_parse(fx->p, args, strlen(args), NULL), *got;
    const char *err;
    char *body;

    assert_int_equal(call(fx, tool_at(fx, "/echo", 0), args, 0, &res, &err), APR_SUCCESS);
    assert_null(err);
    assert_true(json_equal(res, sent));
    ts_req_t last = ts_last(&fx->srv, &body);
    assert_string_equal(last.method, "POST");
    assert_string_equal(last.target, "/echo");
    assert_string_equal(last.ctype, "application/json");
    got = ac_json_parse(fx->p, body, strlen(body), NULL);
    assert_true(json_equal(got, sent));
    free(body);
    /* no arguments at all: an empty object goes out */
    assert_int_equal(call(fx, tool_at(fx, "/echo", 0), NULL, 0, &res, &err), APR_SUCCESS);
    assert_true(json_is_object(res) && json_object_size(res) == 0);
}

static void test_wrapped_results(void **state)
{
    fx_t *fx = *state;
    json_t *res;
    const char *err;

    assert_int_equal(call(fx, tool_at(fx, "/array", 0), "{}", 0, &res, &err), APR_SUCCESS);
    assert_string_equal(ac_json_dump(fx->p, res), "{\"result\":[1,2,3]}");
    assert_int_equal(call(fx, tool_at(fx, "/number", 0), "{}", 0, &res, &err), APR_SUCCESS);
    assert_string_equal(ac_json_dump(fx->p, res), "{\"result\":42}");
    assert_int_equal(call(fx, tool_at(fx, "/string", 0), "{}", 0, &res, &err), APR_SUCCESS);
    assert_string_equal(ac_json_dump(fx->p, res), "{\"result\":\"done\"}");
    assert_int_equal(call(fx, tool_at(fx, "/nocontent", 0), "{}", 0, &res, &err), APR_SUCCESS);
    assert_string_equal(ac_json_dump(fx->p, res), "{\"result\":null}");
    assert_int_equal(call(fx, tool_at(fx, "/echo", 0), "{\"s\":\"\"}", 0, &res, &err), APR_SUCCESS);
    assert_string_equal(ac_json_dump(fx->p, res), "{\"s\":\"\"}");
}

static void test_errors(void **state)
{
    fx_t *fx = *state;
    json_t *res;
    const char *err;

    assert_int_equal(call(fx, tool_at(fx, "/fail", 0), "{}", 0, &res, &err), APR_EGENERAL);
    assert_null(res);
    assert_string_equal(err, "tool endpoint answered HTTP 500");
    assert_int_equal(call(fx, tool_at(fx, "/nowhere", 0), "{}", 0, &res, &err), APR_EGENERAL);
    assert_string_equal(err, "tool endpoint answered HTTP 404");
    assert_int_equal(call(fx, tool_at(fx, "/html", 0), "{}", 0, &res, &err), APR_EGENERAL);
    assert_string_equal(err, "tool endpoint sent invalid JSON");
    assert_int_equal(call(fx, tool_at(fx, "/two", 0), "{}", 0, &res, &err), APR_EGENERAL);
    assert_string_equal(err, "tool endpoint sent invalid JSON");
    assert_int_equal(call(fx, tool_at(fx, "/sneaky", 0), "{}", 0, &res, &err), APR_EGENERAL);
    assert_string_equal(err, "tool endpoint sent invalid JSON");
    assert_int_equal(call(fx, tool_at(fx, "/echo", 0), "[1,2]", 0, &res, &err), APR_EINVAL);
    assert_string_equal(err, "arguments must be a JSON object");
}

static void test_size_cap(void **state)
{
    fx_t *fx = *state;
    json_t *res;
    const char *err;

    assert_int_equal(call(fx, tool_at(fx, "/big", 1024), "{}", 0, &res, &err), APR_ENOSPC);
    assert_string_equal(err, "tool endpoint answer too large");
    assert_int_equal(call(fx, tool_at(fx, "/big", 0), "{}", 0, &res, &err), APR_SUCCESS);
    assert_int_equal(strlen(ac_json_str(res, "data")), sizeof(big_reply) - 12);
}

static void test_timeout_and_unreachable(void **state)
{
    fx_t *fx = *state;
    long t0 = ts_now_ms();
    int fd, port = ts_refusing_port(&fd);
    json_t *res;
    const char *err;

    assert_int_equal(call(fx, tool_at(fx, "/stall", 0), "{}", apr_time_from_msec(300), &res, &err),
                     APR_TIMEUP);
    assert_string_equal(err, "tool endpoint timed out");
    assert_true(ts_now_ms() - t0 < 4000);
    assert_true(port > 0);
    const ac_tool_t *dead = ac_tool_http(
        fx->p, "dead", apr_psprintf(fx->p, "http://127.0.0.1:%d/x", port), NULL, NULL, 0);
    assert_int_not_equal(call(fx, dead, "{}", 0, &res, &err), APR_SUCCESS);
    assert_string_equal(err, "tool endpoint unreachable");
    close(fd);
}

static void test_factory(void **state)
{
    fx_t *fx = *state;
    const char *u = "http://127.0.0.1:1/t", *schema = "{\"type\":\"object\"}";
    const ac_tool_t *t;

    t = ac_tool_http(fx->p, "order-lookup_2", u, schema, "Find orders", 0);
    assert_non_null(t);
    assert_string_equal(t->name, "order-lookup_2");
    assert_string_equal(t->description, "Find orders");
    assert_string_equal(t->parameters_json, schema);
    t = ac_tool_http(fx->p, "t", "HTTPS://example.invalid/", NULL, NULL, 0);
    assert_non_null(t);
    assert_string_equal(t->parameters_json, "{\"type\":\"object\",\"properties\":{}}");
    assert_null(ac_tool_http(fx->p, "bad name", u, NULL, NULL, 0));
    assert_null(ac_tool_http(fx->p, "", u, NULL, NULL, 0));
    assert_null(ac_tool_http(fx->p, "t", "ftp://127.0.0.1/x", NULL, NULL, 0));
    assert_null(ac_tool_http(fx->p, "t", "file:///etc/passwd", NULL, NULL, 0));
    assert_null(ac_tool_http(fx->p, "t", NULL, NULL, NULL, 0));
}

static void test_name_valid(void **state)
{
    char n64[65], n65[66];

    memset(n64, 'a', 64);
    n64[64] = '\0';
    memset(n65, 'a', 65);
    n65[65] = '\0';
    assert_true(ac_tool_name_valid("get_weather"));
    assert_true(ac_tool_name_valid("A-z_09"));
    assert_true(ac_tool_name_valid(n64));
    assert_false(ac_tool_name_valid(n65));
    assert_false(ac_tool_name_valid(""));
    assert_false(ac_tool_name_valid(NULL));
    assert_false(ac_tool_name_valid("has space"));
    assert_false(ac_tool_name_valid("dot.name"));
    assert_false(ac_tool_name_valid("caf\xc3\xa9"));
    assert_false(ac_tool_name_valid("a/b"));
}

static const char *write_file(apr_pool_t *p, const char *dir, const char *name, const char *text,
                              apr_size_t len)
{
    if (len == 0) {
        len = strlen(text);
    }
    const char *path = apr_pstrcat(p, dir, "/", name, NULL);
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

static void test_load_schema(void **state)
{
    fx_t *fx = *state;
    apr_pool_t *p = fx->p;
    char dir[] = "/tmp/ac_schema_XXXXXX", *big;
    const char *out, *msg, *path;
    apr_size_t n = AC_TOOL_HTTP_MAX_SCHEMA + 10;

    assert_non_null(mkdtemp(dir));
    path =
        write_file(p, dir, "ok.json",
                   "{\n  \"type\": \"object\",\n  \"properties\": {\"id\": {\"type\": \"string\"}}"
                   "\n}\n",
                   0);
    assert_null(ac_tool_http_load_schema(p, path, &out));
    assert_string_equal(out, "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}}}");
    path = write_file(p, dir, "array.json", "[1]", 0);
    msg = ac_tool_http_load_schema(p, path, &out);
    assert_non_null(strstr(msg, "must be a JSON object with \"type\": \"object\""));
    assert_null(out);
    path = write_file(p, dir, "string.json", "{\"type\":\"string\"}", 0);
    assert_non_null(strstr(ac_tool_http_load_schema(p, path, &out), "\"type\": \"object\""));
    path = write_file(p, dir, "broken.json", "{\"type\":", 0);
    assert_non_null(strstr(ac_tool_http_load_schema(p, path, &out), "is not valid JSON"));
    big = apr_palloc(p, n);
    memset(big, ' ', n);
    memcpy(big, "{\"type\":\"object\"}", 17);
    path = write_file(p, dir, "big.json", big, n);
    assert_non_null(strstr(ac_tool_http_load_schema(p, path, &out), "larger than 64 KiB"));
    msg = ac_tool_http_load_schema(p, apr_pstrcat(p, dir, "/missing.json", NULL), &out);
    assert_non_null(strstr(msg, "cannot read JSON schema file"));
    assert_non_null(ac_tool_http_load_schema(p, NULL, &out));
    for (int i = 0; i < 5; i++) {
        const char *names[] = {"ok.json", "array.json", "string.json", "broken.json", "big.json"};
        assert_int_equal(apr_file_remove(apr_pstrcat(p, dir, "/", names[i], NULL), p), APR_SUCCESS);
    }
    assert_int_equal(apr_dir_remove(dir, p), APR_SUCCESS);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
    cmocka_unit_test_setup_teardown(test_wrapped_results, setup, teardown),
    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
    cmocka_unit_test_setup_teardown(test_timeout_and_unreachable, setup, teardown),
    cmocka_unit_test_setup_teardown(test_factory, setup, teardown),
    cmocka_unit_test(test_name_valid),
    cmocka_unit_test_setup_teardown(test_load_schema, setup, teardown),
};
AC_UNIT_MAIN(tests)
