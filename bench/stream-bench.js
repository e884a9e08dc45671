#!/usr/bin/env node
// bench/stream-bench.js: streaming benchmark for mod_agentchat (`make bench`).
//
// A real apache2 (event MPM) with the module, the real @vercel/cosmosdb-server
// behind the signature-checking front, and the scripted OpenAI-compatible fake
// model from tests/integration/lib, which records when it emitted each chunk
// on the same clock (process.hrtime.bigint) that this client stamps arrivals
// with.  Measures:
//   (a) request -> metadata event (and -> headers, -> upstream call, -> first token)
//   (b) module-added time to first token: client arrival - upstream emission
//   (c) module-added latency per token, p50/p90/p99/max
//   (d) concurrent streams held (100/500/1000/2000 by default): completed,
//       errors by kind, httpd RSS/PSS per stream, CPU per token, latency under load
//   (e) httpd CPU time per streamed token (and the Cosmos processes' / node's share)
//   (m) memory on long streams: VmRSS of the single httpd child before/after a
//       20,000-token stream (after a warm-up stream)
// and writes bench/RESULTS.md (BENCH_OUT) plus raw figures to build/bench/raw.json.
//
// Run from tests/ (so tests/node_modules is on the resolution path of the libs):
//   cd tests && node ../bench/stream-bench.js
// Environment knobs (all optional):
//   BENCH_LEVELS=100,500,1000,2000   concurrency levels for the stateless endpoint
//   BENCH_THREAD_LEVELS=100,500,1000 concurrency levels for the thread (Cosmos) endpoint
//   BENCH_AB_LEVEL=500               thread level re-run with AgentChatCancelCheckInterval 60000 (0 = skip)
//   BENCH_LATENCY_STREAMS=20         sequential streams per endpoint for (a)-(c)
//   BENCH_LONG_TOKENS=20000          tokens of the long (memory) stream
//   BENCH_OUT=../bench/RESULTS.md    where to write the report ('-' = stdout only)
//   BENCH_QUICK=1                    a small smoke run (levels 20,50; fewer streams)
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { execFileSync, spawnSync } = require('node:child_process');
const { monitorEventLoopDelay } = require('node:perf_hooks');

// ---------------------------------------------------------------- file limit
// Thousands of sockets on both ends of this process: re-exec under a raised
// `ulimit -n` once if the soft limit is low.
function nofile() {
    const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m ? { soft: Number(m[1]) || Infinity, hard: Number(m[2]) || Infinity } : { soft: 1024, hard: 1024 };
}
if (nofile().soft < 16384 && !process.env.BENCH_REEXEC) {
    const r = spawnSync('bash', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"',
        process.execPath, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, BENCH_REEXEC: '1' } });
    process.exit(r.status === null ? 1 : r.status);
}

const LIB = path.join(__dirname, '..', 'tests', 'integration', 'lib');
const { startCosmos } = require(path.join(LIB, 'cosmos'));
const { startHttpd, request, MODULE_SO } = require(path.join(LIB, 'httpd'));
const { startFakeModel } = require(path.join(LIB, 'fake-model'));
const { tmpDir, stopAll, delay, groupMembers, pollUntil } = require(path.join(LIB, 'proc'));
const { sseParser } = require(path.join(LIB, 'sse-client'));

const REPO = path.resolve(__dirname, '..');
const QUICK = !!process.env.BENCH_QUICK;
const levelsOf = (v, d) => (v || d).split(',').map((s) => Number(s.trim())).filter((n) => n > 0);
const LEVELS = levelsOf(process.env.BENCH_LEVELS, QUICK ? '20,50' : '100,500,1000,2000');
const THREAD_LEVELS = levelsOf(process.env.BENCH_THREAD_LEVELS, QUICK ? '20' : '100,500,1000');
const AB_LEVEL = Number(process.env.BENCH_AB_LEVEL ?? (QUICK ? 20 : 500));
const LAT_STREAMS = Number(process.env.BENCH_LATENCY_STREAMS || (QUICK ? 4 : 20));
const LONG_TOKENS = Number(process.env.BENCH_LONG_TOKENS || (QUICK ? 2000 : 20000));
const OUT = process.env.BENCH_OUT || path.join(REPO, 'bench', 'RESULTS.md');
const RAW_DIR = path.join(REPO, 'build', 'bench');

const MODEL_KEY = 'fake-model-key-0123456789';
const DEPLOYMENT = 'gpt-4o-mini';
const CHUNK = 4;                        // characters per upstream content chunk ("token")
const LAT_TOKENS = 100, LAT_DELAY = 20; // (a)-(c): 100 tokens, one every 20 ms
const CONC_TOKENS = 80, CONC_DELAY = 100; // (d): 80 tokens, one every 100 ms (8 s streams)
const ROTATE_STREAMS = QUICK ? 3 : 8;     // long streams on the 64-thread child (thread rotation)
const CPU_STREAMS = 20, CPU_TOKENS = 1000, CPU_DELAY = 10; // (e): 20 x 1000 tokens, 10 ms cadence
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const T_START = Date.now();

const ms = (ns) => Number(ns) / 1e6;
const now = () => process.hrtime.bigint();
const log = (s) => process.stderr.write(`[bench +${((Date.now() - T_START) / 1000).toFixed(0)}s] ${s}\n`);

// ---------------------------------------------------------------- statistics

function quant(values, q) {
    if (!values.length) return NaN;
    const s = Float64Array.from(values).sort();
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
function summary(values) {
    return { n: values.length, min: quant(values, 0), p50: quant(values, 0.5), p90: quant(values, 0.9),
        p99: quant(values, 0.99), max: quant(values, 1) };
}
const f1 = (v) => (Number.isFinite(v) ? v.toFixed(1) : '–');
const f2 = (v) => (Number.isFinite(v) ? v.toFixed(2) : '–');
const kb = (v) => (Number.isFinite(v) ? `${Math.round(v).toLocaleString('en-US')}` : '–');
const mb = (kbv) => (Number.isFinite(kbv) ? (kbv / 1024).toFixed(1) : '–');

// ---------------------------------------------------------------- /proc

function readStatus(pid) {
    const o = {};
    try {
        for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
            const m = /^(VmRSS|RssAnon|RssFile|Threads):\s+(\d+)/.exec(line);
            if (m) o[m[1]] = Number(m[2]);
        }
    } catch { return null; }
    return o;
}
function readPss(pid) {
    try {
        const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
        return m ? Number(m[1]) : NaN;
    } catch { return NaN; }
}
// [utime+stime, cutime+cstime] in ticks.
function readCpu(pid) {
    try {
        const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        return [Number(f[11]) + Number(f[12]), Number(f[13]) + Number(f[14])];
    } catch { return [0, 0]; }
}
// CPU seconds of an httpd process group: live members plus what the parent
// reaped from exited children.
function groupCpuSec(h) {
    let ticks = 0;
    for (const pid of groupMembers(h.pid)) {
        const [own, reaped] = readCpu(pid);
        ticks += own + (pid === h.pid ? reaped : 0);
    }
    return ticks / CLK_TCK;
}
// Busy CPU seconds of the whole machine (all cores) and the steal share, from /proc/stat.
function machineCpu() {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    return { busy: (user + nice + system + irq + softirq) / CLK_TCK, steal: (steal || 0) / CLK_TCK };
}
const pidsCpuSec = (pids) => pids.reduce((a, pid) => a + readCpu(pid)[0], 0) / CLK_TCK;
function children(h) { return groupMembers(h.pid).filter((p) => p !== h.pid); }
// Memory of an httpd group: sums over parent + children (kB).
function groupMem(h, withPss = false) {
    const o = { procs: 0, VmRSS: 0, RssAnon: 0, Threads: 0, Pss: withPss ? 0 : NaN, childRss: 0 };
    for (const pid of groupMembers(h.pid)) {
        const s = readStatus(pid);
        if (!s) continue;
        o.procs++;
        o.VmRSS += s.VmRSS || 0;
        o.RssAnon += s.RssAnon || 0;
        o.Threads += s.Threads || 0;
        if (pid !== h.pid) o.childRss += s.VmRSS || 0;
        if (withPss) o.Pss += readPss(pid) || 0;
    }
    return o;
}

