/* ac_err: an API error as the client sees it — HTTP status, stable code, message.
 * Layers below the routes return one of these (NULL on success) so the status
 * is chosen once, where the cause is known. */
#ifndef AC_ERR_H
#define AC_ERR_H

#include <apr_pools.h>
#include <jansson.h>

typedef struct {
    int status;          /* 400, 404, 409, 422, 502 ... */
    const char *code;    /* "thread_not_found" */
    const char *message; /* for humans; never secrets or raw upstream bodies */
    int retry_after;     /* seconds for 429/503, 0 = none */
    json_t *extra;       /* more members of the error object (ids of what was stored) */
} ac_err_t;

ac_err_t *ac_err_make(apr_pool_t *p, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
