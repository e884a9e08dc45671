/* mod_agentchat: httpd glue only — module record, directives, hooks and the
 * `agentchat` handler that hands requests to the core (src/ac_api.c). */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "util_filter.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <apr_thread_mutex.h>

#include "ac_agent.h"
#include "ac_api.h"
#include "ac_chat.h"
#include "ac_model.h"
#include "ac_tool_registry.h"
#include "tools/ac_kb.h"
#include "tools/ac_tool_calculate.h"
#include "tools/ac_tool_http.h"
#include "tools/ac_tool_weather.h"
#include "mod_agentchat.h"
#include "ac_config.h"
#include "ac_cosmos.h"
#include "ac_cosmos_auth.h"
#include "ac_http.h"
#include "ac_json.h"
#include "ac_log.h"
#include "ac_store.h"
#include "ac_util.h"

module AP_MODULE_DECLARE_DATA agentchat_module;


typedef struct {
    const char *key;
    const char *principal;
} api_key_t;

typedef struct {
    const char *name;
    const char *description;
    const char *instructions;
    const char *model;
    double temperature; /* < 0: service default */
    apr_array_header_t *tool_names; /* const char *; NULL: every tool there is */
} agent_conf_t;

typedef struct {
    const char *name, *url, *schema_json, *description;
} http_tool_conf_t;

typedef struct {
    int configured; /* any AgentChat directive seen in this server */
    const char *cosmos_endpoint;
    const char *cosmos_key; /* base64, never logged */
    const char *cosmos_database;
    int cosmos_timeout;
    const char *ca_file;
    int tls_verify;
    int pool_size;
    int connect_timeout;
    apr_off_t max_body;
    apr_array_header_t *api_keys;

    const char *openai_endpoint;
    int openai_provider; /* ac_provider_e, or UNSET */
    const char *openai_deployment;
    const char *openai_api_version;
    const char *openai_key;
    int model_timeout;
    int history_messages;
    int max_tool_rounds;
    int tool_timeout;
    int max_message_chars;
    int run_timeout;
    const char *kb_dir;
    const ac_kb_t *kb; /* indexed in post_config, read-only in the children */
    const char *weather_endpoint;
    const char *geocoding_endpoint;
    apr_array_header_t *http_tools; /* http_tool_conf_t */
    apr_array_header_t *agents;     /* agent_conf_t */
    const char *default_agent;

    /* per process, built in child_init */
    ac_chat_conf_t chat;
    ac_model_t *model;
    ac_http_pool_t *http;
    ac_cosmos_t *cosmos;
    ac_api_conf_t api;
    int schema_ready;
    apr_thread_mutex_t *schema_mutex;
} srv_conf_t;

#define UNSET -1

/* ---- configuration --------------------------------------------------------- */

static void *create_srv_conf(apr_pool_t *p, server_rec *s)
{
    srv_conf_t *c = apr_pcalloc(p, sizeof(*c));
    c->cosmos_timeout = UNSET;
    c->tls_verify = UNSET;
    c->pool_size = UNSET;
    c->connect_timeout = UNSET;
    c->max_body = UNSET;
    c->api_keys = apr_array_make(p, 2, sizeof(api_key_t));
    c->openai_provider = UNSET;
    c->model_timeout = UNSET;
    c->history_messages = UNSET;
    c->max_tool_rounds = UNSET;
    c->tool_timeout = UNSET;
    c->max_message_chars = UNSET;
    c->run_timeout = UNSET;
    c->http_tools = apr_array_make(p, 2, sizeof(http_tool_conf_t));
    c->agents = apr_array_make(p, 2, sizeof(agent_conf_t));
    return c;
}

#define MERGE_PTR(f) m->f = add->f ? add->f : base->f
#define MERGE_INT(f) m->f = add->f != UNSET ? add->f : base->f

static void *merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    srv_conf_t *base = basev, *add = addv, *m = apr_pcalloc(p, sizeof(*m));

    m->configured = add->configured || base->configured;
    MERGE_PTR(cosmos_endpoint);
    MERGE_PTR(cosmos_key);
    MERGE_PTR(cosmos_database);
    MERGE_INT(cosmos_timeout);
    MERGE_PTR(ca_file);
    MERGE_INT(tls_verify);
    MERGE_INT(pool_size);
    MERGE_INT(connect_timeout);
    MERGE_INT(max_body);
    /* A virtual host with keys of its own uses only those. */
    m->api_keys = add->api_keys->nelts ? add->api_keys : base->api_keys;
    MERGE_PTR(openai_endpoint);
    MERGE_INT(openai_provider);
    MERGE_PTR(openai_deployment);
    MERGE_PTR(openai_api_version);
    MERGE_PTR(openai_key);
    MERGE_INT(model_timeout);
    MERGE_INT(history_messages);
    MERGE_INT(max_tool_rounds);
    MERGE_INT(tool_timeout);
    MERGE_INT(max_message_chars);
    MERGE_INT(run_timeout);
    MERGE_PTR(kb_dir);
    MERGE_PTR(weather_endpoint);
    MERGE_PTR(geocoding_endpoint);
    MERGE_PTR(default_agent);
    m->http_tools = apr_array_append(p, base->http_tools, add->http_tools);
    m->agents = add->agents->nelts ? add->agents : base->agents;
    return m;
}

static srv_conf_t *srv_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &agentchat_module);
}

static srv_conf_t *cmd_conf(cmd_parms *cmd)
{
    srv_conf_t *c = srv_conf(cmd->server);
    c->configured = 1;
    return c;
}