// A worker thread that posts the httpd group's memory every intervalMs
// ({procs, VmRSS, RssAnon, Threads, Pss} in kB; Pss on every other sample).
function startSampler(pgid, intervalMs) {
    const { Worker } = require('node:worker_threads');
    const code = `
const fs = require('node:fs');
const { parentPort, workerData: { pgid, intervalMs } } = require('node:worker_threads');
function members() {
    const out = [];
    for (const name of fs.readdirSync('/proc')) {
        if (!/^\\d+$/.test(name)) continue;
        let st;
        try { st = fs.readFileSync('/proc/' + name + '/stat', 'utf8'); } catch { continue; }
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        if (Number(f[2]) === pgid && f[0] !== 'Z' && f[0] !== 'X') out.push(name);
    }
    return out;
}
let i = 0;
function tick() {
    const withPss = i++ % 2 === 0;
    const o = { procs: 0, VmRSS: 0, RssAnon: 0, Threads: 0, Pss: withPss ? 0 : NaN };
    for (const pid of members()) {
        try {
            const s = fs.readFileSync('/proc/' + pid + '/status', 'utf8');
            o.procs++;
            for (const k of ['VmRSS', 'RssAnon', 'Threads']) {
                const m = new RegExp('^' + k + ':\\\\s+(\\\\d+)', 'm').exec(s);
                if (m) o[k] += Number(m[1]);
            }
            if (withPss) {
                const m = /^Pss:\\s+(\\d+) kB/m.exec(fs.readFileSync('/proc/' + pid + '/smaps_rollup', 'utf8'));
                if (m) o.Pss += Number(m[1]);
            }
        } catch { /* gone */ }
    }
    parentPort.postMessage(o);
}
tick();
setInterval(tick, intervalMs);
`;
    return new Worker(code, { eval: true, workerData: { pgid, intervalMs } });
}

// ---------------------------------------------------------------- SSE client

// The incremental SSE parser is the integration tests' (tests/integration/lib/sse-client.js).

// POST a streaming request; every event is stamped with the arrival time of
// the read that completed it.  Resolves (via st.ended) when the response ends
// or fails; never rejects.
function openStream(url, body, kind) {
    const st = { t0: now(), tHeaders: null, tFirstByte: null, status: null, metadata: null, tokens: [],
        tokenText: [], done: null, errorEvent: null, heartbeats: 0, how: null, error: null, tEnd: null };
    const data = Buffer.from(JSON.stringify(body));
    let lastT;
    const dec = new (require('node:string_decoder').StringDecoder)('utf8');
    const feed = sseParser((ev) => {
        let d;
        try { d = JSON.parse(ev.data.join('\n')); } catch { d = undefined; }
        if (ev.event === 'metadata') st.metadata = { t: lastT, data: d };
        else if (ev.event === 'token' || (kind === 'stateless' && ev.event === null)) {
            st.tokens.push(lastT);
            st.tokenText.push(d ? (d.content ?? d.text ?? '') : '');
        } else if (ev.event === 'done') st.done = { t: lastT, data: d };
        else if (ev.event === 'error') st.errorEvent = d || { code: 'unparsable' };
        else if (ev.event === 'heartbeat') st.heartbeats++;
    }, () => {});
    st.ended = new Promise((resolve) => {
        const finish = (how, err) => {
            if (st.how) return;
            st.how = how;
            st.error = err ? (err.code || err.message) : null;
            st.tEnd = now();
            resolve(st);
        };
        const req = http.request(url, { method: 'POST', agent: false,
            headers: { 'content-type': 'application/json', 'content-length': data.length, accept: 'text/event-stream' } });
        st.destroy = () => { req.destroy(); finish('destroyed'); };
        req.on('response', (res) => {
            st.tHeaders = now();
            st.status = res.statusCode;
            res.on('data', (b) => {
                lastT = now();
                if (!st.tFirstByte) st.tFirstByte = lastT;
                feed(dec.write(b));
            });
            res.on('end', () => finish(res.complete ? 'end' : 'aborted'));
            res.on('aborted', () => finish('aborted'));
            res.on('error', (e) => finish('error', e));
            res.on('close', () => finish(res.complete ? 'end' : 'closed'));
        });
        req.on('error', (e) => finish('error', e));
        req.end(data);
    });
    return st;
}

// ok | http_<status> | error_event:<code> | transport:<what> | short_tokens | bad_text | no_done
function outcome(st, expectText) {
    if (st.how === 'destroyed') return 'stuck (destroyed at deadline)';
    if (st.status === null) return `transport:${st.error || st.how}`;
    if (st.status !== 200) return `http_${st.status}`;
    if (st.errorEvent) return `error_event:${st.errorEvent.code}`;
    if (!st.done) return st.how === 'end' ? 'no_done' : `transport:${st.error || st.how}`;
    if (expectText !== undefined && st.tokenText.join('') !== expectText) {
        return st.tokens.length * CHUNK < expectText.length ? 'short_tokens' : 'bad_text';
    }
    return 'ok';
}

// ---------------------------------------------------------------- the model

const LOREM = 'Streaming means every token leaves the server the moment it arrives upstream, never held back by filters. ';
function textOf(nTokens) {
    let s = '';
    while (s.length < nTokens * CHUNK) s += LOREM;
    return s.slice(0, nTokens * CHUNK);
}
const specs = new Map(); // tag -> {text, delayMs}
let tagSeq = 0;
function newTag(tokens, delayMs) {
    const tag = `b${++tagSeq}`;
    specs.set(tag, { text: textOf(tokens), delayMs });
    return tag;
}
function lastUserText(body) {
    const msgs = Array.isArray(body && body.messages) ? body.messages : [];
    for (let i = msgs.length - 1; i >= 0; i--) if (msgs[i] && msgs[i].role === 'user') return String(msgs[i].content || '');
    return '';
}
// A scripted turn chosen by the [bench:<tag>] marker in the user's message.
function benchTurn(rec) {
    const m = /\[bench:(\w+)\]/.exec(lastUserText(rec.body));
    const spec = m && specs.get(m[1]);
    rec.benchTag = m ? m[1] : null;
    if (!spec) return { text: 'unscripted', chunkSize: CHUNK };
    return { text: spec.text, chunkSize: CHUNK, delayMs: spec.delayMs };
}

// ---------------------------------------------------------------- environment

let cosmos;
let model;
let root;
const raw = { started: new Date().toISOString() };
const notes = []; // problems / observations, printed into RESULTS.md

function directives(extra = '') {
    return `AgentChatCosmosEndpoint ${cosmos.endpoint}
AgentChatCosmosKey ${cosmos.key}
AgentChatCAFile ${cosmos.caFile}
AgentChatOpenAIEndpoint ${model.url}
AgentChatOpenAIDeployment ${DEPLOYMENT}
AgentChatOpenAIKey ${MODEL_KEY}
${extra}`;
}

