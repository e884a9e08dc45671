/* Unit tests for the get_weather tool against a fake Open-Meteo on loopback:
 * geocoding under /geo and forecast under /wx (so the bases are honoured),
 * canned places, and places that make the upstream misbehave. */
#include "unit.h"
#include "tool_test_server.h"
#include "ac_http.h"
#include "ac_json.h"
#include "ac_log.h"
#include "tools/ac_tool_weather.h"

#include <apr_strings.h>

#define DEG "\xc2\xb0"

typedef struct {
    apr_pool_t *p;
    ts_server_t srv;
    ac_http_pool_t *http;
    const ac_tool_t *tool;
} fx_t;

static struct {
    int warns;
    char last[512];
} logged;

static void log_record(void *baton, ac_log_level_e level, apr_status_t rv, const char *msg)
{
    logged.warns += level <= AC_LOG_WARN;
    snprintf(logged.last, sizeof(logged.last), "%s", msg);
}

/* Value of query parameter key in target, percent-decoded; "" when absent. */
static void query_param(const char *target, const char *key, char *out, size_t outlen)
{
    const char *q = strchr(target, '?');
    size_t kl = strlen(key), o = 0;

    out[0] = '\0';
    while (q && *q) {
        q++;
        if (!strncmp(q, key, kl) && q[kl] == '=') {
            for (q += kl + 1; *q && *q != '&' && o + 1 < outlen; q++) {
                unsigned int c;
                if (*q == '%' && sscanf(q + 1, "%2x", &c) == 1) {
                    out[o++] = (char)c;
                    q += 2;
                } else {
                    out[o++] = *q;
                }
            }
            out[o] = '\0';
            return;
        }
        q = strchr(q, '&');
    }
}

static const struct {
    const char *name, *geo; /* geocoding answer for that name */
} places[] = {
    {"Seattle", "{\"results\":[{\"id\":5809844,\"name\":\"Seattle\",\"latitude\":47.60621,"
                "\"longitude\":-122.33207,\"country\":\"United States\",\"admin1\":\"Washington\","
                "\"timezone\":\"America/Los_Angeles\"}],\"generationtime_ms\":0.7}"},
    {"Tokyo", "{\"results\":[{\"name\":\"Tokyo\",\"latitude\":35.6895,\"longitude\":139.69171,"
              "\"country\":\"Japan\",\"admin1\":\"Tokyo\"}]}"},
    {"Paris", "{\"results\":[{\"name\":\"Paris\",\"latitude\":48.85341,\"longitude\":2.3488,"
              "\"country\":\"France\",\"admin1\":\"\xc3\x8ele-de-France\"}]}"},
    {"Downtown", "{\"results\":[{\"name\":\"Downtown\",\"latitude\":10,\"longitude\":10}]}"},
    {"Junkcast", "{\"results\":[{\"name\":\"Junkcast\",\"latitude\":20,\"longitude\":20}]}"},
    {"Atlantis", "{\"generationtime_ms\":0.3}"},
    {"Emptyville", "{\"results\":[]}"},
    {"Nocoords", "{\"results\":[{\"name\":\"Nocoords\",\"country\":\"Nowhere\"}]}"},
    {"Garbage", "<html>oops</html>"},
};

