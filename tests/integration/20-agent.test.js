// 20-agent.test.js: the agent — a real httpd with mod_agentchat, a real
// cosmosdb-server behind the signature-checking front (trusted through
// AgentChatCAFile), the scripted chat-completions upstream (lib/fake-model.js)
// and a fake Open-Meteo (lib/fake-openmeteo.js).  Stored documents are checked
// with the official @azure/cosmos SDK (database `agentchat`: `threads` pk
// /user_id, `messages` pk /thread_id).
//
// Servers:  A  OpenAI-compatible provider, agents `helper` (every tool, the
//              default) and `math` (calculate only), knowledge base, an HTTP
//              tool, AgentChatMaxMessageChars 500
//           B  Azure provider (deployment + api-key), AgentChatMaxToolRounds 2,
//              AgentChatHistoryMessages 2
//           C  Cosmos only, no model endpoint
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const { startCosmos } = require('./lib/cosmos');
const { startHttpd, request } = require('./lib/httpd');
const { startFakeModel } = require('./lib/fake-model');
const { startFakeOpenMeteo } = require('./lib/fake-openmeteo');
const { tmpDir, stopAll, delay } = require('./lib/proc');

const OA_KEY = 'sk-test-openai-key-0001';
const AZ_KEY = 'azure-test-api-key-0002';
const OA_MODEL = 'gpt-4o-mini-test';
const AZ_DEPLOYMENT = 'gpt4o-dep';
const AZ_API_VERSION = '2024-12-01-preview';
const KB_DIR = path.resolve(__dirname, '..', 'fixtures', 'kb');
const RFC3339_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let cosmos, modelOA, modelAz, meteo, toolServer, httpdA, httpdB, httpdC;
let threadsC, messagesC; // SDK containers
const toolRequests = []; // what the HTTP tool endpoint received
const archive = { oa: [], az: [] }; // every upstream request of the whole file

// ---------------------------------------------------------------- helpers

// Start each test with empty request logs (kept in `archive` for the last test).
function fresh() {
    archive.oa.push(...modelOA.requests);
    archive.az.push(...modelAz.requests);
    modelOA.reset();
    modelAz.reset();
    meteo.requests.length = 0;
    toolRequests.length = 0;
}

function tail(h) {
    return h.errorLog().split('\n').slice(-25).join('\n');
}

// A response that should have status `want`: the message carries the body and
// the end of the error_log, so a failure explains itself.
function expectStatus(h, r, want) {
    assert.equal(r.status, want, `expected HTTP ${want}, got ${r.status}: ${r.text}\n--- error_log ---\n${tail(h)}`);
}

const api = (h, method, p, body, opts = {}) => request(h.url + p, { method, body, ...opts });

async function newThread(h, body = {}) {
    const r = await api(h, 'POST', '/api/threads', body);
    expectStatus(h, r, 201);
    assert.match(r.json.id, /^thread_/);
    return r.json;
}

async function send(h, threadId, content, want = 200) {
    const r = await api(h, 'POST', `/api/threads/${threadId}/messages`, { content });
    expectStatus(h, r, want);
    return r;
}

async function sdkRead(container, id, pk) {
    const { resource, statusCode } = await container.item(id, pk).read();
    assert.equal(statusCode, 200, `SDK read of ${id} in partition ${pk}: ${statusCode}`);
    return resource;
}

async function sdkMessages(threadId) {
    const { resources } = await messagesC.items.query({
        query: 'SELECT * FROM c WHERE c.thread_id = @t ORDER BY c.seq ASC',
        parameters: [{ name: '@t', value: threadId }],
    }, { partitionKey: threadId }).fetchAll();
    return resources;
}

// The usage object the upstream itself streamed for one request.
function upstreamUsage(rec) {
    const u = rec.emitted.find((e) => e.kind === 'usage');
    assert.ok(u, `request ${rec.index} streamed no usage chunk`);
    const { prompt_tokens, completion_tokens, total_tokens } = JSON.parse(u.raw.replace(/^data: /, '')).usage;
    return { prompt_tokens, completion_tokens, total_tokens };
}

function sumUsage(recs) {
    const s = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    for (const r of recs) {
        const u = upstreamUsage(r);
        s.prompt_tokens += u.prompt_tokens;
        s.completion_tokens += u.completion_tokens;
        s.total_tokens += u.total_tokens;
    }
    return s;
}

const toolNames = (rec) => (rec.body.tools || []).map((t) => t.function.name);
const roles = (rec) => rec.body.messages.map((m) => m.role);

function assertErrorBody(r, status, code) {
    assert.equal(r.status, status, r.text);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.ok(r.json && r.json.error, `not a JSON error: ${r.text}`);
    if (code) assert.equal(r.json.error.code, code, r.text);
    assert.equal(typeof r.json.error.code, 'string');
    assert.equal(typeof r.json.error.message, 'string');
    assert.ok(r.json.error.request_id, `error without request_id: ${r.text}`);
}

// ---------------------------------------------------------------- setup

const parked = [];

function startToolServer() {
    const server = http.createServer((req, res) => {
        const parts = [];
        req.on('data', (d) => parts.push(d));
        req.on('end', () => {
            const raw = Buffer.concat(parts).toString('utf8');
            let body;
            try { body = JSON.parse(raw); } catch { body = undefined; }
            toolRequests.push({ method: req.method, url: req.url, headers: req.headers, raw, body });
            if (req.method !== 'POST' || req.url !== '/order') {
                res.writeHead(404, { 'content-type': 'application/json' });
                return res.end('{"error":"not found"}');
            }
            const reply = { order_id: body?.order_id ?? null, status: 'shipped', carrier: 'ACME Post',
                items: 2, eta: '2026-01-05' };
            if (String(body?.order_id).startsWith('PAIR-')) {
                // Held until its partner arrives: only calls that run at the same
                // time both come back "together" (bounded: alone after 2.5 s).
                const entry = { res, reply, timer: null };
                entry.timer = setTimeout(() => {
                    parked.splice(parked.indexOf(entry), 1);
                    res.writeHead(200, { 'content-type': 'application/json' });
                    res.end(JSON.stringify({ ...reply, status: 'alone' }));
                }, 2500);
                parked.push(entry);
                if (parked.length === 2) {
                    for (const p of parked.splice(0)) {
                        clearTimeout(p.timer);
                        p.res.writeHead(200, { 'content-type': 'application/json' });
                        p.res.end(JSON.stringify({ ...p.reply, status: 'together' }));
                    }
                }
                return undefined;
            }
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(reply));
        });
    });
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve({
            url: `http://127.0.0.1:${server.address().port}`,
            stop: () => new Promise((done) => { server.close(() => done()); server.closeAllConnections(); }),
        }));
    });
}