// One child, so "the process serving the stream" is unambiguous.
const MPM_ONE = `StartServers 1
ServerLimit 1
ThreadLimit 1
ThreadsPerChild 1
MaxRequestWorkers 1
MinSpareThreads 1
MaxSpareThreads 1`;
const MPM_SINGLE = `StartServers 1
ServerLimit 1
ThreadLimit 64
ThreadsPerChild 64
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64`;
// Enough worker threads for 2,000 streams (each stream holds one worker thread).
const CONC_PROCS = 8, CONC_THREADS = 320;
const MPM_LARGE = `StartServers ${CONC_PROCS}
ServerLimit ${CONC_PROCS}
ThreadLimit ${CONC_THREADS}
ThreadsPerChild ${CONC_THREADS}
MaxRequestWorkers ${CONC_PROCS * CONC_THREADS}
MinSpareThreads ${CONC_THREADS}
MaxSpareThreads ${CONC_PROCS * CONC_THREADS}
ListenBacklog 4096`;

let httpdSeq = 0;
async function httpd(name, mpm, extra = '') {
    const dir = path.join(root, `${name}-${++httpdSeq}`);
    const h = await startHttpd({ dir, directives: `${mpm}\n${directives(extra)}`, readyTimeoutMs: 30000 });
    h.name = name;
    h.logOffset = 0;
    return h;
}
function saveLog(h) {
    fs.mkdirSync(RAW_DIR, { recursive: true });
    try { fs.copyFileSync(path.join(h.dir, 'error.log'), path.join(RAW_DIR, `${path.basename(h.dir)}-error.log`)); } catch { /* none */ }
}

// Notable error.log lines since the last call: counts by kind + a few samples.
function scanLog(h) {
    const text = h.errorLog();
    const fresh = text.slice(h.logOffset);
    h.logOffset = text.length;
    const counts = {};
    const samples = [];
    for (const line of fresh.split('\n')) {
        if (!line) continue;
        const lvl = /\] \[(?:[\w]+:)?(emerg|alert|crit|error|warn|notice|info|debug)\]/.exec(line);
        const level = lvl ? lvl[1] : 'other';
        const retry = /model attempt \d+ failed \((\w+)\)/.exec(line);
        if (retry) { counts[`model retry (${retry[1]})`] = (counts[`model retry (${retry[1]})`] || 0) + 1; continue; }
        if (['info', 'debug', 'notice'].includes(level) && !/signal|Segmentation|MaxRequestWorkers|scoreboard/i.test(line)) continue;
        const ah = /(AH\d{5})/.exec(line);
        const key = `${level}${ah ? ` ${ah[1]}` : ''}`;
        counts[key] = (counts[key] || 0) + 1;
        if (samples.length < 6) samples.push(line.replace(/^\[[^\]]*\] /, '').slice(0, 240));
    }
    return { counts, samples };
}

async function newThread(h) {
    const r = await request(`${h.url}/api/threads`, { method: 'POST', body: {}, timeoutMs: 60000 });
    if (r.status !== 201) throw new Error(`POST /api/threads: ${r.status} ${r.text}`);
    return r.json.id;
}
async function newThreads(h, n, parallel = 16) {
    const ids = [];
    let next = 0;
    const worker = async () => { while (next < n) { next++; ids.push(await newThread(h)); } };
    await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
    return ids;
}

// Start one scripted stream; kind 'thread' (POST /api/threads/{id}/messages) or
// 'stateless' (POST /api/agent/stream).
function startStream(h, kind, tokens, delayMs, threadId) {
    const tag = newTag(tokens, delayMs);
    const content = `[bench:${tag}] please stream`;
    const st = kind === 'thread'
        ? openStream(`${h.url}/api/threads/${threadId}/messages`, { content, stream: true }, kind)
        : openStream(`${h.url}/api/agent/stream`, { message: content }, kind);
    st.tag = tag;
    st.expect = specs.get(tag).text;
    return st;
}

// Upstream record of a stream (by tag).
function recOf(tag) { return model.requests.find((r) => r.benchTag === tag); }

// Per-token added latency (arrival - emission) and added TTFT of one stream.
function latencies(st) {
    const rec = recOf(st.tag);
    if (!rec) return null;
    const sent = rec.emitted.filter((e) => e.kind === 'content');
    if (sent.length !== st.tokens.length) return null;
    const per = st.tokens.map((t, i) => ms(t - sent[i].t));
    return { per, ttftAdded: per[0], upstreamCall: ms(rec.t - st.t0), firstEmit: ms(sent[0].t - st.t0) };
}

// ---------------------------------------------------------------- (a)-(c)

async function latencyPhase(h, kind) {
    log(`latency: ${LAT_STREAMS} sequential ${kind} streams of ${LAT_TOKENS} tokens every ${LAT_DELAY} ms`);
    const threads = kind === 'thread' ? await newThreads(h, LAT_STREAMS + 1, 4) : [];
    model.reset();
    model.script(...Array(LAT_STREAMS + 1).fill(benchTurn));
    // One warm-up stream (first connections to Cosmos / the model), not counted.
    await startStream(h, kind, 10, 5, threads[LAT_STREAMS]).ended;
    const res = { kind, streams: LAT_STREAMS, tokens: LAT_TOKENS, delayMs: LAT_DELAY, outcomes: {},
        headers: [], metadata: [], firstByte: [], upstreamCall: [], firstEmit: [], firstToken: [], ttftAdded: [],
        perToken: [], total: [] };
    for (let i = 0; i < LAT_STREAMS; i++) {
        const st = startStream(h, kind, LAT_TOKENS, LAT_DELAY, threads[i]);
        const timer = setTimeout(() => st.destroy(), 60000);
        await st.ended;
        clearTimeout(timer);
        const o = outcome(st, st.expect);
        res.outcomes[o] = (res.outcomes[o] || 0) + 1;
        if (o !== 'ok') continue;
        res.headers.push(ms(st.tHeaders - st.t0));
        res.firstByte.push(ms(st.tFirstByte - st.t0));
        if (st.metadata) res.metadata.push(ms(st.metadata.t - st.t0));
        res.firstToken.push(ms(st.tokens[0] - st.t0));
        res.total.push(ms(st.tEnd - st.t0));
        const l = latencies(st);
        if (!l) { res.outcomes['unmatched upstream record'] = (res.outcomes['unmatched upstream record'] || 0) + 1; continue; }
        res.upstreamCall.push(l.upstreamCall);
        res.firstEmit.push(l.firstEmit);
        res.ttftAdded.push(l.ttftAdded);
        res.perToken.push(...l.per);
        await delay(50);
    }
    return res;
}

// What Cosmos does for one streamed turn: the front's request log, in order.
async function cosmosProbe(h) {
    const tid = await newThread(h);
    model.reset();
    model.script(benchTurn);
    await cosmos.reset();
    const st = startStream(h, 'thread', 40, 100, tid); // a 4 s stream: ~2-3 cancel checks
    let atMetadata = null;
    const poll = setInterval(async () => {
        if (st.metadata && atMetadata === null) {
            atMetadata = -1;
            try { atMetadata = (await cosmos.stats()).total; } catch { /* reported as -1 */ }
        }
    }, 5);
    await st.ended;
    clearInterval(poll);
    const s = await cosmos.stats();
    const ops = s.requests.map((r) => `${r.op} ${r.resourceType}${r.status !== 200 && r.status !== 201 ? ` (${r.status})` : ''}`);
    // Round-trip time of a signed point read from this process, through the front.
    const rtt = [];
    for (let i = 0; i < 50; i++) {
        const t = now();
        const r = await cosmos.request('GET', '/dbs/agentchat');
        if (r.status === 200) rtt.push(ms(now() - t));
    }
    return { outcome: outcome(st, st.expect), total: s.total, atMetadata, ops, byOp: s.byOp,
        durationMs: ms(st.tEnd - st.t0), rtt: summary(rtt) };
}