static const char *set_cosmos_endpoint(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    apr_uri_t uri;
    apr_size_t n = strlen(arg);

    if (apr_uri_parse(cmd->pool, arg, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname ||
        (strcasecmp(uri.scheme, "https") && strcasecmp(uri.scheme, "http")) ||
        (uri.path && strcmp(uri.path, "/") != 0) || uri.query) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a Cosmos account URL (expected "
                            "https://ACCOUNT.documents.azure.com:443/)",
                            cmd->cmd->name, arg);
    }
    while (n > 0 && arg[n - 1] == '/') {
        n--;
    }
    c->cosmos_endpoint = apr_pstrmemdup(cmd->pool, arg, n);
    return NULL;
}

static const char *set_cosmos_key(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    const char *err, *val;
    apr_size_t len;

    if ((err = ac_secret_load(cmd->pool, arg, &val))) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    if (!ac_cosmos_key_decode(cmd->temp_pool, val, &len)) {
        return apr_psprintf(cmd->pool, "%s: the key is not valid base64 (value not shown)",
                            cmd->cmd->name);
    }
    c->cosmos_key = val;
    return NULL;
}

static const char *set_cosmos_database(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    for (const char *s = arg; *s; s++) {
        if (!apr_isalnum(*s) && *s != '-' && *s != '_') {
            return apr_psprintf(cmd->pool, "%s: use letters, digits, '-' and '_' only",
                                cmd->cmd->name);
        }
    }
    if (!*arg || strlen(arg) > 255) {
        return apr_psprintf(cmd->pool, "%s: 1 to 255 characters", cmd->cmd->name);
    }
    c->cosmos_database = arg;
    return NULL;
}

static const char *set_ca_file(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    apr_finfo_t fi;
    const char *path = ap_server_root_relative(cmd->pool, arg);

    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS ||
        fi.filetype != APR_REG) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a readable file", cmd->cmd->name, arg);
    }
    c->ca_file = path;
    return NULL;
}

static const char *set_tls_verify(cmd_parms *cmd, void *d, int on)
{
    cmd_conf(cmd)->tls_verify = on;
    return NULL;
}

static const char *set_int(cmd_parms *cmd, const char *arg, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (!*arg || *end || v < lo || v > hi) {
        return apr_psprintf(cmd->pool, "%s: expected a number from %ld to %ld, got '%s'",
                            cmd->cmd->name, lo, hi, arg);
    }
    *out = v;
    return NULL;
}

static const char *set_int_field(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    const char *err;
    long v;
    const char *name = cmd->cmd->name;

    if (!strcasecmp(name, AC_DIR_POOL_SIZE)) {
        if (!(err = set_int(cmd, arg, 1, 1024, &v))) {
            c->pool_size = (int)v;
        }
    }
    else if (!strcasecmp(name, AC_DIR_CONNECT_TIMEOUT)) {
        if (!(err = set_int(cmd, arg, 1, 300, &v))) {
            c->connect_timeout = (int)v;
        }
    }
    else if (!strcasecmp(name, AC_DIR_COSMOS_TIMEOUT)) {
        if (!(err = set_int(cmd, arg, 1, 600, &v))) {
            c->cosmos_timeout = (int)v;
        }
    }
    else if (!strcasecmp(name, AC_DIR_MODEL_TIMEOUT)) {
        if (!(err = set_int(cmd, arg, 1, 3600, &v))) {
            c->model_timeout = (int)v;
        }
    }
    else if (!strcasecmp(name, AC_DIR_HISTORY_MESSAGES)) {
        if (!(err = set_int(cmd, arg, 0, 200, &v))) {
            c->history_messages = (int)v;
        }
    }
    else if (!strcasecmp(name, AC_DIR_MAX_TOOL_ROUNDS)) {
        if (!(err = set_int(cmd, arg, 0, 32, &v))) {
            c->max_tool_rounds = (int)v;
        }
    }
    else if (!strcasecmp(name, AC_DIR_TOOL_TIMEOUT)) {
        if (!(err = set_int(cmd, arg, 1, 600, &v))) {
            c->tool_timeout = (int)v;
        }
    }
    else if (!strcasecmp(name, AC_DIR_MAX_MESSAGE_CHARS)) {
        if (!(err = set_int(cmd, arg, 1, 1000000, &v))) {
            c->max_message_chars = (int)v;
        }
    }
    else if (!strcasecmp(name, AC_DIR_RUN_TIMEOUT)) {
        if (!(err = set_int(cmd, arg, 10, 86400, &v))) {
            c->run_timeout = (int)v;
        }
    }
    else if (!(err = set_int(cmd, arg, 1024, 256L * 1024 * 1024, &v))) {
        c->max_body = v;
    }
    return err;
}

static const char *add_api_key(cmd_parms *cmd, void *d, const char *key, const char *principal)
{
    srv_conf_t *c = cmd_conf(cmd);
    const char *err, *val;
    api_key_t *k;

    if ((err = ac_secret_load(cmd->pool, key, &val))) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    if (strlen(val) < 16) {
        return apr_psprintf(cmd->pool, "%s: keys must be at least 16 characters (value not shown)",
                            cmd->cmd->name);
    }
    if (principal && (!*principal || strlen(principal) > 128)) {
        return apr_psprintf(cmd->pool, "%s: the principal must be 1 to 128 characters",
                            cmd->cmd->name);
    }
    k = apr_array_push(c->api_keys);
    k->key = val;
    k->principal = principal ? principal : apr_psprintf(cmd->pool, "key%d", c->api_keys->nelts);
    return NULL;
}

static const char *check_url(cmd_parms *cmd, const char *arg, const char **out)
{
    apr_uri_t uri;
    apr_size_t n = strlen(arg);

    if (apr_uri_parse(cmd->pool, arg, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname ||
        (strcasecmp(uri.scheme, "https") && strcasecmp(uri.scheme, "http")) || uri.query) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an http(s) URL", cmd->cmd->name, arg);
    }
    while (n > 0 && arg[n - 1] == '/') {
        n--;
    }
    *out = apr_pstrmemdup(cmd->pool, arg, n);
    return NULL;
}

