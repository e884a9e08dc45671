/* ac_tool_http: tools declared in the configuration (AgentChatHttpTool): the
 * model's arguments are POSTed as JSON to a URL and the JSON reply is the
 * result.  The endpoint is the admin's own service, so the tool adds nothing
 * but transport, a timeout and a size cap. */
#ifndef AC_TOOL_HTTP_H
#define AC_TOOL_HTTP_H

#include "ac_tool.h"
#include "ac_tool_registry.h" /* ac_tool_name_valid */

#include <apr_pools.h>

#define AC_TOOL_HTTP_MAX_SCHEMA ((apr_size_t)64 * 1024)
#define AC_TOOL_HTTP_DEFAULT_MAX_RESPONSE ((apr_size_t)1024 * 1024) /* max_response 0 */
#define AC_TOOL_HTTP_DEFAULT_TIMEOUT apr_time_from_sec(30)          /* ctx->timeout 0 */

/* Read a JSON-schema file (at most 64 KiB) for the tool's arguments.  It must
 * be a JSON object with "type": "object".  On success *schema_json is its
 * compact text in p and NULL is returned; otherwise an error message in p. */
const char *ac_tool_http_load_schema(apr_pool_t *p, const char *path, const char **schema_json);

/* The tool, or NULL when name is invalid (see ac_tool_name_valid) or url is
 * not http(s)://.  schema_json NULL: no parameters.  max_response 0: 1 MiB.
 * Calling: args (a JSON object) are POSTed with Content-Type application/json
 * within ctx->timeout (ctx->http must be an ac_http_pool_t *); a 2xx JSON
 * object reply is the result, any other JSON value v becomes {"result": v},
 * 204 or an empty 2xx body {"result": null}.  Non-2xx ("tool endpoint
 * answered HTTP 500"), non-JSON, oversized replies and timeouts are tool
 * errors. */
const ac_tool_t *ac_tool_http(apr_pool_t *p, const char *name, const char *url,
                              const char *schema_json, const char *description,
                              apr_size_t max_response);

#endif