before(async () => {
    const dir = tmpDir('agentchat-agent-');
    cosmos = await startCosmos({ dir });
    modelOA = await startFakeModel({ apiKey: OA_KEY });
    modelAz = await startFakeModel({ apiKey: AZ_KEY, deployment: AZ_DEPLOYMENT, flavor: 'azure' });
    meteo = await startFakeOpenMeteo();
    toolServer = await startToolServer();

    const schemaFile = path.join(dir, 'lookup_order.schema.json');
    fs.writeFileSync(schemaFile, JSON.stringify({
        type: 'object',
        properties: { order_id: { type: 'string', description: 'The order number, e.g. A-1001' } },
        required: ['order_id'],
    }), { mode: 0o644 });

    const common = `AgentChatCosmosEndpoint ${cosmos.endpoint}
AgentChatCosmosKey ${cosmos.key}
AgentChatCAFile ${cosmos.caFile}
AllowEncodedSlashes NoDecode`;
    const weather = `AgentChatWeatherEndpoint ${meteo.url}
AgentChatGeocodingEndpoint ${meteo.url}`;

    const [a, b, c] = await Promise.all([
        startHttpd({ dir: path.join(dir, 'httpd-a'), directives: `${common}
${weather}
AgentChatOpenAIEndpoint ${modelOA.url}/v1
AgentChatOpenAIProvider openai
AgentChatOpenAIDeployment ${OA_MODEL}
AgentChatOpenAIKey ${OA_KEY}
AgentChatKnowledgeBase ${KB_DIR}
AgentChatHttpTool lookup_order ${toolServer.url}/order ${schemaFile} "Look up an order by its number"
AgentChatMaxMessageChars 500
<AgentChatAgent helper>
    Description "General helper with every tool"
    Instructions "You are the helper agent."
</AgentChatAgent>
<AgentChatAgent math>
    Description "Arithmetic only"
    Instructions "You are the math agent. Always use the calculate tool."
    Tools calculate
    Temperature 0.2
</AgentChatAgent>` }),
        startHttpd({ dir: path.join(dir, 'httpd-b'), directives: `${common}
${weather}
AgentChatOpenAIEndpoint ${modelAz.url}
AgentChatOpenAIProvider azure
AgentChatOpenAIDeployment ${AZ_DEPLOYMENT}
AgentChatOpenAIApiVersion ${AZ_API_VERSION}
AgentChatOpenAIKey ${AZ_KEY}
AgentChatMaxToolRounds 2
AgentChatHistoryMessages 2` }),
        startHttpd({ dir: path.join(dir, 'httpd-c'), directives: common }),
    ]);
    httpdA = a; httpdB = b; httpdC = c;
    const db = cosmos.client.database('agentchat');
    threadsC = db.container('threads');
    messagesC = db.container('messages');
});

after(async () => {
    for (const s of [meteo, toolServer]) {
        if (s) await s.stop().catch(() => {});
    }
    await stopAll();
});

// ---------------------------------------------------------------- tests

const Q1 = "What's the weather in Seattle and what's a 15% tip on $85?";
const A1 = 'In Seattle it is partly cloudy at 12.3 °C. A 15% tip on $85 is $12.75.';
const Q2 = 'And how about Paris?';
const A2 = 'Paris is clear and 18.5 °C right now.';
let t1; // the thread of tests 1, 3 and 4
let t1Calls; // [{id, name}] of the first turn
let t1Answer; // the assistant message of the first turn

