/* ac_sse_parse: an incremental Server-Sent-Events parser (the WHATWG
 * "event stream interpretation" rules) for reading streamed upstream bodies.
 *
 * Feed it the body in whatever slices the network delivers; it calls back once
 * per complete event, independent of where the slices were cut.  Handles LF,
 * CRLF and lone-CR line ends (also a CRLF split across two feeds), comment
 * lines, fields without a colon, the one optional space after the colon,
 * "retry:", and a UTF-8 BOM at the very start.  An event without data lines is
 * not dispatched.
 *
 * Memory is bounded: the parser keeps one reusable buffer per concern (partial
 * line, data, event name, id), reset after every event, so a stream of any
 * length costs no more than its largest event.  An event larger than
 * max_event fails the parser with APR_ENOSPC.  Comment lines are skipped
 * without being buffered, so keep-alive comments never count against it. */
#ifndef AC_SSE_PARSE_H
#define AC_SSE_PARSE_H

#include <apr_pools.h>

typedef struct ac_sse_parser ac_sse_parser_t;

#define AC_SSE_DEFAULT_MAX_EVENT ((apr_size_t)1 << 20) /* 1 MiB */

/* One dispatched event.
 *   event: the "event:" field, or NULL when the event had none (the spec's
 *          default type "message");
 *   data:  the "data:" lines joined with "\n", NUL-terminated (data_len
 *          excludes the NUL; data may itself contain NUL bytes);
 *   id:    the last event id seen on the stream (it persists across events,
 *          as the spec says), or NULL when none or reset by an empty "id:".
 * All three are valid only during the call.  Return non-zero to stop: the
 * feed then returns APR_ECONNABORTED and the parser accepts nothing more. */
typedef int ac_sse_event_cb(void *baton, const char *event, const char *data, apr_size_t data_len,
                            const char *id);

/* Create a parser whose buffers live in p.  max_event bounds the bytes of one
 * event (its data plus the line being read); 0 means AC_SSE_DEFAULT_MAX_EVENT. */
ac_sse_parser_t *ac_sse_parser_create(apr_pool_t *p, apr_size_t max_event, ac_sse_event_cb *cb,
                                      void *baton);

/* Feed the next len bytes of the stream.  Returns APR_SUCCESS, APR_ENOSPC when
 * an event exceeded max_event, or APR_ECONNABORTED when the callback asked to
 * stop.  An error is sticky: later feeds return it without reading. */
apr_status_t ac_sse_parser_feed(ac_sse_parser_t *ps, const char *data, apr_size_t len);

/* End of stream.  As the spec says, an event not terminated by a blank line is
 * discarded; the return is APR_INCOMPLETE when that happened (a truncated
 * stream), the sticky error if any, APR_SUCCESS otherwise. */
apr_status_t ac_sse_parser_finish(ac_sse_parser_t *ps);

/* The last valid "retry:" value in milliseconds, or -1 when none was sent. */
apr_int64_t ac_sse_parser_retry(const ac_sse_parser_t *ps);

/* Bytes currently reserved by the parser's buffers (for tests and metrics). */
apr_size_t ac_sse_parser_footprint(const ac_sse_parser_t *ps);

#endif
