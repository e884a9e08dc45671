// fake-model.js: a scripted OpenAI-compatible / Azure OpenAI chat-completions
// upstream (node built-ins only, no npm dependencies) for the integration tests and for
// `make run`'s local development model.
//
//   const m = await startFakeModel({ apiKey: 'k' });
//   m.script({ text: 'Hello' }, { toolCalls: [{ name: 'calculate', arguments: { expression: '1+1' } }] });
//   ... the module under test POSTs to m.url + '/v1/chat/completions' ...
//   m.requests[0].body.messages; m.requests[0].emitted; await m.stop();
//
// Routes: POST /openai/deployments/{d}/chat/completions?api-version=… (Azure
// flavour, `api-key` header) and POST /v1/chat/completions or /chat/completions
// (OpenAI flavour, `Authorization: Bearer`).  Every request is recorded; each
// consumes one scripted turn (or the built-in development model when the queue
// is empty) and is answered as a text/event-stream in the real wire shapes.
// The option names and turn shapes are documented at startFakeModel below.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { track } = require('./proc');

const AZURE_ROUTE = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/;
const OPENAI_ROUTES = new Set(['/v1/chat/completions', '/chat/completions']);
const MAX_BODY = 8 * 1024 * 1024; // request bodies above this get 413
const MAX_WAIT_MS = 10 * 60 * 1000; // upper bound for any scripted delay/stall

// ---------------------------------------------------------------- wire shapes

const SAFE = { filtered: false, severity: 'safe' };
const safeFilter = () => ({ hate: SAFE, self_harm: SAFE, sexual: SAFE, violence: SAFE });
const blockedFilter = () => ({ ...safeFilter(), violence: { filtered: true, severity: 'medium' } });

// Azure's error body is {error:{code,message}}; OpenAI's {error:{message,type,param,code}}.
function errorBody(flavor, status, { message, code, type } = {}) {
    const msg = message || {
        400: 'Invalid request.', 401: 'Access denied due to invalid subscription key or wrong API endpoint.',
        404: 'Resource not found', 405: 'Method not allowed', 413: 'Request body too large',
        429: 'Rate limit reached. Please retry after the time given in the retry-after header.',
        500: 'The server had an error while processing your request. Sorry about that!',
        503: 'The service is temporarily unable to process your request.',
    }[status] || `HTTP ${status}`;
    if (flavor === 'azure') return { error: { code: code || String(status), message: msg } };
    const t = type || (status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error');
    return { error: { message: msg, type: t, param: null, code: code || null } };
}

// Text of a message's content (string, or an array of {type:'text', text} parts).
function textOf(content) {
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) return content.map((p) => (p && typeof p.text === 'string' ? p.text : '')).join('');
    return '';
}

// Deterministic prompt size: total characters of the messages / 4, rounded (min 1).
function promptTokens(body) {
    let chars = 0;
    for (const m of Array.isArray(body.messages) ? body.messages : []) {
        chars += textOf(m && m.content).length;
        for (const c of (m && Array.isArray(m.tool_calls)) ? m.tool_calls : []) chars += String(c?.function?.arguments ?? '').length;
    }
    return Math.max(1, Math.round(chars / 4));
}

// Split s into pieces of n code points (never splits a surrogate pair).
function pieces(s, n) {
    const cps = Array.from(s);
    const out = [];
    for (let i = 0; i < cps.length; i += n) out.push(cps.slice(i, i + n).join(''));
    return out;
}