test('1. two tool calls in one turn: results, usage summed, run stored with steps', async () => {
    fresh();
    t1 = await newThread(httpdA);
    assert.equal(t1.title ?? null, null, 'no title given at creation');
    modelOA.script(
        { toolCalls: [
            { id: 'call_weather_1', name: 'get_weather', arguments: { location: 'Seattle' } },
            { id: 'call_calc_1', name: 'calculate', arguments: { expression: '85 * 0.15' } },
        ], fragmentSize: 3, interleave: true, usage: { prompt_tokens: 61, completion_tokens: 17 } },
        { text: A1, chunkSize: 5, usage: { prompt_tokens: 143, completion_tokens: 29 } },
    );
    const reqPath = `/api/threads/${t1.id}/messages`;
    const reqBody = { content: Q1 };
    const t0 = Date.now();
    const r = await api(httpdA, 'POST', reqPath, reqBody);
    const wall = Date.now() - t0;
    expectStatus(httpdA, r, 200);
    console.log('--- test 1: request ---');
    console.log(`POST ${reqPath}\nContent-Type: application/json\n\n${JSON.stringify(reqBody)}`);
    console.log('--- test 1: response ---');
    console.log(`HTTP ${r.status} ${r.headers['content-type']}\n${JSON.stringify(r.json, null, 2)}`);

    assert.match(String(r.headers['content-type']), /^application\/json/);
    const m = r.json;
    t1Answer = m;
    assert.match(m.id, /^msg_/);
    assert.equal(m.thread_id, t1.id);
    assert.equal(m.role, 'assistant');
    assert.equal(m.content, A1);
    assert.equal(m.status, 'completed');
    assert.match(m.run_id, /^run_/);
    assert.match(m.created_at, RFC3339_MS);

    // Both calls, in the model's order, with their results.
    assert.equal(m.tool_calls.length, 2, JSON.stringify(m.tool_calls));
    const [w, c] = m.tool_calls;
    assert.equal(w.id, 'call_weather_1');
    assert.equal(w.tool, 'get_weather');
    assert.deepEqual(w.arguments, { location: 'Seattle' });
    assert.equal(w.status, 'completed');
    assert.match(w.result.location, /Seattle/);
    assert.equal(w.result.temperature, 12.3);
    assert.equal(w.result.condition, 'Partly cloudy');
    assert.equal(w.result.humidity, 71);
    assert.equal(c.id, 'call_calc_1');
    assert.equal(c.tool, 'calculate');
    assert.deepEqual(c.arguments, { expression: '85 * 0.15' });
    assert.equal(c.status, 'completed');
    assert.equal(c.result.result, 12.75);
    for (const tc of m.tool_calls) assert.ok(Number.isInteger(tc.duration_ms) && tc.duration_ms >= 0, JSON.stringify(tc));

    // The fake Open-Meteo was really asked: geocoding, then the forecast at Seattle.
    const search = meteo.requests.find((q) => q.path === '/v1/search');
    const fc = meteo.requests.find((q) => q.path === '/v1/forecast');
    assert.ok(search && fc, JSON.stringify(meteo.requests));
    assert.equal(search.query.name, 'Seattle');
    assert.ok(Math.abs(Number(fc.query.latitude) - 47.60621) < 0.01, JSON.stringify(fc));

    // Usage = the upstream's own usage summed over both model calls.
    assert.equal(modelOA.requests.length, 2);
    assert.equal(modelOA.pending(), 0);
    const want = sumUsage(modelOA.requests);
    assert.deepEqual(want, { prompt_tokens: 204, completion_tokens: 46, total_tokens: 250 });
    assert.deepEqual(m.usage, want);

    // The second upstream request carries the assistant tool_calls message and
    // one `tool` message per call, matched by tool_call_id.
    const first = modelOA.requests[0].body;
    const second = modelOA.requests[1].body;
    assert.deepEqual(first.messages.map((x) => x.role), ['system', 'user']);
    assert.equal(first.messages[0].content, 'You are the helper agent.');
    assert.equal(first.messages[1].content, Q1);
    const ai = second.messages.findIndex((x) => x.role === 'assistant' && Array.isArray(x.tool_calls));
    assert.ok(ai > 0, JSON.stringify(second.messages));
    const asked = second.messages[ai].tool_calls;
    assert.deepEqual(asked.map((x) => [x.id, x.type, x.function.name]),
        [['call_weather_1', 'function', 'get_weather'], ['call_calc_1', 'function', 'calculate']]);
    assert.deepEqual(JSON.parse(asked[0].function.arguments), { location: 'Seattle' });
    assert.deepEqual(JSON.parse(asked[1].function.arguments), { expression: '85 * 0.15' });
    const tools = second.messages.slice(ai + 1);
    assert.deepEqual(tools.map((x) => [x.role, x.tool_call_id]), [['tool', 'call_weather_1'], ['tool', 'call_calc_1']]);
    assert.equal(JSON.parse(tools[0].content).condition, 'Partly cloudy');
    assert.equal(JSON.parse(tools[1].content).result, 12.75);
    t1Calls = asked.map((x) => ({ id: x.id, name: x.function.name }));

    // The run, through the API and as stored.
    const rr = await api(httpdA, 'GET', `/api/threads/${t1.id}/runs/${m.run_id}`);
    expectStatus(httpdA, rr, 200);
    const stored = await sdkRead(messagesC, m.run_id, t1.id);
    console.log('--- test 1: stored run document (SDK) ---');
    console.log(JSON.stringify(stored, null, 2));
    for (const [where, run] of [['API', rr.json], ['SDK', stored]]) {
        const ctx = `${where}: ${JSON.stringify(run)}`;
        assert.equal(run.id, m.run_id, ctx);
        assert.equal(run.status, 'completed', ctx);
        assert.deepEqual(run.usage, want, ctx);
        assert.ok(Number.isInteger(run.time_to_first_token_ms) && run.time_to_first_token_ms >= 0, ctx);
        assert.ok(Number.isInteger(run.duration_ms) && run.duration_ms >= run.time_to_first_token_ms, ctx);
        assert.ok(run.duration_ms <= wall + 50, ctx);
        if (run.started_at && run.completed_at) {
            assert.ok(run.duration_ms <= Date.parse(run.completed_at) - Date.parse(run.started_at) + 5, ctx);
        }
        assert.ok(typeof run.request_charge === 'number' && run.request_charge > 0, ctx);
        assert.equal(run.error ?? null, null, ctx);
        assert.equal(run.steps.length, 2, ctx);
        const [sw, sc] = run.steps;
        assert.equal(sw.tool, 'get_weather', ctx);
        assert.deepEqual(sw.arguments, { location: 'Seattle' }, ctx);
        assert.equal(sw.output.condition, 'Partly cloudy', ctx);
        assert.equal(sc.tool, 'calculate', ctx);
        assert.deepEqual(sc.arguments, { expression: '85 * 0.15' }, ctx);
        assert.equal(sc.output.result, 12.75, ctx);
        for (const s of run.steps) {
            assert.equal(s.status, 'completed', ctx);
            assert.ok(Number.isInteger(s.duration_ms) && s.duration_ms >= 0, ctx);
        }
    }
    assert.equal(stored.type, 'run');
    assert.equal(stored.thread_id, t1.id);
    assert.equal(stored.assistant_message_id, m.id);

    // The assistant message as stored.
    const doc = await sdkRead(messagesC, m.id, t1.id);
    assert.equal(doc.type, 'message');
    assert.equal(doc.role, 'assistant');
    assert.equal(doc.content, A1);
    assert.equal(doc.status, 'completed');
    assert.equal(doc.run_id, m.run_id);
    assert.deepEqual(doc.usage, want);
    assert.deepEqual(doc.tool_calls.map((x) => [x.id, x.tool, x.status]),
        [['call_weather_1', 'get_weather', 'completed'], ['call_calc_1', 'calculate', 'completed']]);
    assert.equal(doc.tool_calls[1].result.result, 12.75);
});