static void weather_handler(void *baton, const ts_req_t *req, ts_resp_t *resp)
{
    char name[256], lat[32], unit[32];
    int f;
    size_t i;

    if (!strncmp(req->target, "/geo/v1/search?", 15)) {
        query_param(req->target, "name", name, sizeof(name));
        if (!strcmp(name, "Brokenville")) {
            resp->status = 500;
            resp->body = "{\"error\":true}";
            return;
        }
        if (!strcmp(name, "Slowtown")) {
            resp->stall = 1;
            return;
        }
        resp->body = "{\"results\":[]}";
        for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
            if (!strcmp(name, places[i].name)) {
                resp->body = places[i].geo;
            }
        }
        return;
    }
    if (!strncmp(req->target, "/wx/v1/forecast?", 16)) {
        query_param(req->target, "latitude", lat, sizeof(lat));
        query_param(req->target, "temperature_unit", unit, sizeof(unit));
        f = !strcmp(unit, "fahrenheit");
        if (!strcmp(lat, "10.0000")) {
            resp->status = 503;
            resp->body = "busy";
        } else if (!strcmp(lat, "20.0000")) {
            resp->body = "{\"current\":";
        } else if (!strcmp(lat, "47.6062")) {
            resp->body = f ? "{\"current\":{\"time\":\"2026-01-01T12:00\",\"temperature_2m\":54.1,"
                             "\"relative_humidity_2m\":71,\"apparent_temperature\":51.4,"
                             "\"weather_code\":2,\"wind_speed_10m\":9.4},\"current_units\":{"
                             "\"temperature_2m\":\"" DEG "F\",\"wind_speed_10m\":\"km/h\"}}"
                           : "{\"current\":{\"time\":\"2026-01-01T12:00\",\"temperature_2m\":12.3,"
                             "\"relative_humidity_2m\":71,\"apparent_temperature\":10.8,"
                             "\"weather_code\":2,\"wind_speed_10m\":9.4},\"current_units\":{"
                             "\"temperature_2m\":\"" DEG "C\",\"relative_humidity_2m\":\"%\","
                             "\"wind_speed_10m\":\"km/h\"}}";
        } else if (!strcmp(lat, "35.6895")) {
            resp->body = "{\"current\":{\"temperature_2m\":22,\"weather_code\":95}}";
        } else {
            resp->body = "{\"current\":{\"temperature_2m\":18.5,\"weather_code\":61,"
                         "\"wind_speed_10m\":3},\"current_units\":{\"temperature_2m\":\"" DEG "C\","
                         "\"wind_speed_10m\":\"km/h\"}}";
        }
        return;
    }
    resp->status = 404;
    resp->body = "{}";
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    ac_http_pool_conf_t conf = {NULL, 1, 4, apr_time_from_sec(2)};
    const char *geo, *wx;

    apr_pool_create(&fx->p, NULL);
    if (ts_start(&fx->srv, weather_handler, NULL) != 0 || ac_http_global_init() != APR_SUCCESS ||
        ac_http_pool_create(&fx->http, fx->p, &conf) != APR_SUCCESS) {
        return -1;
    }
    geo = apr_pstrcat(fx->p, fx->srv.url, "/geo/", NULL); /* trailing '/' on purpose */
    wx = apr_pstrcat(fx->p, fx->srv.url, "/wx", NULL);
    fx->tool = ac_tool_weather(fx->p, geo, wx);
    memset(&logged, 0, sizeof(logged));
    ac_log_set(log_record, NULL, AC_LOG_WARN);
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

static apr_status_t run_tool(fx_t *fx, const char *args, apr_interval_time_t timeout, json_t **res,
                             const char **err)
{
    ac_tool_ctx_t ctx = {fx->p, timeout, fx->http};
    json_t *jargs = ac_json_parse(fx->p, args, strlen(args), NULL);

    *err = NULL;
    return fx->tool->call(fx->tool, &ctx, jargs, res, err);
}

static void test_happy_path(void **state)
{
    fx_t *fx = *state;
    json_t *res;
    const char *err;
    char *body;

    assert_int_equal(
        run_tool(fx, "{\"location\":\"  Seattle \"}", apr_time_from_sec(5), &res, &err),
        APR_SUCCESS);
    assert_null(err);
    assert_string_equal(ac_json_str(res, "location"), "Seattle, Washington, United States");
    assert_true(json_number_value(json_object_get(res, "latitude")) == 47.60621);
    assert_true(json_number_value(json_object_get(res, "longitude")) == -122.33207);
    assert_true(json_number_value(json_object_get(res, "temperature")) == 12.3);
    assert_string_equal(ac_json_str(res, "unit"), DEG "C");
    assert_true(json_number_value(json_object_get(res, "feels_like")) == 10.8);
    assert_int_equal(ac_json_int(res, "humidity", -1), 71);
    assert_true(json_number_value(json_object_get(res, "wind_speed")) == 9.4);
    assert_string_equal(ac_json_str(res, "wind_unit"), "km/h");
    assert_string_equal(ac_json_str(res, "condition"), "Partly cloudy");
    assert_int_equal(ac_json_int(res, "weather_code", -1), 2);
    ts_req_t last = ts_last(&fx->srv, &body); /* the forecast request came last */
    assert_non_null(strstr(last.target, "latitude=47.6062&longitude=-122.3321&current="
                                        "temperature_2m,relative_humidity_2m,"
                                        "apparent_temperature,weather_code,wind_speed_10m"
                                        "&temperature_unit=celsius"));
    assert_int_equal(ts_requests(&fx->srv), 2);
    assert_int_equal(logged.warns, 0);
    free(body);
}