static const char *set_url_field(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    const char *name = cmd->cmd->name;

    if (!strcasecmp(name, AC_DIR_OPENAI_ENDPOINT)) {
        return check_url(cmd, arg, &c->openai_endpoint);
    }
    if (!strcasecmp(name, AC_DIR_WEATHER_ENDPOINT)) {
        return check_url(cmd, arg, &c->weather_endpoint);
    }
    return check_url(cmd, arg, &c->geocoding_endpoint);
}

static const char *set_word_field(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    const char *name = cmd->cmd->name;

    if (!*arg || strlen(arg) > 256 || strpbrk(arg, "/?#&% ")) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a valid name", name, arg);
    }
    if (!strcasecmp(name, AC_DIR_OPENAI_DEPLOYMENT)) {
        c->openai_deployment = arg;
    }
    else if (!strcasecmp(name, AC_DIR_OPENAI_API_VERSION)) {
        c->openai_api_version = arg;
    }
    else {
        c->default_agent = arg;
    }
    return NULL;
}

static const char *set_provider(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    if (!strcasecmp(arg, "azure")) {
        c->openai_provider = AC_PROVIDER_AZURE;
    }
    else if (!strcasecmp(arg, "openai")) {
        c->openai_provider = AC_PROVIDER_OPENAI;
    }
    else {
        return apr_psprintf(cmd->pool, "%s: expected 'azure' or 'openai', got '%s'",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *set_openai_key(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    const char *err;
    if ((err = ac_secret_load(cmd->pool, arg, &c->openai_key))) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    return NULL;
}

static const char *set_kb(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    apr_finfo_t fi;
    const char *path = ap_server_root_relative(cmd->pool, arg);

    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS ||
        fi.filetype != APR_DIR) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a readable directory", cmd->cmd->name,
                            arg);
    }
    c->kb_dir = path;
    return NULL;
}

static const char *add_http_tool(cmd_parms *cmd, void *d, int argc, char *const argv[])
{
    srv_conf_t *c = cmd_conf(cmd);
    http_tool_conf_t *t;
    const char *err, *url;

    if (argc != 4) {
        return apr_psprintf(cmd->pool, "%s: expected NAME URL SCHEMA-FILE \"DESCRIPTION\"",
                            cmd->cmd->name);
    }
    if (!ac_tool_name_valid(argv[0])) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a valid tool name ([A-Za-z0-9_-]{1,64})",
                            cmd->cmd->name, argv[0]);
    }
    if ((err = check_url(cmd, argv[1], &url))) {
        return err;
    }
    t = apr_array_push(c->http_tools);
    t->name = argv[0];
    t->url = argv[1];
    t->description = argv[3];
    if ((err = ac_tool_http_load_schema(cmd->pool, ap_server_root_relative(cmd->pool, argv[2]),
                                        &t->schema_json))) {
        return apr_psprintf(cmd->pool, "%s %s: %s", cmd->cmd->name, argv[0], err);
    }
    return NULL;
}

/* <AgentChatAgent name> ... </AgentChatAgent>: the block's lines are read
 * here (Description, Instructions, Tools, Model, Temperature). */
static const char *agent_section(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    const char *endp = ap_strrchr_c(arg, '>'), *args;
    agent_conf_t *a;
    char *name;

    if (!endp) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, "> directive missing closing '>'", NULL);
    }
    args = apr_pstrmemdup(cmd->temp_pool, arg, (apr_size_t)(endp - arg));
    name = ap_getword_conf(cmd->pool, &args);
    if (!ac_tool_name_valid(name)) {
        return apr_psprintf(cmd->pool, "%s>: '%s' is not a valid agent name ([A-Za-z0-9_-]{1,64})",
                            cmd->cmd->name, name);
    }
    for (int i = 0; i < c->agents->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(c->agents, i, agent_conf_t).name, name)) {
            return apr_psprintf(cmd->pool, "%s>: agent '%s' is defined twice", cmd->cmd->name,
                                name);
        }
    }
    a = apr_array_push(c->agents);
    memset(a, 0, sizeof(*a));
    a->name = name;
    a->temperature = -1;
    for (ap_directive_t *dir = cmd->directive->first_child; dir; dir = dir->next) {
        const char *w = dir->args;
        const char *what = dir->directive;
        if (!strcasecmp(what, "Description")) {
            a->description = ap_getword_conf(cmd->pool, &w);
        }
        else if (!strcasecmp(what, "Instructions")) {
            const char *err, *val = ap_getword_conf(cmd->pool, &w);
            if ((err = ac_secret_load(cmd->pool, val, &a->instructions))) {
                return apr_psprintf(cmd->pool, "%s %s> Instructions: %s", cmd->cmd->name, name,
                                    err);
            }
        }
        else if (!strcasecmp(what, "Model")) {
            a->model = ap_getword_conf(cmd->pool, &w);
        }
        else if (!strcasecmp(what, "Temperature")) {
            char *end;
            const char *v = ap_getword_conf(cmd->pool, &w);
            a->temperature = strtod(v, &end);
            if (!*v || *end || a->temperature < 0 || a->temperature > 2) {
                return apr_psprintf(cmd->pool, "%s %s> Temperature: expected 0 to 2, got '%s'",
                                    cmd->cmd->name, name, v);
            }
        }
        else if (!strcasecmp(what, "Tools")) {
            a->tool_names = apr_array_make(cmd->pool, 4, sizeof(const char *));
            while (*w) {
                const char *t = ap_getword_conf(cmd->pool, &w);
                if (*t) {
                    APR_ARRAY_PUSH(a->tool_names, const char *) = t;
                }
            }
        }
        else {
            return apr_psprintf(cmd->pool,
                                "%s %s>: unknown line '%s' (use Description, Instructions, "
                                "Tools, Model, Temperature)",
                                cmd->cmd->name, name, what);
        }
    }
    return NULL;
}