test('2. provider paths: Azure deployment URL + api-key; OpenAI /chat/completions + Bearer', async () => {
    // OpenAI-compatible (server A, the requests of test 1).
    assert.ok(archive.oa.length + modelOA.requests.length >= 2, 'test 1 ran');
    for (const rec of [...archive.oa, ...modelOA.requests]) {
        assert.equal(rec.method, 'POST');
        assert.equal(rec.path, '/v1/chat/completions');
        assert.equal(rec.headers.authorization, `Bearer ${OA_KEY}`);
        assert.equal(rec.headers['api-key'], undefined);
        assert.equal(rec.body.model, OA_MODEL);
        assert.equal(rec.status, 200);
    }
    fresh();
    // Azure (server B).
    const t = await newThread(httpdB);
    modelAz.script({ text: 'Hello from the Azure deployment.' });
    const r = await send(httpdB, t.id, 'Hello Azure');
    assert.equal(r.json.content, 'Hello from the Azure deployment.');
    assert.equal(r.json.status, 'completed');
    assert.equal(modelAz.requests.length, 1);
    const rec = modelAz.requests[0];
    assert.equal(rec.path, `/openai/deployments/${AZ_DEPLOYMENT}/chat/completions`);
    assert.equal(rec.deployment, AZ_DEPLOYMENT);
    assert.equal(rec.query['api-version'], AZ_API_VERSION);
    assert.equal(rec.headers['api-key'], AZ_KEY);
    assert.equal(rec.headers.authorization, undefined);
    assert.equal(rec.status, 200);
    assert.equal(rec.body.stream, true);
    assert.deepEqual(rec.body.stream_options, { include_usage: true });
    assert.deepEqual(toolNames(rec).sort(), ['calculate', 'get_weather']);
    // Azure's usage arrives in its own chunk after a prompt_filter_results chunk.
    assert.deepEqual(r.json.usage, upstreamUsage(rec));
});

test('3. a follow-up sends the history: earlier user/assistant messages and the tool exchange', async () => {
    fresh();
    assert.ok(t1 && t1Calls, 'test 1 ran');
    modelOA.script({ text: A2 });
    const r = await send(httpdA, t1.id, Q2);
    assert.equal(r.json.content, A2);
    assert.equal(modelOA.requests.length, 1);
    const msgs = modelOA.requests[0].body.messages;
    assert.deepEqual(msgs.map((x) => x.role), ['system', 'user', 'assistant', 'tool', 'tool', 'assistant', 'user'],
        JSON.stringify(msgs, null, 1));
    assert.equal(msgs[1].content, Q1);
    assert.deepEqual(msgs[2].tool_calls.map((x) => [x.id, x.function.name]), t1Calls.map((x) => [x.id, x.name]));
    assert.deepEqual(JSON.parse(msgs[2].tool_calls[1].function.arguments), { expression: '85 * 0.15' });
    assert.equal(msgs[3].tool_call_id, t1Calls[0].id);
    assert.equal(JSON.parse(msgs[3].content).condition, 'Partly cloudy');
    assert.equal(msgs[4].tool_call_id, t1Calls[1].id);
    assert.equal(JSON.parse(msgs[4].content).result, 12.75);
    assert.equal(msgs[5].content, A1);
    assert.equal(msgs[6].content, Q2);
    t1.lastAnswer = r.json;
});

