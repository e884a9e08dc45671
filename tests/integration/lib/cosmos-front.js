// cosmos-front.js: child-process entry point for the HTTPS "front" that stands
// where the Cosmos DB gateway would.  It checks every request's master-key
// signature and x-ms-date the way Cosmos does (401 otherwise), counts and logs
// requests, can inject faults (429/449/503/… or a dropped connection, optionally
// after a delay), and proxies everything else to @vercel/cosmosdb-server.
// Admin endpoints (no signature): GET /__front/stats, POST /__front/reset,
// POST /__front/fault (JSON rule), DELETE /__front/fault.
// Usage: node cosmos-front.js '{"cert","key","ca","backendPort","masterKey"}'
// Prints "LISTENING <port>"; exits when its stdin closes.
'use strict';

const fs = require('node:fs');
const https = require('node:https');
const crypto = require('node:crypto');

const cfg = JSON.parse(process.argv[2]);
const KEY = Buffer.from(cfg.masterKey, 'base64');
const MAX_SKEW_MS = 15 * 60 * 1000;
const LOG_MAX = 2000;     // request log entries kept
const BODY_MAX = 16384;   // request body bytes kept per log entry
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer',
    'transfer-encoding', 'upgrade']);

const backendAgent = new https.Agent({ keepAlive: true, ca: fs.readFileSync(cfg.ca), maxSockets: 64 });
let state;
let faults = [];
function resetState() {
    state = { gen: (state ? state.gen : 0) + 1, total: 0, unauthorized: 0, faulted: 0, connections: 0, byType: {}, byOp: {}, requests: [], seq: 0 };
}
resetState();

// Cosmos resource addressing: /dbs/a/colls/b/docs/c -> type docs, link dbs/a/colls/b/docs/c;
// a feed /dbs/a/colls/b/docs -> type docs, link dbs/a/colls/b; / -> type "", link "".
function parseResource(pathname) {
    const segs = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
    const n = segs.length;
    if (n === 0) return { resourceType: '', resourceLink: '', isFeed: true };
    if (n % 2 === 0) return { resourceType: segs[n - 2], resourceLink: segs.join('/'), isFeed: false };
    return { resourceType: segs[n - 1], resourceLink: segs.slice(0, -1).join('/'), isFeed: true };
}

const truthy = (v) => String(v || '').toLowerCase() === 'true';
function classify(req, isFeed) {
    const h = req.headers;
    if (req.method === 'POST') {
        if (truthy(h['x-ms-cosmos-is-query-plan-request'])) return 'queryplan';
        if (truthy(h['x-ms-documentdb-isquery']) || h['content-type'] === 'application/query+json') return 'query';
        if (truthy(h['x-ms-cosmos-is-batch-request'])) return 'batch';
        if (truthy(h['x-ms-documentdb-is-upsert'])) return 'upsert';
        return 'create';
    }
    return { GET: isFeed ? 'readfeed' : 'read', PUT: 'replace', PATCH: 'patch', DELETE: 'delete' }[req.method] || req.method.toLowerCase();
}