static const command_rec agentchat_cmds[] = {
    AP_INIT_TAKE1(AC_DIR_COSMOS_ENDPOINT, set_cosmos_endpoint, NULL, RSRC_CONF,
                  "Cosmos DB account URL, e.g. https://ACCOUNT.documents.azure.com:443/"),
    AP_INIT_TAKE1(AC_DIR_COSMOS_KEY, set_cosmos_key, NULL, RSRC_CONF,
                  "Cosmos DB master key, or file:/path/to/keyfile"),
    AP_INIT_TAKE1(AC_DIR_COSMOS_DATABASE, set_cosmos_database, NULL, RSRC_CONF,
                  "Cosmos DB database name (default agentchat)"),
    AP_INIT_TAKE1(AC_DIR_COSMOS_TIMEOUT, set_int_field, NULL, RSRC_CONF,
                  "Seconds one Cosmos request may take (default 30)"),
    AP_INIT_TAKE1(AC_DIR_CA_FILE, set_ca_file, NULL, RSRC_CONF,
                  "PEM file of CA certificates trusted for outbound TLS"),
    AP_INIT_FLAG(AC_DIR_TLS_VERIFY, set_tls_verify, NULL, RSRC_CONF,
                 "Verify outbound TLS certificates (default On)"),
    AP_INIT_TAKE1(AC_DIR_POOL_SIZE, set_int_field, NULL, RSRC_CONF,
                  "Idle keep-alive connections kept per process (default 16)"),
    AP_INIT_TAKE1(AC_DIR_CONNECT_TIMEOUT, set_int_field, NULL, RSRC_CONF,
                  "Seconds to establish an outbound connection (default 5)"),
    AP_INIT_TAKE1(AC_DIR_MAX_BODY, set_int_field, NULL, RSRC_CONF,
                  "Largest request body accepted, in bytes (default 1048576)"),
    AP_INIT_TAKE12(AC_DIR_API_KEY, add_api_key, NULL, RSRC_CONF,
                   "An API key (or file:/path) and the principal it authenticates; repeatable"),
    AP_INIT_TAKE1(AC_DIR_OPENAI_ENDPOINT, set_url_field, NULL, RSRC_CONF,
                  "Model endpoint: https://RESOURCE.openai.azure.com or an OpenAI-compatible base "
                  "URL ending in /v1"),
    AP_INIT_TAKE1(AC_DIR_OPENAI_PROVIDER, set_provider, NULL, RSRC_CONF,
                  "azure (default) or openai"),
    AP_INIT_TAKE1(AC_DIR_OPENAI_DEPLOYMENT, set_word_field, NULL, RSRC_CONF,
                  "Azure deployment name, or the model name for OpenAI-compatible endpoints"),
    AP_INIT_TAKE1(AC_DIR_OPENAI_API_VERSION, set_word_field, NULL, RSRC_CONF,
                  "Azure OpenAI api-version (default " AC_DEFAULT_API_VERSION ")"),
    AP_INIT_TAKE1(AC_DIR_OPENAI_KEY, set_openai_key, NULL, RSRC_CONF,
                  "Model endpoint key, or file:/path"),
    AP_INIT_TAKE1(AC_DIR_MODEL_TIMEOUT, set_int_field, NULL, RSRC_CONF,
                  "Seconds one model call may stream (default 300)"),
    AP_INIT_TAKE1(AC_DIR_HISTORY_MESSAGES, set_int_field, NULL, RSRC_CONF,
                  "Earlier messages sent to the model with a new one (default 20)"),
    AP_INIT_TAKE1(AC_DIR_MAX_TOOL_ROUNDS, set_int_field, NULL, RSRC_CONF,
                  "Model calls per turn that may request tools (default 5)"),
    AP_INIT_TAKE1(AC_DIR_TOOL_TIMEOUT, set_int_field, NULL, RSRC_CONF,
                  "Seconds one tool call may take (default 15)"),
    AP_INIT_TAKE1(AC_DIR_MAX_MESSAGE_CHARS, set_int_field, NULL, RSRC_CONF,
                  "Longest user message, in characters (default 32000)"),
    AP_INIT_TAKE1(AC_DIR_RUN_TIMEOUT, set_int_field, NULL, RSRC_CONF,
                  "Seconds after which an unfinished run no longer locks its thread (default 600)"),
    AP_INIT_TAKE1(AC_DIR_KNOWLEDGE_BASE, set_kb, NULL, RSRC_CONF,
                  "Directory of .md/.txt documents for search_knowledge_base"),
    AP_INIT_TAKE1(AC_DIR_WEATHER_ENDPOINT, set_url_field, NULL, RSRC_CONF,
                  "Open-Meteo-compatible forecast API base URL"),
    AP_INIT_TAKE1(AC_DIR_GEOCODING_ENDPOINT, set_url_field, NULL, RSRC_CONF,
                  "Open-Meteo-compatible geocoding API base URL"),
    AP_INIT_TAKE_ARGV(AC_DIR_HTTP_TOOL, add_http_tool, NULL, RSRC_CONF,
                      "NAME URL SCHEMA-FILE \"DESCRIPTION\": a tool served over HTTP"),
    AP_INIT_RAW_ARGS(AC_DIR_AGENT, agent_section, NULL, RSRC_CONF,
                     "<AgentChatAgent name> block: Description, Instructions, Tools, Model, "
                     "Temperature"),
    AP_INIT_TAKE1(AC_DIR_DEFAULT_AGENT, set_word_field, NULL, RSRC_CONF,
                  "The agent of threads created without one (default: the first defined)"),
    {NULL},
};

/* ---- logging seam ------------------------------------------------------------ */

static int ac_to_aplog(ac_log_level_e l)
{
    switch (l) {
    case AC_LOG_ERR:
        return APLOG_ERR;
    case AC_LOG_WARN:
        return APLOG_WARNING;
    case AC_LOG_NOTICE:
        return APLOG_NOTICE;
    case AC_LOG_INFO:
        return APLOG_INFO;
    default:
        return APLOG_DEBUG;
    }
}

