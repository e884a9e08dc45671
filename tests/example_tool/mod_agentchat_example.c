/* mod_agentchat_example: how another httpd module adds a tool to mod_agentchat.
 * It registers reverse_text(text) -> {"reversed": "..."} through the optional
 * function agentchat_register_tool from its post_config hook, and refuses to
 * start when mod_agentchat is not loaded.  Build:
 *   apxs -c -I../../include mod_agentchat_example.c -ljansson
 * Load after (or before: the lookup happens at post_config) mod_agentchat:
 *   LoadModule agentchat_example_module modules/mod_agentchat_example.so */
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "apr_optional.h"

#include "mod_agentchat.h"

#include <string.h>

#define REVERSE_MAX_TEXT 10000 /* bytes; tools bound their work */

module AP_MODULE_DECLARE_DATA agentchat_example_module;

static apr_status_t json_release(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

/* Reverse by UTF-8 code point so multi-byte characters stay whole.  jansson
 * strings are valid UTF-8, so every lead byte starts a complete sequence. */
static char *reverse_utf8(apr_pool_t *p, const char *s, apr_size_t len)
{
    char *out = apr_palloc(p, len + 1), *o = out + len;
    apr_size_t i = 0, n;

    *o = '\0';
    while (i < len) {
        for (n = 1; i + n < len && ((unsigned char)s[i + n] & 0xC0) == 0x80; n++) {
        }
        o -= n;
        memcpy(o, s + i, n);
        i += n;
    }
    return out;
}

/* Runs in request threads, possibly many at once: no shared mutable state. */
static apr_status_t reverse_text_call(const ac_tool_t *tool, ac_tool_ctx_t *ctx, json_t *args,
                                      json_t **result, const char **error)
{
    json_t *text = json_object_get(args, "text"), *res;
    apr_size_t len;

    (void)tool;
    *result = NULL;
    if (!json_is_string(text)) {
        *error = "text must be a string";
        return APR_EINVAL;
    }
    len = json_string_length(text);
    if (len > REVERSE_MAX_TEXT) {
        *error = "text is too long (at most 10000 bytes)";
        return APR_EINVAL;
    }
    res = json_object();
    if (!res) {
        *error = "out of memory";
        return APR_ENOMEM;
    }
    /* the result must be released with the call's pool */
    apr_pool_cleanup_register(ctx->pool, res, json_release, apr_pool_cleanup_null);
    json_object_set_new(res, "reversed",
                        json_stringn(reverse_utf8(ctx->pool, json_string_value(text), len), len));
    *result = res;
    return APR_SUCCESS;
}

static const ac_tool_t reverse_text_tool = {
    "reverse_text",
    "Reverse a text character by character, e.g. to check palindromes.",
    "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\","
    "\"description\":\"The text to reverse\"}},\"required\":[\"text\"]}",
    reverse_text_call,
    NULL,
};

static int example_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(agentchat_register_tool) *register_tool =
        APR_RETRIEVE_OPTIONAL_FN(agentchat_register_tool);
    apr_status_t rv;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (!register_tool) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "mod_agentchat_example: mod_agentchat is not loaded, cannot register the "
                     "reverse_text tool (add LoadModule agentchat_module)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = register_tool(&reverse_text_tool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "mod_agentchat_example: registering the reverse_text tool failed");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

static void example_register_hooks(apr_pool_t *p)
{
    (void)p;
    /* MIDDLE: mod_agentchat reads its registry in a later post_config hook */
    ap_hook_post_config(example_post_config, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(agentchat_example) = {
    STANDARD20_MODULE_STUFF,
    NULL, /* per-directory config */
    NULL, /* merge per-directory */
    NULL, /* per-server config */
    NULL, /* merge per-server */
    NULL, /* directives */
    example_register_hooks,
    AP_MODULE_FLAG_NONE,
};
