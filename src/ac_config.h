/* ac_config: directive names, in one place so a misspelling is a compile error
 * and the docs check can find every one of them. */
#ifndef AC_CONFIG_H
#define AC_CONFIG_H

#define AC_HANDLER "agentchat"

#define AC_DIR_COSMOS_ENDPOINT "AgentChatCosmosEndpoint"
#define AC_DIR_COSMOS_KEY "AgentChatCosmosKey"
#define AC_DIR_COSMOS_DATABASE "AgentChatCosmosDatabase"
#define AC_DIR_COSMOS_TIMEOUT "AgentChatCosmosTimeout"
#define AC_DIR_CA_FILE "AgentChatCAFile"
#define AC_DIR_TLS_VERIFY "AgentChatTLSVerify"
#define AC_DIR_POOL_SIZE "AgentChatPoolSize"
#define AC_DIR_CONNECT_TIMEOUT "AgentChatConnectTimeout"
#define AC_DIR_MAX_BODY "AgentChatMaxRequestBody"
#define AC_DIR_API_KEY "AgentChatApiKey"

#define AC_DEFAULT_DATABASE "agentchat"
#define AC_DEFAULT_POOL_SIZE 16
#define AC_DEFAULT_CONNECT_TIMEOUT 5
#define AC_DEFAULT_COSMOS_TIMEOUT 30
#define AC_DEFAULT_MAX_BODY (1024 * 1024)

#endif