static void log_to_httpd(void *baton, ac_log_level_e level, apr_status_t rv, const char *msg)
{
    server_rec *s = baton;
    ap_log_error(APLOG_MARK, ac_to_aplog(level), rv, s, "%s", msg);
}

/* ---- lifecycle --------------------------------------------------------------- */

static int agent_known(void *baton, const char *name)
{
    return ac_chat_find_agent(baton, name) != NULL;
}

/* The optional function other modules call to add a tool (include/mod_agentchat.h). */
static apr_status_t agentchat_register_tool(const ac_tool_t *tool)
{
    return ac_tool_registry_add(tool);
}

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    ac_tool_registry_init(pconf);
    return OK;
}

static int check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    for (server_rec *v = s; v; v = v->next) {
        srv_conf_t *c = srv_conf(v);
        if (!c->configured) {
            continue;
        }
        if (!c->cosmos_endpoint) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, v,
                         "agentchat is configured for %s:%u but " AC_DIR_COSMOS_ENDPOINT
                         " is missing",
                         v->server_hostname ? v->server_hostname : "?", (unsigned)v->port);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!c->cosmos_key) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, v,
                         AC_DIR_COSMOS_ENDPOINT " is set but " AC_DIR_COSMOS_KEY " is missing");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (c->openai_endpoint && !c->openai_deployment) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, v,
                         AC_DIR_OPENAI_ENDPOINT " is set but " AC_DIR_OPENAI_DEPLOYMENT
                         " (the deployment or model name) is missing");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (c->default_agent && c->agents->nelts) {
            int found = 0;
            for (int i = 0; i < c->agents->nelts; i++) {
                found |= !strcmp(APR_ARRAY_IDX(c->agents, i, agent_conf_t).name, c->default_agent);
            }
            if (!found) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, v,
                             AC_DIR_DEFAULT_AGENT " '%s' names no <AgentChatAgent> block",
                             c->default_agent);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }
    return OK;
}

static void build_runtime_conf(srv_conf_t *c, ac_http_pool_conf_t *hc, ac_cosmos_conf_t *cc,
                               apr_pool_t *p)
{
    memset(hc, 0, sizeof(*hc));
    hc->ca_file = c->ca_file;
    hc->verify_tls = c->tls_verify != 0;
    hc->max_idle = c->pool_size != UNSET ? c->pool_size : AC_DEFAULT_POOL_SIZE;
    hc->connect_timeout = apr_time_from_sec(
        c->connect_timeout != UNSET ? c->connect_timeout : AC_DEFAULT_CONNECT_TIMEOUT);
    memset(cc, 0, sizeof(*cc));
    cc->endpoint = c->cosmos_endpoint;
    cc->key = ac_cosmos_key_decode(p, c->cosmos_key, &cc->key_len);
    cc->database = c->cosmos_database ? c->cosmos_database : AC_DEFAULT_DATABASE;
    cc->timeout = apr_time_from_sec(c->cosmos_timeout != UNSET ? c->cosmos_timeout
                                                               : AC_DEFAULT_COSMOS_TIMEOUT);
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    ac_log_set(log_to_httpd, s, (ac_log_level_e)ap_get_server_module_loglevel(s,
                                                                             APLOG_MODULE_INDEX));
    if (ac_http_global_init() != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "agentchat: libcurl failed to initialise");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (server_rec *v = s; v; v = v->next) {
        srv_conf_t *c = srv_conf(v);
        ac_http_pool_conf_t hc;
        ac_cosmos_conf_t cc;
        ac_http_pool_t *http;
        ac_cosmos_t *cosmos;
        ac_cosmos_ctx_t ctx = {ptemp, 0, 0};
        apr_status_t rv;

        if (c->kb_dir && !c->kb) {
            const char *err = NULL;
            apr_time_t t0 = apr_time_now();
            if (!(c->kb = ac_kb_load(pconf, c->kb_dir, &err))) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, v, AC_DIR_KNOWLEDGE_BASE " %s: %s",
                             c->kb_dir, err ? err : "cannot index");
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, v, "agentchat: indexed knowledge base %s in %"
                         APR_TIME_T_FMT " ms", c->kb_dir,
                         (apr_time_t)apr_time_as_msec(apr_time_now() - t0));
        }
        if (!c->cosmos_endpoint || c->schema_ready) {
            continue;
        }
        if (c->tls_verify == 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, v,
                         AC_DIR_TLS_VERIFY " Off: outbound TLS certificates are NOT verified");
        }
        if (c->api_keys->nelts == 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, v,
                         "agentchat: no " AC_DIR_API_KEY " configured; requests that httpd did "
                         "not authenticate all share the principal 'anonymous'");
        }
        /* Create the schema once in the parent so every child starts ready;
         * if Cosmos is unreachable now, children retry on first use. */
        build_runtime_conf(c, &hc, &cc, ptemp);
        cc.retry_budget = apr_time_from_sec(2);
        if ((rv = ac_http_pool_create(&http, ptemp, &hc)) == APR_SUCCESS &&
            (rv = ac_cosmos_create(&cosmos, ptemp, &cc, http)) == APR_SUCCESS &&
            (rv = ac_store_ensure_schema(ac_store_create(ptemp, cosmos), &ctx)) == APR_SUCCESS) {
            c->schema_ready = 1;
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, v,
                         "agentchat: could not prepare Cosmos database '%s' at %s now; "
                         "will retry on first request",
                         cc.database, cc.endpoint);
        }
    }
    return OK;
}

#define OR_DEFAULT(v, d) ((v) != UNSET ? (v) : (d))

