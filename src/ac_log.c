/* ac_log: forwards core log lines to the installed callback (stderr if none). */
#include "ac_log.h"

#include <apr_strings.h>
#include <stdarg.h>
#include <stdio.h>

static ac_log_cb *log_cb;
static void *log_baton;
static ac_log_level_e log_max = AC_LOG_WARN;

void ac_log_set(ac_log_cb *cb, void *baton, ac_log_level_e max_level)
{
    log_cb = cb;
    log_baton = baton;
    log_max = max_level;
}

int ac_log_enabled(ac_log_level_e level)
{
    return level <= log_max;
}

void ac_log(ac_log_level_e level, apr_status_t rv, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    if (!ac_log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    apr_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (log_cb) {
        log_cb(log_baton, level, rv, buf);
    }
    else {
        fprintf(stderr, "[agentchat:%d] %s\n", (int)level, buf);
    }
}
