/* ac_watch: the companion thread of a running turn.  It reads the run
 * document every poll interval (has someone asked to cancel? is someone on
 * another server following?) and, only while followed, writes checkpoints of
 * the answer so far.  The request thread never waits on Cosmos mid-stream: it
 * hands text and trace events over and reads one flag. */
#ifndef AC_WATCH_H
#define AC_WATCH_H

#include "ac_store.h"

typedef struct ac_watch ac_watch_t;

/* Start watching run_id (NULL when no thread could be started: the turn then
 * runs without cancel checks or checkpoints, and says so in the log). */
ac_watch_t *ac_watch_start(apr_pool_t *p, ac_store_t *store, const char *thread_id,
                           const char *run_id, apr_interval_time_t poll,
                           apr_interval_time_t checkpoint);

/* Answer text as it streams, and trace events (the watcher takes the reference). */
void ac_watch_text(ac_watch_t *w, const char *text, apr_size_t len);
void ac_watch_trace(ac_watch_t *w, json_t *event);

/* Has a cancel been requested (seen on the last read)? */
int ac_watch_cancelled(ac_watch_t *w);

/* Stop and join the thread; adds its Cosmos cost to ctx. */
void ac_watch_stop(ac_watch_t *w, ac_cosmos_ctx_t *ctx);

#endif