/* Every tool this server can offer: built-ins, config HTTP tools, registered ones. */
static apr_array_header_t *all_tools(srv_conf_t *c, apr_pool_t *p)
{
    apr_array_header_t *tools = apr_array_make(p, 8, sizeof(const ac_tool_t *));
    apr_array_header_t *reg = ac_tool_registry_all(p);

    APR_ARRAY_PUSH(tools, const ac_tool_t *) = ac_tool_calculate(p);
    APR_ARRAY_PUSH(tools, const ac_tool_t *) =
        ac_tool_weather(p, c->geocoding_endpoint, c->weather_endpoint);
    if (c->kb) {
        APR_ARRAY_PUSH(tools, const ac_tool_t *) = ac_tool_kb(p, c->kb);
    }
    for (int i = 0; i < c->http_tools->nelts; i++) {
        http_tool_conf_t *h = &APR_ARRAY_IDX(c->http_tools, i, http_tool_conf_t);
        const ac_tool_t *t = ac_tool_http(p, h->name, h->url, h->schema_json, h->description, 0);
        if (t) {
            APR_ARRAY_PUSH(tools, const ac_tool_t *) = t;
        }
    }
    apr_array_cat(tools, reg);
    return tools;
}

static const ac_tool_t *tool_named(apr_array_header_t *tools, const char *name)
{
    for (int i = 0; i < tools->nelts; i++) {
        const ac_tool_t *t = APR_ARRAY_IDX(tools, i, const ac_tool_t *);
        if (!strcmp(t->name, name)) {
            return t;
        }
    }
    return NULL;
}

static ac_agent_t *make_agent(const agent_conf_t *ac, apr_array_header_t *tools, server_rec *s,
                              apr_pool_t *p)
{
    ac_agent_t *a = apr_pcalloc(p, sizeof(*a));
    a->name = ac->name;
    a->description = ac->description;
    a->instructions = ac->instructions ? ac->instructions : AC_DEFAULT_INSTRUCTIONS;
    a->model = ac->model;
    a->temperature = ac->temperature;
    if (!ac->tool_names) {
        a->tools = tools;
        return a;
    }
    a->tools = apr_array_make(p, ac->tool_names->nelts, sizeof(const ac_tool_t *));
    for (int i = 0; i < ac->tool_names->nelts; i++) {
        const char *n = APR_ARRAY_IDX(ac->tool_names, i, const char *);
        const ac_tool_t *t = tool_named(tools, n);
        if (!t) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         "agentchat: agent '%s' names tool '%s', which does not exist; skipped",
                         ac->name, n);
            continue;
        }
        APR_ARRAY_PUSH(a->tools, const ac_tool_t *) = t;
    }
    return a;
}

static void build_chat(srv_conf_t *c, server_rec *s, apr_pool_t *p)
{
    ac_model_conf_t mc = {0};
    apr_array_header_t *tools = all_tools(c, p);
    apr_array_header_t *agents = apr_array_make(p, 2, sizeof(const ac_agent_t *));

    mc.provider = c->openai_provider != UNSET ? (ac_provider_e)c->openai_provider
                                              : AC_PROVIDER_AZURE;
    mc.endpoint = c->openai_endpoint;
    mc.deployment = c->openai_deployment;
    mc.api_version = c->openai_api_version ? c->openai_api_version : AC_DEFAULT_API_VERSION;
    mc.api_key = c->openai_key;
    mc.timeout = apr_time_from_sec(OR_DEFAULT(c->model_timeout, AC_DEFAULT_MODEL_TIMEOUT));
    c->model = ac_model_create(p, &mc, c->http);

    if (c->agents->nelts == 0) {
        agent_conf_t dflt = {AC_DEFAULT_AGENT_NAME, "General assistant with every tool", NULL,
                             NULL, -1, NULL};
        APR_ARRAY_PUSH(agents, const ac_agent_t *) = make_agent(&dflt, tools, s, p);
    }
    for (int i = 0; i < c->agents->nelts; i++) {
        APR_ARRAY_PUSH(agents, const ac_agent_t *) =
            make_agent(&APR_ARRAY_IDX(c->agents, i, agent_conf_t), tools, s, p);
    }
    c->chat.store = c->api.store;
    c->chat.env.model = c->model;
    c->chat.env.http = c->http;
    c->chat.env.max_rounds = OR_DEFAULT(c->max_tool_rounds, AC_DEFAULT_MAX_TOOL_ROUNDS);
    c->chat.env.tool_timeout =
        apr_time_from_sec(OR_DEFAULT(c->tool_timeout, AC_DEFAULT_TOOL_TIMEOUT));
    c->chat.agents = agents;
    c->chat.default_agent = c->default_agent
                                ? c->default_agent
                                : APR_ARRAY_IDX(agents, 0, const ac_agent_t *)->name;
    c->chat.history_messages = OR_DEFAULT(c->history_messages, AC_DEFAULT_HISTORY_MESSAGES);
    c->chat.stale_after = apr_time_from_sec(OR_DEFAULT(c->run_timeout, AC_DEFAULT_RUN_TIMEOUT));
    c->chat.max_message_chars =
        (apr_size_t)OR_DEFAULT(c->max_message_chars, AC_DEFAULT_MAX_MESSAGE_CHARS);
    c->api.chat = &c->chat;
    c->api.default_agent = c->chat.default_agent;
    c->api.agent_known = agent_known;
    c->api.agent_baton = &c->chat;
}

