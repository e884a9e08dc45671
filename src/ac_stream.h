/* ac_stream: a chat turn delivered as Server-Sent Events.  Each event is handed
 * to the host's writer (which flushes it) the moment it exists: metadata once
 * the user's message is stored, then tokens and tool traces as they happen,
 * then done or error. */
#ifndef AC_STREAM_H
#define AC_STREAM_H

#include "ac_api_int.h"

typedef enum {
    AC_STREAM_NATIVE, /* metadata, token, trace_start, trace_end, done, error */
    AC_STREAM_CHAT    /* seed-compatible: metadata, chunk, done {full_response} */
} ac_stream_flavor_e;

/* Run the turn as a stream.  Errors before the stream started come back as
 * ordinary JSON errors; after that they are events and rc->resp->streamed is set. */
ac_err_t *ac_stream_turn(route_ctx_t *rc, const char *thread_id, const char *content,
                         ac_stream_flavor_e flavor);

/* GET .../runs/{run_id}/events: a finished run is replayed; a run in progress
 * (on any server) is followed from the checkpoints its server writes while
 * someone follows.  Last-Event-ID resumes from the position it names. */
ac_err_t *ac_stream_run_events(route_ctx_t *rc, const char *thread_id, const char *run_id);

/* /agent/stream: the default agent answers one message, nothing is stored;
 * data-only events {"text": ...} (EventSource "message"), then "done". */
ac_err_t *ac_stream_stateless(route_ctx_t *rc, const char *message);

#endif