// One slow Cosmos read during a stream: after the metadata event, the front
// delays the next GET of a document (the cancel-check read of the run
// document) by SLOW_READ_MS.  Shows whether token relay waits for that read.
const SLOW_READ_MS = 2000;
async function slowReadProbe(h) {
    const tid = await newThread(h);
    model.reset();
    model.script(benchTurn);
    const st = startStream(h, 'thread', 60, 100, tid); // 6 s: the first check is due 1.5 s in
    await pollUntil(() => st.metadata || st.how, { timeoutMs: 15000, interval: 5, what: 'metadata' });
    await cosmos.fault({ method: 'GET', resourceType: 'docs', delayMs: SLOW_READ_MS, count: 1 });
    const timer = setTimeout(() => st.destroy(), 60000);
    await st.ended;
    clearTimeout(timer);
    const s = await cosmos.stats();
    await cosmos.clearFaults();
    const l = latencies(st);
    const gaps = st.tokens.slice(1).map((t, i) => ms(t - st.tokens[i]));
    return { outcome: outcome(st, st.expect), faulted: s.faulted, delayMs: SLOW_READ_MS,
        latency: l ? summary(l.per) : null, late: l ? l.per.filter((v) => v >= 100).length : null,
        maxGap: gaps.length ? Math.max(...gaps) : NaN, tokens: st.tokens.length };
}

// ---------------------------------------------------------------- memory

async function longStream(h, kind, tokens, delayMs, label) {
    const [child] = children(h);
    const tid = kind === 'thread' ? await newThread(h) : undefined;
    model.reset();
    model.script(benchTurn);
    await delay(300);
    const before = readStatus(child);
    let peak = before.VmRSS;
    const t0 = Date.now();
    const st = startStream(h, kind, tokens, delayMs, tid);
    const sampler = setInterval(() => { const s = readStatus(child); if (s && s.VmRSS > peak) peak = s.VmRSS; }, 100);
    const timer = setTimeout(() => st.destroy(), 180000);
    await st.ended;
    clearTimeout(timer);
    clearInterval(sampler);
    await delay(500); // let the worker return to idle
    const after = readStatus(child);
    let worker = null;
    const runId = st.metadata && st.metadata.data && st.metadata.data.run_id;
    if (runId) {
        const m = new RegExp(`tid (\\d+)\\] run ${runId} `).exec(h.errorLog());
        if (m) worker = Number(m[1]);
    }
    const r = { label, kind, tokens, delayMs, pid: child, samePid: children(h).includes(child), worker,
        outcome: outcome(st, st.expect), received: st.tokens.length, seconds: (Date.now() - t0) / 1000,
        before, after, peak, delta: after.VmRSS - before.VmRSS, anonDelta: after.RssAnon - before.RssAnon };
    log(`  ${label}: ${r.outcome}, ${r.received} tokens in ${r.seconds.toFixed(1)} s, VmRSS ${before.VmRSS} -> ${after.VmRSS} kB (peak ${peak}), RssAnon ${before.RssAnon} -> ${after.RssAnon}`);
    return r;
}

// On an httpd with ONE worker thread, so every stream runs on the same
// (warmed-up) thread: what a long stream itself leaves behind.
async function memoryPhase() {
    log(`memory: ${LONG_TOKENS}-token streams on an httpd with one child and one worker thread`);
    const h = await httpd('mem', MPM_ONE);
    const out = [];
    try {
        await pollUntil(() => children(h).length === 1, { timeoutMs: 10000, what: 'the httpd child' });
        out.push(await longStream(h, 'thread', LONG_TOKENS, 0, 'warm-up (thread, back-to-back tokens)'));
        out.push(await longStream(h, 'thread', LONG_TOKENS, 1, 'thread #1 (1 ms cadence)'));
        out.push(await longStream(h, 'thread', LONG_TOKENS, 1, 'thread #2 (1 ms cadence)'));
        out.push(await longStream(h, 'thread', LONG_TOKENS, 0, 'thread #3 (back-to-back)'));
        out.push(await longStream(h, 'stateless', LONG_TOKENS, 0, 'warm-up (stateless, back-to-back)'));
        out.push(await longStream(h, 'stateless', LONG_TOKENS, 1, 'stateless #1 (1 ms cadence)'));
        out.push(await longStream(h, 'stateless', LONG_TOKENS, 0, 'stateless #2 (back-to-back)'));
        const sl = scanLog(h);
        // AH00484 (MaxRequestWorkers reached) is expected with one worker thread.
        if (Object.keys(sl.counts).some((k) => !/^warn$|AH00484/.test(k))) notes.push(`one-thread instance error.log: ${JSON.stringify(sl.counts)}; e.g. ${sl.samples.slice(0, 3).join(' | ')}`);
    } finally {
        saveLog(h);
        await h.stop();
    }
    return out;
}

// The same long thread streams on the 64-thread child: successive requests
// land on different worker threads, each of which warms up once.
async function rotationPhase(h) {
    log(`memory: ${ROTATE_STREAMS} back-to-back ${LONG_TOKENS}-token thread streams on the 64-thread child`);
    const out = [];
    for (let i = 0; i < ROTATE_STREAMS; i++) out.push(await longStream(h, 'thread', LONG_TOKENS, 0, `#${i + 1}`));
    return out;
}

// ---------------------------------------------------------------- (e) CPU

async function cpuPhase(h, kind) {
    log(`cpu: ${CPU_STREAMS} concurrent ${kind} streams x ${CPU_TOKENS} tokens every ${CPU_DELAY} ms`);
    const threads = kind === 'thread' ? await newThreads(h, CPU_STREAMS, 8) : [];
    model.reset();
    model.script(...Array(CPU_STREAMS).fill(benchTurn));
    await delay(500);
    const c0 = { httpd: groupCpuSec(h), cosmos: pidsCpuSec(cosmos.pids), node: process.cpuUsage(), wall: now(), machine: machineCpu() };
    const sts = [];
    for (let i = 0; i < CPU_STREAMS; i++) sts.push(startStream(h, kind, CPU_TOKENS, CPU_DELAY, threads[i]));
    const timer = setTimeout(() => sts.forEach((s) => s.destroy()), 120000);
    await Promise.all(sts.map((s) => s.ended));
    clearTimeout(timer);
    await delay(300);
    const nodeCpu = process.cpuUsage(c0.node);
    const r = { kind, streams: CPU_STREAMS, tokensEach: CPU_TOKENS, delayMs: CPU_DELAY,
        wallSec: ms(now() - c0.wall) / 1000,
        httpdSec: groupCpuSec(h) - c0.httpd, cosmosSec: pidsCpuSec(cosmos.pids) - c0.cosmos,
        nodeSec: (nodeCpu.user + nodeCpu.system) / 1e6, outcomes: {} };
    const m1 = machineCpu();
    r.otherCores = (m1.busy - c0.machine.busy - r.httpdSec - r.cosmosSec - r.nodeSec) / r.wallSec;
    r.stealCores = (m1.steal - c0.machine.steal) / r.wallSec;
    r.tokens = 0;
    for (const s of sts) {
        const o = outcome(s, s.expect);
        r.outcomes[o] = (r.outcomes[o] || 0) + 1;
        r.tokens += s.tokens.length;
    }
    r.usPerToken = (r.httpdSec * 1e6) / r.tokens;
    log(`  httpd ${r.httpdSec.toFixed(2)} s CPU for ${r.tokens} tokens = ${r.usPerToken.toFixed(1)} µs/token; cosmos ${r.cosmosSec.toFixed(2)} s; node ${r.nodeSec.toFixed(2)} s`);
    return r;
}