test('4. thread bookkeeping after two turns: title, counts, preview, updated_at, ordered history', async () => {
    assert.ok(t1 && t1.lastAnswer, 'tests 1 and 3 ran');
    const r = await api(httpdA, 'GET', `/api/threads/${t1.id}`);
    expectStatus(httpdA, r, 200);
    const th = r.json;
    assert.equal(th.title, Q1, 'title auto-set from the first message');
    assert.equal(th.message_count, 4);
    assert.equal(th.last_message_preview, A2);
    assert.equal(th.agent, 'helper');
    assert.match(th.updated_at, RFC3339_MS);
    assert.ok(Date.parse(th.updated_at) >= Date.parse(t1.lastAnswer.created_at), `${th.updated_at} vs ${t1.lastAnswer.created_at}`);
    assert.ok(Date.parse(th.updated_at) > Date.parse(th.created_at));

    const stored = await sdkRead(threadsC, t1.id, 'anonymous');
    assert.equal(stored.title, Q1);
    assert.equal(stored.message_count, 4);
    assert.equal(stored.updated_at, th.updated_at);
    assert.ok(!stored.active_run_id, `thread still locked: ${stored.active_run_id}`);

    const l = await api(httpdA, 'GET', `/api/threads/${t1.id}/messages`);
    expectStatus(httpdA, l, 200);
    assert.equal(l.json.object, 'list');
    assert.equal(l.json.has_more, false);
    const list = l.json.data;
    assert.deepEqual(list.map((x) => x.role), ['user', 'assistant', 'user', 'assistant']);
    assert.deepEqual(list.map((x) => x.content), [Q1, A1, Q2, A2]);
    // The same order as the stored per-thread seq.
    const docs = (await sdkMessages(t1.id)).filter((d) => d.type === 'message');
    assert.deepEqual(list.map((x) => x.id), docs.map((d) => d.id));
    const seqs = docs.map((d) => d.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
    assert.equal(new Set(seqs).size, 4);
    assert.equal(list[1].id, t1Answer.id);
    // Every assistant message points at its run; each run is stored.
    const runs = (await sdkMessages(t1.id)).filter((d) => d.type === 'run');
    assert.equal(runs.length, 2);
    assert.deepEqual(runs.map((x) => x.status), ['completed', 'completed']);
});

test('5a. upstream 429 then success: retried, 200', async () => {
    fresh();
    const t = await newThread(httpdA, { title: 'retry' });
    modelOA.script({ status: 429, retryAfterMs: 50 }, { text: 'Answer after a retry.' });
    const r = await send(httpdA, t.id, 'hello?');
    assert.equal(r.json.content, 'Answer after a retry.');
    assert.equal(r.json.status, 'completed');
    assert.equal(modelOA.requests.length, 2);
    assert.deepEqual(modelOA.requests.map((x) => x.status), [429, 200]);
    const gap = Number(modelOA.requests[1].t - modelOA.requests[0].t) / 1e6;
    assert.ok(gap >= 40, `retried after ${gap} ms despite retry-after-ms: 50`);
});

test('5b. upstream 500 every time: 502 JSON with ids, user message stored, run failed, thread unlocked', async () => {
    fresh();
    const t = await newThread(httpdA, { title: 'always 500' });
    modelOA.script(...Array.from({ length: 8 }, () => ({ status: 500 })));
    const r = await api(httpdA, 'POST', `/api/threads/${t.id}/messages`, { content: 'Is anyone there?' });
    assertErrorBody(r, 502);
    const n = modelOA.requests.length;
    console.log(`5b: HTTP ${r.status} after ${n} upstream attempts: ${r.text}`);
    assert.ok(n >= 2 && n < 8, `retries are bounded: ${n} upstream requests`);
    assert.ok(modelOA.requests.every((x) => x.status === 500));
    const e = r.json.error;
    assert.equal(e.thread_id, t.id, r.text);
    assert.match(e.run_id || '', /^run_/, r.text);
    assert.match(e.user_message_id || '', /^msg_/, r.text);
    assert.doesNotMatch(r.text, new RegExp(OA_KEY));

    // The user message is stored and listed; the run failed with an error.
    const um = await sdkRead(messagesC, e.user_message_id, t.id);
    assert.equal(um.role, 'user');
    assert.equal(um.content, 'Is anyone there?');
    const l = await api(httpdA, 'GET', `/api/threads/${t.id}/messages`);
    expectStatus(httpdA, l, 200);
    assert.deepEqual(l.json.data.map((x) => [x.role, x.content]), [['user', 'Is anyone there?']]);
    const run = await sdkRead(messagesC, e.run_id, t.id);
    assert.equal(run.status, 'failed');
    assert.ok(run.error && typeof run.error.code === 'string' && run.error.message, JSON.stringify(run));
    const rr = await api(httpdA, 'GET', `/api/threads/${t.id}/runs/${e.run_id}`);
    expectStatus(httpdA, rr, 200);
    assert.equal(rr.json.status, 'failed');
    assert.equal(rr.json.error.code, run.error.code);

    // Unlocked: the next message works.
    fresh(); // drops the 500s the module did not consume
    const th = await sdkRead(threadsC, t.id, 'anonymous');
    assert.ok(!th.active_run_id, `thread still locked by ${th.active_run_id}`);
    modelOA.script({ text: 'Back again.' });
    const ok = await send(httpdA, t.id, 'Try again');
    assert.equal(ok.json.content, 'Back again.');
    // The next turn's history has the failed turn's user message, not a ghost answer.
    assert.deepEqual(roles(modelOA.requests[0]), ['system', 'user', 'user']);
});

test('5c. connection cut mid-stream: clear 5xx JSON, what is stored is consistent', async () => {
    fresh();
    const t = await newThread(httpdA, { title: 'cut' });
    const full = 'This answer will be cut off somewhere in the middle of the stream.';
    modelOA.script({ text: full, chunkSize: 4, cutAfterChunks: 4 });
    const r = await api(httpdA, 'POST', `/api/threads/${t.id}/messages`, { content: 'Tell me something long' });
    assert.ok(r.status >= 500 && r.status < 600, `expected 5xx, got ${r.status}: ${r.text}`);
    assertErrorBody(r, r.status);
    console.log(`5c: HTTP ${r.status}: ${r.text}`);
    assert.equal(modelOA.requests.length, 1, 'no retry after tokens arrived');
    assert.equal(modelOA.requests[0].outcome, 'cut');
    const e = r.json.error;
    assert.match(e.run_id || '', /^run_/, r.text);

    const docs = await sdkMessages(t.id);
    const run = docs.find((d) => d.type === 'run');
    const msgs = docs.filter((d) => d.type === 'message');
    assert.ok(run, 'run stored');
    assert.equal(run.id, e.run_id);
    assert.ok(['failed', 'incomplete'].includes(run.status), JSON.stringify(run));
    if (run.status === 'failed') assert.ok(run.error && run.error.code, JSON.stringify(run));
    assert.equal(msgs[0].role, 'user');
    const partial = msgs.find((d) => d.role === 'assistant');
    assert.ok(partial, `the partial answer is stored: ${JSON.stringify(docs)}`);
    assert.equal(partial.status, 'incomplete');
    assert.ok(partial.content.length > 0 && full.startsWith(partial.content), JSON.stringify(partial.content));
    assert.ok(partial.content.length < full.length);
    assert.equal(run.assistant_message_id, partial.id);
    assert.equal(partial.run_id, run.id);
    const th = await sdkRead(threadsC, t.id, 'anonymous');
    assert.equal(th.message_count, 2);
    assert.ok(!th.active_run_id, 'thread released');
});

test('6b. a run whose server died does not lock its thread forever', async () => {
    fresh();
    const t = await newThread(httpdA, { title: 'abandoned' });
    // What a crashed server leaves behind: the thread locked by a run that is
    // still "in_progress", started long before AgentChatRunTimeout (600 s).
    const { resource: doc } = await threadsC.item(t.id, 'anonymous').read();
    const old = new Date(Date.now() - 3600 * 1000).toISOString();
    const deadRun = 'run_deadserverdeadserverdead';
    await messagesC.items.create({ id: deadRun, type: 'run', object: 'thread.run', thread_id: t.id,
        status: 'in_progress', created_at: old, started_at: old, steps: [] });
    await threadsC.item(t.id, 'anonymous').replace({ ...doc, active_run_id: deadRun, active_run_started_at: old });

    modelOA.script({ text: 'Back in business.' });
    const r = await send(httpdA, t.id, 'hello again');
    assert.equal(r.json.content, 'Back in business.');
    const { resource: dead } = await messagesC.item(deadRun, t.id).read();
    assert.equal(dead.status, 'failed', 'the abandoned run is closed');
    assert.equal(dead.error.code, 'abandoned');
    const { resource: after } = await threadsC.item(t.id, 'anonymous').read();
    assert.equal(after.active_run_id, null, 'the thread is unlocked after the new turn');
});

test('6. 409 run_active while a turn is in progress; the next message works afterwards', async () => {
    fresh();
    const t = await newThread(httpdA, { title: 'busy' });
    const slow = 'one two three four five six seven eight nine ten eleven twelve thirteen';
    modelOA.script({ text: slow, chunkSize: 6, delayMs: 130 });
    const t0 = Date.now();
    const firstP = api(httpdA, 'POST', `/api/threads/${t.id}/messages`, { content: 'slow please' });
    await modelOA.waitForRequests(1, 10000);
    const busy = await api(httpdA, 'POST', `/api/threads/${t.id}/messages`, { content: 'me too' });
    const busyAt = Date.now() - t0;
    // deleting under a live run would let its last writes recreate documents
    const del = await api(httpdA, 'DELETE', `/api/threads/${t.id}`);
    assertErrorBody(del, 409, 'run_active');
    const first = await firstP;
    const firstAt = Date.now() - t0;
    assertErrorBody(busy, 409, 'run_active');
    expectStatus(httpdA, first, 200);
    assert.equal(first.json.content, slow);
    assert.ok(busyAt < firstAt, `409 came back (${busyAt} ms) before the turn ended (${firstAt} ms)`);
    assert.ok(firstAt >= 1000, `the slow turn took ${firstAt} ms`);
    assert.equal(modelOA.requests.length, 1, 'the rejected message did not reach the model');
    const docs = await sdkMessages(t.id);
    assert.ok(!docs.some((d) => d.content === 'me too'), 'the rejected message was not stored');

    modelOA.script({ text: 'Now it works.' });
    const again = await send(httpdA, t.id, 'me too, now');
    assert.equal(again.json.content, 'Now it works.');
    const th = await sdkRead(threadsC, t.id, 'anonymous');
    assert.equal(th.message_count, 4);
});

test('7. a failing tool never fails the run: error result to the model, step failed', async () => {
    fresh();
    const t = await newThread(httpdA, { title: 'atlantis' });
    modelOA.script(
        { toolCalls: [{ id: 'call_atl', name: 'get_weather', arguments: { location: 'Atlantis' } }] },
        { text: 'I could not find a place called Atlantis.' },
    );
    const r = await send(httpdA, t.id, 'Weather in Atlantis?');
    assert.equal(r.json.status, 'completed');
    assert.equal(r.json.content, 'I could not find a place called Atlantis.');
    const [tc] = r.json.tool_calls;
    assert.equal(tc.tool, 'get_weather');
    assert.equal(tc.status, 'failed');
    assert.equal(typeof tc.result.error, 'string');
    assert.ok(tc.result.error.length > 0);
    assert.ok(meteo.requests.some((q) => q.path === '/v1/search' && q.query.name === 'Atlantis'), JSON.stringify(meteo.requests));
    assert.ok(!meteo.requests.some((q) => q.path === '/v1/forecast'));

    assert.equal(modelOA.requests.length, 2);
    const tm = modelOA.requests[1].body.messages.find((x) => x.role === 'tool');
    assert.equal(tm.tool_call_id, 'call_atl');
    assert.deepEqual(JSON.parse(tm.content), tc.result);

    const run = await sdkRead(messagesC, r.json.run_id, t.id);
    assert.equal(run.status, 'completed');
    assert.equal(run.error ?? null, null);
    assert.equal(run.steps.length, 1);
    assert.equal(run.steps[0].status, 'failed');
    assert.equal(run.steps[0].output.error, tc.result.error);
    assert.ok(run.steps[0].error, JSON.stringify(run.steps[0]));
});

test('8. AgentChatMaxToolRounds 2: a final tool-less request, then a clear end state', async () => {
    fresh();
    const calc = (n) => ({ toolCalls: [{ id: `call_loop_${n}`, name: 'calculate', arguments: { expression: `${n} + ${n}` } }] });
    // (a) The model keeps asking for tools even when none are offered.
    const t = await newThread(httpdB, { title: 'loop' });
    loopThread = t;
    modelAz.script(calc(1), calc(2), calc(3), calc(4), calc(5), calc(6));
    const r = await send(httpdB, t.id, 'Keep calculating forever');
    assert.equal(modelAz.requests.length, 3, 'two rounds with tools, one without, then stop');
    assert.deepEqual(toolNames(modelAz.requests[0]).sort(), ['calculate', 'get_weather']);
    assert.deepEqual(toolNames(modelAz.requests[1]).sort(), ['calculate', 'get_weather']);
    assert.equal(modelAz.requests[2].body.tools, undefined, 'the last request offers no tools');
    assert.equal(modelAz.requests[2].body.tool_choice, undefined);
    assert.equal(r.json.tool_calls.length, 2, 'only the offered rounds ran tools');
    assert.deepEqual(r.json.tool_calls.map((x) => x.result.result), [2, 4]);
    assert.equal(r.json.status, 'incomplete');
    assert.equal(r.json.finish_reason, 'max_tool_rounds');
    const run = await sdkRead(messagesC, r.json.run_id, t.id);
    assert.equal(run.status, 'incomplete');
    assert.equal(run.finish_reason, 'max_tool_rounds');
    assert.equal(run.steps.length, 2);
    const th = await sdkRead(threadsC, t.id, 'anonymous');
    assert.ok(!th.active_run_id, 'thread released');

    // (b) The model answers in the tool-less round: completed.
    fresh();
    modelAz.script(calc(7), calc(8), { text: 'The answers are 14 and 16.' });
    const r2 = await send(httpdB, t.id, 'Two sums then answer');
    assert.equal(modelAz.requests.length, 3);
    assert.equal(modelAz.requests[2].body.tools, undefined);
    assert.equal(r2.json.status, 'completed');
    assert.equal(r2.json.content, 'The answers are 14 and 16.');
    assert.equal(r2.json.tool_calls.length, 2);
    assert.equal(modelAz.pending(), 0);
});

let loopThread; // test 8's thread on server B: two turns with tool exchanges

test('8c. AgentChatHistoryMessages 2: only the last two messages (with their tool exchange) go upstream', async () => {
    fresh();
    assert.ok(loopThread, 'test 8 ran');
    modelAz.script({ text: 'Short memory.' });
    const r = await send(httpdB, loopThread.id, 'What do you remember?');
    assert.equal(r.json.content, 'Short memory.');
    const msgs = modelAz.requests[0].body.messages;
    assert.deepEqual(msgs.map((x) => x.role), ['system', 'user', 'assistant', 'tool', 'tool', 'assistant', 'user'],
        JSON.stringify(msgs, null, 1));
    assert.equal(msgs[1].content, 'Two sums then answer');
    assert.deepEqual(msgs[2].tool_calls.map((x) => x.id), ['call_loop_7', 'call_loop_8']);
    assert.deepEqual(msgs.slice(3, 5).map((x) => x.tool_call_id), ['call_loop_7', 'call_loop_8']);
    assert.equal(msgs[5].content, 'The answers are 14 and 16.');
    assert.equal(msgs[6].content, 'What do you remember?');
    assert.ok(!JSON.stringify(msgs).includes('Keep calculating forever'), 'older turns are left out');
});

test('9. agents: list, per-agent chat with only its tools, per-agent threads, /api/chat', async () => {
    fresh();
    const l = await api(httpdA, 'GET', '/api/agents');
    expectStatus(httpdA, l, 200);
    assert.equal(l.json.object, 'list');
    const byName = Object.fromEntries(l.json.data.map((a) => [a.name, a]));
    assert.deepEqual(Object.keys(byName).sort(), ['helper', 'math']);
    assert.deepEqual(byName.math.tools, ['calculate']);
    assert.equal(byName.math.description, 'Arithmetic only');
    assert.deepEqual([...byName.helper.tools].sort(), ['calculate', 'get_weather', 'lookup_order', 'search_knowledge_base']);
    assert.equal(byName.helper.model, OA_MODEL);

    modelOA.script(
        { toolCalls: [{ id: 'call_m1', name: 'calculate', arguments: { expression: '6 * 7' } }] },
        { text: 'Six times seven is 42.' },
    );
    const c = await api(httpdA, 'POST', '/api/agents/math/chat', { message: 'What is 6 times 7?' });
    expectStatus(httpdA, c, 200);
    assert.match(c.json.thread_id, /^thread_/);
    assert.match(c.json.run_id, /^run_/);
    assert.equal(c.json.response, 'Six times seven is 42.');
    assert.equal(c.json.message.tool_calls[0].result.result, 42);
    for (const rec of modelOA.requests) {
        assert.deepEqual(toolNames(rec), ['calculate'], 'only the math agent\'s tool is offered');
        assert.equal(rec.body.messages[0].role, 'system');
        assert.equal(rec.body.messages[0].content, 'You are the math agent. Always use the calculate tool.');
        assert.equal(rec.body.temperature, 0.2);
    }
    const mt = await api(httpdA, 'GET', `/api/threads/${c.json.thread_id}`);
    expectStatus(httpdA, mt, 200);
    assert.equal(mt.json.agent, 'math');
    assert.equal(mt.json.title, 'What is 6 times 7?');
    const run = await sdkRead(messagesC, c.json.run_id, c.json.thread_id);
    assert.equal(run.agent, 'math');

    const lt = await api(httpdA, 'GET', '/api/agents/math/threads');
    expectStatus(httpdA, lt, 200);
    assert.ok(lt.json.data.some((x) => x.id === c.json.thread_id), lt.text);
    assert.ok(lt.json.data.every((x) => x.agent === 'math'), lt.text);
    const ht = await api(httpdA, 'GET', '/api/agents/helper/threads');
    expectStatus(httpdA, ht, 200);
    assert.ok(!ht.json.data.some((x) => x.id === c.json.thread_id));
    assert.ok(ht.json.data.some((x) => x.id === t1.id), 'thread of test 1 is a helper thread');

    const nope = await api(httpdA, 'POST', '/api/agents/nope/chat', { message: 'hi' });
    assertErrorBody(nope, 404, 'agent_not_found');
    const nopeT = await api(httpdA, 'GET', '/api/agents/nope/threads');
    assertErrorBody(nopeT, 404, 'agent_not_found');

    // POST /api/chat creates a thread with the default agent, then continues it.
    fresh();
    modelOA.script({ text: 'Hi! How can I help?' }, { text: 'You said hello before.' });
    const g = await api(httpdA, 'POST', '/api/chat', { message: 'Hello there' });
    expectStatus(httpdA, g, 200);
    assert.match(g.json.thread_id, /^thread_/);
    assert.equal(g.json.response, 'Hi! How can I help?');
    assert.deepEqual(toolNames(modelOA.requests[0]).sort(), ['calculate', 'get_weather', 'lookup_order', 'search_knowledge_base']);
    const g2 = await api(httpdA, 'POST', '/api/chat', { message: 'What did I say?', thread_id: g.json.thread_id });
    expectStatus(httpdA, g2, 200);
    assert.equal(g2.json.thread_id, g.json.thread_id);
    assert.equal(g2.json.response, 'You said hello before.');
    assert.deepEqual(modelOA.requests[1].body.messages.map((x) => [x.role, x.content]).slice(1),
        [['user', 'Hello there'], ['assistant', 'Hi! How can I help?'], ['user', 'What did I say?']]);
    const gt = await sdkRead(threadsC, g.json.thread_id, 'anonymous');
    assert.equal(gt.agent, 'helper');
    assert.equal(gt.message_count, 4);
    // A thread of another agent cannot be continued through /agents/math/chat.
    const mism = await api(httpdA, 'POST', '/api/agents/math/chat', { message: 'x', thread_id: g.json.thread_id });
    assertErrorBody(mism, 422);
    const missing = await api(httpdA, 'POST', '/api/chat', { message: 'x', thread_id: 'thread_doesnotexist000' });
    assert.ok([404, 422].includes(missing.status), missing.text);
    assert.equal(modelOA.pending(), 0);
    assert.equal(modelOA.requests.length, 2);
});

test('10a. search_knowledge_base: ranked results with source names', async () => {
    fresh();
    const t = await newThread(httpdA, { title: 'kb' });
    modelOA.script(
        { toolCalls: [{ id: 'call_kb', name: 'search_knowledge_base', arguments: { query: 'refund for a damaged item', max_results: 3 } }] },
        { text: 'Damaged items are refunded in full (refund-policy.md).' },
    );
    const r = await send(httpdA, t.id, 'How do refunds for damaged items work?');
    const [tc] = r.json.tool_calls;
    assert.equal(tc.status, 'completed', JSON.stringify(tc));
    const res = tc.result.results;
    assert.ok(Array.isArray(res) && res.length >= 1 && res.length <= 3, JSON.stringify(tc.result));
    for (const h of res) {
        assert.equal(typeof h.title, 'string');
        assert.equal(typeof h.snippet, 'string');
        assert.equal(typeof h.score, 'number');
        assert.match(h.source, /\.(md|txt)$/);
    }
    const scores = res.map((h) => h.score);
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a), 'most relevant first');
    assert.match(res[0].source, /refund-policy\.md$/);
    assert.match(res[0].snippet, /damaged|refund/i);
    const tm = modelOA.requests[1].body.messages.find((x) => x.role === 'tool');
    assert.deepEqual(JSON.parse(tm.content), tc.result);
    const offered = modelOA.requests[0].body.tools.find((x) => x.function.name === 'search_knowledge_base');
    assert.equal(offered.function.parameters.type, 'object');
    assert.ok(offered.function.parameters.properties.query);
});

