// stack.js: what the browser tests share — the `make run` stack on loopback
// (Cosmos-protocol server behind the signature-checking front, the scripted
// development model, a fake Open-Meteo, httpd with mod_agentchat serving
// htdocs at / and the API at /api) and a headless Debian chromium driven by
// playwright-core.  Every process started here is registered with proc.js's
// stopAll(), so a test file's `after(stopAll)` stops the lot (browser first).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');
const lib = path.join(__dirname, '..', '..', 'integration', 'lib');
const { startCosmos } = require(path.join(lib, 'cosmos'));
const { startHttpd, request } = require(path.join(lib, 'httpd'));
const { startFakeModel } = require(path.join(lib, 'fake-model'));
const { startFakeOpenMeteo } = require(path.join(lib, 'fake-openmeteo'));
const { tmpDir, track, stopAll, pollUntil } = require(path.join(lib, 'proc'));

const REPO = path.resolve(__dirname, '..', '..', '..');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO, 'tests', 'e2e', 'artifacts');

// Start Cosmos + model + weather + httpd.  opts: {modelDelayMs, htdocs: {name: content},
// demo: copy demo/index.html to htdocs/index.html}.
async function startStack({ modelDelayMs = 0, htdocs = {}, demo = false } = {}) {
    const dir = tmpDir('agentchat-e2e-');
    const cosmos = await startCosmos({ dir });
    const model = await startFakeModel({ delayMs: modelDelayMs });
    const meteo = await startFakeOpenMeteo();
    track(() => meteo.stop()); // fake-openmeteo does not register itself

    const hdir = path.join(dir, 'httpd');
    const docroot = path.join(hdir, 'htdocs');
    fs.mkdirSync(docroot, { recursive: true, mode: 0o755 });
    if (demo) fs.copyFileSync(path.join(REPO, 'demo', 'index.html'), path.join(docroot, 'index.html'));
    for (const [name, content] of Object.entries(htdocs)) fs.writeFileSync(path.join(docroot, name), content, { mode: 0o644 });

    const directives = `AgentChatCosmosEndpoint ${cosmos.endpoint}
AgentChatCosmosKey ${cosmos.key}
AgentChatCAFile ${cosmos.caFile}
AgentChatOpenAIEndpoint ${model.url}/v1
AgentChatOpenAIProvider openai
AgentChatOpenAIDeployment dev-model
AgentChatWeatherEndpoint ${meteo.url}
AgentChatGeocodingEndpoint ${meteo.url}
AgentChatKnowledgeBase ${path.join(REPO, 'tests', 'fixtures', 'kb')}
AgentChatHeartbeatInterval 10
AgentChatCancelCheckInterval 500
AllowEncodedSlashes NoDecode
DirectoryIndex index.html
`;
    const httpd = await startHttpd({ dir: hdir, directives, extraModules: ['dir'] });
    const db = cosmos.client.database('agentchat');
    return { dir, cosmos, model, meteo, httpd, db, threadsC: db.container('threads'),
        messagesC: db.container('messages'),
        api: (method, p, body) => request(httpd.url + p, { method, body }) };
}

// Headless Debian chromium with a fresh profile; closed by stopAll().
async function launchBrowser() {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (make deps)`);
    const profile = tmpDir('agentchat-chromium-');
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        timeout: 30000,
        viewport: { width: 1200, height: 800 },
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync',
            '--no-proxy-server', '--disable-dev-shm-usage'],
    });
    let closed = false;
    const close = track(async () => {
        if (closed) return;
        closed = true;
        await context.close();
    });
    return { context, close };
}

// A debugging screenshot (never asserted on); failures to write are ignored.
async function screenshot(page, name) {
    try {
        fs.mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true, timeout: 10000 });
    } catch { /* only a debugging aid */ }
}

module.exports = { startStack, launchBrowser, screenshot, stopAll, pollUntil, ARTIFACTS };
