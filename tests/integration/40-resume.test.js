// 40-resume.test.js: replay, resume and live follow of runs across servers —
// two httpd instances (A and B) with mod_agentchat share ONE Cosmos account
// (the real @vercel/cosmosdb-server behind the signature-checking front) and
// one scripted chat-completions upstream.  A runs the turns; B serves
// GET /api/threads/{id}/runs/{run_id}/events from the run document alone:
//   - replay of a finished run (metadata, traces, tokens, done; ids are
//     positions `<run_id>:<answer bytes>.<trace events>`),
//   - live follow of a run still streaming on A (B flags the run document,
//     A answers with partial-answer checkpoints, only while followed),
//   - no follower: no checkpoints, only the cheap cancel-poll point reads,
//   - Last-Event-ID resumes after the position it names,
//   - a run that fails mid-stream ends the follower with `error`,
//   - the stateless /api/agent/stream (nothing stored),
//   - ownership: another principal's run is 404.
// The Cosmos front's request log (method, resource link, body, sequence
// number) shows which run-document reads and patches happened, and when.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { startCosmos } = require('./lib/cosmos');
const { startHttpd, request } = require('./lib/httpd');
const { startFakeModel } = require('./lib/fake-model');
const { tmpDir, stopAll, pollUntil, delay } = require('./lib/proc');
const { openStream, destroyAll, within, textOf, logTail, why } = require('./lib/sse-client');

const MODEL_KEY = 'fake-model-key-0123456789';
const DEPLOYMENT = 'gpt-4o-mini';
const CANCEL_MS = 300;      // AgentChatCancelCheckInterval on both servers
const CHECKPOINT_MS = 300;  // AgentChatCheckpointInterval on both servers
const KEYS = { alice: 'alice-key-0123456789abcdef', bob: 'bob-key-0123456789abcdef00' };

let cosmos, model, A, B, threadsC, messagesC;
const figures = {};       // measured counts, printed at the end
const shared = {};        // results of earlier tests used by later ones

const now = () => process.hrtime.bigint();
const ms = (ns) => Number(ns) / 1e6;
const bytes = (s) => Buffer.byteLength(s, 'utf8');

// ------------------------------------------------------------------ helpers

function directives() {
    return `AgentChatCosmosEndpoint ${cosmos.endpoint}
AgentChatCosmosKey ${cosmos.key}
AgentChatCAFile ${cosmos.caFile}
AgentChatOpenAIEndpoint ${model.url}
AgentChatOpenAIDeployment ${DEPLOYMENT}
AgentChatOpenAIKey ${MODEL_KEY}
AgentChatCancelCheckInterval ${CANCEL_MS}
AgentChatCheckpointInterval ${CHECKPOINT_MS}
AgentChatApiKey ${KEYS.alice} alice
AgentChatApiKey ${KEYS.bob} bob`;
}

const keyHeader = (who) => (who ? { 'x-api-key': KEYS[who] } : {});
// What an SSE request sends: Accept: text/event-stream and who's key.
const sseHeaders = (who) => ({ accept: 'text/event-stream', ...keyHeader(who) });

function api(h, method, p, { body, who = 'alice', headers = {} } = {}) {
    return request(h.url + p, { method, body, headers: { ...keyHeader(who), ...headers } });
}

function expectStatus(h, r, want) {
    assert.equal(r.status, want, `expected HTTP ${want}, got ${r.status}: ${r.text}\n--- error_log ---\n${logTail(h)}`);
}

async function newThread(h, who = 'alice') {
    const r = await api(h, 'POST', '/api/threads', { body: {}, who });
    expectStatus(h, r, 201);
    return r.json.id;
}

async function getRun(h, tid, rid, who = 'alice') {
    const r = await api(h, 'GET', `/api/threads/${tid}/runs/${rid}`, { who });
    expectStatus(h, r, 200);
    return r.json;
}

async function finishedRun(h, tid, rid, timeoutMs = 15000) {
    return pollUntil(async () => {
        const run = await getRun(h, tid, rid);
        return ['queued', 'in_progress'].includes(run.status) ? null : run;
    }, { timeoutMs, interval: 100, what: `run ${rid} to finish` });
}

