/* ac_json: the one place that owns jansson lifetimes.
 * Every json_t handed out here is tied to an APR pool: a pool cleanup drops the
 * reference, so callers never json_decref by hand.  Other files may read and
 * build values with jansson's accessors, but parse, dump and ownership go here. */
#ifndef AC_JSON_H
#define AC_JSON_H

#include <apr_pools.h>
#include <jansson.h>

/* Take ownership of a new reference: it is released when pool p is cleared. */
json_t *ac_json_own(apr_pool_t *p, json_t *j);

/* Parse text (need not be NUL-terminated).  On failure returns NULL and, when
 * err is given, a short pool-allocated reason (no input echoed back). */
json_t *ac_json_parse(apr_pool_t *p, const char *text, apr_size_t len, const char **err);

/* Compact serialisation into pool memory; NULL for a NULL value. */
char *ac_json_dump(apr_pool_t *p, const json_t *j);
char *ac_json_dumpn(apr_pool_t *p, const json_t *j, apr_size_t *len);

/* Fresh containers owned by p. */
json_t *ac_json_object(apr_pool_t *p);
json_t *ac_json_array(apr_pool_t *p);

/* Accessors: NULL / default when absent or of another type. */
const char *ac_json_str(const json_t *obj, const char *key);
json_int_t ac_json_int(const json_t *obj, const char *key, json_int_t dflt);
int ac_json_bool(const json_t *obj, const char *key, int dflt);

/* Setters that steal nothing: the value is copied/incref'd. */
void ac_json_set_str(json_t *obj, const char *key, const char *val); /* NULL -> null */
void ac_json_set_int(json_t *obj, const char *key, json_int_t val);

#endif
