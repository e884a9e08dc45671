// 01-fake-model.test.js: self-test of the scripted chat-completions upstream
// (lib/fake-model.js).  Consumes its streams with node's own http client and a
// small SSE parser written here, so the wire format the C model client will
// see is proven independently of the module: text turns, fragmented parallel
// tool calls, usage chunks, Azure shapes, CRLF / comment lines, errors and
// faults (429, cut connection, garbage, error event, stall), the development
// model, and the standalone CLI used by `make run`.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { startFakeModel } = require('./lib/fake-model');
const { spawnGroup, waitForLine, stopGroup, stopAll } = require('./lib/proc');

const KEY = 'test-model-key';
const OPENAI = '/v1/chat/completions';
const AZURE = '/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21';
let model;

before(async () => { model = await startFakeModel({ apiKey: KEY }); });
after(async () => { if (model) await model.stop(); await stopAll(); });

// Parse an SSE body into events [{data}] (LF or CRLF; comment lines skipped).
function parseSse(text) {
    const events = [];
    let data = null;
    for (const line of text.split(/\r\n|\r|\n/)) {
        if (line === '') {
            if (data !== null) events.push({ data: data.join('\n') });
            data = null;
        } else if (line.startsWith('data:')) {
            (data = data || []).push(line.slice(5).replace(/^ /, ''));
        }
    }
    return events;
}

// POST a chat request; resolves with {status, headers, raw, arrivals, events, complete, error}.
// `abortOnHeaders` destroys the request as soon as the response headers arrive.
function chat(p, body, { headers = {}, auth = 'openai', abortOnHeaders = false, port = model.port } = {}) {
    const h = { 'content-type': 'application/json', ...headers };
    if (auth === 'openai') h.authorization = `Bearer ${KEY}`;
    if (auth === 'azure') h['api-key'] = KEY;
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: p, method: 'POST', headers: h }, (res) => {
            if (abortOnHeaders) { req.destroy(); resolve({ status: res.statusCode, headers: res.headers }); return; }
            let raw = '';
            let error = null;
            const arrivals = []; // [{t, text}]: when each piece of the body reached us
            res.setEncoding('utf8');
            res.on('data', (d) => { raw += d; arrivals.push({ t: process.hrtime.bigint(), text: d }); });
            res.on('error', (e) => { error = e; });
            res.on('close', () => resolve({ status: res.statusCode, headers: res.headers, raw, arrivals,
                events: parseSse(raw), complete: res.complete && !error, error }));
        });
        req.on('error', (e) => (abortOnHeaders ? resolve({ error: e }) : reject(e)));
        req.end(JSON.stringify(body));
    });
}

const jsonEvents = (r) => r.events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data));
const choiceChunks = (r) => jsonEvents(r).filter((c) => c.choices.length);
const textOf = (r) => choiceChunks(r).map((c) => c.choices[0].delta.content || '').join('');
const msgs = (content) => ({ messages: [{ role: 'user', content }], stream: true });

// Reassemble delta.tool_calls the way a client must: by index.
function reassemble(chunks) {
    const calls = [];
    for (const c of chunks) {
        for (const tc of c.choices[0].delta.tool_calls || []) {
            const cur = calls[tc.index] || (calls[tc.index] = { id: undefined, name: undefined, arguments: '', headers: 0 });
            if (tc.id !== undefined) { cur.id = tc.id; cur.headers++; }
            if (tc.function && tc.function.name !== undefined) cur.name = tc.function.name;
            if (tc.function && tc.function.arguments) cur.arguments += tc.function.arguments;
        }
    }
    return calls;
}

test('text turn: role delta, content deltas, finish_reason, [DONE], no usage unless asked', async () => {
    model.reset();
    model.script({ text: 'Hello streaming world', chunkSize: 5 });
    const r = await chat(OPENAI, msgs('hi'));
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    assert.equal(r.complete, true);
    assert.equal(r.events.at(-1).data, '[DONE]');
    const chunks = choiceChunks(r);
    for (const c of chunks) {
        assert.equal(c.object, 'chat.completion.chunk');
        assert.ok(c.id && c.created && c.model);
    }
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '', refusal: null });
    assert.equal(textOf(r), 'Hello streaming world');
    assert.ok(chunks.every((c) => (c.choices[0].delta.content || '').length <= 5));
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
    assert.ok(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
    assert.equal(jsonEvents(r).filter((c) => 'usage' in c).length, 0, 'no usage without include_usage');

    const rec = model.requests[0];
    assert.equal(rec.path, OPENAI);
    assert.equal(rec.body.stream, true);
    assert.deepEqual(rec.body.messages, [{ role: 'user', content: 'hi' }]);
    assert.equal(typeof rec.t, 'bigint');
    assert.equal(await rec.finished, 'completed');
    const content = rec.emitted.filter((e) => e.kind === 'content');
    assert.equal(content.map((e) => e.content).join(''), 'Hello streaming world');
    for (let i = 1; i < rec.emitted.length; i++) assert.ok(rec.emitted[i].t >= rec.emitted[i - 1].t);
    assert.ok(rec.emitted[0].t >= rec.t);
});

