/* ac_err: construction of API errors. */
#include "ac_err.h"

#include <apr_strings.h>
#include <stdarg.h>

ac_err_t *ac_err_make(apr_pool_t *p, int status, const char *code, const char *fmt, ...)
{
    ac_err_t *e = apr_pcalloc(p, sizeof(*e));
    va_list ap;

    va_start(ap, fmt);
    e->message = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    e->status = status;
    e->code = code;
    return e;
}