// null when the request is properly signed, else the reason (Cosmos-like wording).
function verifySignature(req, resourceType, resourceLink) {
    const raw = req.headers.authorization;
    if (!raw) return 'Required Header authorization is missing. Ensure a valid Authorization token is passed.';
    if (/[&=+/ ]/.test(raw)) return 'The authorization header must be URL-encoded (type%3Dmaster%26ver%3D1.0%26sig%3D...).';
    let decoded;
    try { decoded = decodeURIComponent(raw); } catch { return 'The authorization header is not valid URL encoding.'; }
    const parts = {};
    for (const kv of decoded.split('&')) {
        const i = kv.indexOf('=');
        if (i > 0) parts[kv.slice(0, i)] = kv.slice(i + 1);
    }
    if (parts.type !== 'master' || parts.ver !== '1.0' || !parts.sig) {
        return `Invalid authorization token: expected type=master&ver=1.0&sig=..., got type=${parts.type} ver=${parts.ver}`;
    }
    const date = req.headers['x-ms-date'];
    if (!date) return 'The request is missing the required x-ms-date header.';
    const t = Date.parse(date);
    if (Number.isNaN(t)) return 'The input date header is invalid format. Please pass in RFC 1123 style date format.';
    if (Math.abs(Date.now() - t) > MAX_SKEW_MS) {
        return `The authorization token is not valid at the current time. Please create another token and retry (token start time: ${date}; current server time: ${new Date().toUTCString()}).`;
    }
    const payload = `${req.method.toLowerCase()}\n${resourceType.toLowerCase()}\n${resourceLink}\n${date.toLowerCase()}\n\n`;
    const want = crypto.createHmac('sha256', KEY).update(payload, 'utf8').digest();
    const got = Buffer.from(parts.sig, 'base64');
    if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) {
        return "The input authorization token can't serve the request. The wrong key is being used or the expected payload is not built as per the protocol. " +
            `Server used the following payload to sign: '${payload.replace(/\n/g, '\\n')}'`;
    }
    return null;
}

function sendJson(res, status, body, headers = {}) {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text),
        'x-ms-activity-id': crypto.randomUUID(), 'x-ms-request-charge': '0', ...headers });
    res.end(text);
}

function readBody(req, cb) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => cb(Buffer.concat(chunks)));
}

function takeFault(method, resourceType) {
    const i = faults.findIndex((f) => (!f.method || f.method === method) &&
        (f.resourceType === undefined || f.resourceType === resourceType));
    if (i < 0) return null;
    const f = faults[i];
    if (--f.count <= 0) faults.splice(i, 1);
    return f;
}

const FAULT_BODY = {
    408: { code: 'RequestTimeout', message: 'Injected request timeout.' },
    429: { code: '429', message: 'Message: {"Errors":["Request rate is large. More Request Units may be needed, so no changes were made. Please retry this request later."]}' },
    449: { code: 'RetryWith', message: 'Injected retry-with.' },
    500: { code: 'InternalServerError', message: 'Injected internal server error.' },
    503: { code: 'ServiceUnavailable', message: 'Injected service unavailable.' },
};

function applyFault(f, req, res, entry, next) {
    state.faulted++;
    entry.fault = f.drop ? 'drop' : f.status || 'delay';
    const act = () => {
        if (res.destroyed) return; // the client went away during the delay
        if (f.drop) { entry.status = 'dropped'; req.socket.destroy(); return; }
        if (!f.status) { next(); return; }
        const headers = {};
        if (f.status === 429 || f.status === 449) headers['x-ms-retry-after-ms'] = String(f.retryAfterMs ?? 50);
        if (f.status === 429) headers['x-ms-substatus'] = '3200';
        req.resume();
        sendJson(res, f.status, FAULT_BODY[f.status] || { code: String(f.status), message: 'Injected fault.' }, headers);
    };
    if (f.delayMs) setTimeout(act, Math.min(f.delayMs, 60000)); else act();
}

function admin(req, res, url) {
    readBody(req, (buf) => {
        if (req.method === 'GET' && url.pathname === '/__front/stats') {
            const { seq, gen, ...rest } = state;
            return sendJson(res, 200, { ...rest, faults });
        }
        if (req.method === 'POST' && url.pathname === '/__front/reset') {
            resetState(); faults = [];
            return sendJson(res, 200, { ok: true });
        }
        if (url.pathname === '/__front/fault' && req.method === 'DELETE') {
            faults = [];
            return sendJson(res, 200, { faults });
        }
        if (url.pathname === '/__front/fault' && req.method === 'POST') {
            let rule;
            try { rule = JSON.parse(buf.toString('utf8')); } catch { return sendJson(res, 400, { message: 'bad JSON' }); }
            if (!rule.drop && !rule.status && !rule.delayMs) return sendJson(res, 400, { message: 'need drop, status or delayMs' });
            faults.push({ ...rule, count: Math.max(1, Math.min(Number(rule.count) || 1, 10000)) });
            return sendJson(res, 200, { faults });
        }
        sendJson(res, 404, { message: 'no such admin endpoint' });
    });
}

