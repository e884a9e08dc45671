/* mod_agentchat_glue.h: what the httpd glue files share — the server config
 * record and the functions one glue file offers another.  Not a public API. */
#ifndef MOD_AGENTCHAT_GLUE_H
#define MOD_AGENTCHAT_GLUE_H

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

extern module AP_MODULE_DECLARE_DATA agentchat_module;

typedef struct {
    const char *key;
    const char *principal;
} api_key_t;

typedef struct {
    const char *name;
    const char *description;
    const char *instructions;
    const char *model;
    double temperature;             /* < 0: service default */
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
    int max_body;
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
    int heartbeat;                  /* seconds */
    int on_disconnect;              /* 1 = abort */
    int cancel_check_ms;
    int checkpoint_ms;
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
#define OR_DEFAULT(v, d) ((v) != UNSET ? (v) : (d))

/* mod_agentchat_config.c */
extern const command_rec ac_glue_cmds[];
void *ac_glue_create_srv_conf(apr_pool_t *p, server_rec *s);
void *ac_glue_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);
srv_conf_t *ac_glue_srv_conf(server_rec *s);
/* Build the per-process chat setup (model client, tools, agents). */
void ac_glue_build_chat(srv_conf_t *c, server_rec *s, apr_pool_t *p);

/* mod_agentchat_sse.c */
typedef struct {
    request_rec *r;
    apr_bucket_brigade *bb;
} ac_glue_sse_t;
void ac_glue_sse_writer(request_rec *r, ac_glue_sse_t *s, ac_sse_writer_t *w);

#endif