static void test_other_places(void **state)
{
    fx_t *fx = *state;
    json_t *res;
    const char *err;

    /* admin1 equal to the name is not repeated; a missing field stays out */
    assert_int_equal(run_tool(fx, "{\"location\":\"Tokyo\"}", 0, &res, &err), APR_SUCCESS);
    assert_string_equal(ac_json_str(res, "location"), "Tokyo, Japan");
    assert_string_equal(ac_json_str(res, "condition"), "Thunderstorm");
    assert_string_equal(ac_json_str(res, "unit"), DEG "C"); /* no current_units: our default */
    assert_int_equal(ac_json_int(res, "temperature", 0), 22);
    assert_null(json_object_get(res, "humidity"));
    assert_null(json_object_get(res, "wind_unit"));
    assert_int_equal(run_tool(fx, "{\"location\":\"Paris\"}", 0, &res, &err), APR_SUCCESS);
    assert_string_equal(ac_json_str(res, "location"), "Paris, \xc3\x8ele-de-France, France");
    assert_string_equal(ac_json_str(res, "condition"), "Slight rain");
}

static void test_fahrenheit(void **state)
{
    fx_t *fx = *state;
    json_t *res;
    const char *err;
    char *body;

    assert_int_equal(run_tool(fx, "{\"location\":\"Seattle\",\"unit\":\"fahrenheit\"}",
                              apr_time_from_sec(5), &res, &err),
                     APR_SUCCESS);
    ts_req_t last = ts_last(&fx->srv, &body);
    assert_non_null(strstr(last.target, "&temperature_unit=fahrenheit"));
    assert_true(json_number_value(json_object_get(res, "temperature")) == 54.1);
    assert_string_equal(ac_json_str(res, "unit"), DEG "F");
    assert_string_equal(ac_json_str(res, "condition"), "Partly cloudy");
    free(body);
}

static void test_unknown_place(void **state)
{
    fx_t *fx = *state;
    json_t *res;
    const char *err;

    assert_int_equal(run_tool(fx, "{\"location\":\"Atlantis\"}", 0, &res, &err), APR_NOTFOUND);
    assert_null(res);
    assert_string_equal(err, "Unknown location 'Atlantis'");
    assert_int_equal(run_tool(fx, "{\"location\":\"Emptyville\"}", 0, &res, &err), APR_NOTFOUND);
    assert_string_equal(err, "Unknown location 'Emptyville'");
    assert_int_equal(ts_requests(&fx->srv), 2); /* no forecast asked for */
    assert_int_equal(logged.warns, 0);          /* the model's mistake, not the server's */
}

static void test_url_encoding(void **state)
{
    fx_t *fx = *state;
    json_t *res;
    const char *err;
    char *body;

    assert_int_equal(run_tool(fx, "{\"location\":\"S\xc3\xa3o Paulo & co?=#\"}", 0, &res, &err),
                     APR_NOTFOUND);
    ts_req_t last = ts_last(&fx->srv, &body);
    assert_string_equal(last.target, "/geo/v1/search?name=S%C3%A3o%20Paulo%20%26%20co%3F%3D"
                                     "%23&count=1&language=en&format=json");
    assert_string_equal(err, "Unknown location 'S\xc3\xa3o Paulo & co?=#'");
    free(body);
}

static void test_upstream_errors(void **state)
{
    fx_t *fx = *state;
    json_t *res;
    const char *err;

    assert_int_equal(run_tool(fx, "{\"location\":\"Brokenville\"}", 0, &res, &err), APR_EGENERAL);
    assert_string_equal(err, "weather service unavailable (HTTP 500)");
    assert_int_equal(logged.warns, 1);
    assert_null(strstr(logged.last, "127.0.0.1")); /* no URLs in the log */
    assert_int_equal(run_tool(fx, "{\"location\":\"Downtown\"}", 0, &res, &err), APR_EGENERAL);
    assert_string_equal(err, "weather service unavailable (HTTP 503)");
    assert_int_equal(run_tool(fx, "{\"location\":\"Garbage\"}", 0, &res, &err), APR_EGENERAL);
    assert_string_equal(err, "weather service sent an invalid answer");
    assert_int_equal(run_tool(fx, "{\"location\":\"Junkcast\"}", 0, &res, &err), APR_EGENERAL);
    assert_string_equal(err, "weather service sent an invalid answer");
    assert_int_equal(run_tool(fx, "{\"location\":\"Nocoords\"}", 0, &res, &err), APR_EGENERAL);
    assert_string_equal(err, "weather service sent an invalid answer");
    assert_null(res);
    assert_int_equal(logged.warns, 5);
}

