/* ac_tool_registry: a fixed-size table in static storage, filled during
 * configuration and read-only afterwards (see the header for the threading
 * contract).  Entries are deep copies so a module's stack or temp-pool tool
 * struct can be registered safely. */
#include "ac_tool_registry.h"

#include <apr_strings.h>
#include <string.h>

#define AC_TOOL_NO_PARAMETERS "{\"type\":\"object\",\"properties\":{}}"

static apr_pool_t *reg_pool;
static const ac_tool_t *reg_tools[AC_TOOL_REGISTRY_MAX];
static int reg_count;

int ac_tool_name_valid(const char *name)
{
    apr_size_t i;

    if (!name) {
        return 0;
    }
    for (i = 0; name[i]; i++) {
        char c = name[i];
        if (i >= AC_TOOL_NAME_MAX || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                       (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return 0;
        }
    }
    return i > 0;
}

/* The pool is going away: forget everything that lived in it. */
static apr_status_t registry_cleanup(void *data)
{
    (void)data;
    memset(reg_tools, 0, sizeof(reg_tools));
    reg_count = 0;
    reg_pool = NULL;
    return APR_SUCCESS;
}

void ac_tool_registry_init(apr_pool_t *pconf)
{
    if (reg_pool) {
        apr_pool_cleanup_kill(reg_pool, NULL, registry_cleanup);
    }
    registry_cleanup(NULL);
    reg_pool = pconf;
    apr_pool_cleanup_register(pconf, NULL, registry_cleanup, apr_pool_cleanup_null);
}

/* Parameters must be a JSON object; parsed only to check, never kept. */
static int parameters_valid(const char *text)
{
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    int ok = json_is_object(j);

    json_decref(j);
    return ok;
}

apr_status_t ac_tool_registry_add(const ac_tool_t *tool)
{
    ac_tool_t *copy;
    int i;

    if (!reg_pool) {
        return APR_EINIT;
    }
    if (!tool || !tool->call || !ac_tool_name_valid(tool->name) ||
        (tool->parameters_json && !parameters_valid(tool->parameters_json))) {
        return APR_EINVAL;
    }
    for (i = 0; i < reg_count; i++) {
        if (!strcmp(reg_tools[i]->name, tool->name)) {
            return APR_EEXIST;
        }
    }
    if (reg_count >= AC_TOOL_REGISTRY_MAX) {
        return APR_ENOSPC;
    }
    copy = apr_pcalloc(reg_pool, sizeof(*copy));
    copy->name = apr_pstrdup(reg_pool, tool->name);
    copy->description = apr_pstrdup(reg_pool, tool->description ? tool->description : "");
    copy->parameters_json = apr_pstrdup(reg_pool, tool->parameters_json ? tool->parameters_json
                                                                        : AC_TOOL_NO_PARAMETERS);
    copy->call = tool->call;
    copy->baton = tool->baton;
    reg_tools[reg_count++] = copy;
    return APR_SUCCESS;
}

const ac_tool_t *ac_tool_registry_find(const char *name)
{
    int i;

    if (!name) {
        return NULL;
    }
    for (i = 0; i < reg_count; i++) {
        if (!strcmp(reg_tools[i]->name, name)) {
            return reg_tools[i];
        }
    }
    return NULL;
}

apr_array_header_t *ac_tool_registry_all(apr_pool_t *p)
{
    apr_array_header_t *all =
        apr_array_make(p, reg_count > 0 ? reg_count : 1, sizeof(const ac_tool_t *));
    int i;

    for (i = 0; i < reg_count; i++) {
        APR_ARRAY_PUSH(all, const ac_tool_t *) = reg_tools[i];
    }
    return all;
}
