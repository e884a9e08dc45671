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

/* model endpoint and agents */
#define AC_DIR_OPENAI_ENDPOINT "AgentChatOpenAIEndpoint"
#define AC_DIR_OPENAI_PROVIDER "AgentChatOpenAIProvider"
#define AC_DIR_OPENAI_DEPLOYMENT "AgentChatOpenAIDeployment"
#define AC_DIR_OPENAI_API_VERSION "AgentChatOpenAIApiVersion"
#define AC_DIR_OPENAI_KEY "AgentChatOpenAIKey"
#define AC_DIR_MODEL_TIMEOUT "AgentChatModelTimeout"
#define AC_DIR_HISTORY_MESSAGES "AgentChatHistoryMessages"
#define AC_DIR_MAX_TOOL_ROUNDS "AgentChatMaxToolRounds"
#define AC_DIR_TOOL_TIMEOUT "AgentChatToolTimeout"
#define AC_DIR_MAX_MESSAGE_CHARS "AgentChatMaxMessageChars"
#define AC_DIR_RUN_TIMEOUT "AgentChatRunTimeout"
#define AC_DIR_KNOWLEDGE_BASE "AgentChatKnowledgeBase"
#define AC_DIR_WEATHER_ENDPOINT "AgentChatWeatherEndpoint"
#define AC_DIR_GEOCODING_ENDPOINT "AgentChatGeocodingEndpoint"
#define AC_DIR_HTTP_TOOL "AgentChatHttpTool"
#define AC_DIR_AGENT "<AgentChatAgent"
#define AC_DIR_DEFAULT_AGENT "AgentChatDefaultAgent"

#define AC_DEFAULT_API_VERSION "2024-10-21"
#define AC_DEFAULT_MODEL_TIMEOUT 300
#define AC_DEFAULT_HISTORY_MESSAGES 20
#define AC_DEFAULT_MAX_TOOL_ROUNDS 5
#define AC_DEFAULT_TOOL_TIMEOUT 15
#define AC_DEFAULT_MAX_MESSAGE_CHARS 32000
#define AC_DEFAULT_RUN_TIMEOUT 600
#define AC_DEFAULT_AGENT_NAME "default"
#define AC_DEFAULT_INSTRUCTIONS                                                                    \
    "You are a helpful assistant. Use the tools you are given when they help you answer "          \
    "accurately; do not invent tool results. Answer concisely."

/* streaming */
#define AC_DIR_HEARTBEAT_INTERVAL "AgentChatHeartbeatInterval"
#define AC_DIR_ON_DISCONNECT "AgentChatOnDisconnect"
#define AC_DIR_CANCEL_CHECK_INTERVAL "AgentChatCancelCheckInterval"
#define AC_DEFAULT_HEARTBEAT_INTERVAL 15
#define AC_DEFAULT_CANCEL_CHECK_MS 1500
#define AC_DIR_CHECKPOINT_INTERVAL "AgentChatCheckpointInterval"
#define AC_DEFAULT_CHECKPOINT_MS 1000
