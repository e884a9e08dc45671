// 30-stream.test.js: true streaming, end to end — a real apache2 (event MPM)
// with mod_agentchat, the real @vercel/cosmosdb-server behind the
// signature-checking front, and the scripted OpenAI-compatible upstream that
// records when it emitted each chunk.  The SSE client of lib/sse-client.js
// parses the stream incrementally and stamps every event with its arrival time
// (process.hrtime.bigint(), the same clock the fake model uses), so the tests
// can prove that tokens leave httpd as they arrive upstream — over HTTP/1.1,
// with mod_deflate configured for text/event-stream, and over HTTP/2 (h2c) —
// and cover event order, heartbeats, client disconnects (continue / abort),
// cancel from the same and from another server, upstream failure mid-stream,
// and the /api/chat stream flavour.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http2 = require('node:http2');
const path = require('node:path');
const { startCosmos } = require('./lib/cosmos');
const { startHttpd, request } = require('./lib/httpd');
const { startFakeModel } = require('./lib/fake-model');
const { tmpDir, stopAll, pollUntil, delay } = require('./lib/proc');
const { openStream, within, textOf, why } = require('./lib/sse-client');

const MODEL_KEY = 'fake-model-key-0123456789';
const DEPLOYMENT = 'gpt-4o-mini';
const H2_MODULE = '/usr/lib/apache2/modules/mod_http2.so';

// Arrival-vs-emission bounds for a noisy 2-core box.
const MAX_LATENCY_MS = 150;   // client arrival − upstream emission, per token
const MEDIAN_LATENCY_MS = 30; // ...and typically (buffering delays every token)
const BATCH_MS = 5;           // tokens sent ≥ SPREAD_MS apart must not arrive closer than this
const SPREAD_MS = 30;         // (scripted delayMs 40; timers may fire a little early/late)
// A worker or the test process descheduled for ~35 ms on a loaded 2-core box
// makes one pair of tokens arrive together now and then; buffering in httpd,
// a filter or HTTP/2 batches systematically (measured over HTTP/1.1 without the FLUSH
// bucket: every pair batched, each token 150–1450 ms late).  So: at most this
// many batched pairs per 30-token turn (a few, as a shared box under the full
// suite's load showed 3–4; buffering batches them all and also fails the
// latency bounds), and one re-measure (incrementalTurn).
const MAX_BATCHED_PAIRS = 5;

let cosmos;
let model;
let messagesC;
let A;      // main instance: heartbeat 1 s, cancel check 500 ms, OnDisconnect continue
let B;      // second instance, same directives, same Cosmos (cancel from elsewhere)
let C;      // A's directives + mod_deflate for text/event-stream + mod_http2 (h2c)
let D;      // AgentChatOnDisconnect abort
const figures = {}; // measured timings, printed at the end

const ms = (ns) => Number(ns) / 1e6;
const now = () => process.hrtime.bigint();

function directives(extra = '') {
    return `AgentChatCosmosEndpoint ${cosmos.endpoint}
AgentChatCosmosKey ${cosmos.key}
AgentChatCAFile ${cosmos.caFile}
AgentChatOpenAIEndpoint ${model.url}
AgentChatOpenAIDeployment ${DEPLOYMENT}
AgentChatOpenAIKey ${MODEL_KEY}
AgentChatHeartbeatInterval 1
AgentChatCancelCheckInterval 500
${extra}`;
}

// ------------------------------------------------------------------ helpers

async function newThread(h) {
    const r = await request(`${h.url}/api/threads`, { method: 'POST', body: {} });
    assert.equal(r.status, 201, r.text);
    return r.json.id;
}

function postStream(h, threadId, content, opts = {}) {
    return openStream(`${h.url}/api/threads/${threadId}/messages`, { body: { content, stream: true }, ...opts });
}

async function getRun(h, threadId, runId) {
    const r = await request(`${h.url}/api/threads/${threadId}/runs/${runId}`);
    assert.equal(r.status, 200, r.text);
    return r.json;
}

