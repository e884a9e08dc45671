#!/usr/bin/env node
// run-local.js: `make run` — the whole thing on this machine.
//   * Cosmos: a local Cosmos-protocol server (cosmosdb-server over HTTPS with a
//     generated test CA), unless AGENTCHAT_COSMOS_ENDPOINT / _KEY are set;
//   * model: the local development model (scripted, no network, answers are
//     labelled "[dev model]"), unless AGENTCHAT_OPENAI_ENDPOINT / _KEY /
//     _DEPLOYMENT (and optionally _PROVIDER azure|openai) are set;
//   * weather: a local fake Open-Meteo (Seattle, Paris, Tokyo), unless
//     AGENTCHAT_REAL_WEATHER=1;
//   * httpd with the module on http://localhost:${PORT:-8080}, the demo chat
//     page at / and the API at /api.
// Ctrl-C stops everything it started.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const lib = path.join(__dirname, '..', 'tests', 'integration', 'lib');
const { startCosmos } = require(path.join(lib, 'cosmos'));
const { startHttpd } = require(path.join(lib, 'httpd'));
const { startFakeModel } = require(path.join(lib, 'fake-model'));
const { startFakeOpenMeteo } = require(path.join(lib, 'fake-openmeteo'));
const { tmpDir, stopAll } = require(path.join(lib, 'proc'));

const env = process.env;
const port = Number(env.PORT || 8080);
const repo = path.join(__dirname, '..');

async function main() {
    const dir = tmpDir('agentchat-run-');
    const lines = [];
    let directives = '';

    if (env.AGENTCHAT_COSMOS_ENDPOINT && env.AGENTCHAT_COSMOS_KEY) {
        directives += `AgentChatCosmosEndpoint ${env.AGENTCHAT_COSMOS_ENDPOINT}\n` +
            `AgentChatCosmosKey ${env.AGENTCHAT_COSMOS_KEY}\n`;
        lines.push(`Cosmos DB:  ${env.AGENTCHAT_COSMOS_ENDPOINT} (Azure)`);
    } else {
        const cosmos = await startCosmos({ dir });
        directives += `AgentChatCosmosEndpoint ${cosmos.endpoint}\nAgentChatCosmosKey ${cosmos.key}\n` +
            `AgentChatCAFile ${cosmos.caFile}\n`;
        lines.push(`Cosmos DB:  ${cosmos.endpoint} (local cosmosdb-server; data lives until you stop)`);
    }
    if (env.AGENTCHAT_OPENAI_ENDPOINT && env.AGENTCHAT_OPENAI_KEY && env.AGENTCHAT_OPENAI_DEPLOYMENT) {
        directives += `AgentChatOpenAIEndpoint ${env.AGENTCHAT_OPENAI_ENDPOINT}\n` +
            `AgentChatOpenAIProvider ${env.AGENTCHAT_OPENAI_PROVIDER || 'azure'}\n` +
            `AgentChatOpenAIDeployment ${env.AGENTCHAT_OPENAI_DEPLOYMENT}\n` +
            `AgentChatOpenAIKey ${env.AGENTCHAT_OPENAI_KEY}\n`;
        lines.push(`Model:      ${env.AGENTCHAT_OPENAI_ENDPOINT} (${env.AGENTCHAT_OPENAI_DEPLOYMENT})`);
    } else {
        const model = await startFakeModel({ delayMs: 25 });
        directives += `AgentChatOpenAIEndpoint ${model.url}/v1\nAgentChatOpenAIProvider openai\n` +
            `AgentChatOpenAIDeployment dev-model\n`;
        lines.push(`Model:      ${model.url} (LOCAL DEVELOPMENT MODEL: scripted, echoes, calls tools)`);
    }
    if (!env.AGENTCHAT_REAL_WEATHER) {
        const wx = await startFakeOpenMeteo();
        directives += `AgentChatWeatherEndpoint ${wx.url}\nAgentChatGeocodingEndpoint ${wx.url}\n`;
        lines.push(`Weather:    ${wx.url} (local fake: Seattle, Paris, Tokyo)`);
    }
    directives += `AgentChatKnowledgeBase ${path.join(repo, 'tests', 'fixtures', 'kb')}\n` +
        'AgentChatHeartbeatInterval 10\nAllowEncodedSlashes NoDecode\n';

    const hdir = path.join(dir, 'httpd');
    fs.mkdirSync(path.join(hdir, 'htdocs'), { recursive: true, mode: 0o755 });
    fs.copyFileSync(path.join(repo, 'demo', 'index.html'), path.join(hdir, 'htdocs', 'index.html'));
    const httpd = await startHttpd({ dir: hdir, port, directives: directives + 'DirectoryIndex index.html\n',
        extraModules: ['dir'] });
    console.log(`\nmod_agentchat is running:\n  Chat page:  http://localhost:${port}/\n  API:        http://localhost:${port}/api/threads`);
    for (const l of lines) console.log(`  ${l}`);
    console.log(`  Logs:       ${path.join(dir, 'httpd', 'error.log')}\nPress Ctrl-C to stop.`);
    await new Promise((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
    });
    console.log('\nstopping...');
    await stopAll();
    void httpd;
}

main().catch(async (e) => {
    console.error(`make run failed: ${e.message}`);
    await stopAll();
    process.exit(1);
});
