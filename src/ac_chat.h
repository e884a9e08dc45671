/* ac_chat: one chat turn end to end — store the user's message, run the agent,
 * store the answer and the run.  Used by the JSON routes and the streams. */
#ifndef AC_CHAT_H
#define AC_CHAT_H

#include "ac_agent.h"
#include "ac_store.h"

typedef struct {
    ac_store_t *store;
    ac_agent_env_t env;
    const apr_array_header_t *agents; /* const ac_agent_t * */
    const char *default_agent;
    int history_messages;                    /* earlier messages sent to the model */
    apr_interval_time_t stale_after;         /* a run older than this no longer locks its thread */
    apr_size_t max_message_chars;            /* user message length limit */
    apr_interval_time_t cancel_poll;         /* how often a running turn reads its run document */
    apr_interval_time_t checkpoint_interval; /* partial answers for followers, at most this often */
} ac_chat_conf_t;

/* Hooks for streaming; every member may be NULL. */
typedef struct {
    /* The user message and run are stored; the model is about to be called. */
    void (*on_begin)(void *baton, const ac_turn_t *turn);
    int (*on_token)(void *baton, const char *text, apr_size_t len);
    void (*on_tool_start)(void *baton, const ac_step_t *step);
    void (*on_tool_end)(void *baton, const ac_step_t *step);
    /* About every 250 ms while the turn waits (heartbeats); non-zero stops it. */
    int (*on_tick)(void *baton);
} ac_chat_events_t;

typedef struct {
    ac_turn_t turn;
    ac_agent_result_t result;
    json_t *assistant; /* API shape, or NULL when no answer was stored */
    json_t *run;       /* API shape of the final run */
} ac_chat_out_t;

/* A trace_start (end = 0) or trace_end event object for a step (new reference). */
json_t *ac_chat_trace_event(const ac_step_t *step, int end);

const ac_agent_t *ac_chat_find_agent(const ac_chat_conf_t *cc, const char *name);

/* Run a turn.  Returns NULL when the run completed (or ended incomplete);
 * otherwise the error for the client.  When out->turn.run_id is set, the
 * user's message was stored, whatever the outcome. */
/* Ask a running turn to stop, from any server: flags the run document; the
 * turn notices on its next poll.  *run gets the run (API shape). */
ac_err_t *ac_chat_cancel(const ac_chat_conf_t *cc, ac_cosmos_ctx_t *ctx, const char *principal,
                         const char *thread_id, const char *run_id, json_t **run);

ac_err_t *ac_chat_turn(const ac_chat_conf_t *cc, ac_cosmos_ctx_t *ctx, const char *principal,
                       const char *thread_id, const char *content, const ac_chat_events_t *ev,
                       void *baton, ac_chat_out_t *out);

#endif