// Poll the run (bounded) until it leaves queued/in_progress.
async function finishedRun(h, threadId, runId, timeoutMs = 15000) {
    return pollUntil(async () => {
        const run = await getRun(h, threadId, runId);
        return ['queued', 'in_progress'].includes(run.status) ? null : run;
    }, { timeoutMs, interval: 100, what: `run ${runId} to finish` });
}

async function apiMessages(h, threadId) {
    const r = await request(`${h.url}/api/threads/${threadId}/messages`);
    assert.equal(r.status, 200, r.text);
    return r.json.data;
}

async function storedMessages(threadId) {
    const { resources } = await messagesC.items.query({
        query: 'SELECT * FROM c WHERE c.thread_id = @t AND c.type = @m',
        parameters: [{ name: '@t', value: threadId }, { name: '@m', value: 'message' }],
    }, { partitionKey: threadId }).fetchAll();
    return resources.sort((a, b) => a.seq - b.seq);
}

// The assistant message of runId, through the API and in Cosmos (must agree).
async function assistantOf(h, threadId, runId) {
    const api = (await apiMessages(h, threadId)).filter((m) => m.role === 'assistant' && m.run_id === runId);
    const docs = (await storedMessages(threadId)).filter((m) => m.role === 'assistant' && m.run_id === runId);
    assert.equal(api.length, 1, `one assistant message for ${runId} via the API: ${JSON.stringify(api)}`);
    assert.equal(docs.length, 1, `one assistant message for ${runId} in Cosmos: ${JSON.stringify(docs)}`);
    assert.equal(api[0].content, docs[0].content);
    assert.equal(api[0].status, docs[0].status);
    return api[0];
}

function contentEmissions(rec) { return rec.emitted.filter((e) => e.kind === 'content'); }

function assertSseHeaders(headers, where) {
    const w = `${where}: ${JSON.stringify(headers)}`;
    assert.match(String(headers['content-type']), /^text\/event-stream/, w);
    const cc = String(headers['cache-control'] || '');
    assert.match(cc, /no-cache/, w);
    assert.match(cc, /no-transform/, w);
    assert.equal(String(headers['x-accel-buffering']).toLowerCase(), 'no', w);
    assert.equal(headers['content-length'], undefined, w);
    assert.equal(headers['content-encoding'], undefined, w);
}

// Every event carries an `id:` that names its run (`<run_id>:<position>`), so
// a client can reconnect with Last-Event-ID.
function assertIds(st, runId) {
    for (const e of st.events) {
        assert.ok(e.id, `event ${e.event} without an id`);
        assert.ok(e.id.startsWith(`${runId}:`) && e.id.length > runId.length + 1,
            `id ${e.id} of ${e.event} is not <run_id>:<position>`);
    }
}

// Tokens arrive one by one as the upstream emitted them: per-token latency
// below MAX_LATENCY_MS (median below MEDIAN_LATENCY_MS), and tokens the
// upstream sent apart do not arrive together (see MAX_BATCHED_PAIRS).
function assertIncremental(st, rec, label) {
    const tokens = st.events.filter((e) => e.event === 'token' || e.event === 'chunk');
    const sent = contentEmissions(rec);
    assert.deepEqual(tokens.map((e) => e.data.content), sent.map((e) => e.content),
        `${label}: one token event per upstream content chunk, same text, same order`);
    const lat = tokens.map((e, i) => ms(e.t - sent[i].t));
    const gaps = [];
    const batched = [];
    for (let i = 1; i < tokens.length; i++) {
        const sentGap = ms(sent[i].t - sent[i - 1].t);
        const arrGap = ms(tokens[i].t - tokens[i - 1].t);
        if (sentGap >= SPREAD_MS) {
            gaps.push(arrGap);
            if (arrGap < BATCH_MS) batched.push(`#${i}: sent ${sentGap.toFixed(1)} ms apart, arrived ${arrGap.toFixed(2)} ms apart`);
        }
    }
    const sorted = [...lat].sort((a, b) => a - b);
    const f = {
        tokens: tokens.length,
        latency_ms: { min: +sorted[0].toFixed(2), median: +sorted[Math.floor(sorted.length / 2)].toFixed(2),
            p95: +sorted[Math.floor(sorted.length * 0.95)].toFixed(2), max: +sorted[sorted.length - 1].toFixed(2) },
        min_arrival_gap_ms: +Math.min(...gaps).toFixed(2),
        batched_pairs: batched.length,
        read_chunks: st.chunks.length,
    };
    figures[label] = f;
    const slow = lat.map((l, i) => [i, l]).filter(([, l]) => l >= MAX_LATENCY_MS);
    assert.deepEqual(slow, [], `${label}: tokens arrived ≥ ${MAX_LATENCY_MS} ms after the upstream sent them (${JSON.stringify(f)})`);
    assert.ok(f.latency_ms.median < MEDIAN_LATENCY_MS, `${label}: tokens arrive late (${JSON.stringify(f)})`);
    assert.ok(batched.length <= MAX_BATCHED_PAIRS,
        `${label}: tokens sent apart arrived together: ${batched.join('; ')} (${JSON.stringify(f)})`);
    assert.ok(gaps.length >= tokens.length - 2, `${label}: the upstream spread its chunks (${gaps.length} gaps ≥ ${SPREAD_MS} ms)`);
}