// ---------------------------------------------------------------- (d) concurrency

// variant: {label, directives} — extra module directives for an A/B row.
async function concurrencyLevel(kind, n, variant = null) {
    log(`concurrency: ${n} ${kind} streams (${CONC_TOKENS} tokens every ${CONC_DELAY} ms)${variant ? ` [${variant.label}]` : ''}`);
    if (kind === 'thread') {
        // A fresh, empty emulator: cosmosdb-server gets slower as its
        // containers fill up, which would make later levels look worse.
        const certs = cosmos.certs;
        await cosmos.stop();
        cosmos = await startCosmos({ certs });
    }
    const h = await httpd(`conc-${kind}-${n}`, MPM_LARGE, variant ? variant.directives : '');
    const res = { kind, n, variant: variant ? variant.label : null, tokens: CONC_TOKENS, delayMs: CONC_DELAY, outcomes: {} };
    try {
        const want = CONC_PROCS * (CONC_THREADS + 2); // workers + listener + main per child
        try {
            await pollUntil(() => groupMem(h).Threads >= want + 1, { timeoutMs: 30000, interval: 200, what: 'all worker threads' });
        } catch (e) { notes.push(`${kind} ${n}: only ${groupMem(h).Threads} httpd threads after 30 s (wanted ${want + 1})`); }
        const tc = Date.now();
        const threads = kind === 'thread' ? await newThreads(h, n, 32) : [];
        res.createThreadsSec = (Date.now() - tc) / 1000;
        if (kind === 'thread') log(`  created ${n} threads in ${res.createThreadsSec.toFixed(1)} s`);
        model.reset();
        model.script(...Array(n).fill(benchTurn));
        scanLog(h); // skip the start-up lines
        await cosmos.reset();
        await delay(1000);
        res.idle = groupMem(h, true);
        const c0 = { httpd: groupCpuSec(h), cosmos: pidsCpuSec(cosmos.pids), node: process.cpuUsage(), machine: machineCpu() };
        const loop = monitorEventLoopDelay({ resolution: 10 });
        loop.enable();
        const t0 = now();
        const sts = [];
        // Open the N streams within ~2 s (at most 500 per second: 4 s for 2,000).
        const batches = 20;
        res.rampMs = Math.max(2000, n * 2);
        for (let b = 0; b < batches; b++) {
            const upto = Math.round(((b + 1) * n) / batches);
            while (sts.length < upto) sts.push(startStream(h, kind, CONC_TOKENS, CONC_DELAY, threads[sts.length]));
            await delay(Math.min(res.rampMs / batches, n / 10));
        }
        res.openedSec = ms(now() - t0) / 1000;
        // Sample until everything ended (bounded).
        const deadlineMs = (CONC_TOKENS * CONC_DELAY) + (kind === 'thread' ? 150000 : 90000);
        const deadline = Date.now() + deadlineMs;
        let ended = 0;
        sts.forEach((s) => s.ended.then(() => { ended++; }));
        const samples = [];
        let peak = null;
        // /proc is read in a worker thread: a sweep of ~2,600 threads' worth of
        // /proc takes tens of ms, which would otherwise stall this event loop
        // and show up as token latency.
        const sampler = startSampler(h.pid, 500);
        sampler.on('message', (m) => {
            const active = sts.filter((s) => s.tHeaders && !s.how).length;
            const streaming = sts.filter((s) => s.tokens.length > 0 && !s.how).length;
            const inflight = sts.length - ended;
            const sample = { t: ms(now() - t0) / 1000, inflight, active, streaming, ended, ...m };
            samples.push(sample);
            if (!peak || inflight > peak.inflight || (inflight === peak.inflight && m.VmRSS > peak.VmRSS)) peak = sample;
        });
        while (ended < n && Date.now() < deadline) await delay(100);
        await sampler.terminate();
        if (ended < n) {
            const stuck = sts.filter((s) => !s.how);
            notes.push(`${kind} ${n}: ${stuck.length} stream(s) still open ${Math.round(deadlineMs / 1000)} s after start; destroyed (tokens received by them: ${stuck.slice(0, 5).map((s) => s.tokens.length).join(', ')}${stuck.length > 5 ? ', …' : ''})`);
            stuck.forEach((s) => s.destroy());
        }
        res.allEndedSec = ms(now() - t0) / 1000;
        try {
            const cs = await cosmos.stats();
            res.cosmos = { requests: cs.total, connections: cs.connections, byOp: cs.byOp, unauthorized: cs.unauthorized };
        } catch (e) { res.cosmos = { error: e.message }; }
        loop.disable();
        await delay(1000);
        const nodeCpu = process.cpuUsage(c0.node);
        res.httpdSec = groupCpuSec(h) - c0.httpd;
        res.cosmosSec = pidsCpuSec(cosmos.pids) - c0.cosmos;
        res.nodeSec = (nodeCpu.user + nodeCpu.system) / 1e6;
        const m1 = machineCpu();
        res.otherCores = (m1.busy - c0.machine.busy - res.httpdSec - res.cosmosSec - res.nodeSec) / (res.allEndedSec + 1);
        res.stealCores = (m1.steal - c0.machine.steal) / (res.allEndedSec + 1);
        res.loopDelay = { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 };
        res.after = groupMem(h, true);
        res.peak = peak;
        res.maxRss = Math.max(...samples.map((s) => s.VmRSS));
        res.maxPss = Math.max(NaN, ...samples.filter((s) => Number.isFinite(s.Pss) && s.Pss > 0).map((s) => s.Pss));
        if (samples.every((s) => !(s.Pss > 0))) res.maxPss = NaN;
        else res.maxPss = Math.max(...samples.filter((s) => s.Pss > 0).map((s) => s.Pss));
        res.maxActive = Math.max(0, ...samples.map((s) => s.active));
        res.maxInflight = Math.max(0, ...samples.map((s) => s.inflight));
        res.maxStreaming = Math.max(0, ...samples.map((s) => s.streaming));
        res.samples = samples.map((s) => ({ t: +s.t.toFixed(1), inflight: s.inflight, active: s.active, streaming: s.streaming, ended: s.ended, rss: s.VmRSS, pss: s.Pss, threads: s.Threads, procs: s.procs }));
        res.tokensDelivered = 0;
        const per = [];
        const ttft = [];
        const meta = [];
        const firstTok = [];
        const errorSamples = [];
        for (const s of sts) {
            const o = outcome(s, s.expect);
            res.outcomes[o] = (res.outcomes[o] || 0) + 1;
            res.tokensDelivered += s.tokens.length;
            if (o !== 'ok') {
                if (errorSamples.length < 5) errorSamples.push(`${o}${s.errorEvent ? ` ${JSON.stringify(s.errorEvent)}` : ''}${s.error ? ` (${s.error})` : ''} after ${s.tokens.length} tokens`);
                continue;
            }
            if (s.metadata) meta.push(ms(s.metadata.t - s.t0));
            firstTok.push(ms(s.tokens[0] - s.t0));
            const l = latencies(s);
            if (l) { per.push(...l.per); ttft.push(l.ttftAdded); }
        }
        res.errorSamples = errorSamples;
        res.latency = summary(per);
        res.slowTokens = per.filter((v) => v >= 100).length;
        res.ttftAdded = summary(ttft);
        res.metadata = summary(meta);
        res.firstToken = summary(firstTok);
        res.usPerToken = res.tokensDelivered ? (res.httpdSec * 1e6) / res.tokensDelivered : NaN;
        res.log = scanLog(h);
        res.childrenAlive = children(h).length;
        log(`  ${JSON.stringify(res.outcomes)}; peak active ${res.maxActive}; VmRSS peak ${mb(res.maxRss)} MB (idle ${mb(res.idle.VmRSS)}); per-token p50/p99 ${f1(res.latency.p50)}/${f1(res.latency.p99)} ms; log ${JSON.stringify(res.log.counts)}`);
    } finally {
        saveLog(h);
        await h.stop();
    }
    return res;
}