// The ordered list of `data:` chunk objects for a streamed turn:
// [{kind, obj, content}], kind one of prompt_filter|role|content|tool_call|finish|usage.
function buildChunks(turn, ctx) {
    const azure = ctx.flavor === 'azure';
    const out = [];
    const head = () => ({
        id: ctx.id, object: 'chat.completion.chunk', created: ctx.created, model: ctx.model,
        system_fingerprint: 'fp_fakemodel', ...(ctx.includeUsage && !azure ? { usage: null } : {}),
    });
    const add = (kind, delta, { finish = null, filter, content = null } = {}) => {
        const choice = { index: 0, delta, logprobs: null, finish_reason: finish };
        if (azure) choice.content_filter_results = filter || {};
        out.push({ kind, content, obj: { ...head(), choices: [choice] } });
    };

    if (azure) {
        out.push({ kind: 'prompt_filter', content: null, obj: {
            choices: [], created: 0, id: '', model: '', object: '',
            prompt_filter_results: [{ prompt_index: 0, content_filter_results: {
                ...safeFilter(), jailbreak: { filtered: false, detected: false } } }],
        } });
    }

    const text = typeof turn.text === 'string' ? turn.text : '';
    const calls = (Array.isArray(turn.toolCalls) ? turn.toolCalls : []).map((c, i) => ({
        index: i,
        id: c.id || `call_${ctx.seq}_${i}_fake`,
        name: c.name,
        args: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments ?? {}),
    }));

    // Tool-call deltas: per call a header (id, type, name, empty arguments),
    // then argument fragments carrying only index + arguments.
    const perCall = calls.map((c) => [
        { tool_calls: [{ index: c.index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] },
        ...pieces(c.args, Math.max(1, turn.fragmentSize || 3))
            .map((a) => ({ tool_calls: [{ index: c.index, function: { arguments: a } }] })),
    ]);
    const toolDeltas = [];
    if (turn.interleave) { // round-robin: header0, header1, frag0, frag1, frag0, …
        for (let k = 0, more = true; more; k++) {
            more = false;
            for (const list of perCall) if (k < list.length) { toolDeltas.push(list[k]); more = true; }
        }
    } else {
        for (const list of perCall) toolDeltas.push(...list);
    }

    // First delta carries the role; a tool-only turn puts it on the first tool header, as OpenAI does.
    if (!text && toolDeltas.length) toolDeltas[0] = { role: 'assistant', content: null, ...toolDeltas[0] };
    else add('role', { role: 'assistant', content: '', refusal: null });

    const size = Math.max(1, turn.chunkSize || ctx.chunkSize || 4);
    for (const p of pieces(text, size)) add('content', { content: p }, { filter: safeFilter(), content: p });
    for (const d of toolDeltas) add('tool_call', d);

    const finish = turn.finish || (calls.length ? 'tool_calls' : 'stop');
    add('finish', {}, { finish, filter: finish === 'content_filter' ? blockedFilter() : {} });

    if (ctx.includeUsage) {
        const u = turn.usage || {};
        const prompt = u.prompt_tokens ?? promptTokens(ctx.body);
        const completion = u.completion_tokens ?? out.filter((c) => c.kind === 'content' || c.kind === 'tool_call').length;
        const { usage, ...rest } = head(); // the usage chunk replaces OpenAI's `usage: null`
        out.push({ kind: 'usage', content: null, obj: { ...rest, choices: [], usage: {
            prompt_tokens: prompt, completion_tokens: completion,
            total_tokens: u.total_tokens ?? prompt + completion,
            prompt_tokens_details: { cached_tokens: 0 },
            completion_tokens_details: { reasoning_tokens: 0 },
        } } });
    }
    return out;
}

// ---------------------------------------------------------- development model

const STOP_WORDS = new Set(['today', 'tomorrow', 'tonight', 'now', 'right', 'and', 'or', 'please',
    'this', 'next', 'on', 'like', 'in', 'at', 'for', 'with', 'currently']);

// Place named after "in/at/for" ("weather in New York today?" → "New York"), else 'Paris'.
function findLocation(s) {
    for (const m of s.matchAll(/\b(?:in|at|for)\s+(?=([^?!.,;:]+))/giu)) {
        const words = m[1].trim().split(/\s+/);
        if (/^the$/i.test(words[0])) words.shift();
        const place = [];
        for (const w of words) {
            if (STOP_WORDS.has(w.toLowerCase()) || place.length === 4) break;
            place.push(w);
        }
        if (place.length) return place.join(' ');
    }
    return 'Paris';
}

const FUNCS = '(?:sqrt|sin|cos|tan|log|ln|abs|exp|round|floor|ceil|pi)\\b';
const EXPR = new RegExp(`(?:(?:${FUNCS})\\s*|[-−(])*\\d(?:[\\d.\\s()+\\-−*/%^×÷]|${FUNCS})*`, 'gi');