test('10b. AgentChatHttpTool: arguments POSTed as JSON, the reply is the tool result', async () => {
    fresh();
    const t = await newThread(httpdA, { title: 'order' });
    modelOA.script(
        { toolCalls: [{ id: 'call_order', name: 'lookup_order', arguments: { order_id: 'A-1001' } }] },
        { text: 'Order A-1001 has shipped with ACME Post.' },
    );
    const r = await send(httpdA, t.id, 'Where is my order A-1001?');
    assert.equal(toolRequests.length, 1, JSON.stringify(toolRequests));
    const tr = toolRequests[0];
    assert.equal(tr.method, 'POST');
    assert.equal(tr.url, '/order');
    assert.match(tr.headers['content-type'], /^application\/json/);
    assert.deepEqual(tr.body, { order_id: 'A-1001' });
    const [tc] = r.json.tool_calls;
    assert.equal(tc.tool, 'lookup_order');
    assert.equal(tc.status, 'completed');
    const reply = { order_id: 'A-1001', status: 'shipped', carrier: 'ACME Post', items: 2, eta: '2026-01-05' };
    assert.deepEqual(tc.result, reply);
    const tm = modelOA.requests[1].body.messages.find((x) => x.role === 'tool');
    assert.equal(tm.tool_call_id, 'call_order');
    assert.deepEqual(JSON.parse(tm.content), reply);
    const offered = modelOA.requests[0].body.tools.find((x) => x.function.name === 'lookup_order');
    assert.equal(offered.type, 'function');
    assert.equal(offered.function.description, 'Look up an order by its number');
    assert.deepEqual(offered.function.parameters.required, ['order_id']);
    assert.equal(offered.function.parameters.properties.order_id.type, 'string');
    assert.equal(r.json.content, 'Order A-1001 has shipped with ACME Post.');
});

