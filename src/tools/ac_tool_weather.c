/* ac_tool_weather: get_weather over an Open-Meteo-compatible API.
 * Geocoding first (name -> coordinates and a readable place label), then the
 * current conditions at those coordinates.  One deadline covers both requests
 * so the tool never outlives the budget the agent gave it.  Messages for the
 * model are short and never carry URLs (a commercial endpoint may hold an API
 * key in its query); the log line says which step failed and why. */
#include "ac_tool_weather.h"

#include "ac_http.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_util.h"

#include <apr_strings.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *geocoding_base; /* no trailing '/' */
    const char *forecast_base;
} weather_conf_t;

typedef struct {
    const char *label; /* "Seattle, Washington, United States" */
    json_t *latitude, *longitude;
    double lat, lon;
} weather_place_t;

static const char weather_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"location\":{\"type\":\"string\",\"description\":\"City or place name, e.g. \\\"Paris\\\" "
    "or \\\"Seattle\\\"\"},"
    "\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"],"
    "\"description\":\"Temperature unit (default celsius)\"}},"
    "\"required\":[\"location\"],\"additionalProperties\":false}";

static const struct {
    int code;
    const char *text;
} wmo_codes[] = {
    {0, "Clear sky"},
    {1, "Mainly clear"},
    {2, "Partly cloudy"},
    {3, "Overcast"},
    {45, "Fog"},
    {48, "Depositing rime fog"},
    {51, "Light drizzle"},
    {53, "Moderate drizzle"},
    {55, "Dense drizzle"},
    {56, "Light freezing drizzle"},
    {57, "Dense freezing drizzle"},
    {61, "Slight rain"},
    {63, "Moderate rain"},
    {65, "Heavy rain"},
    {66, "Light freezing rain"},
    {67, "Heavy freezing rain"},
    {71, "Slight snow fall"},
    {73, "Moderate snow fall"},
    {75, "Heavy snow fall"},
    {77, "Snow grains"},
    {80, "Slight rain showers"},
    {81, "Moderate rain showers"},
    {82, "Violent rain showers"},
    {85, "Slight snow showers"},
    {86, "Heavy snow showers"},
    {95, "Thunderstorm"},
    {96, "Thunderstorm with slight hail"},
    {99, "Thunderstorm with heavy hail"},
};

const char *ac_weather_condition(int code)
{
    apr_size_t i;

    for (i = 0; i < sizeof(wmo_codes) / sizeof(wmo_codes[0]); i++) {
        if (wmo_codes[i].code == code) {
            return wmo_codes[i].text;
        }
    }
    return "Unknown";
}