// First arithmetic expression in s ("2 + 3", "(1.5*4)^2 - 1", "sqrt(16)"), or null.
function findExpression(s) {
    for (const m of s.matchAll(EXPR)) {
        const e = m[0].trim().replace(/[\s+\-−*/%^×÷(]+$/, '');
        if (/^\d{4}-\d\d-\d\d$/.test(e)) continue; // a date, not a sum
        if (/[\d)]\s*[+\-−*/%^×÷]\s*[-−(a-z]*[\d.]/i.test(e) || new RegExp(`(?:${FUNCS})\\s*\\(`, 'i').test(e)) return e;
    }
    return null;
}

// The default turn: a deterministic, clearly labelled stand-in for a model.
function devTurn(body) {
    const msgs = Array.isArray(body.messages) ? body.messages : [];
    const offered = new Set((Array.isArray(body.tools) ? body.tools : []).map((t) => t?.function?.name).filter(Boolean));
    let last = -1;
    msgs.forEach((m, i) => { if (m && m.role === 'user') last = i; });
    const said = last >= 0 ? textOf(msgs[last].content).trim() : '';

    const results = msgs.slice(last + 1).filter((m) => m && m.role === 'tool');
    if (results.length) {
        const names = new Map();
        for (const m of msgs) for (const c of (m && Array.isArray(m.tool_calls)) ? m.tool_calls : []) names.set(c.id, c?.function?.name);
        const lines = results.map((r) => {
            const out = textOf(r.content);
            return `- ${names.get(r.tool_call_id) || 'tool'}: ${out.length > 400 ? out.slice(0, 400) + '…' : out}`;
        });
        return { text: `[dev model] Here is what the tools returned:\n${lines.join('\n')}` };
    }

    const calls = [];
    if (offered.has('get_weather') && /\b(weather|temperature|forecast)\b/i.test(said)) {
        calls.push({ name: 'get_weather', arguments: { location: findLocation(said) } });
    }
    const expr = findExpression(said);
    if (expr && offered.has('calculate')) calls.push({ name: 'calculate', arguments: { expression: expr } });
    if (!calls.length && offered.has('search_knowledge_base') && /\b(search|knowledge base|look up)\b/i.test(said)) {
        calls.push({ name: 'search_knowledge_base', arguments: { query: said, max_results: 3 } });
    }
    if (calls.length) return { toolCalls: calls };
    return { text: said ? `[dev model] You said: ${said}`
        : '[dev model] Hello! I am the local development model; I echo what you say.' };
}

// ---------------------------------------------------------------- the server

// One-line summary of a turn for the CLI's request log.
function describe(turn) {
    const what = turn.status ? `status ${turn.status}`
        : Array.isArray(turn.toolCalls) ? `tool calls ${turn.toolCalls.map((c) => c.name).join(', ')}` : 'text';
    return turn.dev ? `${what} (dev model)` : what;
}

/**
 * startFakeModel(opts) → Promise<{url, port, requests, script, reset, pending, waitForRequests, stop}>
 *
 * opts: port (0 = ephemeral), apiKey (when set: Azure needs `api-key: <apiKey>`,
 *   OpenAI needs `Authorization: Bearer <apiKey>`, else 401), entraToken (Azure
 *   also accepts `Authorization: Bearer <entraToken>`), deployment (when set,
 *   other Azure deployments get 404), flavor ('auto' = by route | 'azure' |
 *   'openai'), model (default 'gpt-4o-mini'), chunkSize (4), delayMs (0),
 *   crlf (false), keepAlive (false: interleave `: keep-alive` comments),
 *   log (fn(line) called once per answered request), keepAliveTimeoutMs (server's
 *   idle keep-alive; Node's default 5 s).  Auth follows the route; `flavor`
 *   only changes the response shapes.
 * Turn (any of these may also be set per turn: chunkSize, delayMs, crlf, keepAlive, headers):
 *   {text, chunkSize?, delayMs?, finish?: 'stop'|'length'|'content_filter'}
 *   {toolCalls: [{name, arguments: object|string, id?}], fragmentSize? (3), interleave?, text?}
 *   {status: 429|500|503|…, retryAfterMs?, retryAfter?, message?, code?}
 *   stream faults: cutAfterChunks: n · garbage: true|string, garbageAfterChunks (2) ·
 *     stallMs, stallAfterChunks (0) · errorEvent: {message, code}, errorAfterChunks (2)
 *   usage: {prompt_tokens?, completion_tokens?, total_tokens?} override
 *   or a function(record) returning a turn (null → development model).
 * "after n chunks" counts `data:` events written (the Azure prompt-filter chunk included).
 */
async function startFakeModel(opts = {}) {
    const requests = [];
    const queue = [];
    const waiters = new Set();
    let seq = 0;

    const pick = (turn, k, dflt) => (turn[k] !== undefined ? turn[k] : opts[k] !== undefined ? opts[k] : dflt);

    function notify() {
        for (const w of waiters) if (requests.length >= w.n) w.resolve(requests);
    }

    // Resolves once at least n requests have arrived (bounded by timeoutMs).
    function waitForRequests(n, timeoutMs = 10000) {
        if (requests.length >= n) return Promise.resolve(requests);
        return new Promise((resolve, reject) => {
            const w = { n };
            const timer = setTimeout(() => { waiters.delete(w); reject(new Error(`fake model: ${requests.length}/${n} requests after ${timeoutMs} ms`)); }, timeoutMs);
            w.resolve = (v) => { clearTimeout(timer); waiters.delete(w); resolve(v); };
            w.reject = (e) => { clearTimeout(timer); waiters.delete(w); reject(e); };
            waiters.add(w);
        });
    }

    function readBody(req) {
        return new Promise((resolve) => {
            const parts = [];
            let size = 0;
            req.on('data', (d) => { size += d.length; if (size <= MAX_BODY) parts.push(d); });
            req.on('end', () => resolve({ raw: Buffer.concat(parts).toString('utf8'), tooLarge: size > MAX_BODY }));
            req.on('error', () => resolve({ raw: '', tooLarge: false }));
        });
    }

    function authorized(kind, h) {
        if (!opts.apiKey && !opts.entraToken) return true;
        const bearer = (t) => !!t && h.authorization === `Bearer ${t}`;
        if (kind === 'azure') return (!!opts.apiKey && h['api-key'] === opts.apiKey) || bearer(opts.entraToken);
        return bearer(opts.apiKey);
    }

    function replyJson(rec, res, status, obj, headers = {}) {
        rec.status = status;
        rec.outcome = 'status';
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(obj));
    }

    async function handle(req, res) {
        const url = new URL(req.url, 'http://127.0.0.1');
        const azureMatch = AZURE_ROUTE.exec(url.pathname);
        const kind = azureMatch ? 'azure' : OPENAI_ROUTES.has(url.pathname) ? 'openai' : null;
        const flavor = opts.flavor && opts.flavor !== 'auto' ? opts.flavor : kind || 'openai';
        const t = process.hrtime.bigint();
        const { raw, tooLarge } = await readBody(req);

        let body = null;
        try { body = JSON.parse(raw); } catch { /* reported below */ }
        let closeResolve;
        const rec = {
            index: requests.length, method: req.method, path: url.pathname,
            query: Object.fromEntries(url.searchParams), headers: req.headers, rawBody: raw, body,
            t, flavor, deployment: azureMatch ? decodeURIComponent(azureMatch[1]) : null,
            turn: null, status: null, outcome: null, emitted: [], closedAt: null,
            finished: new Promise((r) => { closeResolve = r; }),
        };
        requests.push(rec);
        res.on('close', () => {
            rec.closedAt = process.hrtime.bigint();
            if (!rec.outcome) rec.outcome = res.writableFinished ? 'completed' : 'client_closed';
            closeResolve(rec.outcome);
        });
        notify();

        const fail = (status, why) => replyJson(rec, res, status, errorBody(flavor, status, why ? { message: why } : {}));
        if (!kind) return fail(404);
        if (req.method !== 'POST') return replyJson(rec, res, 405, errorBody(flavor, 405), { allow: 'POST' });
        if (!authorized(kind, req.headers)) return fail(401);
        if (kind === 'azure' && !url.searchParams.get('api-version')) return fail(404);
        if (kind === 'azure' && opts.deployment && rec.deployment !== opts.deployment) {
            return replyJson(rec, res, 404, errorBody(flavor, 404, { code: 'DeploymentNotFound',
                message: 'The API deployment for this resource does not exist.' }));
        }
        if (tooLarge) return fail(413);
        if (!body || typeof body !== 'object' || !Array.isArray(body.messages)) return fail(400, 'Invalid JSON body or missing messages.');

        let turn = queue.length ? queue.shift() : null;
        if (typeof turn === 'function') turn = turn(rec);
        if (!turn) turn = { ...devTurn(body), dev: true };
        rec.turn = turn;
        if (opts.log) opts.log(`${req.method} ${url.pathname} -> ${describe(turn)}`);

        if (turn.status) {
            const headers = { ...(turn.headers || {}) };
            if (turn.retryAfterMs !== undefined) headers['retry-after-ms'] = String(turn.retryAfterMs);
            if (turn.retryAfter !== undefined) headers['retry-after'] = String(turn.retryAfter);
            return replyJson(rec, res, turn.status, errorBody(flavor, turn.status, turn), headers);
        }
        return stream(rec, res, turn, flavor, body);
    }

    // Write the turn as SSE, one res.write per event, recording emission times.
    async function stream(rec, res, turn, flavor, body) {
        const eol = pick(turn, 'crlf', false) ? '\r\n' : '\n';
        const keepAlive = pick(turn, 'keepAlive', false);
        const delayMs = Math.min(MAX_WAIT_MS, pick(turn, 'delayMs', 0));
        const live = () => !res.destroyed && !res.writableEnded;
        const closed = new Promise((resolve) => res.once('close', resolve));
        let flushed = Promise.resolve(); // settles once the last write reached the kernel
        const write = (kind, raw, content = null) => {
            if (!live()) return;
            flushed = new Promise((resolve) => res.write(raw, resolve));
            rec.emitted.push({ t: process.hrtime.bigint(), kind, content, raw });
        };
        // Wait ms, or less if the connection closes first.
        const wait = (ms) => new Promise((resolve) => {
            if (!live() || ms <= 0) return resolve();
            const timer = setTimeout(done, Math.min(ms, MAX_WAIT_MS));
            function done() { clearTimeout(timer); res.off('close', done); resolve(); }
            res.on('close', done);
        });

        const includeUsage = !!(body.stream_options && body.stream_options.include_usage === true);
        const chunks = buildChunks(turn, {
            flavor, includeUsage, body, seq: ++seq, id: `chatcmpl-fake${seq}`,
            created: Math.floor(Date.now() / 1000), model: opts.model || 'gpt-4o-mini',
            chunkSize: pick(turn, 'chunkSize', 4),
        });
        const at = (k, dflt) => (turn[k] === undefined ? dflt : Math.max(0, Math.min(turn[k], chunks.length)));
        const stallAt = turn.stallMs ? at('stallAfterChunks', 0) : -1;
        const garbageAt = turn.garbage ? at('garbageAfterChunks', 2) : -1;
        const errorAt = turn.errorEvent ? at('errorAfterChunks', 2) : -1;
        const cutAt = turn.cutAfterChunks !== undefined ? at('cutAfterChunks', 0) : -1;

        rec.status = 200;
        if (res.socket) res.socket.setNoDelay(true);
        res.writeHead(200, {
            'content-type': 'text/event-stream; charset=utf-8',
            'cache-control': 'no-cache, must-revalidate',
            'x-request-id': `req_fake_${rec.index}`,
            ...(flavor === 'azure' ? { 'apim-request-id': crypto.randomUUID(), 'x-ms-region': 'Local' } : { 'openai-processing-ms': '1' }),
            ...(turn.headers || {}),
        });
        res.flushHeaders();

        // Position i = "i data events written so far"; faults fire at their position.
        for (let i = 0; i <= chunks.length && live(); i++) {
            if (i === stallAt) await wait(turn.stallMs);
            if (i === garbageAt) write('garbage', `data: ${typeof turn.garbage === 'string' ? turn.garbage : '{"choices": [ this is not json'}${eol}${eol}`);
            if (i === errorAt) {
                write('error', `data: ${JSON.stringify({ error: { message: 'fake model error', type: 'server_error', param: null, code: null, ...turn.errorEvent } })}${eol}${eol}`);
                rec.outcome = 'error_event';
                return res.end();
            }
            if (i === cutAt) { // let what was written leave first, then drop the connection
                await Promise.race([flushed, closed]);
                rec.outcome = 'cut';
                return res.socket && res.socket.destroy();
            }
            if (i === chunks.length || !live()) break;
            if (delayMs && chunks[i].kind !== 'prompt_filter' && i > 0) await wait(delayMs);
            if (keepAlive) write('comment', `: keep-alive${eol}${eol}`);
            write(chunks[i].kind, `data: ${JSON.stringify(chunks[i].obj)}${eol}${eol}`, chunks[i].content);
        }
        write('done', `data: [DONE]${eol}${eol}`);
        if (live()) res.end();
    }

    const server = http.createServer((req, res) => {
        handle(req, res).catch((e) => {
            if (!res.headersSent) { res.writeHead(500, { 'content-type': 'application/json' }); res.end(JSON.stringify({ error: { message: `fake model bug: ${e.message}` } })); }
            else res.destroy();
        });
    });
    if (opts.keepAliveTimeoutMs) server.keepAliveTimeout = opts.keepAliveTimeoutMs;

    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port || 0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
    const { port } = server.address();

    let stopped = false;
    const stop = track(async () => {
        if (stopped) return;
        stopped = true;
        for (const w of waiters) w.reject(new Error('fake model stopped'));
        const closed = new Promise((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
    });

    return {
        url: `http://127.0.0.1:${port}`,
        port,
        requests,
        // Queue one or more turns; each incoming chat request consumes one.
        script: (...turns) => { queue.push(...turns); },
        // Drop queued turns and recorded requests (the same `requests` array is kept).
        reset: () => { queue.length = 0; requests.length = 0; },
        pending: () => queue.length,
        waitForRequests,
        stop,
    };
}

module.exports = { startFakeModel, devTurn, findExpression, findLocation };