test('10c. the calls of one round run at the same time', async () => {
    fresh();
    const t = await newThread(httpdA, { title: 'parallel tools' });
    modelOA.script(
        { toolCalls: [{ id: 'call_p1', name: 'lookup_order', arguments: { order_id: 'PAIR-1' } },
            { id: 'call_p2', name: 'lookup_order', arguments: { order_id: 'PAIR-2' } }] },
        { text: 'Both orders found.' },
    );
    const r = await send(httpdA, t.id, 'Where are orders PAIR-1 and PAIR-2?');
    assert.equal(toolRequests.length, 2, JSON.stringify(toolRequests));
    const statuses = r.json.tool_calls.map((c) => c.result.status);
    assert.deepEqual(statuses, ['together', 'together'],
        'each call was answered only because the other one was in flight at the same time');
    assert.deepEqual(r.json.tool_calls.map((c) => c.id), ['call_p1', 'call_p2'], 'results keep the model\'s order');
});

test('11. bad input is 422 without reaching the model; no model configured is 503', async () => {
    fresh();
    const t = await newThread(httpdA, { title: 'bad input' });
    const p = `/api/threads/${t.id}/messages`;
    const bad = [
        [{}, 'missing'],
        [{ content: 42 }, 'a number'],
        [{ content: ['x'] }, 'an array'],
        [{ content: null }, 'null'],
        [{ content: '' }, 'empty'],
        [{ content: ' \n\t ' }, 'blank'],
        [{ content: 'x'.repeat(501) }, 'over AgentChatMaxMessageChars'],
        [{ content: 'é'.repeat(501) }, 'over the limit in characters'],
    ];
    for (const [body, what] of bad) {
        const r = await api(httpdA, 'POST', p, body);
        assert.equal(r.status, 422, `${what}: ${r.status} ${r.text}`);
        assertErrorBody(r, 422);
    }
    assert.equal((await api(httpdA, 'POST', '/api/chat', {})).status, 422);
    assert.equal((await api(httpdA, 'POST', '/api/chat', { message: '' })).status, 422);
    assert.equal(modelOA.requests.length, 0, 'nothing reached the model');
    const th = await sdkRead(threadsC, t.id, 'anonymous');
    assert.equal(th.message_count ?? 0, 0);
    assert.deepEqual(await sdkMessages(t.id), []);

    // The limit counts characters, not bytes: 500 two-byte characters pass.
    modelOA.script({ text: 'That is a lot of é.' });
    const ok = await send(httpdA, t.id, 'é'.repeat(500));
    assert.equal(ok.json.content, 'That is a lot of é.');

    // Server C has Cosmos but no model endpoint.
    const tc = await newThread(httpdC);
    const r = await api(httpdC, 'POST', `/api/threads/${tc.id}/messages`, { content: 'hello' });
    assertErrorBody(r, 503, 'model_not_configured');
    const r2 = await api(httpdC, 'POST', '/api/chat', { message: 'hello' });
    assertErrorBody(r2, 503, 'model_not_configured');
    assert.deepEqual(await sdkMessages(tc.id), [], 'nothing stored without a model');
});

