/* ac_chat_stream: interprets a streamed chat-completions response (OpenAI and
 * Azure OpenAI, "stream": true) from raw HTTP body bytes.
 *
 * Feed it the body as it arrives; it runs the SSE parser, decodes each chunk
 * and
 *   - hands answer text (choices[0].delta.content) to on_token at once,
 *   - assembles delta.tool_calls fragments by index (id and name come in the
 *     first fragment, arguments in many; calls may interleave),
 *   - records finish_reason, model, usage (also from the final "choices": []
 *     chunk) and whether "data: [DONE]" arrived,
 *   - turns an {"error": {...}} object in the stream, invalid JSON, or an
 *     exceeded limit into a sticky error state.
 * Azure's leading "choices": [] chunk with prompt_filter_results and the
 * content_filter_results in chunks need nothing special: they are ignored.
 *
 * Memory stays flat on long streams: each chunk's JSON lives in a sub-pool
 * cleared after the chunk; text and arguments go to doubling buffers with caps. */
#ifndef AC_CHAT_STREAM_H
#define AC_CHAT_STREAM_H

#include <apr_pools.h>
#include <jansson.h>

typedef struct ac_chat_stream ac_chat_stream_t;

typedef struct {
    /* A piece of answer text, as soon as its chunk is decoded.  text is
     * NUL-terminated and valid only during the call.  Return non-zero to stop:
     * the stream then fails with APR_ECONNABORTED.  May be NULL. */
    int (*on_token)(void *baton, const char *text, apr_size_t len);
} ac_chat_stream_cb_t;

/* Limits; a zero field takes the default. */
typedef struct {
    apr_size_t max_event;     /* one SSE event: 1 MiB */
    apr_size_t max_content;   /* answer text of the turn: 4 MiB */
    apr_size_t max_arguments; /* arguments of one tool call: 64 KiB */
    int max_tool_calls;       /* tool calls in the turn: 16 */
} ac_chat_stream_limits_t;

typedef struct {
    const char *id;        /* upstream id, or "call_..." generated when it sent none */
    const char *name;      /* function name; "" when upstream sent none */
    const char *arguments; /* fragments concatenated: JSON text as the model wrote it,
                              not validated; "" when none came */
    apr_size_t arguments_len;
} ac_chat_tool_call_t;

typedef struct {
    const char *content; /* all answer text so far, NUL-terminated ("" when none) */
    apr_size_t content_len;
    const ac_chat_tool_call_t *tool_calls; /* ordered by upstream index */
    int n_tool_calls;
    const char *finish_reason; /* "stop", "tool_calls", "length", "content_filter"...; or NULL */
    const char *model;         /* or NULL */
    json_int_t prompt_tokens;  /* usage; -1 when absent */
    json_int_t completion_tokens;
    json_int_t total_tokens;
    int done;   /* "data: [DONE]" was seen */
    int events; /* SSE events interpreted */
    /* APR_SUCCESS, or the first error:
     *   APR_EGENERAL      upstream sent an error object (error_code may be set)
     *   APR_EINVAL        a chunk was not valid JSON / not an object
     *   APR_ENOSPC        an event, the text, a call's arguments or the number of
     *                     calls exceeded its limit
     *   APR_INCOMPLETE    the body ended before [DONE] and before a finish_reason
     *   APR_ECONNABORTED  on_token asked to stop */
    apr_status_t status;
    const char *error;      /* short message for logs and clients (sanitised, <= 300 chars) */
    const char *error_code; /* upstream "code" (or "type") of an error object, or NULL */
} ac_chat_stream_result_t;

/* Create a stream interpreter in p (everything it keeps lives there).
 * limits and cb may be NULL. */
ac_chat_stream_t *ac_chat_stream_create(apr_pool_t *p, const ac_chat_stream_limits_t *limits,
                                        const ac_chat_stream_cb_t *cb, void *baton);

/* Feed raw response body bytes, cut anywhere.  Returns APR_SUCCESS or the
 * (sticky) error status as in the result.  Bytes after [DONE] are ignored. */
apr_status_t ac_chat_stream_feed(ac_chat_stream_t *cs, const char *data, apr_size_t len);

/* The body has ended.  Returns the final status: APR_SUCCESS when [DONE] or a
 * finish_reason arrived and nothing failed.  A body with no events at all that
 * is a JSON error reply (what a 4xx/5xx carries: {"error": {"message", "code"}})
 * gives APR_EGENERAL with that message and code, so a caller that streamed a
 * non-2xx body here still learns why. */
apr_status_t ac_chat_stream_finish(ac_chat_stream_t *cs);

/* Fill *out with what was collected so far (any time, also after an error).
 * A tool call that came without an id gets a generated one here, the same on
 * every call.  The pointers stay valid until the stream's pool is cleared, but
 * later feeds may move the content buffer: take the result again after feeding. */
void ac_chat_stream_result(ac_chat_stream_t *cs, ac_chat_stream_result_t *out);

#endif
