/* ac_tool: the function-tool interface the agent offers to the model.
 * The definitions (ac_tool_t, ac_tool_ctx_t, ac_tool_call_fn) live in the
 * public include/mod_agentchat_tool.h so that other httpd modules compile
 * against the very same struct; the core keeps including this file.  The
 * relative path is resolved from this file's directory, so no extra -I. */
#ifndef AC_TOOL_H
#define AC_TOOL_H

#include "../include/mod_agentchat_tool.h"

#endif