test('paced stream: each chunk is written at once, emission times recorded', async () => {
    model.reset();
    model.script({ text: 'one two three four five six', chunkSize: 4, delayMs: 25 });
    const r = await chat(OPENAI, msgs('pace'));
    const rec = model.requests[0];
    const content = rec.emitted.filter((e) => e.kind === 'content');
    assert.equal(content.length, 7);
    for (let i = 1; i < content.length; i++) {
        assert.ok(content[i].t - content[i - 1].t >= 20_000_000n, 'delayMs between chunks');
    }
    // The first content chunk reached the client before the last one was even written.
    const first = r.arrivals.find((a) => a.text.includes('"content":"one '));
    assert.ok(first, 'first content chunk arrived');
    assert.ok(first.t < content.at(-1).t, 'no buffering between fake model and client');
    assert.equal(textOf(r), 'one two three four five six');
});

test('usage chunk only when stream_options.include_usage; override and finish variants', async () => {
    model.reset();
    model.script({ text: 'abcdefgh', chunkSize: 2 }, { text: 'cut short', finish: 'length', usage: { prompt_tokens: 7, completion_tokens: 3 } });
    const r = await chat(OPENAI, { ...msgs('12345678'), stream_options: { include_usage: true } });
    const evs = jsonEvents(r);
    const last = evs.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.prompt_tokens, 2); // 8 chars / 4
    assert.equal(last.usage.completion_tokens, 4); // 4 content chunks
    assert.equal(last.usage.total_tokens, 6);
    assert.ok(evs.slice(0, -1).every((c) => c.usage === null), 'OpenAI sends usage:null before the usage chunk');
    assert.equal(r.events.at(-1).data, '[DONE]');

    const r2 = await chat(OPENAI, { ...msgs('x'), stream_options: { include_usage: true } });
    assert.equal(choiceChunks(r2).at(-1).choices[0].finish_reason, 'length');
    assert.deepEqual(jsonEvents(r2).at(-1).usage,
        { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } });
    assert.equal(model.pending(), 0);
});

test('two tool calls: fragments by index, id and name only in the first fragment', async () => {
    model.reset();
    const want = [
        { name: 'get_weather', arguments: { location: 'Zürich, CH' }, id: 'call_weather1' },
        { name: 'calculate', arguments: { expression: '(2+3)*4' } },
    ];
    for (const interleave of [false, true]) {
        model.script({ toolCalls: want, fragmentSize: 4, interleave });
        const r = await chat(OPENAI, { ...msgs('weather and math'), tools: [] });
        const chunks = choiceChunks(r);
        assert.equal(chunks[0].choices[0].delta.role, 'assistant');
        assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
        const calls = reassemble(chunks);
        assert.equal(calls.length, 2);
        assert.equal(calls[0].id, 'call_weather1');
        assert.match(calls[1].id, /^call_/);
        for (let i = 0; i < 2; i++) {
            assert.equal(calls[i].headers, 1, 'id appears once per call');
            assert.equal(calls[i].name, want[i].name);
            assert.deepEqual(JSON.parse(calls[i].arguments), want[i].arguments);
        }
        const fragments = chunks.flatMap((c) => c.choices[0].delta.tool_calls || []);
        assert.ok(fragments.length > 6, 'arguments arrive in many fragments');
        for (const f of fragments) if (f.id === undefined) assert.deepEqual(Object.keys(f.function), ['arguments']);
        const order = fragments.map((f) => f.index);
        if (interleave) assert.deepEqual(order.slice(0, 4), [0, 1, 0, 1]);
        else assert.deepEqual(order, [...order].sort());
    }
    // Raw-string arguments are sent verbatim (even when not valid JSON).
    model.script({ toolCalls: [{ name: 'calculate', arguments: '{"expression": "1+' }] });
    const r = await chat(OPENAI, msgs('broken'));
    assert.equal(reassemble(choiceChunks(r))[0].arguments, '{"expression": "1+');
});

test('429 with retry-after-ms / retry-after, then 500 and 503 JSON errors', async () => {
    model.reset();
    model.script({ status: 429, retryAfterMs: 1500, retryAfter: 2 }, { status: 500 }, { status: 503 });
    const r = await chat(OPENAI, msgs('a'));
    assert.equal(r.status, 429);
    assert.equal(r.headers['retry-after-ms'], '1500');
    assert.equal(r.headers['retry-after'], '2');
    assert.match(r.headers['content-type'], /application\/json/);
    assert.equal(JSON.parse(r.raw).error.type, 'requests');
    const r500 = await chat(OPENAI, msgs('b'));
    assert.equal(r500.status, 500);
    assert.equal(JSON.parse(r500.raw).error.type, 'server_error');
    const r503 = await chat(AZURE, msgs('c'), { auth: 'azure' });
    assert.equal(r503.status, 503);
    assert.equal(JSON.parse(r503.raw).error.code, '503');
    assert.equal(model.pending(), 0);
});