// ------------------------------------------------------------------ setup

before(async () => {
    const root = tmpDir('agentchat-stream-');
    cosmos = await startCosmos({ dir: root });
    model = await startFakeModel({ apiKey: MODEL_KEY, deployment: DEPLOYMENT });
    A = await startHttpd({ dir: path.join(root, 'a'), directives: directives() });
    B = await startHttpd({ dir: path.join(root, 'b'), directives: directives() });
    D = await startHttpd({ dir: path.join(root, 'd'), directives: directives('AgentChatOnDisconnect abort') });
    messagesC = cosmos.client.database('agentchat').container('messages');
});
after(async () => {
    if (Object.keys(figures).length) console.log(`# stream figures: ${JSON.stringify(figures)}`);
    await stopAll();
});

// ------------------------------------------------------------------ tests

// One 30-chunk turn (40 ms apart upstream) streamed from h; every structural
// check must hold on every attempt.  The timing check (assertIncremental) may
// fail once on a busy machine, so a second turn is measured then; buffering in
// httpd, a filter or HTTP/2 fails both.
async function incrementalTurn(h, label, { h2, headers = {}, check = () => {} } = {}) {
    const attempts = [];
    for (let attempt = 1; attempt <= 2; attempt++) {
        const tid = await newThread(h);
        model.reset();
        model.script({ text: textOf(30, 4), chunkSize: 4, delayMs: 40 });
        const session = h2 ? http2.connect(h.url) : null;
        if (session) session.on('error', () => {}); // surfaced through the stream
        try {
            const st = postStream(h, tid, `stream me thirty chunks (${label} #${attempt})`, { h2: session, headers });
            const res = await within(st.response, 10000, `${label} response headers`);
            assert.equal(res.status, 200);
            assertSseHeaders(res.headers, label);
            check(res);
            const done = await st.waitFor((e) => e.event === 'done' || e.event === 'error', 15000, 'done');
            assert.equal(done && done.event, 'done', why(st, h));
            await within(st.ended, 5000, `end of the ${label} stream`);
            assert.equal(st.endInfo.how, 'end');
            assert.match(st.text(), /^: stream open\n\n/);
            assertIds(st, done.data.run_id);
            assert.equal(st.tokens(), textOf(30, 4));
            try {
                assertIncremental(st, model.requests[0], attempt === 1 ? label : `${label}_retry`);
                return;
            } catch (e) {
                attempts.push(e.message);
                if (attempt === 2) throw new Error(`${label}: not incremental in two attempts:\n${attempts.join('\n')}`);
            }
        } finally {
            if (session) session.close();
        }
    }
}