// GET / (database account) names the backend's own address; point it at us.
function rewriteAccount(pres, res, frontHost) {
    readBody(pres, (buf) => {
        const text = buf.toString('utf8').split(`127.0.0.1:${cfg.backendPort}`).join(frontHost);
        const headers = filterHeaders(pres.headers);
        headers['content-length'] = Buffer.byteLength(text);
        res.writeHead(pres.statusCode, headers);
        res.end(text);
    });
}

function filterHeaders(h) {
    const out = {};
    for (const [k, v] of Object.entries(h)) if (!HOP.has(k)) out[k] = v;
    return out;
}

function proxy(req, res, url, entry, body) {
    const preq = https.request({ host: '127.0.0.1', port: cfg.backendPort, method: req.method,
        path: req.url, headers: filterHeaders(req.headers), agent: backendAgent });
    preq.on('response', (pres) => {
        entry.status = pres.statusCode;
        if (req.method === 'GET' && url.pathname.replace(/\/+/g, '/') === '/') return rewriteAccount(pres, res, req.headers.host || '');
        res.writeHead(pres.statusCode, filterHeaders(pres.headers));
        pres.pipe(res);
    });
    preq.on('error', (e) => {
        entry.status = 502;
        if (!res.headersSent) sendJson(res, 502, { code: 'BadGateway', message: `front: backend error ${e.message}` });
        else res.destroy();
    });
    res.on('close', () => { if (!res.writableFinished) preq.destroy(); });
    preq.end(body);
}

function handle(req, res) {
    res.on('error', () => {}); // a client that vanished mid-response is not our failure
    const url = new URL(req.url, 'https://front.invalid');
    if (url.pathname.startsWith('/__front/')) return admin(req, res, url);
    if (req.socket.frontGen !== state.gen) { // first Cosmos request on this connection
        req.socket.frontGen = state.gen;
        state.connections++;
    }
    let r;
    try { r = parseResource(url.pathname); } catch { r = null; }
    const entry = { seq: ++state.seq, method: req.method, path: req.url, resourceType: r ? r.resourceType : null,
        resourceLink: r ? r.resourceLink : null, op: r ? classify(req, r.isFeed) : null, headers: req.headers,
        status: null, body: '' };
    state.total++;
    state.requests.push(entry);
    if (state.requests.length > LOG_MAX) state.requests.shift();
    if (!r) { req.resume(); entry.status = 400; return sendJson(res, 400, { code: 'BadRequest', message: 'Malformed URL path encoding.' }); }
    const tkey = `${req.method} ${r.resourceType}`, okey = `${entry.op} ${r.resourceType}`;
    state.byType[tkey] = (state.byType[tkey] || 0) + 1;
    state.byOp[okey] = (state.byOp[okey] || 0) + 1;

    readBody(req, (buf) => {
        entry.body = buf.subarray(0, BODY_MAX).toString('utf8');
        const why = verifySignature(req, r.resourceType, r.resourceLink);
        if (why) {
            state.unauthorized++;
            entry.status = 401;
            return sendJson(res, 401, { code: 'Unauthorized', message: why });
        }
        const f = takeFault(req.method, r.resourceType);
        const next = () => proxy(req, res, url, entry, buf);
        if (f) applyFault(f, req, res, entry, next); else next();
    });
}

const server = https.createServer({ cert: fs.readFileSync(cfg.cert), key: fs.readFileSync(cfg.key) }, handle);
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`LISTENING ${server.address().port}\n`));

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