test('authentication: OpenAI Bearer and Azure api-key, 401 otherwise without consuming a turn', async () => {
    model.reset();
    model.script({ text: 'ok' });
    const noAuth = await chat(OPENAI, msgs('a'), { auth: 'none' });
    assert.equal(noAuth.status, 401);
    assert.equal(JSON.parse(noAuth.raw).error.code, null);
    const wrong = await chat(AZURE, msgs('a'), { auth: 'none', headers: { 'api-key': 'nope' } });
    assert.equal(wrong.status, 401);
    assert.deepEqual(Object.keys(JSON.parse(wrong.raw).error).sort(), ['code', 'message']);
    assert.equal(JSON.parse(wrong.raw).error.code, '401');
    const bearerOnAzure = await chat(AZURE, msgs('a'), { auth: 'openai' });
    assert.equal(bearerOnAzure.status, 401, 'the api key is not accepted as an Azure bearer token');
    assert.equal(model.pending(), 1);
    const ok = await chat(AZURE, msgs('a'), { auth: 'azure' });
    assert.equal(ok.status, 200);
    assert.equal(textOf(ok), 'ok');
    const noVersion = await chat('/openai/deployments/gpt4o/chat/completions', msgs('a'), { auth: 'azure' });
    assert.equal(noVersion.status, 404);
    assert.equal((await chat('/v2/nothing', msgs('a'))).status, 404);
    assert.equal(model.requests.length, 6);
    const azureOk = model.requests[3];
    assert.equal(azureOk.query['api-version'], '2024-10-21');
    assert.equal(azureOk.deployment, 'gpt4o');
    assert.equal(azureOk.headers['api-key'], KEY);
    assert.equal(azureOk.outcome, 'completed');
    assert.equal(model.requests[0].outcome, 'status');
});

test('Azure flavour: prompt_filter_results first chunk, content_filter_results, usage chunk', async () => {
    model.reset();
    model.script({ text: 'Filtered hello' }, { text: 'bad', finish: 'content_filter' });
    const r = await chat(AZURE, { ...msgs('hi'), stream_options: { include_usage: true } }, { auth: 'azure' });
    const evs = jsonEvents(r);
    assert.deepEqual(evs[0].choices, []);
    assert.equal(evs[0].prompt_filter_results[0].prompt_index, 0);
    assert.equal(evs[0].prompt_filter_results[0].content_filter_results.hate.filtered, false);
    assert.equal(evs[0].id, '', 'Azure prompt-filter chunk has an empty id and object');
    const content = choiceChunks(r).filter((c) => c.choices[0].delta.content);
    assert.ok(content.length >= 3);
    for (const c of content) assert.equal(c.choices[0].content_filter_results.violence.severity, 'safe');
    assert.equal(textOf(r), 'Filtered hello');
    assert.deepEqual(evs.at(-1).choices, []);
    assert.ok(evs.at(-1).usage.total_tokens > 0);
    assert.ok(!('usage' in evs[1]), 'Azure chunks carry no usage:null');

    const r2 = await chat(AZURE, msgs('x'), { auth: 'azure' });
    const fin = choiceChunks(r2).at(-1).choices[0];
    assert.equal(fin.finish_reason, 'content_filter');
    assert.equal(fin.content_filter_results.violence.filtered, true);
});

test('CRLF line endings and interleaved keep-alive comments', async () => {
    model.reset();
    model.script({ text: 'crlf text here', crlf: true, keepAlive: true });
    const r = await chat(OPENAI, { ...msgs('hi'), stream_options: { include_usage: true } });
    assert.ok(r.raw.includes('\r\n\r\n'));
    assert.ok(!/[^\r]\n/.test(r.raw), 'every LF is preceded by CR');
    assert.ok(r.raw.includes(': keep-alive\r\n'));
    assert.equal(textOf(r), 'crlf text here');
    assert.equal(r.events.at(-1).data, '[DONE]');
    assert.equal(r.raw.split(': keep-alive').length - 1, jsonEvents(r).length, 'one comment before each chunk');
});

test('cut connection after n chunks: client sees an incomplete response', async () => {
    model.reset();
    model.script({ text: 'this answer never finishes properly', chunkSize: 3, cutAfterChunks: 4 });
    const r = await chat(OPENAI, msgs('hi'));
    assert.equal(r.status, 200);
    assert.equal(r.complete, false);
    assert.equal(r.events.length, 4);
    assert.ok(!r.events.some((e) => e.data === '[DONE]'));
    assert.equal(await model.requests[0].finished, 'cut');
    assert.equal(textOf(r), 'this answ'); // role chunk + 3 content chunks of 3
});