static void child_init(apr_pool_t *pchild, server_rec *s)
{
    for (server_rec *v = s; v; v = v->next) {
        srv_conf_t *c = srv_conf(v);
        ac_http_pool_conf_t hc;
        ac_cosmos_conf_t cc;
        apr_status_t rv;

        if (!c->cosmos_endpoint) {
            continue;
        }
        build_runtime_conf(c, &hc, &cc, pchild);
        if ((rv = ac_http_pool_create(&c->http, pchild, &hc)) != APR_SUCCESS ||
            (rv = ac_cosmos_create(&c->cosmos, pchild, &cc, c->http)) != APR_SUCCESS ||
            (rv = apr_thread_mutex_create(&c->schema_mutex, APR_THREAD_MUTEX_DEFAULT, pchild)) !=
                APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, v, "agentchat: cannot set up process state");
            c->cosmos = NULL;
            continue;
        }
        ac_api_conf_defaults(&c->api);
        c->api.store = ac_store_create(pchild, c->cosmos);
        if (c->max_body != UNSET) {
            c->api.max_body = (apr_size_t)c->max_body;
        }
        if (c->openai_endpoint) {
            build_chat(c, v, pchild);
        }
    }
}

/* ---- request handling -------------------------------------------------------- */

static const char *request_id(request_rec *r)
{
    const char *id = apr_table_get(r->subprocess_env, "UNIQUE_ID");
    return id ? id : ac_id_new(r->pool, "req");
}

static int copy_header(void *rv, const char *key, const char *val)
{
    apr_table_set(((request_rec *)rv)->headers_out, key, val);
    return 1;
}

static int send_response(request_rec *r, const ac_api_resp_t *resp, const char *rid)
{
    apr_table_do(copy_header, r, resp->headers, NULL);
    apr_table_setn(r->headers_out, "X-Request-Id", rid);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    r->status = resp->status;
    if (resp->status >= 500) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "agentchat: %d for request %s", resp->status,
                      rid);
    }
    if (resp->body) {
        apr_size_t len;
        char *text = ac_json_dumpn(r->pool, resp->body, &len);
        ap_set_content_type(r, "application/json; charset=utf-8");
        ap_set_content_length(r, (apr_off_t)len);
        if (!r->header_only) {
            ap_rwrite(text, (int)len, r);
        }
    }
    return OK;
}

static int send_error(request_rec *r, const char *rid, int status, const char *code,
                      const char *msg)
{
    ac_api_resp_t resp = {0};
    ac_err_t *e = ac_err_make(r->pool, status, code, "%s", msg);
    resp.headers = apr_table_make(r->pool, 2);
    ac_api_set_error(r->pool, &resp, e, rid);
    return send_response(r, &resp, rid);
}

/* Who is asking: an API key's principal, httpd's authenticated user, or the
 * shared anonymous principal when neither is configured. */
static int find_principal(request_rec *r, srv_conf_t *c, const char **principal)
{
    const char *given;
    api_key_t *keys = (api_key_t *)c->api_keys->elts;
    const char *match = NULL;

    if (c->api_keys->nelts == 0) {
        *principal = r->user ? r->user : "anonymous";
        return OK;
    }
    if (!(given = apr_table_get(r->headers_in, "X-API-Key"))) {
        return HTTP_UNAUTHORIZED;
    }
    /* Compare against every key, without an early exit, so timing does not
     * tell how many keys or which one came close. */
    for (int i = 0; i < c->api_keys->nelts; i++) {
        if (ac_ct_equal(given, strlen(given), keys[i].key, strlen(keys[i].key)) && !match) {
            match = keys[i].principal;
        }
    }
    if (!match) {
        return HTTP_UNAUTHORIZED;
    }
    *principal = match;
    return OK;
}

