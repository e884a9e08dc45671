/* mod_agentchat.h: the public extension point of mod_agentchat for other httpd
 * modules.  A module adds a function tool that agents can offer to the model:
 *
 *   APR_OPTIONAL_FN_TYPE(agentchat_register_tool) *reg =
 *       APR_RETRIEVE_OPTIONAL_FN(agentchat_register_tool);
 *   if (!reg) -> mod_agentchat is not loaded
 *   reg(&my_tool);
 *
 * Call it from a post_config hook (APR_HOOK_MIDDLE or earlier); mod_agentchat
 * resets its registry in pre_config and reads it after all post_config hooks.
 * The tool struct and its strings are copied; call and baton are kept as given
 * and must stay valid (and thread-safe) while the configuration lives.
 * See docs/extending.md. */
#ifndef MOD_AGENTCHAT_H
#define MOD_AGENTCHAT_H

#include <apr_optional.h>

#include "mod_agentchat_tool.h"

/* Returns APR_SUCCESS, APR_EINVAL (bad name ^[a-zA-Z0-9_-]{1,64}$, no call,
 * parameters_json not a JSON object), APR_EEXIST (name taken), APR_ENOSPC
 * (registry full) or APR_EINIT (called outside the configuration phase). */
APR_DECLARE_OPTIONAL_FN(apr_status_t, agentchat_register_tool, (const ac_tool_t *tool));

#endif