test('garbage data line mid-stream, then the stream continues', async () => {
    model.reset();
    model.script({ text: 'after garbage', garbage: true, garbageAfterChunks: 2 });
    const r = await chat(OPENAI, msgs('hi'));
    const bad = r.events.filter((e) => { try { JSON.parse(e.data); return false; } catch { return e.data !== '[DONE]'; } });
    assert.equal(bad.length, 1);
    assert.equal(r.events.indexOf(bad[0]), 2);
    assert.equal(r.events.at(-1).data, '[DONE]');
});

test('error event mid-stream ends the stream without [DONE]', async () => {
    model.reset();
    model.script({ text: 'partial answer', errorEvent: { message: 'upstream exploded', code: 'server_error' }, errorAfterChunks: 3 });
    const r = await chat(OPENAI, msgs('hi'));
    assert.equal(r.complete, true);
    const last = JSON.parse(r.events.at(-1).data);
    assert.equal(last.error.message, 'upstream exploded');
    assert.equal(last.error.code, 'server_error');
    assert.equal(r.events.length, 4);
    assert.equal(await model.requests[0].finished, 'error_event');
});

test('stall: headers then silence until the client gives up', async () => {
    model.reset();
    model.script({ text: 'late', stallMs: 60000 });
    const started = process.hrtime.bigint();
    const r = await chat(OPENAI, msgs('hi'), { abortOnHeaders: true });
    assert.equal(r.status, 200);
    assert.equal(await model.requests[0].finished, 'client_closed');
    assert.ok(process.hrtime.bigint() - started < 30_000_000_000n, 'the stall ends when the client aborts');
    assert.equal(model.requests[0].emitted.length, 0);
});

test('development model: echo, get_weather, calculate, answer from tool results', async () => {
    model.reset();
    const tools = ['get_weather', 'calculate'].map((name) => ({ type: 'function', function: { name, parameters: {} } }));
    const echo = await chat(OPENAI, msgs('good morning'));
    assert.equal(textOf(echo), '[dev model] You said: good morning');

    const ask = 'What is the weather in New York today, and what is 3 * (4 + 5)?';
    const r = await chat(OPENAI, { ...msgs(ask), tools });
    const calls = reassemble(choiceChunks(r));
    assert.deepEqual(calls.map((c) => c.name), ['get_weather', 'calculate']);
    assert.deepEqual(JSON.parse(calls[0].arguments), { location: 'New York' });
    assert.deepEqual(JSON.parse(calls[1].arguments), { expression: '3 * (4 + 5)' });

    const followUp = { stream: true, tools, messages: [
        { role: 'user', content: ask },
        { role: 'assistant', content: null, tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) },
        { role: 'tool', tool_call_id: calls[0].id, content: '{"temperature_c": 21}' },
        { role: 'tool', tool_call_id: calls[1].id, content: '27' },
    ] };
    const answer = textOf(await chat(OPENAI, followUp));
    assert.match(answer, /^\[dev model\]/);
    assert.match(answer, /get_weather: \{"temperature_c": 21\}/);
    assert.match(answer, /calculate: 27/);

    const noTools = await chat(OPENAI, msgs('weather in Paris?'));
    assert.equal(textOf(noTools), '[dev model] You said: weather in Paris?');
});

test('script() accepts a function of the request record', async () => {
    model.reset();
    model.script((rec) => ({ text: `you sent ${rec.body.messages.length} messages` }), () => null);
    assert.equal(textOf(await chat(OPENAI, msgs('a'))), 'you sent 1 messages');
    assert.equal(textOf(await chat(OPENAI, msgs('b'))), '[dev model] You said: b');
    await model.waitForRequests(2, 1000);
});

test('fake-model-cli: standalone server prints its URL and serves the dev model', async () => {
    const cli = spawnGroup(process.execPath, [path.join(__dirname, 'lib', 'fake-model-cli.js'), '--port', '0', '--azure', '--api-key', 'cli-key', '--delay-ms', '0']);
    try {
        const m = await waitForLine(cli, /fake model listening on http:\/\/127\.0\.0\.1:(\d+)/);
        const port = Number(m[1]);
        const r = await chat('/openai/deployments/dev/chat/completions?api-version=2024-10-21', msgs('ping'),
            { auth: 'none', headers: { 'api-key': 'cli-key' }, port });
        assert.equal(r.status, 200);
        assert.deepEqual(jsonEvents(r)[0].choices, [], 'Azure flavour first chunk');
        assert.equal(textOf(r), '[dev model] You said: ping');
    } finally {
        await stopGroup(cli);
    }
});