describe('incremental delivery', () => {
    test('HTTP/1.1: tokens arrive spread out as the upstream emitted them; SSE headers', async () => {
        await incrementalTurn(A, 'http1', { check: (res) => assert.equal(String(res.headers['transfer-encoding']), 'chunked') });
    });

    describe('through mod_deflate and HTTP/2', () => {
        before(async () => {
            assert.ok(fs.existsSync(H2_MODULE), `mod_http2 is required for the h2c test and is missing at ${H2_MODULE} (Debian's apache2 package ships it)`);
            try {
                C = await startHttpd({ dir: path.join(tmpDir('agentchat-stream-h2-'), 'c'), extraModules: ['http2'],
                    directives: directives(`Protocols h2c http/1.1
AddOutputFilterByType DEFLATE text/event-stream application/json`) });
            } catch (e) {
                throw new Error(`could not start httpd with mod_http2 (${H2_MODULE}) loaded: ${e.message}`);
            }
        });

        test('mod_deflate configured for text/event-stream: not compressed, still incremental', async () => {
            // deflate is active here: a JSON response is compressed...
            const tid = await newThread(C);
            const j = await request(`${C.url}/api/threads/${tid}`, { headers: { 'accept-encoding': 'gzip' } });
            assert.equal(j.status, 200);
            assert.equal(j.headers['content-encoding'], 'gzip', 'mod_deflate is active for application/json');
            // ...but the event stream is not.
            await incrementalTurn(C, 'deflate', { headers: { 'accept-encoding': 'gzip, deflate, br' } });
        });

        test('HTTP/2 cleartext (h2c, prior knowledge): incremental', async () => {
            await incrementalTurn(C, 'h2c', { h2: true, headers: { 'accept-encoding': 'gzip' } });
            // mod_http2 writes the access-log line just after the stream ends
            await pollUntil(() => /"POST \/api\/threads\/[^ ]+\/messages HTTP\/2\.0" 200/.test(C.accessLog()),
                { timeoutMs: 2000, interval: 20, what: 'the HTTP/2 access-log line' });
        });
    });
});

describe('events', () => {
    test('two-tool turn: metadata first (before the upstream got the request), traces, tokens, done last', async () => {
        const tid = await newThread(A);
        model.reset();
        model.script(
            { toolCalls: [{ name: 'calculate', arguments: { expression: '6*7' } },
                { name: 'calculate', arguments: { expression: '2^10' } }], delayMs: 10 },
            { text: 'Six times seven is 42 and two to the tenth is 1024.', delayMs: 10 });
        const st = postStream(A, tid, 'what is 6*7 and 2^10?');
        const done = await st.waitFor((e) => e.event === 'done' || e.event === 'error', 15000, 'done');
        assert.equal(done && done.event, 'done', why(st, A));
        await within(st.ended, 5000, 'end of stream');
        assert.equal(model.requests.length, 2);

        const names = st.events.map((e) => e.event).filter((n) => n !== 'heartbeat');
        assert.equal(names[0], 'metadata');
        assert.equal(names[names.length - 1], 'done');
        // the calls of one round run together: both starts, then both ends
        assert.deepEqual(names.slice(1, 5), ['trace_start', 'trace_start', 'trace_end', 'trace_end'], names.join(','));
        assert.ok(names.slice(5, -1).length > 0 && names.slice(5, -1).every((n) => n === 'token'), names.join(','));
        assertIds(st, done.data.run_id);

        const meta = st.events[0];
        assert.equal(meta.data.thread_id, tid);
        assert.match(meta.data.run_id, /^run_/);
        assert.match(meta.data.user_message_id, /^msg_/);
        const lead = ms(model.requests[0].t - meta.t);
        figures.metadata_before_upstream_ms = +lead.toFixed(2);
        assert.ok(meta.t < model.requests[0].t,
            `metadata arrived ${(-lead).toFixed(2)} ms AFTER the upstream received the request`);

        const starts = st.named('trace_start');
        const ends = st.named('trace_end');
        assert.deepEqual(starts.map((e) => e.data.tool), ['calculate', 'calculate']);
        for (let i = 0; i < 2; i++) {
            assert.equal(ends[i].data.step_id, starts[i].data.step_id);
            assert.equal(ends[i].data.tool, 'calculate');
            assert.equal(ends[i].data.status, 'completed');
            assert.equal(typeof ends[i].data.duration_ms, 'number');
            const args = starts[i].data.arguments;
            const parsed = typeof args === 'string' ? JSON.parse(args) : args;
            assert.equal(parsed.expression, ['6*7', '2^10'][i], JSON.stringify(starts[i].data));
        }
        assert.notEqual(starts[0].data.step_id, starts[1].data.step_id);
        assert.match(JSON.stringify(ends[0].data.result), /42/);
        assert.match(JSON.stringify(ends[1].data.result), /1024/);
        assert.equal(st.tokens(), 'Six times seven is 42 and two to the tenth is 1024.');
        assert.equal(done.data.thread_id, tid);
        assert.equal(done.data.run_id, meta.data.run_id);
        assert.match(done.data.message_id, /^msg_/);
        assert.equal(done.data.finish_reason, 'stop');
        assert.equal(typeof done.data.usage, 'object');
        assert.ok(done.data.usage && done.data.usage.total_tokens > 0, JSON.stringify(done.data.usage));
    });

    test('heartbeat events fill an upstream silence (AgentChatHeartbeatInterval 1)', async () => {
        const tid = await newThread(A);
        model.reset();
        model.script({ text: 'after a long pause', stallMs: 2600, delayMs: 5 });
        const st = postStream(A, tid, 'think slowly');
        const done = await st.waitFor((e) => e.event === 'done' || e.event === 'error', 15000, 'done');
        assert.equal(done && done.event, 'done', why(st, A));
        const rec = model.requests[0];
        const firstSent = contentEmissions(rec)[0].t;
        const beats = st.named('heartbeat').filter((e) => e.t > rec.t && e.t < firstSent);
        figures.heartbeats_in_2600ms_silence = beats.length;
        assert.ok(beats.length >= 1, `no heartbeat during the 2.6 s silence: ${st.events.map((e) => e.event).join(',')}`);
        const firstBeat = ms(beats[0].t - st.events[0].t);
        figures.first_heartbeat_after_metadata_ms = +firstBeat.toFixed(0);
        assert.ok(firstBeat >= 900 && firstBeat < 2500, `first heartbeat ${firstBeat} ms after metadata`);
        assertIds(st, done.data.run_id);
        assert.equal(st.tokens(), 'after a long pause');
    });
});

