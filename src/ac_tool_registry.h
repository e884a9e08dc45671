/* ac_tool_registry: the process-wide list of tools that other httpd modules
 * register through the agentchat_register_tool optional function, and the
 * lookup agents use to resolve tool names.
 *
 * Threading: every write (init, add) happens during configuration, when httpd
 * is single-threaded; after that the registry is only read, from any number of
 * threads, without locks.  The registry lives in the pool given to init
 * (pconf): clearing that pool empties it, so a restart starts afresh. */
#ifndef AC_TOOL_REGISTRY_H
#define AC_TOOL_REGISTRY_H

#include "ac_tool.h"

#include <apr_pools.h>
#include <apr_tables.h>

#define AC_TOOL_REGISTRY_MAX 64
#define AC_TOOL_NAME_MAX 64

/* True if name matches ^[a-zA-Z0-9_-]{1,64}$ (what the model APIs accept). */
int ac_tool_name_valid(const char *name);

/* (Re)start an empty registry whose copies live in pconf (call in pre_config). */
void ac_tool_registry_init(apr_pool_t *pconf);

/* Copy tool (struct and strings; call and baton as given) into the registry.
 * APR_EINIT before init, APR_EINVAL for a bad name, a missing call or
 * parameters_json that is not a JSON object (NULL means no parameters),
 * APR_EEXIST for a name already taken, APR_ENOSPC when 64 tools are in. */
apr_status_t ac_tool_registry_add(const ac_tool_t *tool);

/* The registered tool of that name, or NULL. */
const ac_tool_t *ac_tool_registry_find(const char *name);

/* All registered tools (const ac_tool_t *) in registration order, array in p. */
apr_array_header_t *ac_tool_registry_all(apr_pool_t *p);

#endif