test('12. every upstream request streamed with include_usage and offered JSON-schema function tools', async () => {
    fresh();
    const all = [...archive.oa, ...archive.az];
    assert.ok(all.length >= 25, `${all.length} upstream requests seen`);
    for (const rec of all) {
        const ctx = `${rec.path} #${rec.index}`;
        assert.equal(rec.body.stream, true, ctx);
        assert.deepEqual(rec.body.stream_options, { include_usage: true }, ctx);
        assert.ok(Array.isArray(rec.body.messages) && rec.body.messages.length >= 2, ctx);
        if (rec.body.tools === undefined) continue; // the final tool-less round of test 8
        assert.ok(rec.body.tools.length >= 1, ctx);
        for (const t of rec.body.tools) {
            assert.equal(t.type, 'function', ctx);
            assert.match(t.function.name, /^[A-Za-z0-9_-]{1,64}$/, ctx);
            assert.equal(typeof t.function.description, 'string', ctx);
            assert.ok(t.function.description.length > 0, `${ctx}: ${t.function.name} has no description`);
            assert.equal(t.function.parameters.type, 'object', ctx);
            assert.equal(typeof t.function.parameters.properties, 'object', ctx);
        }
    }
    assert.ok(all.filter((r) => r.body.tools === undefined).length >= 2);
    // No process errors in the logs.
    for (const h of [httpdA, httpdB, httpdC]) {
        const log = h.errorLog();
        assert.doesNotMatch(log, /AH00052|segfault|exit signal/i, tail(h));
        for (const secret of [OA_KEY, AZ_KEY, cosmos.key]) assert.ok(!log.includes(secret), 'a secret reached the error_log');
    }
});

// Guard against a forgotten slow turn keeping the runner alive.
test('cleanup: nothing is left scripted', async () => {
    await delay(10);
    assert.equal(modelOA.pending(), 0);
    assert.equal(modelAz.pending(), 0);
});