describe('client disconnects', () => {
    test('continue (default): the run completes and the full answer is stored', async () => {
        const tid = await newThread(A);
        const full = textOf(40, 4);
        model.reset();
        model.script({ text: full, chunkSize: 4, delayMs: 30 });
        const st = postStream(A, tid, 'I will leave early');
        const meta = await st.waitFor((e) => e.event === 'metadata', 10000, 'metadata');
        assert.ok(meta, why(st, A));
        await st.waitFor(() => st.named('token').length >= 3, 10000, '3 tokens');
        st.destroy();
        const left = now();
        const rec = model.requests[0];
        const outcome = await within(rec.finished, 15000, 'upstream stream end');
        assert.equal(outcome, 'completed', 'the upstream was read to the end');
        assert.ok(ms(rec.closedAt - left) > 500, 'the upstream kept streaming after the client left');
        const run = await finishedRun(A, tid, meta.data.run_id);
        assert.equal(run.status, 'completed', JSON.stringify(run));
        const msg = await assistantOf(A, tid, meta.data.run_id);
        assert.equal(msg.content, full);
        assert.equal(msg.status, 'completed');
        assert.equal(run.assistant_message_id, msg.id);
    });

    test('AgentChatOnDisconnect abort: the upstream is closed early, the partial answer is stored incomplete', async () => {
        const tid = await newThread(D);
        const full = textOf(100, 4);
        model.reset();
        model.script({ text: full, chunkSize: 4, delayMs: 30 });
        const st = postStream(D, tid, 'I will leave early, stop');
        const meta = await st.waitFor((e) => e.event === 'metadata', 10000, 'metadata');
        assert.ok(meta, why(st, D));
        await st.waitFor(() => st.named('token').length >= 3, 10000, '3 tokens');
        st.destroy();
        const left = now();
        const rec = model.requests[0];
        const outcome = await within(rec.finished, 5000, 'upstream connection closed by the module');
        assert.equal(outcome, 'client_closed');
        const closedAfter = ms(rec.closedAt - left);
        figures.abort_upstream_closed_after_ms = +closedAfter.toFixed(0);
        assert.ok(closedAfter < 2000, `upstream closed ${closedAfter} ms after the client left`);
        const sent = contentEmissions(rec).length;
        assert.ok(sent < 100, `the upstream sent all ${sent} chunks`);
        const run = await finishedRun(D, tid, meta.data.run_id);
        assert.equal(run.status, 'incomplete', JSON.stringify(run));
        const msg = await assistantOf(D, tid, meta.data.run_id);
        assert.equal(msg.status, 'incomplete');
        assert.ok(msg.content.length >= 12 && msg.content.length < full.length, `partial: ${msg.content.length} chars`);
        assert.ok(full.startsWith(msg.content), 'the stored text is what was generated');
    });
});