static void test_timeout(void **state)
{
    fx_t *fx = *state;
    long t0 = ts_now_ms();
    json_t *res;
    const char *err;

    assert_int_equal(
        run_tool(fx, "{\"location\":\"Slowtown\"}", apr_time_from_msec(300), &res, &err),
        APR_TIMEUP);
    assert_string_equal(err, "weather service timed out");
    assert_true(ts_now_ms() - t0 < 4000);
}

static void test_unreachable(void **state)
{
    fx_t *fx = *state;
    int fd, port = ts_refusing_port(&fd);
    const char *base = apr_psprintf(fx->p, "http://127.0.0.1:%d", port);
    const ac_tool_t *tool = ac_tool_weather(fx->p, base, base);
    ac_tool_ctx_t ctx = {fx->p, apr_time_from_sec(5), fx->http};
    json_t *res, *args = ac_json_parse(fx->p, "{\"location\":\"Seattle\"}", 22, NULL);
    const char *err;

    assert_true(port > 0);
    assert_int_not_equal(tool->call(tool, &ctx, args, &res, &err), APR_SUCCESS);
    assert_string_equal(err, "weather service unavailable");
    close(fd);
}

static void test_validation(void **state)
{
    fx_t *fx = *state;
    char big[512];
    json_t *res;
    const char *err;

    assert_int_equal(run_tool(fx, "{}", 0, &res, &err), APR_EINVAL);
    assert_string_equal(err, "location must be a string");
    assert_int_equal(run_tool(fx, "{\"location\":42}", 0, &res, &err), APR_EINVAL);
    assert_int_equal(run_tool(fx, "{\"location\":\" \\t \"}", 0, &res, &err), APR_EINVAL);
    assert_string_equal(err, "location must not be empty");
    assert_int_equal(run_tool(fx, "{\"location\":\"a\\u0000b\"}", 0, &res, &err), APR_EINVAL);
    assert_int_equal(run_tool(fx, "{\"location\":\"Seattle\",\"unit\":\"kelvin\"}", 0, &res, &err),
                     APR_EINVAL);
    assert_string_equal(err, "unit must be \"celsius\" or \"fahrenheit\"");
    assert_int_equal(run_tool(fx, "[1]", 0, &res, &err), APR_EINVAL);
    /* 200 characters (two bytes each) pass validation, 201 do not */
    memset(big, 0, sizeof(big));
    strcpy(big, "{\"location\":\"");
    for (int i = 0; i < 200; i++) {
        strcat(big, "\xc3\xa9");
    }
    strcat(big, "\"}");
    assert_int_equal(run_tool(fx, big, 0, &res, &err), APR_NOTFOUND);
    big[strlen(big) - 2] = '\0';
    strcat(big, "x\"}");
    assert_int_equal(run_tool(fx, big, 0, &res, &err), APR_EINVAL);
    assert_string_equal(err, "location must be at most 200 characters");
    assert_int_equal(ts_requests(&fx->srv), 1);
}

static void test_conditions_and_schema(void **state)
{
    fx_t *fx = *state;
    apr_pool_t *p = fx->p;
    json_t *schema;
    const ac_tool_t *dflt = ac_tool_weather(p, NULL, NULL);

    assert_string_equal(ac_weather_condition(0), "Clear sky");
    assert_string_equal(ac_weather_condition(3), "Overcast");
    assert_string_equal(ac_weather_condition(45), "Fog");
    assert_string_equal(ac_weather_condition(57), "Dense freezing drizzle");
    assert_string_equal(ac_weather_condition(65), "Heavy rain");
    assert_string_equal(ac_weather_condition(77), "Snow grains");
    assert_string_equal(ac_weather_condition(82), "Violent rain showers");
    assert_string_equal(ac_weather_condition(86), "Heavy snow showers");
    assert_string_equal(ac_weather_condition(99), "Thunderstorm with heavy hail");
    assert_string_equal(ac_weather_condition(4), "Unknown");
    assert_string_equal(dflt->name, "get_weather");
    schema = ac_json_parse(p, dflt->parameters_json, strlen(dflt->parameters_json), NULL);
    assert_true(json_is_object(schema));
    assert_string_equal(ac_json_str(schema, "type"), "object");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_happy_path, setup, teardown),
    cmocka_unit_test_setup_teardown(test_other_places, setup, teardown),
    cmocka_unit_test_setup_teardown(test_fahrenheit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unknown_place, setup, teardown),
    cmocka_unit_test_setup_teardown(test_url_encoding, setup, teardown),
    cmocka_unit_test_setup_teardown(test_upstream_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
    cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
    cmocka_unit_test_setup_teardown(test_conditions_and_schema, setup, teardown),
};
AC_UNIT_MAIN(tests)
