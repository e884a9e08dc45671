/* mod_agentchat_config.c: the directives — parsing, validation with messages
 * that name the directive, per-virtual-host merging — and turning the
 * configuration into the per-process chat setup. */
#include "mod_agentchat_glue.h"

static int agent_known(void *baton, const char *name)
{
    return ac_chat_find_agent(baton, name) != NULL;
}

/* ---- configuration --------------------------------------------------------- */

void *ac_glue_create_srv_conf(apr_pool_t *p, server_rec *s)
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
    c->heartbeat = UNSET;
    c->on_disconnect = UNSET;
    c->cancel_check_ms = UNSET;
    c->checkpoint_ms = UNSET;
    c->http_tools = apr_array_make(p, 2, sizeof(http_tool_conf_t));
    c->agents = apr_array_make(p, 2, sizeof(agent_conf_t));
    return c;
}

#define MERGE_PTR(f) m->f = add->f ? add->f : base->f
#define MERGE_INT(f) m->f = add->f != UNSET ? add->f : base->f

void *ac_glue_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
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
    MERGE_INT(heartbeat);
    MERGE_INT(on_disconnect);
    MERGE_INT(cancel_check_ms);
    MERGE_INT(checkpoint_ms);
    MERGE_PTR(kb_dir);
    MERGE_PTR(weather_endpoint);
    MERGE_PTR(geocoding_endpoint);
    MERGE_PTR(default_agent);
    m->http_tools = apr_array_append(p, base->http_tools, add->http_tools);
    m->agents = add->agents->nelts ? add->agents : base->agents;
    return m;
}

srv_conf_t *ac_glue_srv_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &agentchat_module);
}

static srv_conf_t *cmd_conf(cmd_parms *cmd)
{
    srv_conf_t *c = ac_glue_srv_conf(cmd->server);
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

/* A file or directory named relative to ServerRoot that must exist now. */
static const char *check_path(cmd_parms *cmd, const char *arg, apr_filetype_e type,
                              const char **out)
{
    apr_finfo_t fi;
    const char *path = ap_server_root_relative(cmd->pool, arg);

    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS ||
        fi.filetype != type) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a readable %s", cmd->cmd->name, arg,
                            type == APR_DIR ? "directory" : "file");
    }
    *out = path;
    return NULL;
}

static const char *set_ca_file(cmd_parms *cmd, void *d, const char *arg)
{
    return check_path(cmd, arg, APR_REG, &cmd_conf(cmd)->ca_file);
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

/* A numeric directive: where it is stored and what range it accepts.  The
 * spec travels in the command table's cmd_data, as with ap_set_int_slot. */
typedef struct {
    apr_size_t offset; /* of an int in srv_conf_t */
    long lo, hi;
} int_spec_t;

#define INT_SPEC(field, lo, hi) (&(int_spec_t){APR_OFFSETOF(srv_conf_t, field), (lo), (hi)})

static const char *set_int_field(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    const int_spec_t *spec = cmd->info;
    const char *err;
    long v = 0;

    if ((err = set_int(cmd, arg, spec->lo, spec->hi, &v))) {
        return err;
    }
    *(int *)((char *)c + spec->offset) = (int)v;
    return NULL;
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
        return apr_psprintf(cmd->pool, "%s: expected 'azure' or 'openai', got '%s'", cmd->cmd->name,
                            arg);
    }
    return NULL;
}