describe('cancel', () => {
    async function cancelCase(streamOn, cancelVia, label) {
        const tid = await newThread(streamOn);
        const full = textOf(200, 4);
        model.reset();
        model.script({ text: full, chunkSize: 4, delayMs: 30 });
        const st = postStream(streamOn, tid, `a long answer please (${label})`);
        const meta = await st.waitFor((e) => e.event === 'metadata', 10000, 'metadata');
        assert.ok(meta, why(st, streamOn));
        const runId = meta.data.run_id;
        await st.waitFor(() => st.named('token').length >= 5, 10000, '5 tokens');
        const t0 = now();
        const c = await request(`${cancelVia.url}/api/threads/${tid}/runs/${runId}/cancel`, { method: 'POST' });
        assert.equal(c.status, 202, c.text);
        assert.equal(c.json.id, runId);
        const done = await st.waitFor((e) => e.event === 'done' || e.event === 'error', 5000, 'done after cancel');
        assert.ok(done, `stream ended without done: ${why(st, streamOn)}`);
        assert.equal(done.event, 'done', JSON.stringify(done.data));
        const after_ = ms(done.t - t0);
        figures[`cancel_${label}_done_after_ms`] = +after_.toFixed(0);
        assert.equal(done.data.finish_reason, 'cancelled');
        assert.ok(after_ < 2500, `done ${after_} ms after the cancel`);
        await within(st.ended, 5000, 'end of stream');
        assert.equal(st.endInfo.how, 'end');
        assert.equal(st.events[st.events.length - 1], done, 'done is the last event');
        const rec = model.requests[0];
        await within(rec.finished, 5000, 'upstream closed');
        assert.equal(rec.outcome, 'client_closed', 'the upstream call was stopped');
        const run = await finishedRun(streamOn, tid, runId);
        assert.equal(run.status, 'cancelled', JSON.stringify(run));
        const msg = await assistantOf(streamOn, tid, runId);
        const streamed = st.tokens();
        assert.ok(msg.content.length > 0 && msg.content.length < full.length, `partial: ${msg.content.length} chars`);
        assert.ok(full.startsWith(msg.content));
        assert.ok(msg.content.startsWith(streamed), 'everything the client saw is stored');
        assert.equal(msg.status, 'incomplete');
        assert.equal(done.data.message_id, msg.id);
        return { tid, runId };
    }

    test('POST .../cancel on another connection stops the stream; a finished run gives 409', async () => {
        const { tid, runId } = await cancelCase(A, A, 'same_server');
        const again = await request(`${A.url}/api/threads/${tid}/runs/${runId}/cancel`, { method: 'POST' });
        assert.equal(again.status, 409, again.text);
        assert.equal(again.json.error.code, 'run_not_active');

        // and a run that completed normally
        model.reset();
        model.script({ text: 'quick', delayMs: 0 });
        const r = await request(`${A.url}/api/threads/${tid}/messages`, { method: 'POST', body: { content: 'quick one' } });
        assert.equal(r.status, 200, r.text);
        const c = await request(`${A.url}/api/threads/${tid}/runs/${r.json.run_id}/cancel`, { method: 'POST' });
        assert.equal(c.status, 409, c.text);
    });

    test('cancel sent to a second httpd sharing the Cosmos account stops the stream on the first', async () => {
        await cancelCase(A, B, 'other_server');
    });
});

