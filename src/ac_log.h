/* ac_log: the logging seam between the core and whoever hosts it.
 * The core never calls ap_log_*; the httpd glue installs a callback that does,
 * unit tests install one that records.  Messages must never contain secrets. */
#ifndef AC_LOG_H
#define AC_LOG_H

#include <apr_pools.h>

typedef enum {
    AC_LOG_ERR = 3,
    AC_LOG_WARN = 4,
    AC_LOG_NOTICE = 5,
    AC_LOG_INFO = 6,
    AC_LOG_DEBUG = 7,
} ac_log_level_e;

typedef void ac_log_cb(void *baton, ac_log_level_e level, apr_status_t rv, const char *msg);

void ac_log_set(ac_log_cb *cb, void *baton, ac_log_level_e max_level);
int ac_log_enabled(ac_log_level_e level);
void ac_log(ac_log_level_e level, apr_status_t rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