async function storedAssistant(tid, rid) {
    const { resources } = await messagesC.items.query({
        query: 'SELECT * FROM c WHERE c.thread_id = @t AND c.type = @m AND c.role = @r AND c.run_id = @run',
        parameters: [{ name: '@t', value: tid }, { name: '@m', value: 'message' },
            { name: '@r', value: 'assistant' }, { name: '@run', value: rid }],
    }, { partitionKey: tid }).fetchAll();
    assert.equal(resources.length, 1, `one stored assistant message for ${rid}: ${JSON.stringify(resources)}`);
    return resources[0];
}

// A streaming turn on h: POST .../messages with stream:true.
function postStream(h, tid, content, who = 'alice') {
    return openStream(`${h.url}/api/threads/${tid}/messages`, { method: 'POST', body: { content, stream: true }, headers: sseHeaders(who) });
}

// GET .../runs/{rid}/events on h, optionally with Last-Event-ID.
function runEvents(h, tid, rid, { who = 'alice', lastEventId } = {}) {
    const headers = sseHeaders(who);
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    return openStream(`${h.url}/api/threads/${tid}/runs/${rid}/events`, { headers });
}

// Wait for the end of a stream (bounded); returns its last non-heartbeat event.
async function finished(st, h, timeoutMs = 20000, what = 'stream') {
    const last = await st.waitFor((e) => e.event === 'done' || e.event === 'error', timeoutMs, `${what}: done/error`);
    assert.ok(last, `${what}: ended without done/error\n${why(st, h)}`);
    await within(st.ended, 5000, `${what}: end of response`);
    return last;
}

// Every event's id is `<runId>:<answer bytes>.<trace events>` counted up to and
// including that event (start: where a Last-Event-ID resumed).
function checkPositions(events, runId, start = { bytes: 0, traces: 0 }, label = '') {
    let b = start.bytes;
    let t = start.traces;
    for (const [i, e] of events.entries()) {
        if (e.event === 'token' || e.event === 'chunk') b += bytes(e.data.content);
        if (e.event === 'trace_start' || e.event === 'trace_end') t++;
        assert.equal(e.id, `${runId}:${b}.${t}`, `${label} event #${i} (${e.event}) has id ${e.id}`);
    }
    return { bytes: b, traces: t };
}

const noHeartbeats = (events) => events.filter((e) => e.event !== 'heartbeat');

// Requests in the front's log that address the run document itself.
function runDocRequests(stats, runId) {
    const link = `/docs/${runId}`;
    return stats.requests.filter((r) => r.resourceType === 'docs' && typeof r.resourceLink === 'string' &&
        r.resourceLink.endsWith(link));
}
const isCheckpoint = (r) => r.method === 'PATCH' && r.body.includes('/partial_content');
const isFollowFlag = (r) => r.method === 'PATCH' && r.body.includes('/follow_requested_at');
const isPointRead = (r) => r.method === 'GET';

async function countDocs(container) {
    const { resources } = await container.items.readAll().fetchAll();
    return resources.length;
}

// ------------------------------------------------------------------ setup

before(async () => {
    const root = tmpDir('agentchat-resume-');
    cosmos = await startCosmos({ dir: root });
    model = await startFakeModel({ apiKey: MODEL_KEY, deployment: DEPLOYMENT });
    [A, B] = await Promise.all([
        startHttpd({ dir: path.join(root, 'a'), directives: directives() }),
        startHttpd({ dir: path.join(root, 'b'), directives: directives() }),
    ]);
    threadsC = cosmos.client.database('agentchat').container('threads');
    messagesC = cosmos.client.database('agentchat').container('messages');
});

after(async () => {
    destroyAll();
    if (Object.keys(figures).length) console.log(`# resume figures: ${JSON.stringify(figures)}`);
    await stopAll();
});

// ------------------------------------------------------------------ tests