static const char *set_on_disconnect(cmd_parms *cmd, void *d, const char *arg)
{
    srv_conf_t *c = cmd_conf(cmd);
    if (!strcasecmp(arg, "continue")) {
        c->on_disconnect = 0;
    }
    else if (!strcasecmp(arg, "abort")) {
        c->on_disconnect = 1;
    }
    else {
        return apr_psprintf(cmd->pool, "%s: expected 'continue' or 'abort', got '%s'",
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
    return check_path(cmd, arg, APR_DIR, &cmd_conf(cmd)->kb_dir);
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

const command_rec ac_glue_cmds[] = {
    AP_INIT_TAKE1(AC_DIR_COSMOS_ENDPOINT, set_cosmos_endpoint, NULL, RSRC_CONF,
                  "Cosmos DB account URL, e.g. https://ACCOUNT.documents.azure.com:443/"),
    AP_INIT_TAKE1(AC_DIR_COSMOS_KEY, set_cosmos_key, NULL, RSRC_CONF,
                  "Cosmos DB master key, or file:/path/to/keyfile"),
    AP_INIT_TAKE1(AC_DIR_COSMOS_DATABASE, set_cosmos_database, NULL, RSRC_CONF,
                  "Cosmos DB database name (default agentchat)"),
    AP_INIT_TAKE1(AC_DIR_COSMOS_TIMEOUT, set_int_field, INT_SPEC(cosmos_timeout, 1, 600), RSRC_CONF,
                  "Seconds one Cosmos request may take (default 30)"),
    AP_INIT_TAKE1(AC_DIR_CA_FILE, set_ca_file, NULL, RSRC_CONF,
                  "PEM file of CA certificates trusted for outbound TLS"),
    AP_INIT_FLAG(AC_DIR_TLS_VERIFY, set_tls_verify, NULL, RSRC_CONF,
                 "Verify outbound TLS certificates (default On)"),
    AP_INIT_TAKE1(AC_DIR_POOL_SIZE, set_int_field, INT_SPEC(pool_size, 1, 1024), RSRC_CONF,
                  "Idle keep-alive connections kept per process (default 16)"),
    AP_INIT_TAKE1(AC_DIR_CONNECT_TIMEOUT, set_int_field, INT_SPEC(connect_timeout, 1, 300),
                  RSRC_CONF, "Seconds to establish an outbound connection (default 5)"),
    AP_INIT_TAKE1(AC_DIR_MAX_BODY, set_int_field, INT_SPEC(max_body, 1024, 256L * 1024 * 1024),
                  RSRC_CONF, "Largest request body accepted, in bytes (default 1048576)"),
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
    AP_INIT_TAKE1(AC_DIR_MODEL_TIMEOUT, set_int_field, INT_SPEC(model_timeout, 1, 3600), RSRC_CONF,
                  "Seconds one model call may stream (default 300)"),
    AP_INIT_TAKE1(AC_DIR_HISTORY_MESSAGES, set_int_field, INT_SPEC(history_messages, 0, 200),
                  RSRC_CONF, "Earlier messages sent to the model with a new one (default 20)"),
    AP_INIT_TAKE1(AC_DIR_MAX_TOOL_ROUNDS, set_int_field, INT_SPEC(max_tool_rounds, 0, 32),
                  RSRC_CONF, "Model calls per turn that may request tools (default 5)"),
    AP_INIT_TAKE1(AC_DIR_TOOL_TIMEOUT, set_int_field, INT_SPEC(tool_timeout, 1, 600), RSRC_CONF,
                  "Seconds one tool call may take (default 15)"),
    AP_INIT_TAKE1(AC_DIR_MAX_MESSAGE_CHARS, set_int_field, INT_SPEC(max_message_chars, 1, 1000000),
                  RSRC_CONF, "Longest user message, in characters (default 32000)"),
    AP_INIT_TAKE1(AC_DIR_RUN_TIMEOUT, set_int_field, INT_SPEC(run_timeout, 10, 86400), RSRC_CONF,
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
    AP_INIT_TAKE1(AC_DIR_HEARTBEAT_INTERVAL, set_int_field, INT_SPEC(heartbeat, 0, 3600), RSRC_CONF,
                  "Seconds of silence after which a stream sends a heartbeat event (default 15; "
                  "0 = never)"),
    AP_INIT_TAKE1(AC_DIR_ON_DISCONNECT, set_on_disconnect, NULL, RSRC_CONF,
                  "continue (default): a run finishes and is stored when its streaming client "
                  "leaves; abort: stop and store the partial answer"),
    AP_INIT_TAKE1(AC_DIR_CANCEL_CHECK_INTERVAL, set_int_field,
                  INT_SPEC(cancel_check_ms, 100, 60000), RSRC_CONF,
                  "Milliseconds between a running turn's checks for a cancel request (default "
                  "1500)"),
    AP_INIT_TAKE1(AC_DIR_CHECKPOINT_INTERVAL, set_int_field, INT_SPEC(checkpoint_ms, 100, 60000),
                  RSRC_CONF,
                  "Milliseconds between partial-answer checkpoints while another server follows "
                  "a run (default 1000)"),
    AP_INIT_TAKE1(AC_DIR_DEFAULT_AGENT, set_word_field, NULL, RSRC_CONF,
                  "The agent of threads created without one (default: the first defined)"),
    {NULL},
};

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

void ac_glue_build_chat(srv_conf_t *c, server_rec *s, apr_pool_t *p)
{
    ac_model_conf_t mc = {0};
    apr_array_header_t *tools = all_tools(c, p);
    apr_array_header_t *agents = apr_array_make(p, 2, sizeof(const ac_agent_t *));

    mc.provider =
        c->openai_provider != UNSET ? (ac_provider_e)c->openai_provider : AC_PROVIDER_AZURE;
    mc.endpoint = c->openai_endpoint;
    mc.deployment = c->openai_deployment;
    mc.api_version = c->openai_api_version ? c->openai_api_version : AC_DEFAULT_API_VERSION;
    mc.api_key = c->openai_key;
    mc.timeout = apr_time_from_sec(OR_DEFAULT(c->model_timeout, AC_DEFAULT_MODEL_TIMEOUT));
    c->model = ac_model_create(p, &mc, c->http);

    if (c->agents->nelts == 0) {
        agent_conf_t dflt = {
            AC_DEFAULT_AGENT_NAME, "General assistant with every tool", NULL, NULL, -1, NULL};
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
    c->chat.default_agent =
        c->default_agent ? c->default_agent : APR_ARRAY_IDX(agents, 0, const ac_agent_t *)->name;
    c->chat.history_messages = OR_DEFAULT(c->history_messages, AC_DEFAULT_HISTORY_MESSAGES);
    c->chat.stale_after = apr_time_from_sec(OR_DEFAULT(c->run_timeout, AC_DEFAULT_RUN_TIMEOUT));
    ac_store_set_stale_after(c->api.store, c->chat.stale_after);
    c->chat.max_message_chars =
        (apr_size_t)OR_DEFAULT(c->max_message_chars, AC_DEFAULT_MAX_MESSAGE_CHARS);
    c->chat.checkpoint_interval =
        apr_time_from_msec(OR_DEFAULT(c->checkpoint_ms, AC_DEFAULT_CHECKPOINT_MS));
    c->chat.cancel_poll =
        apr_time_from_msec(OR_DEFAULT(c->cancel_check_ms, AC_DEFAULT_CANCEL_CHECK_MS));
    c->api.chat = &c->chat;
    c->api.heartbeat = apr_time_from_sec(OR_DEFAULT(c->heartbeat, AC_DEFAULT_HEARTBEAT_INTERVAL));
    c->api.disconnect_abort = OR_DEFAULT(c->on_disconnect, 0);
    c->api.default_agent = c->chat.default_agent;
    c->api.agent_known = agent_known;
    c->api.agent_baton = &c->chat;
}