// ---------------------------------------------------------------- report

function machine() {
    const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const mem = /MemTotal:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    const sh = (cmd, args) => { try { return execFileSync(cmd, args, { encoding: 'utf8' }).trim(); } catch (e) { return `(${e.message})`; } };
    let osName = '';
    try { osName = /PRETTY_NAME="([^"]+)"/.exec(fs.readFileSync('/etc/os-release', 'utf8'))[1]; } catch { /* */ }
    const apacheV = sh(process.env.APACHE_BIN || '/usr/sbin/apache2', ['-v']).split('\n')[0].replace('Server version: ', '');
    let cosmosV = '?';
    try { cosmosV = JSON.parse(fs.readFileSync(require.resolve('@vercel/cosmosdb-server/package.json', { paths: [path.join(REPO, 'tests')] }), 'utf8')).version; } catch { /* */ }
    return {
        nproc: os.cpus().length,
        cpu: (/model name\s*:\s*(.*)/.exec(cpuinfo) || [])[1] || '?',
        ramGiB: mem ? (Number(mem[1]) / 1048576).toFixed(1) : '?',
        kernel: `${os.type()} ${os.release()}`,
        os: osName,
        apache: apacheV,
        node: process.version,
        cosmosdbServer: cosmosV,
        nofile: nofile().soft,
        commit: sh('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']) + (sh('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no']) ? ' (+ uncommitted changes)' : ''),
        loadStart: raw.loadStart,
        loadEnd: os.loadavg().map((v) => v.toFixed(2)).join(' '),
    };
}

const epName = (c) => `${c.kind}${c.variant ? ` (${c.variant})` : ''}`;
function outcomesText(o) {
    return Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ') || '–';
}