/* Read the whole body, up to max bytes; 413 past that. */
static int read_body(request_rec *r, apr_size_t max, const char **body, apr_size_t *len)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    char *buf;
    apr_size_t got = 0;
    long n;
    int rc;

    *body = NULL;
    *len = 0;
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) {
        return rc;
    }
    if (cl && apr_atoi64(cl) > (apr_int64_t)max) {
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    if (!ap_should_client_block(r)) {
        return OK;
    }
    buf = apr_palloc(r->pool, max + 1);
    while ((n = ap_get_client_block(r, buf + got, max + 1 - got)) > 0) {
        got += (apr_size_t)n;
        if (got > max) {
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    if (n < 0) {
        return HTTP_BAD_REQUEST;
    }
    buf[got] = '\0';
    *body = buf;
    *len = got;
    return OK;
}

static apr_status_t ensure_schema(srv_conf_t *c, apr_pool_t *p)
{
    ac_cosmos_ctx_t ctx = {p, 0, 0};
    apr_status_t rv = APR_SUCCESS;

    if (c->schema_ready) {
        return APR_SUCCESS;
    }
    apr_thread_mutex_lock(c->schema_mutex);
    if (!c->schema_ready && (rv = ac_store_ensure_schema(c->api.store, &ctx)) == APR_SUCCESS) {
        c->schema_ready = 1;
    }
    apr_thread_mutex_unlock(c->schema_mutex);
    return rv;
}

/* Routes are relative to where the admin mounted the handler: the path of the
 * <Location> that holds SetHandler, which core keeps in its per-dir config. */
static const char *handler_mount(request_rec *r)
{
    core_dir_config *cd = ap_get_core_module_config(r->per_dir_config);
    const char *d = cd ? cd->d : NULL;
    apr_size_t n;

    if (!d || d[0] != '/' || cd->r || cd->d_is_fnmatch) {
        return NULL;
    }
    n = strlen(d);
    while (n > 0 && d[n - 1] == '/') {
        n--;
    }
    return apr_pstrmemdup(r->pool, d, n);
}

/* ---- Server-Sent Events through the output filter chain -------------------------- */

typedef struct {
    request_rec *r;
    apr_bucket_brigade *bb;
} sse_t;

static apr_status_t sse_pass(sse_t *s, const char *data, apr_size_t len)
{
    conn_rec *c = s->r->connection;
    apr_status_t rv;

    if (c->aborted) {
        return APR_ECONNABORTED;
    }
    if (len) {
        APR_BRIGADE_INSERT_TAIL(s->bb, apr_bucket_transient_create(data, len, c->bucket_alloc));
    }
    /* The FLUSH makes every filter (deflate, h2, core) send what it holds now. */
    APR_BRIGADE_INSERT_TAIL(s->bb, apr_bucket_flush_create(c->bucket_alloc));
    rv = ap_pass_brigade(s->r->output_filters, s->bb);
    apr_brigade_cleanup(s->bb);
    return rv != APR_SUCCESS ? rv : (c->aborted ? APR_ECONNABORTED : APR_SUCCESS);
}

static apr_status_t sse_start(void *baton)
{
    sse_t *s = baton;
    request_rec *r = s->r;

    r->status = HTTP_OK;
    ap_set_content_type(r, "text/event-stream; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache, no-transform");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    apr_table_unset(r->headers_out, "Content-Length");
    /* mod_deflate (and brotli) step aside when these are set. */
    apr_table_setn(r->subprocess_env, "no-gzip", "1");
    apr_table_setn(r->subprocess_env, "no-brotli", "1");
    return sse_pass(s, ": stream open\n\n", 15);
}

static apr_status_t sse_event(void *baton, const char *id, const char *name, const char *data,
                              apr_size_t len)
{
    sse_t *s = baton;
    struct iovec vec[7];
    apr_status_t rv;

    vec[0].iov_base = (void *)"id: ";
    vec[0].iov_len = 4;
    vec[1].iov_base = (void *)id;
    vec[1].iov_len = strlen(id);
    vec[2].iov_base = (void *)"\nevent: ";
    vec[2].iov_len = 8;
    vec[3].iov_base = (void *)name;
    vec[3].iov_len = strlen(name);
    vec[4].iov_base = (void *)"\ndata: ";
    vec[4].iov_len = 7;
    vec[5].iov_base = (void *)data;
    vec[5].iov_len = len;
    vec[6].iov_base = (void *)"\n\n";
    vec[6].iov_len = 2;
    if (s->r->connection->aborted) {
        return APR_ECONNABORTED;
    }
    if ((rv = apr_brigade_writev(s->bb, NULL, NULL, vec, 7)) != APR_SUCCESS) {
        return rv;
    }
    return sse_pass(s, NULL, 0);
}

static apr_status_t sse_comment(void *baton, const char *text)
{
    sse_t *s = baton;
    apr_brigade_printf(s->bb, NULL, NULL, ": %s\n\n", text);
    return sse_pass(s, NULL, 0);
}

static int sse_client_gone(void *baton)
{
    return ((sse_t *)baton)->r->connection->aborted;
}

static int agentchat_handler(request_rec *r)
{
    srv_conf_t *c;
    const char *mount;
    ac_api_req_t req = {0};
    ac_api_resp_t resp = {0};
    sse_t sse;
    ac_sse_writer_t writer;
    const char *rid, *path;
    int rc;

    if (!r->handler || strcmp(r->handler, AC_HANDLER) != 0) {
        return DECLINED;
    }
    c = srv_conf(r->server);
    rid = request_id(r);

    if (!c->cosmos) {
        return send_error(r, rid, 503, "not_configured",
                          "The chat API is not configured on this server.");
    }
    if ((rc = find_principal(r, c, &req.principal)) != OK) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "agentchat: missing or unknown API key");
        return send_error(r, rid, 401, "unauthorized",
                          "A valid API key is required in the X-API-Key header.");
    }
    if (strlen(req.principal) > 256) {
        return send_error(r, rid, 403, "forbidden", "The authenticated user name is too long.");
    }
    if ((rc = read_body(r, c->api.max_body, &req.body, &req.body_len)) != OK) {
        if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
            return send_error(r, rid, 413, "request_too_large",
                              apr_psprintf(r->pool, "The request body is larger than %lu bytes.",
                                           (unsigned long)c->api.max_body));
        }
        return send_error(r, rid, 400, "bad_body", "The request body could not be read.");
    }
    if (ensure_schema(c, r->pool) != APR_SUCCESS) {
        resp.headers = apr_table_make(r->pool, 2);
        ac_err_t *e = ac_err_make(r->pool, 503, "storage_unavailable",
                                  "The storage service is not reachable; try again.");
        e->retry_after = 5;
        ac_api_set_error(r->pool, &resp, e, rid);
        return send_response(r, &resp, rid);
    }

    path = r->uri;
    if ((mount = handler_mount(r)) && strncmp(path, mount, strlen(mount)) == 0) {
        path += strlen(mount);
    }
    req.pool = r->pool;
    req.method = r->header_only ? "GET" : r->method;
    req.path = path;
    req.args = r->args;
    req.content_type = apr_table_get(r->headers_in, "Content-Type");
    req.request_id = rid;
    req.accept = apr_table_get(r->headers_in, "Accept");
    sse.r = r;
    sse.bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    writer.start = sse_start;
    writer.event = sse_event;
    writer.comment = sse_comment;
    writer.client_gone = sse_client_gone;
    writer.baton = &sse;
    req.sse = &writer;
    ac_api_handle(&c->api, &req, &resp);
    if (resp.streamed) {
        return OK;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "agentchat: %s %s -> %d (cosmos: %d round trips, %.2f RU)", r->method, path,
                  resp.status, resp.round_trips, resp.request_charge);
    apr_table_setn(r->notes, "agentchat-cosmos-ru", apr_psprintf(r->pool, "%.2f",
                                                                 resp.request_charge));
    apr_table_setn(r->notes, "agentchat-cosmos-round-trips", apr_itoa(r->pool, resp.round_trips));
    return send_response(r, &resp, rid);
}

static void register_hooks(apr_pool_t *p)
{
    APR_REGISTER_OPTIONAL_FN(agentchat_register_tool);
    ap_hook_pre_config(pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_LAST);
    ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(agentchat_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(agentchat) = {
    STANDARD20_MODULE_STUFF,
    NULL,
    NULL,
    create_srv_conf,
    merge_srv_conf,
    agentchat_cmds,
    register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_NONE,
#endif
};