/* RFC 3986 percent-encoding of everything but the unreserved characters. */
static char *url_encode(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* A coordinate for the query string; '.' whatever LC_NUMERIC says. */
static const char *format_coord(apr_pool_t *p, double v)
{
    char buf[32], *c;

    snprintf(buf, sizeof(buf), "%.4f", v);
    for (c = buf; *c; c++) {
        if (*c == ',') {
            *c = '.';
        }
    }
    return apr_pstrdup(p, buf);
}

static const char *base_url(apr_pool_t *p, const char *base, const char *dflt)
{
    apr_size_t n;

    if (!base || !*base) {
        base = dflt;
    }
    n = strlen(base);
    while (n > 0 && base[n - 1] == '/') {
        n--;
    }
    return apr_pstrmemdup(p, base, n);
}

/* GET url and parse its JSON answer, within what is left until deadline. */
static apr_status_t weather_fetch(ac_tool_ctx_t *ctx, const char *step, const char *url,
                                  apr_time_t deadline, json_t **out, const char **error)
{
    apr_interval_time_t left = deadline - apr_time_now();
    ac_http_resp_t *resp = NULL;
    const char *why = "no time left";
    apr_status_t rv = APR_TIMEUP;
    ac_http_req_t req;

    *out = NULL;
    if (left > 0) {
        memset(&req, 0, sizeof(req));
        req.method = "GET";
        req.url = url;
        req.headers = apr_table_make(ctx->pool, 1);
        apr_table_setn(req.headers, "Accept", "application/json");
        req.timeout = left;
        req.max_response = AC_WEATHER_MAX_RESPONSE;
        rv = ac_http_perform(ctx->http, &req, ctx->pool, &resp, &why);
    }
    if (rv != APR_SUCCESS) {
        ac_log(AC_LOG_WARN, rv, "get_weather: %s failed: %s", step, why ? why : "error");
        *error = rv == APR_TIMEUP   ? "weather service timed out"
                 : rv == APR_ENOSPC ? "weather service answer too large"
                                    : "weather service unavailable";
        goto leave;
    }
    if (resp->status != 200) {
        ac_log(AC_LOG_WARN, 0, "get_weather: %s answered HTTP %d", step, resp->status);
        *error = apr_psprintf(ctx->pool, "weather service unavailable (HTTP %d)", resp->status);
        rv = APR_EGENERAL;
        goto leave;
    }
    *out = ac_json_parse(ctx->pool, resp->body, resp->body_len, &why);
    if (!json_is_object(*out)) {
        ac_log(AC_LOG_WARN, 0, "get_weather: %s sent no JSON object: %s", step,
               *out ? "another JSON type" : why);
        *error = "weather service sent an invalid answer";
        *out = NULL;
        rv = APR_EGENERAL;
    }
leave:
    return rv;
}

static int usable_string(const char *s)
{
    return s && *s;
}

static apr_status_t weather_geocode(ac_tool_ctx_t *ctx, const weather_conf_t *conf,
                                    const char *location, apr_time_t deadline,
                                    weather_place_t *place, const char **error)
{
    const char *url = apr_pstrcat(ctx->pool, conf->geocoding_base,
                                  "/v1/search?name=", url_encode(ctx->pool, location),
                                  "&count=1&language=en&format=json", NULL);
    const char *name, *admin1, *country;
    json_t *root, *results, *first;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = weather_fetch(ctx, "geocoding", url, deadline, &root, error))) {
        goto leave;
    }
    results = json_object_get(root, "results");
    first = json_array_get(results, 0); /* NULL when absent, not an array or empty */
    if (!first) {
        *error = apr_psprintf(ctx->pool, "Unknown location '%s'", location);
        rv = APR_NOTFOUND;
        goto leave;
    }
    place->latitude = json_object_get(first, "latitude");
    place->longitude = json_object_get(first, "longitude");
    place->lat = json_number_value(place->latitude);
    place->lon = json_number_value(place->longitude);
    if (!json_is_number(place->latitude) || !json_is_number(place->longitude) ||
        !(fabs(place->lat) <= 90.0) || !(fabs(place->lon) <= 180.0)) {
        ac_log(AC_LOG_WARN, 0, "get_weather: geocoding result without valid coordinates");
        *error = "weather service sent an invalid answer";
        rv = APR_EGENERAL;
        goto leave;
    }
    name = ac_json_str(first, "name");
    admin1 = ac_json_str(first, "admin1");
    country = ac_json_str(first, "country");
    place->label = usable_string(name) ? name : location;
    if (usable_string(admin1) && strcmp(admin1, place->label) != 0) {
        place->label = apr_pstrcat(ctx->pool, place->label, ", ", admin1, NULL);
    }
    if (usable_string(country)) {
        place->label = apr_pstrcat(ctx->pool, place->label, ", ", country, NULL);
    }
leave:
    return rv;
}

/* Copy current.<from> into res.<to> when the service reported a number. */
static void copy_number(json_t *res, const char *to, const json_t *current, const char *from)
{
    json_t *v = json_object_get(current, from);

    if (json_is_number(v)) {
        json_object_set(res, to, v);
    }
}

static apr_status_t weather_current(ac_tool_ctx_t *ctx, const weather_conf_t *conf,
                                    const weather_place_t *place, const char *unit,
                                    apr_time_t deadline, json_t *res, const char **error)
{
    const char *url = apr_pstrcat(
        ctx->pool, conf->forecast_base,
        "/v1/forecast?latitude=", format_coord(ctx->pool, place->lat),
        "&longitude=", format_coord(ctx->pool, place->lon),
        "&current=temperature_2m,relative_humidity_2m,apparent_temperature,weather_code,"
        "wind_speed_10m&temperature_unit=",
        unit, NULL);
    const char *tunit, *wunit;
    json_t *root, *current, *units, *code;
    apr_status_t rv;
    double c;

    if (APR_SUCCESS != (rv = weather_fetch(ctx, "forecast", url, deadline, &root, error))) {
        goto leave;
    }
    current = json_object_get(root, "current");
    units = json_object_get(root, "current_units");
    if (!json_is_number(json_object_get(current, "temperature_2m"))) {
        ac_log(AC_LOG_WARN, 0, "get_weather: forecast without current temperature");
        *error = "weather service sent an invalid answer";
        rv = APR_EGENERAL;
        goto leave;
    }
    tunit = ac_json_str(units, "temperature_2m");
    wunit = ac_json_str(units, "wind_speed_10m");
    copy_number(res, "temperature", current, "temperature_2m");
    if (!usable_string(tunit)) {
        tunit = strcmp(unit, "fahrenheit") ? "\u00b0C" : "\u00b0F";
    }
    ac_json_set_str(res, "unit", tunit);
    copy_number(res, "feels_like", current, "apparent_temperature");
    copy_number(res, "humidity", current, "relative_humidity_2m");
    copy_number(res, "wind_speed", current, "wind_speed_10m");
    if (json_object_get(res, "wind_speed")) {
        ac_json_set_str(res, "wind_unit", usable_string(wunit) ? wunit : "km/h");
    }
    code = json_object_get(current, "weather_code");
    c = json_number_value(code);
    if (json_is_number(code) && c >= 0 && c <= 1000 && c == floor(c)) {
        ac_json_set_str(res, "condition", ac_weather_condition((int)c));
        ac_json_set_int(res, "weather_code", (json_int_t)c);
    }
leave:
    return rv;
}