function report(r) {
    const L = [];
    const m = r.machine;
    const p = (s = '') => L.push(s);
    p('# mod_agentchat streaming benchmark — results');
    p();
    p(`Recorded ${r.started} by \`bench/stream-bench.js\` (total run ${(r.durationSec / 60).toFixed(1)} min). ` +
      'Re-running `make bench` overwrites this file; see `bench/README.md` for what each figure means.');
    p();
    p('## Machine and software');
    p();
    p('| | |');
    p('|---|---|');
    p(`| CPUs (nproc) | ${m.nproc} × ${m.cpu} |`);
    p(`| RAM | ${m.ramGiB} GiB |`);
    p(`| Kernel / OS | ${m.kernel} / ${m.os} |`);
    p(`| httpd | ${m.apache}, event MPM (config written by tests/integration/lib/httpd.js) |`);
    p(`| Node.js | ${m.node} (client, fake model, Cosmos front and cosmosdb-server ${m.cosmosdbServer} all run on the same 2 cores) |`);
    p(`| Module | \`make\` build (apxs, -O2 -g), commit ${m.commit} |`);
    p(`| Open-file limit of the bench process | ${m.nofile} |`);
    p(`| Load average (1/5/15 min) at start → end | ${m.loadStart} → ${m.loadEnd} (shared machine: other jobs were running) |`);
    p();
    p('## Commands');
    p();
    p('```');
    p('make            # builds .libs/mod_agentchat.so');
    p('make bench      # = cd tests && node ../bench/stream-bench.js');
    if (r.env) p(`# environment for this run: ${r.env}`);
    p('```');
    p();
    p('Module configuration: the test Cosmos/model directives only, so the defaults apply — ' +
      '`AgentChatCancelCheckInterval` 1500 ms (a point read of the run document while streaming), ' +
      '`AgentChatHeartbeatInterval` 15 s, `AgentChatOnDisconnect` continue. `LogLevel warn agentchat:debug` (one info line per run).');
    p();
    p('httpd instances:');
    p();
    p(`* **single** (latency, CPU, thread rotation): \`${MPM_SINGLE.replace(/\n/g, ' · ')}\` — one child process, so the process serving the stream is known.`);
    p(`* **one-thread** (memory): \`${MPM_ONE.replace(/\n/g, ' · ')}\` — one child with one worker thread, so successive streams run on the same thread.`);
    p(`* **large** (concurrency; a fresh instance per level): \`${MPM_LARGE.replace(/\n/g, ' · ')}\` — ${CONC_PROCS * CONC_THREADS} worker threads; every stream holds one worker thread for its whole life.`);
    p();
    p('Scripted upstream: one content chunk = one "token" = ' + CHUNK + ' characters; the fake model stamps each chunk when it writes it to the socket, ' +
      'the client stamps each SSE event when the read completing it returns — same process, same monotonic clock.');
    p();

    // (a)
    p('## (a) Time from request to the metadata event');
    p();
    p(`${LAT_STREAMS} sequential streams per endpoint on the **single** instance (after one warm-up stream), ${LAT_TOKENS} tokens every ${LAT_DELAY} ms. Times in ms from the moment the client issued the request.`);
    p();
    p('| endpoint | milestone | n | p50 | p90 | p99 | max |');
    p('|---|---|---|---|---|---|---|');
    for (const lat of [r.latency.thread, r.latency.stateless]) {
        const ep = lat.kind === 'thread' ? 'POST /api/threads/{id}/messages' : 'POST /api/agent/stream';
        const rows = [['response headers', lat.headers], ...(lat.kind === 'thread' ? [['**metadata event**', lat.metadata]] : [['first byte (`: stream open`)', lat.firstByte]]),
            ['upstream request arrives at the model', lat.upstreamCall], ['first token emitted upstream', lat.firstEmit],
            ['first token arrives at the client', lat.firstToken]];
        for (const [what, v] of rows) {
            const s = summary(v);
            p(`| ${ep} | ${what} | ${s.n} | ${f1(s.p50)} | ${f1(s.p90)} | ${f1(s.p99)} | ${f1(s.max)} |`);
        }
    }
    p();
    const pr = r.cosmosProbe;
    p(`Cosmos work behind one streamed turn (a ${f1(pr.durationMs / 1000)} s stream of 40 tokens, front request log, in order): ` +
      `${pr.total} requests — ${pr.ops.join(' → ')}. ` +
      `${pr.atMetadata > 0 ? `${pr.atMetadata} of them had reached the front by the time the metadata event arrived. ` : ''}` +
      `A signed point read from node through the front to cosmosdb-server takes p50 ${f2(pr.rtt.p50)} ms / p90 ${f2(pr.rtt.p90)} ms here.`);
    p();

    // (b), (c)
    p('## (b) Module-added time to first token and (c) added latency per token');
    p();
    p('Added latency = client arrival of the token event − emission of the same chunk by the upstream. It contains the module\'s work, two loopback hops ' +
      '(model → httpd, httpd → client) and the scheduling delay of both node and httpd on this shared box.');
    p();
    p('| endpoint | load | tokens measured | (b) added TTFT p50 / p99 | (c) per token p50 | p90 | p99 | max | tokens ≥ 100 ms late |');
    p('|---|---|---|---|---|---|---|---|---|');
    for (const lat of [r.latency.thread, r.latency.stateless]) {
        const t = summary(lat.ttftAdded), s = summary(lat.perToken);
        p(`| ${lat.kind} | 1 stream at a time, ${LAT_DELAY} ms cadence | ${s.n} | ${f2(t.p50)} / ${f2(t.p99)} ms | ${f2(s.p50)} ms | ${f2(s.p90)} ms | ${f2(s.p99)} ms | ${f2(s.max)} ms | ${lat.perToken.filter((v) => v >= 100).length} |`);
    }
    for (const c of r.concurrency) {
        p(`| ${epName(c)} | ${c.n} concurrent, ${CONC_DELAY} ms cadence | ${c.latency.n} | ${f2(c.ttftAdded.p50)} / ${f2(c.ttftAdded.p99)} ms | ${f2(c.latency.p50)} ms | ${f2(c.latency.p90)} ms | ${f2(c.latency.p99)} ms | ${f2(c.latency.max)} ms | ${c.slowTokens} |`);
    }
    p();
    const sr = r.slowRead;
    if (sr && sr.latency) {
        p(`**One slow Cosmos read.** A thread stream of ${sr.tokens} tokens every 100 ms on the **single** instance; after its metadata event the Cosmos front delays the next document GET ` +
          `(the cancel-check read of the run document) by ${sr.delayMs} ms (${sr.faulted} request delayed). Added latency per token: p50 ${f2(sr.latency.p50)} ms, p99 ${f2(sr.latency.p99)} ms, ` +
          `max ${f1(sr.latency.max)} ms; ${sr.late} tokens arrived ≥ 100 ms late; longest gap between two token arrivals ${f1(sr.maxGap)} ms (the upstream sent one every 100 ms). Outcome: ${sr.outcome}.`);
        p();
    }

    // (d)
    p('## (d) Concurrent streams');
    p();
    p(`Each level: a fresh **large** instance (and, for the thread endpoint, a fresh empty Cosmos emulator); N streams of ${CONC_TOKENS} tokens every ${CONC_DELAY} ms (≈ ${CONC_TOKENS * CONC_DELAY / 1000} s each) opened evenly over max(2 s, N / 500 s); ` +
      '"ok" = HTTP 200, every token in order with the exact text, `done`, clean end. ' +
      'RSS = sum of VmRSS over the httpd process group (parent + children; shared pages counted once per process); PSS = sum of Pss (shared pages split), the better total. ' +
      'Peak = the sample with the most streams in flight (request sent, response not ended); "with headers" = response started (for the thread endpoint that is the metadata event, after the Cosmos writes); "receiving tokens" = at least one token arrived. ' +
      'Threads for the thread endpoint are created before the level (not timed).');
    p();
    p('| endpoint | N | outcome | peak in flight / with headers / receiving tokens | all ended after | RSS idle → peak → after (MB) | RSS at peak / N | ΔPSS (peak − idle) / N | httpd CPU / token | node loop delay p99 | error.log |');
    p('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of r.concurrency) {
        const rssPer = c.peak ? c.peak.VmRSS / c.n : NaN;
        const pssPer = Number.isFinite(c.maxPss) ? (c.maxPss - c.idle.Pss) / c.n : NaN;
        const logc = Object.entries(c.log.counts).map(([k, v]) => `${k}: ${v}`).join(', ') || 'clean';
        p(`| ${epName(c)} | ${c.n} | ${outcomesText(c.outcomes)} | ${c.maxInflight} / ${c.maxActive} / ${c.maxStreaming} | ${f1(c.allEndedSec)} s | ${mb(c.idle.VmRSS)} → ${mb(c.maxRss)} → ${mb(c.after.VmRSS)} | ${kb(rssPer)} kB | ${kb(pssPer)} kB | ${f1(c.usPerToken)} µs | ${f1(c.loopDelay.p99)} ms | ${logc} |`);
    }
    p();
    const problems = r.concurrency.filter((c) => c.errorSamples.length || c.log.samples.length);
    for (const c of problems) {
        if (c.errorSamples.length) p(`* ${epName(c)} ${c.n}: failed streams, e.g. ${c.errorSamples.map((s) => `\`${s}\``).join('; ')}`);
        if (c.log.samples.length) p(`* ${epName(c)} ${c.n}: error.log, e.g. ${c.log.samples.slice(0, 3).map((s) => `\`${s.replace(/`/g, "'")}\``).join('; ')}`);
    }
    if (problems.length) p();
    p('Time to metadata / first token under load (ms from request, ok streams):');
    p();
    p('| endpoint | N | metadata p50 / p99 | first token p50 / p99 | Cosmos requests (connections used) | httpd CPU (s) | Cosmos front+server CPU (s) | node CPU (s) | other load on the box (cores) |');
    p('|---|---|---|---|---|---|---|---|---|');
    for (const c of r.concurrency) {
        p(`| ${epName(c)} | ${c.n} | ${c.kind === 'thread' ? `${f1(c.metadata.p50)} / ${f1(c.metadata.p99)}` : '–'} | ${f1(c.firstToken.p50)} / ${f1(c.firstToken.p99)} | ${c.cosmos && c.cosmos.requests !== undefined ? `${c.cosmos.requests} (${c.cosmos.connections})` : '–'} | ${f2(c.httpdSec)} | ${f2(c.cosmosSec)} | ${f2(c.nodeSec)} | ${f2(c.otherCores)} |`);
    }
    p();
    p('"Other load" = busy CPU of the whole machine (/proc/stat) minus httpd, the Cosmos processes and the bench process, per second of the level: other jobs on this shared machine.');
    p();

    // (e)
    p('## (e) CPU time per streamed token');
    p();
    p('utime+stime of the httpd process group (from /proc/PID/stat, 10 ms ticks) over a batch, divided by the tokens delivered; ' +
      'the same window\'s CPU of the Cosmos front + cosmosdb-server and of the node process (fake model + client) for scale. ' +
      'Per-turn fixed work (request parsing, Cosmos calls, the upstream connection) is amortised over the tokens of the batch.');
    p();
    p('| endpoint | batch | wall | httpd CPU | **per token** | Cosmos CPU | node CPU | other load (cores) | outcome |');
    p('|---|---|---|---|---|---|---|---|---|');
    for (const c of r.cpu) {
        p(`| ${c.kind} | ${c.streams} concurrent × ${c.tokensEach} tokens, ${c.delayMs} ms cadence (${c.tokens} tokens) | ${f1(c.wallSec)} s | ${f2(c.httpdSec)} s | **${f1(c.usPerToken)} µs** | ${f2(c.cosmosSec)} s | ${f2(c.nodeSec)} s | ${f2(c.otherCores)} | ${outcomesText(c.outcomes)} |`);
    }
    for (const c of r.concurrency) {
        p(`| ${epName(c)} | (d) level ${c.n} × ${CONC_TOKENS} tokens, ${CONC_DELAY} ms cadence (${c.tokensDelivered} tokens) | ${f1(c.allEndedSec)} s | ${f2(c.httpdSec)} s | ${f1(c.usPerToken)} µs | ${f2(c.cosmosSec)} s | ${f2(c.nodeSec)} s | ${f2(c.otherCores)} | ${outcomesText(c.outcomes)} |`);
    }
    p();

    // memory
    p(`## Memory on long streams (${LONG_TOKENS.toLocaleString('en-US')} tokens)`);
    p();
    p('VmRSS / RssAnon of the child serving the stream, from /proc/PID/status 0.3 s before the stream and 0.5 s after it ended; peak sampled every 100 ms. ' +
      `A ${LONG_TOKENS.toLocaleString('en-US')}-token answer is ${(LONG_TOKENS * CHUNK / 1024).toFixed(0)} KiB of text, which the thread endpoint holds until it stores it.`);
    p();
    p('**One worker thread** (the **one-thread** instance; every stream on the same, warmed-up thread):');
    p();
    p('| stream | outcome | tokens | duration | VmRSS before → after (kB) | Δ VmRSS | Δ RssAnon | peak during |');
    p('|---|---|---|---|---|---|---|---|');
    const memRow = (x) => p(`| ${x.label} | ${x.outcome} | ${x.received} | ${f1(x.seconds)} s | ${kb(x.before.VmRSS)} → ${kb(x.after.VmRSS)} | ${x.delta >= 0 ? '+' : ''}${kb(x.delta)} kB | ${x.anonDelta >= 0 ? '+' : ''}${kb(x.anonDelta)} kB | ${kb(x.peak)} kB |`);
    r.memory.forEach(memRow);
    p();
    const rot = r.rotation;
    const workers = rot.map((x) => x.worker);
    const fresh = workers.map((w, i) => (w !== null && workers.indexOf(w) === i ? 1 : 0));
    const total = rot.reduce((a, x) => a + x.delta, 0);
    p(`**64 worker threads** (the **single** instance, after the latency runs): ${rot.length} back-to-back thread streams; the worker thread that ran each (from the run's error.log line) — ` +
      `${fresh.reduce((a, b) => a + b, 0)} of the ${rot.length} streams ran on a thread that had not served one of these long streams before. Total growth ${kb(total)} kB.`);
    p();
    p('| stream | outcome | worker tid (new?) | VmRSS before → after (kB) | Δ VmRSS | Δ RssAnon |');
    p('|---|---|---|---|---|---|');
    rot.forEach((x, i) => p(`| ${x.label} | ${x.outcome} | ${x.worker ?? '?'}${fresh[i] ? ' (new)' : ''} | ${kb(x.before.VmRSS)} → ${kb(x.after.VmRSS)} | ${x.delta >= 0 ? '+' : ''}${kb(x.delta)} kB | ${x.anonDelta >= 0 ? '+' : ''}${kb(x.anonDelta)} kB |`));
    p();
    if (r.notes.length) {
        p('## Problems and observations recorded by the run');
        p();
        for (const n of r.notes) p(`* ${n}`);
        p();
    }
    return L.join('\n');
}

