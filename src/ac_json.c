/* ac_json: jansson values whose lifetimes follow APR pools. */
#include "ac_json.h"

#include <apr_strings.h>

static apr_status_t json_cleanup(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

json_t *ac_json_own(apr_pool_t *p, json_t *j)
{
    if (j) {
        apr_pool_cleanup_register(p, j, json_cleanup, apr_pool_cleanup_null);
    }
    return j;
}

json_t *ac_json_parse(apr_pool_t *p, const char *text, apr_size_t len, const char **err)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

    if (!j) {
        if (err) {
            *err = apr_psprintf(p, "%s at line %d column %d", jerr.text, jerr.line, jerr.column);
        }
        return NULL;
    }
    return ac_json_own(p, j);
}

char *ac_json_dumpn(apr_pool_t *p, const json_t *j, apr_size_t *len)
{
    size_t n;
    char *buf;

    if (!j) {
        return NULL;
    }
    n = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    buf = apr_palloc(p, n + 1);
    json_dumpb(j, buf, n, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    buf[n] = '\0';
    if (len) {
        *len = n;
    }
    return buf;
}

char *ac_json_dump(apr_pool_t *p, const json_t *j)
{
    return ac_json_dumpn(p, j, NULL);
}

json_t *ac_json_object(apr_pool_t *p)
{
    return ac_json_own(p, json_object());
}

json_t *ac_json_array(apr_pool_t *p)
{
    return ac_json_own(p, json_array());
}

const char *ac_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

json_int_t ac_json_int(const json_t *obj, const char *key, json_int_t dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

int ac_json_bool(const json_t *obj, const char *key, int dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

void ac_json_set_str(json_t *obj, const char *key, const char *val)
{
    json_object_set_new(obj, key, val ? json_string(val) : json_null());
}

void ac_json_set_int(json_t *obj, const char *key, json_int_t val)
{
    json_object_set_new(obj, key, json_integer(val));
}