test('replay of a finished two-tool run on the other server: metadata, traces, tokens, done; ids are positions', async () => {
    const tid = await newThread(A);
    const answer = 'Results: 2+2 = 4 and 3×4 = 12 — both computed with the calculator ✓.';
    model.reset();
    model.script(
        { toolCalls: [{ name: 'calculate', arguments: { expression: '2+2' } },
            { name: 'calculate', arguments: { expression: '3*4' } }] },
        { text: answer });
    const r = await api(A, 'POST', `/api/threads/${tid}/messages`, { body: { content: 'what are 2+2 and 3*4?' } });
    expectStatus(A, r, 200);
    assert.equal(model.requests.length, 2, 'two model rounds');
    const msg = r.json;
    assert.equal(msg.content, answer);
    const runId = msg.run_id;
    assert.match(runId, /^run_/);
    const run = await getRun(A, tid, runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(run.steps.length, 2);
    const stored = await storedAssistant(tid, runId);
    assert.equal(stored.content, answer);

    const st = runEvents(B, tid, runId);
    const { status, headers } = await within(st.response, 10000, 'replay response');
    assert.equal(status, 200);
    assert.match(String(headers['content-type']), /^text\/event-stream/);
    const last = await finished(st, B, 10000, 'replay');
    assert.equal(last.event, 'done', why(st, B));
    const evs = noHeartbeats(st.events);
    const names = evs.map((e) => e.event);
    assert.equal(names[0], 'metadata', names.join(','));
    assert.equal(names[names.length - 1], 'done', names.join(','));
    // the calls of one round run together: both starts, then both ends
    assert.deepEqual(names.slice(1, 5), ['trace_start', 'trace_start', 'trace_end', 'trace_end'], names.join(','));
    assert.ok(names.slice(5, -1).length >= 1 && names.slice(5, -1).every((n) => n === 'token'), names.join(','));

    const meta = evs[0].data;
    assert.equal(meta.thread_id, tid);
    assert.equal(meta.run_id, runId);
    assert.equal(meta.user_message_id, run.user_message_id);

    const starts = st.named('trace_start');
    const ends = st.named('trace_end');
    for (let i = 0; i < 2; i++) {
        const step = run.steps[i];
        assert.equal(starts[i].data.step_id, step.id);
        assert.equal(starts[i].data.tool, 'calculate');
        assert.deepEqual(starts[i].data.arguments, step.arguments);
        assert.equal(ends[i].data.step_id, step.id);
        assert.equal(ends[i].data.tool, 'calculate');
        assert.deepEqual(ends[i].data.result, step.output);
        assert.equal(ends[i].data.status, step.status);
        assert.equal(ends[i].data.duration_ms, step.duration_ms);
    }
    assert.deepEqual(starts.map((e) => e.data.arguments), [{ expression: '2+2' }, { expression: '3*4' }]);

    assert.equal(st.tokens(), answer, 'the replayed tokens concatenate to the stored answer');
    const done = last.data;
    assert.equal(done.run_id, runId);
    assert.equal(done.thread_id, tid);
    assert.equal(done.message_id, msg.id);
    assert.equal(done.finish_reason, run.finish_reason);
    assert.deepEqual(done.usage, run.usage);

    // ids: every event has one, and they are consistent positions
    const end = checkPositions(evs, runId, undefined, 'replay');
    assert.equal(end.bytes, bytes(answer), 'final id: bytes of the answer (UTF-8)');
    assert.equal(end.traces, 2 * run.steps.length, 'final id: two trace events per step');
    assert.equal(last.id, `${runId}:${bytes(answer)}.4`);
    shared.replay = { tid, runId, answer, run, msg };
});

test('live follow from the other server: B delivers tokens while A still streams; checkpoints only while followed', async () => {
    const tid = await newThread(A);
    const text = textOf(150, 4);
    model.reset();
    model.script({ text, chunkSize: 4, delayMs: 40 });
    await cosmos.reset(); // a fresh request log for this run
    const a = postStream(A, tid, 'tell me a long story');
    const meta = await a.waitFor((e) => e.event === 'metadata', 10000, 'A metadata');
    assert.ok(meta, why(a, A));
    const runId = meta.data.run_id;
    await a.waitFor((e) => e.event === 'token' && a.named('token').length >= 5, 10000, 'A: 5 tokens');
    const beforeFollow = await cosmos.stats();
    const tFollow = now();
    const b = runEvents(B, tid, runId);

    // A follower that reconnects while the run is live: once B has a token,
    // resume from B's first token id — on A, the streaming server itself.
    const bFirst = await b.waitFor((e) => e.event === 'token', 15000, 'B: first token');
    assert.ok(bFirst, why(b, B));
    const resumeAt = Number(/:(\d+)\.\d+$/.exec(bFirst.id)[1]);
    const c = runEvents(A, tid, runId, { lastEventId: bFirst.id });

    const aDone = await finished(a, A, 20000, 'A');
    const bEnd = await finished(b, B, 20000, 'B');
    const cEnd = await finished(c, A, 20000, 'resumed follower');
    assert.equal(aDone.event, 'done', why(a, A));
    assert.equal(bEnd.event, 'done', why(b, B));
    assert.equal(cEnd.event, 'done', why(c, A));
    const statsAfter = await cosmos.stats();
    assert.equal(c.named('metadata').length, 0, 'no metadata on a resume');
    assert.equal(c.tokens(), Buffer.from(text).subarray(resumeAt).toString('utf8'),
        'the resumed live follower gets exactly the text after its Last-Event-ID');
    checkPositions(noHeartbeats(c.events), runId, { bytes: resumeAt, traces: 0 }, 'resumed follower');
    assert.deepEqual(cEnd.data, bEnd.data);

    // B streamed while the run was in progress
    const bTokens = b.named('token');
    const early = bTokens.filter((e) => e.t < aDone.t);
    figures.follow_token_events = bTokens.length;
    figures.follow_token_events_before_A_done = early.length;
    assert.ok(early.length >= 1, `B delivered no token before A's done (${bTokens.length} token events, all after)\n${why(b, B)}`);
    assert.ok(b.status === 200);
    const names = noHeartbeats(b.events).map((e) => e.event);
    assert.equal(names[0], 'metadata', names.join(','));
    assert.equal(names[names.length - 1], 'done', names.join(','));
    assert.ok(names.slice(1, -1).every((n) => n === 'token'), names.join(','));
    assert.equal(b.events[0].data.run_id, runId);

    // the same text everywhere
    const stored = await storedAssistant(tid, runId);
    assert.equal(a.tokens(), text, 'A streamed the whole answer');
    assert.equal(b.tokens(), a.tokens(), 'B delivered exactly what A streamed');
    assert.equal(stored.content, text);
    const run = await getRun(A, tid, runId);
    assert.equal(run.status, 'completed');
    assert.equal(bEnd.data.run_id, runId);
    assert.equal(bEnd.data.message_id, aDone.data.message_id);
    assert.equal(bEnd.data.message_id, stored.id);
    assert.deepEqual(bEnd.data.usage, aDone.data.usage);
    assert.deepEqual(bEnd.data.usage, run.usage);
    assert.equal(bEnd.data.finish_reason, aDone.data.finish_reason);

    // positions, on both servers
    const pa = checkPositions(noHeartbeats(a.events), runId, undefined, 'A');
    const pb = checkPositions(noHeartbeats(b.events), runId, undefined, 'B');
    assert.deepEqual(pb, pa);
    assert.deepEqual(pa, { bytes: bytes(text), traces: 0 });

    // checkpoints: none before B followed, all after B's flag, bounded
    assert.deepEqual(runDocRequests(beforeFollow, runId).filter(isCheckpoint).map((r) => r.seq), [],
        'no checkpoint written before anyone followed the run');
    const reqs = runDocRequests(statsAfter, runId);
    const flags = reqs.filter(isFollowFlag);
    const cps = reqs.filter(isCheckpoint);
    assert.ok(flags.length >= 1, 'B flagged the run document (follow_requested_at)');
    assert.ok(cps.length >= 1, `A wrote no checkpoint although B followed\n${logTail(A)}`);
    for (const cp of cps) assert.ok(cp.seq > flags[0].seq, `checkpoint #${cp.seq} precedes B's first flag #${flags[0].seq}`);
    const followMs = ms(aDone.t - tFollow);
    const bound = Math.floor(followMs / CHECKPOINT_MS) + 3;
    figures.checkpoint_patches = cps.length;
    figures.follow_flag_patches = flags.length;
    figures.followed_for_ms = Math.round(followMs);
    figures.checkpoint_bound = bound;
    figures.follow_run_doc_reads = reqs.filter(isPointRead).length;
    console.log(`# live follow: ${cps.length} checkpoint PATCHes over ${Math.round(followMs)} ms of following ` +
        `(bound ${bound}), ${flags.length} follow flag PATCH(es), ${figures.follow_run_doc_reads} run-document reads ` +
        `(A's cancel polls + B's follow polls), B got ${bTokens.length} token events (${early.length} before A's done)`);
    assert.ok(cps.length <= bound, `${cps.length} checkpoints in ${Math.round(followMs)} ms (bound ${bound})`);
    // each checkpoint holds a growing prefix of the answer
    let prev = -1;
    for (const cp of cps) {
        const op = JSON.parse(cp.body).operations.find((o) => o.path === '/partial_content');
        assert.ok(text.startsWith(op.value), `checkpoint is not a prefix of the answer: ${JSON.stringify(op.value).slice(0, 80)}`);
        assert.ok(op.value.length > prev, 'checkpoints grow (unchanged text is not rewritten)');
        prev = op.value.length;
    }
    shared.live = { tid, runId, text, aEvents: a.events };
});

test('live follow of a tool run: B relays the trace events from the checkpoints; live, followed and replayed traces agree', async () => {
    const tid = await newThread(A);
    const text = textOf(80, 4);
    model.reset();
    model.script(
        { toolCalls: [{ name: 'calculate', arguments: { expression: '6*7' } },
            { name: 'calculate', arguments: { expression: '2^10' } }] },
        { text, chunkSize: 4, delayMs: 40 });
    const a = postStream(A, tid, 'what is 6*7 and 2^10, and then tell me a story');
    const meta = await a.waitFor((e) => e.event === 'metadata', 10000, 'A metadata');
    assert.ok(meta, why(a, A));
    const runId = meta.data.run_id;
    await a.waitFor((e) => e.event === 'token' && a.named('token').length >= 3, 10000, 'A: 3 tokens after the tools');
    const b = runEvents(B, tid, runId);
    const aDone = await finished(a, A, 20000, 'A');
    const bEnd = await finished(b, B, 20000, 'B');
    assert.equal(aDone.event, 'done', why(a, A));
    assert.equal(bEnd.event, 'done', why(b, B));
    const names = noHeartbeats(b.events).map((e) => e.event);
    assert.deepEqual(names.slice(0, 5), ['metadata', 'trace_start', 'trace_start', 'trace_end', 'trace_end'], names.join(','));
    assert.ok(names.slice(5, -1).every((n) => n === 'token'), names.join(','));
    const traces = (st) => st.events.filter((e) => e.event.startsWith('trace_')).map((e) => e.data);
    assert.deepEqual(traces(b), traces(a), 'the follower relays the trace events A sent');
    assert.ok(b.named('trace_start')[0].t < aDone.t, 'traces reached B while the run was in progress');
    assert.equal(b.tokens(), text);
    assert.equal(a.tokens(), text);
    checkPositions(noHeartbeats(b.events), runId, undefined, 'B');
    checkPositions(noHeartbeats(a.events), runId, undefined, 'A');

    // the replay of the finished run sends the same trace events as the live stream
    const r = runEvents(B, tid, runId);
    const rEnd = await finished(r, B, 10000, 'replay');
    assert.equal(rEnd.event, 'done', why(r, B));
    assert.deepEqual(traces(r), traces(a), 'replayed traces (rebuilt from the steps) = live traces');
    assert.equal(r.tokens(), text);
    assert.deepEqual(rEnd.data, aDone.data, 'replayed done = live done');
});

test('no follower, no checkpoints: only the cancel poll point reads, about one per interval', async () => {
    const tid = await newThread(A);
    const text = textOf(150, 4);
    model.reset();
    model.script({ text, chunkSize: 4, delayMs: 40 });
    await cosmos.reset();
    const a = postStream(A, tid, 'another long story, nobody watching');
    const meta = await a.waitFor((e) => e.event === 'metadata', 10000, 'A metadata');
    assert.ok(meta, why(a, A));
    const runId = meta.data.run_id;
    const done = await finished(a, A, 20000, 'A');
    assert.equal(done.event, 'done', why(a, A));
    assert.equal(a.tokens(), text);
    const stats = await cosmos.stats();
    const run = await getRun(A, tid, runId);
    assert.equal(run.status, 'completed');

    const reqs = runDocRequests(stats, runId);
    const cps = reqs.filter(isCheckpoint);
    const flags = reqs.filter(isFollowFlag);
    const reads = reqs.filter(isPointRead);
    const streamMs = ms(done.t - meta.t);
    const durationMs = Math.max(run.duration_ms, streamMs);
    const bound = Math.floor(durationMs / CANCEL_MS) + 3;
    figures.unfollowed_checkpoint_patches = cps.length;
    figures.unfollowed_run_doc_reads = reads.length;
    figures.unfollowed_duration_ms = Math.round(durationMs);
    figures.unfollowed_read_bound = bound;
    console.log(`# no follower: ${reads.length} run-document point reads in ${Math.round(durationMs)} ms ` +
        `(one per ${reads.length ? Math.round(durationMs / reads.length) : '-'} ms; bound ${bound}), ` +
        `${cps.length} checkpoint PATCHes, ${flags.length} follow flags; run-doc requests by method: ` +
        JSON.stringify(reqs.reduce((m, r) => ({ ...m, [r.method]: (m[r.method] || 0) + 1 }), {})));
    assert.equal(cps.length, 0, 'no checkpoint PATCH while nobody follows');
    assert.equal(flags.length, 0);
    assert.equal(stats.requests.filter((r) => r.method === 'PATCH' && r.body.includes('/partial_content')).length, 0);
    assert.ok(reads.length >= 2, `the streaming server polls the run document for a cancel (${reads.length} reads)`);
    assert.ok(reads.length <= bound, `${reads.length} run-document reads in ${Math.round(durationMs)} ms (bound ${bound})`);
});

test('Last-Event-ID on a finished run: only what comes after that position (no metadata)', async () => {
    const { tid, runId, answer, run } = shared.replay || {};
    assert.ok(runId, 'needs the replay test');
    const abytes = Buffer.from(answer, 'utf8');

    // (a) between the trace events (after both starts): both ends, the text, done
    let st = runEvents(B, tid, runId, { lastEventId: `${runId}:0.2` });
    let last = await finished(st, B, 10000, 'resume 0.2');
    assert.equal(last.event, 'done', why(st, B));
    let evs = noHeartbeats(st.events);
    assert.deepEqual(evs.map((e) => e.event).filter((n) => n !== 'token'), ['trace_end', 'trace_end', 'done']);
    assert.equal(st.named('trace_end')[0].data.step_id, run.steps[0].id);
    assert.equal(st.tokens(), answer);
    checkPositions(evs, runId, { bytes: 0, traces: 2 }, 'resume 0.2');

    // (b) in the middle of the text (a character boundary, bytes not characters)
    let k = Math.floor(abytes.length / 2);
    while ((abytes[k] & 0xc0) === 0x80) k++;
    assert.notEqual(k, Buffer.byteLength(answer.slice(0, k)), 'the offset is in bytes, past multi-byte characters');
    st = runEvents(B, tid, runId, { lastEventId: `${runId}:${k}.4` });
    last = await finished(st, B, 10000, 'resume mid-text');
    assert.equal(last.event, 'done', why(st, B));
    evs = noHeartbeats(st.events);
    assert.ok(evs.slice(0, -1).every((e) => e.event === 'token') && evs.length >= 2, evs.map((e) => e.event).join(','));
    assert.equal(st.tokens(), abytes.subarray(k).toString('utf8'), 'exactly the remaining bytes of the answer');
    checkPositions(evs, runId, { bytes: k, traces: 4 }, 'resume mid-text');
    assert.deepEqual(last.data.usage, run.usage);

    // (c) everything seen: only done
    st = runEvents(B, tid, runId, { lastEventId: `${runId}:${abytes.length}.4` });
    last = await finished(st, B, 10000, 'resume at end');
    assert.deepEqual(noHeartbeats(st.events).map((e) => e.event), ['done'], why(st, B));
    assert.equal(last.id, `${runId}:${abytes.length}.4`);

    // (d) an id A really sent mid-stream in the live test, resumed on B
    if (shared.live) {
        const { tid: t2, runId: r2, text, aEvents } = shared.live;
        const aTokens = aEvents.filter((e) => e.event === 'token');
        const mid = aTokens[Math.floor(aTokens.length / 2)];
        const pos = Number(/:(\d+)\.\d+$/.exec(mid.id)[1]);
        st = runEvents(B, t2, r2, { lastEventId: mid.id });
        last = await finished(st, B, 10000, 'resume a live id');
        assert.equal(last.event, 'done', why(st, B));
        evs = noHeartbeats(st.events);
        assert.equal(st.named('metadata').length, 0, 'no metadata on a resume');
        assert.equal(st.tokens(), Buffer.from(text).subarray(pos).toString('utf8'));
        checkPositions(evs, r2, { bytes: pos, traces: 0 }, 'resume a live id');
    }
});

test('a Last-Event-ID naming another run (or no position at all) is ignored: the full replay, metadata first', async () => {
    const { tid, runId, answer } = shared.replay || {};
    assert.ok(runId, 'needs the replay test');
    const other = shared.live ? `${shared.live.runId}:10.0` : 'run_00000000000000000000000000:10.0';
    const got = {};
    for (const lastEventId of [other, 'not-a-position']) {
        const st = runEvents(B, tid, runId, { lastEventId });
        const last = await finished(st, B, 10000, `Last-Event-ID ${lastEventId}`);
        assert.equal(last.event, 'done', why(st, B));
        const evs = noHeartbeats(st.events);
        assert.equal(st.tokens(), answer, 'the whole text');
        assert.equal(st.named('trace_start').length + st.named('trace_end').length, 4, 'every trace event');
        checkPositions(evs.filter((e) => e.event !== 'metadata'), runId, undefined, lastEventId);
        got[lastEventId] = evs.map((e) => e.event).join(',');
    }
    for (const [id, names] of Object.entries(got)) {
        assert.match(names, /^metadata,/, `Last-Event-ID ${id} is ignored, so the replay starts from the beginning ` +
            `with metadata (as without the header); got ${names}`);
    }
});

test('following a run that fails mid-stream: the follower ends with an error event', async () => {
    const tid = await newThread(A);
    const text = textOf(150, 4);
    model.reset();
    // Azure flavour: prompt-filter chunk, role chunk, then content; cut after 58 content chunks (~2.3 s).
    model.script({ text, chunkSize: 4, delayMs: 40, cutAfterChunks: 60 });
    const a = postStream(A, tid, 'this one will break');
    const meta = await a.waitFor((e) => e.event === 'metadata', 10000, 'A metadata');
    assert.ok(meta, why(a, A));
    const runId = meta.data.run_id;
    await a.waitFor((e) => e.event === 'token' && a.named('token').length >= 3, 10000, 'A: 3 tokens');
    const b = runEvents(B, tid, runId);
    const aLast = await finished(a, A, 20000, 'A');
    const bLast = await finished(b, B, 20000, 'B');
    assert.equal(aLast.event, 'error', why(a, A));
    assert.equal(bLast.event, 'error', why(b, B));
    assert.equal(b.events[b.events.length - 1], bLast, 'error is the last event');
    assert.equal(b.named('done').length, 0);
    assert.equal(b.events[0].event, 'metadata');
    const run = await finishedRun(A, tid, runId);
    assert.equal(run.status, 'failed', JSON.stringify(run));
    assert.equal(bLast.data.code, run.error.code);
    assert.equal(bLast.data.message, run.error.message);
    assert.equal(typeof bLast.data.retryable, 'boolean');
    const streamed = a.tokens();
    assert.equal(streamed, text.slice(0, 58 * 4));
    assert.equal(b.tokens(), streamed, 'B delivered what A streamed before the cut');
    const stored = await storedAssistant(tid, runId);
    assert.equal(stored.status, 'incomplete');
    assert.equal(stored.content, streamed);
    checkPositions(noHeartbeats(b.events), runId, undefined, 'failing follow');
    figures.failing_follow_retryable = { A: aLast.data.retryable, B: bLast.data.retryable };
    figures.failing_follow_tokens_before_A_error = b.named('token').filter((e) => e.t < aLast.t).length;
});

test('stateless stream: data-only {"text"} events, then event: done; nothing stored', async () => {
    const threadsBefore = await countDocs(threadsC);
    const messagesBefore = await countDocs(messagesC);
    const expected = '[dev model] You said: hi';
    model.reset(); // empty queue: the development model echoes

    const check = async (st, label) => {
        const { status, headers } = await within(st.response, 10000, `${label} response`);
        assert.equal(status, 200, `${label}: ${st.text()}`);
        assert.match(String(headers['content-type']), /^text\/event-stream/);
        const last = await finished(st, A, 10000, label);
        assert.equal(last.event, 'done', why(st, A));
        const evs = st.events.filter((e) => e.event !== 'heartbeat');
        assert.equal(evs[evs.length - 1], last, `${label}: done is last`);
        const texts = evs.slice(0, -1);
        assert.ok(texts.length >= 1);
        for (const e of texts) {
            assert.equal(e.event, null, `${label}: data-only events have no event: line (${e.event})`);
            assert.equal(e.id, null, `${label}: data-only events have no id: line (${e.id})`);
            assert.deepEqual(Object.keys(e.data), ['text'], `${label}: ${e.raw}`);
        }
        assert.equal(texts.map((e) => e.data.text).join(''), expected);
        assert.equal(last.data.finish_reason, 'stop');
        assert.doesNotMatch(st.text(), /event: (metadata|token|chunk)/);
    };

    await check(openStream(`${A.url}/api/agent/stream`, { method: 'POST', body: { message: 'hi' }, headers: sseHeaders('alice') }), 'POST');
    await check(openStream(`${A.url}/api/agent/stream?message=hi`, { method: 'GET', headers: sseHeaders('alice') }), 'GET');
    assert.equal(model.requests.length, 2);
    for (const rec of model.requests) {
        const user = rec.body.messages.filter((m) => m.role === 'user');
        assert.equal(user.length, 1);
        assert.equal(user[0].content, 'hi');
    }
    assert.equal(await countDocs(threadsC), threadsBefore, 'no thread stored');
    assert.equal(await countDocs(messagesC), messagesBefore, 'no message or run stored');

    for (const [method, p, body] of [['POST', '/api/agent/stream', {}], ['GET', '/api/agent/stream', undefined],
        ['GET', '/api/agent/stream?message=', undefined]]) {
        const r = await api(A, method, p, { body, headers: { accept: 'text/event-stream' } });
        assert.equal(r.status, 422, `${method} ${p}: ${r.status} ${r.text}`);
        assert.match(String(r.headers['content-type']), /^application\/json/);
        assert.ok(r.json && r.json.error && typeof r.json.error.code === 'string', r.text);
    }
    assert.equal(model.requests.length, 2, 'no model call for an invalid request');
});

test("ownership: alice's run is 404 for bob on /events, on both servers", async () => {
    const { tid, runId, answer } = shared.replay || {};
    assert.ok(runId, 'needs the replay test');
    for (const h of [A, B]) {
        const r = await api(h, 'GET', `/api/threads/${tid}/runs/${runId}/events`, { who: 'bob', headers: { accept: 'text/event-stream' } });
        assert.equal(r.status, 404, `bob on ${h.url}: ${r.status} ${r.text}`);
        assert.match(String(r.headers['content-type']), /^application\/json/);
        assert.match(r.json.error.code, /^(thread|run)_not_found$/, r.text);
        assert.doesNotMatch(r.text, new RegExp(answer.slice(0, 12).replace(/[+]/g, '\\+')));
        const anon = await api(h, 'GET', `/api/threads/${tid}/runs/${runId}/events`, { who: null });
        assert.equal(anon.status, 401, anon.text);
    }
    // bob's own thread does not make alice's run id visible either
    const bobThread = await newThread(B, 'bob');
    const r = await api(B, 'GET', `/api/threads/${bobThread}/runs/${runId}/events`, { who: 'bob' });
    assert.equal(r.status, 404, r.text);
    assert.equal(r.json.error.code, 'run_not_found', r.text);
    // alice still gets her replay
    const st = runEvents(B, tid, runId);
    const last = await finished(st, B, 10000, 'alice replay');
    assert.equal(last.event, 'done');
    assert.equal(st.tokens(), answer);
});

test('no httpd child crashed during these tests', async () => {
    await delay(1200); // the parent notices a dead child within its 1 s maintenance tick
    const crashes = [];
    for (const [name, h] of Object.entries({ A, B })) {
        for (const l of h.errorLog().split('\n')) {
            if (/AH00052|Segmentation fault|\[(?:[a-z_]+:)?(?:crit|alert|emerg)\]/.test(l)) crashes.push(`${name}: ${l}`);
        }
    }
    assert.deepEqual(crashes, []);
});