/* location: a non-empty string of at most 200 characters after trimming. */
static const char *weather_location(apr_pool_t *p, json_t *args, const char **error)
{
    json_t *j = json_object_get(args, "location");
    const char *s, *e;

    if (!json_is_string(j)) {
        *error = "location must be a string";
        return NULL;
    }
    s = json_string_value(j);
    if (strlen(s) != json_string_length(j)) {
        *error = "location must not contain NUL characters";
        return NULL;
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        s++;
    }
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) {
        e--;
    }
    if (e == s) {
        *error = "location must not be empty";
        return NULL;
    }
    s = apr_pstrmemdup(p, s, (apr_size_t)(e - s));
    if (ac_utf8_len(s) > AC_WEATHER_MAX_LOCATION) {
        *error = "location must be at most 200 characters";
        return NULL;
    }
    return s;
}

static apr_status_t weather_call(const ac_tool_t *tool, ac_tool_ctx_t *ctx, json_t *args,
                                 json_t **result, const char **error)
{
    const weather_conf_t *conf = tool->baton;
    apr_interval_time_t budget = ctx->timeout > 0 ? ctx->timeout : AC_WEATHER_DEFAULT_TIMEOUT;
    apr_time_t deadline = apr_time_now() + budget;
    json_t *junit = json_object_get(args, "unit"), *res;
    const char *location, *unit = "celsius";
    weather_place_t place;
    apr_status_t rv = APR_EINVAL;

    *result = NULL;
    *error = NULL;
    if (!json_is_object(args)) {
        *error = "arguments must be a JSON object";
        goto leave;
    }
    if (!(location = weather_location(ctx->pool, args, error))) {
        goto leave;
    }
    if (junit && !json_is_null(junit)) {
        unit = json_string_value(junit);
        if (!unit || (strcasecmp(unit, "celsius") && strcasecmp(unit, "fahrenheit"))) {
            *error = "unit must be \"celsius\" or \"fahrenheit\"";
            goto leave;
        }
        unit = strcasecmp(unit, "celsius") ? "fahrenheit" : "celsius";
    }
    if (!ctx->http) {
        *error = "weather service not configured";
        rv = APR_EINIT;
        goto leave;
    }
    memset(&place, 0, sizeof(place));
    rv = weather_geocode(ctx, conf, location, deadline, &place, error);
    if (rv != APR_SUCCESS) {
        goto leave;
    }
    res = ac_json_object(ctx->pool);
    ac_json_set_str(res, "location", place.label);
    json_object_set(res, "latitude", place.latitude);
    json_object_set(res, "longitude", place.longitude);
    rv = weather_current(ctx, conf, &place, unit, deadline, res, error);
    if (rv == APR_SUCCESS) {
        *result = res;
    }
leave:
    return rv;
}

const ac_tool_t *ac_tool_weather(apr_pool_t *p, const char *geocoding_base,
                                 const char *forecast_base)
{
    ac_tool_t *t = apr_pcalloc(p, sizeof(*t));
    weather_conf_t *conf = apr_pcalloc(p, sizeof(*conf));

    conf->geocoding_base = base_url(p, geocoding_base, AC_WEATHER_GEOCODING_DEFAULT);
    conf->forecast_base = base_url(p, forecast_base, AC_WEATHER_FORECAST_DEFAULT);
    t->name = "get_weather";
    t->description = "Get the current weather (temperature, feels-like, humidity, wind and "
                     "conditions) for a city or place. Use it whenever the user asks about the "
                     "weather somewhere instead of guessing.";
    t->parameters_json = weather_schema;
    t->call = weather_call;
    t->baton = conf;
    return t;
}