describe('upstream failure', () => {
    test('connection cut mid-stream: error event (retryable), clean end, partial answer incomplete, run failed', async () => {
        const tid = await newThread(A);
        const full = textOf(20, 4);
        model.reset();
        // Azure: prompt-filter chunk, role chunk, then content; cut after 6 content chunks.
        model.script({ text: full, chunkSize: 4, delayMs: 20, cutAfterChunks: 8 });
        const st = postStream(A, tid, 'this will break');
        const last = await st.waitFor((e) => e.event === 'done' || e.event === 'error', 10000, 'error event');
        assert.ok(last, why(st, A));
        assert.equal(last.event, 'error', JSON.stringify(last.data));
        assert.equal(typeof last.data.code, 'string');
        assert.equal(typeof last.data.message, 'string');
        assert.equal(last.data.retryable, true, JSON.stringify(last.data));
        await within(st.ended, 5000, 'end of stream');
        assert.equal(st.endInfo.how, 'end', 'the response ends cleanly (chunked terminator)');
        assert.equal(st.events[st.events.length - 1], last, 'error is the last event');
        assert.equal(st.named('done').length, 0);
        const meta = st.events[0];
        assert.equal(meta.event, 'metadata');
        assertIds(st, meta.data.run_id);
        const streamed = st.tokens();
        assert.equal(streamed, full.slice(0, 24));
        const run = await finishedRun(A, tid, meta.data.run_id);
        assert.equal(run.status, 'failed', JSON.stringify(run));
        assert.ok(run.error && run.error.code, JSON.stringify(run.error));
        const msg = await assistantOf(A, tid, meta.data.run_id);
        assert.equal(msg.status, 'incomplete');
        assert.equal(msg.content, streamed);
        // the thread is usable again
        model.script({ text: 'fine now' });
        const r = await request(`${A.url}/api/threads/${tid}/messages`, { method: 'POST', body: { content: 'again' } });
        assert.equal(r.status, 200, r.text);
    });
});

describe('/api/chat', () => {
    test('stream:true → metadata, chunk…, done with full_response', async () => {
        const text = textOf(12, 5);
        model.reset();
        model.script({ text, chunkSize: 5, delayMs: 15 });
        const st = openStream(`${A.url}/api/chat`, { body: { message: 'hello chat', stream: true } });
        const { status, headers } = await within(st.response, 10000, 'response headers');
        assert.equal(status, 200);
        assertSseHeaders(headers, '/api/chat');
        const done = await st.waitFor((e) => e.event === 'done' || e.event === 'error', 10000, 'done');
        assert.equal(done && done.event, 'done', why(st, A));
        await within(st.ended, 5000, 'end of stream');
        const names = st.events.map((e) => e.event).filter((n) => n !== 'heartbeat');
        assert.equal(names[0], 'metadata');
        assert.equal(names[names.length - 1], 'done');
        assert.ok(names.slice(1, -1).every((n) => n === 'chunk'), names.join(','));
        const chunks = st.named('chunk').map((e) => e.data.content);
        assert.equal(chunks.length, 12);
        assert.equal(chunks.join(''), text);
        assert.equal(done.data.full_response, chunks.join(''));
        const meta = st.events[0].data;
        assert.match(meta.thread_id, /^thread_/);
        assert.match(meta.run_id, /^run_/);
        assert.equal(done.data.thread_id, meta.thread_id);
        assert.equal(done.data.run_id, meta.run_id);
        assertIds(st, meta.run_id);
        const msg = await assistantOf(A, meta.thread_id, meta.run_id);
        assert.equal(msg.content, text);
    });
});

test('no httpd child crashed during these tests', async () => {
    await delay(1200); // the parent notices a dead child within its 1 s maintenance tick
    const crashes = [];
    for (const [name, h] of Object.entries({ A, B, C, D })) {
        if (!h) continue;
        for (const l of h.errorLog().split('\n')) {
            if (/AH00052|Segmentation fault|\[(?:[a-z_]+:)?(?:crit|alert|emerg)\]/.test(l)) crashes.push(`${name}: ${l}`);
        }
    }
    assert.deepEqual(crashes, []);
});