// ---------------------------------------------------------------- main

async function main() {
    if (!fs.existsSync(MODULE_SO)) throw new Error(`${MODULE_SO} is missing: run make first`);
    raw.loadStart = os.loadavg().map((v) => v.toFixed(2)).join(' ');
    raw.env = ['BENCH_LEVELS', 'BENCH_THREAD_LEVELS', 'BENCH_AB_LEVEL', 'BENCH_LATENCY_STREAMS', 'BENCH_LONG_TOKENS', 'BENCH_QUICK']
        .filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`).join(' ');
    fs.mkdirSync(RAW_DIR, { recursive: true });
    for (const f of fs.readdirSync(RAW_DIR)) if (f.endsWith('-error.log')) fs.rmSync(path.join(RAW_DIR, f)); // last run's
    root = tmpDir('agentchat-bench-');
    log(`starting Cosmos (cosmosdb-server + front), fake model; work dir ${root}`);
    cosmos = await startCosmos({ dir: root });
    model = await startFakeModel({ apiKey: MODEL_KEY, deployment: DEPLOYMENT });

    const single = await httpd('single', MPM_SINGLE);
    try {
        await pollUntil(() => children(single).length === 1, { timeoutMs: 10000, what: 'the single httpd child' });
        raw.latency = { thread: await latencyPhase(single, 'thread'), stateless: await latencyPhase(single, 'stateless') };
        for (const l of Object.values(raw.latency)) {
            const s = summary(l.perToken);
            log(`  ${l.kind}: ${JSON.stringify(l.outcomes)} metadata p50 ${f1(quant(l.metadata, 0.5))} ms, added TTFT p50 ${f2(quant(l.ttftAdded, 0.5))} ms, per token p50/p99 ${f2(s.p50)}/${f2(s.p99)} ms`);
        }
        raw.cosmosProbe = await cosmosProbe(single);
        log(`  cosmos probe: ${raw.cosmosProbe.total} requests per turn: ${raw.cosmosProbe.ops.join(', ')}`);
        raw.slowRead = await slowReadProbe(single);
        log(`  slow read probe: ${JSON.stringify(raw.slowRead)}`);
        raw.rotation = await rotationPhase(single);
        raw.cpu = [await cpuPhase(single, 'thread'), await cpuPhase(single, 'stateless')];
        const sl = scanLog(single);
        if (Object.keys(sl.counts).length) notes.push(`single instance error.log: ${JSON.stringify(sl.counts)}; e.g. ${sl.samples.slice(0, 3).join(' | ')}`);
        if (children(single).length !== 1) notes.push(`single instance: ${children(single).length} children at the end (a child was replaced?)`);
    } finally {
        saveLog(single);
        await single.stop();
    }

    raw.memory = await memoryPhase();

    raw.concurrency = [];
    // A level that throws (a bench bug, a start-up failure) is recorded, not fatal.
    const level = async (kind, n, variant) => {
        try {
            raw.concurrency.push(await concurrencyLevel(kind, n, variant));
        } catch (e) {
            notes.push(`${kind} ${n}${variant ? ` (${variant.label})` : ''}: the level failed: ${e.message.split('\n')[0]}`);
            log(`  level failed: ${e.stack}`);
        }
    };
    for (const n of LEVELS) await level('stateless', n);
    for (const n of THREAD_LEVELS) await level('thread', n);
    // A/B: the same thread-endpoint load with the cancel-check read pushed
    // beyond the stream's life (60 s), to isolate what that read costs.
    if (AB_LEVEL > 0) {
        await level('thread', AB_LEVEL, { label: 'cancel check 60 s', directives: 'AgentChatCancelCheckInterval 60000' });
    }

    raw.notes = notes;
    raw.durationSec = (Date.now() - T_START) / 1000;
    raw.machine = machine();
    const md = report(raw);
    fs.mkdirSync(RAW_DIR, { recursive: true });
    fs.writeFileSync(path.join(RAW_DIR, 'raw.json'), JSON.stringify(raw, (k, v) => (typeof v === 'bigint' ? Number(v) : v), 1));
    if (OUT === '-') process.stdout.write(md + '\n');
    else {
        // Keep a hand-written section (from the "<!-- notes -->" marker on) across runs.
        let keep = '';
        try {
            const old = fs.readFileSync(OUT, 'utf8');
            const i = old.indexOf('<!-- notes -->');
            if (i >= 0) keep = `\n${old.slice(i)}`;
        } catch { /* first run */ }
        fs.writeFileSync(OUT, md + keep + (keep.endsWith('\n') ? '' : '\n'));
        log(`wrote ${OUT} and ${path.join(RAW_DIR, 'raw.json')}`);
    }
}

main().then(async () => {
    await stopAll();
}, async (e) => {
    process.stderr.write(`bench failed: ${e.stack || e}\n`);
    process.exitCode = 1;
    try { await stopAll(); } catch (e2) { process.stderr.write(`stopAll: ${e2.message}\n`); }
});
