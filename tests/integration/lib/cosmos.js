// cosmos.js: start the Cosmos side of an integration test — the real
// @vercel/cosmosdb-server and, in front of it, the signature-checking front
// (cosmos-front.js) — as child processes over HTTPS with a test CA, and hand
// back an @azure/cosmos client pointed at the front plus admin helpers
// (request statistics, fault injection) and a raw signed-request helper.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const https = require('node:https');
const crypto = require('node:crypto');
const { CosmosClient } = require('@azure/cosmos');
const { generateCerts } = require('./certs');
const { spawnGroup, waitForLine, stopGroup, track, stopAll } = require('./proc');

// The Cosmos DB emulator's published well-known key: fine for tests.
const TEST_KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nqT6zZXqcP3WN+JhZ4JdT3UQJoHaRt0LI9AsqRzA==';

// Our own master-key signature (independent of the SDK's): the URL-encoded
// "type=master&ver=1.0&sig=<base64 HMAC-SHA256>" Authorization value.
function signMasterKey({ key = TEST_KEY, verb, resourceType, resourceLink, date }) {
    const payload = `${verb.toLowerCase()}\n${resourceType.toLowerCase()}\n${resourceLink}\n${date.toLowerCase()}\n\n`;
    const sig = crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(payload, 'utf8').digest('base64');
    return encodeURIComponent(`type=master&ver=1.0&sig=${sig}`);
}

// One HTTPS request; resolves {status, headers, text, json}.  Never rejects on
// HTTP status; rejects on transport errors (incl. TLS) and after timeoutMs.
function httpsRequest(url, { method = 'GET', headers = {}, body, ca, agent, timeoutMs = 15000 } = {}) {
    return new Promise((resolve, reject) => {
        const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
        const h = { ...headers };
        if (data) h['content-length'] = data.length;
        const req = https.request(url, { method, headers: h, ca, agent: agent ?? false, timeout: timeoutMs }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString('utf8');
                let json;
                try { json = JSON.parse(text); } catch { json = undefined; }
                resolve({ status: res.statusCode, headers: res.headers, text, json });
            });
            res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out after ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end(data);
    });
}

async function startChild(script, cfg) {
    const child = spawnGroup(process.execPath, [path.join(__dirname, script), JSON.stringify(cfg)],
        { cwd: path.join(__dirname, '..', '..') });
    try {
        const m = await waitForLine(child, /LISTENING (\d+)/, 15000);
        return { child, port: Number(m[1]) };
    } catch (e) {
        await stopGroup(child);
        throw e;
    }
}

// Start cosmosdb-server + front.  opts.dir: a directory for the PKI (made
// under dir/pki unless opts.certs, a generateCerts() result, is given).
async function startCosmos({ dir, certs, key = TEST_KEY } = {}) {
    if (!dir && !certs) throw new Error('startCosmos needs {dir} or {certs}');
    const pki = certs || generateCerts(path.join(dir, 'pki'));
    const ca = fs.readFileSync(pki.caFile);
    const backend = await startChild('cosmos-server.js', { cert: pki.certFile, key: pki.keyFile });
    let front;
    try {
        front = await startChild('cosmos-front.js', { cert: pki.certFile, key: pki.keyFile, ca: pki.caFile,
            backendPort: backend.port, masterKey: key });
    } catch (e) {
        await stopGroup(backend.child);
        throw e;
    }
    const endpoint = `https://127.0.0.1:${front.port}/`;
    const agent = new https.Agent({ ca, keepAlive: true });
    const client = new CosmosClient({ endpoint, key, agent,
        connectionPolicy: { enableEndpointDiscovery: false } });
    const adminAgent = new https.Agent({ ca, keepAlive: false });
    const admin = async (method, p, body) => {
        const r = await httpsRequest(endpoint.replace(/\/$/, '') + p, { method, body, ca, agent: adminAgent });
        if (r.status !== 200) throw new Error(`front admin ${method} ${p}: ${r.status} ${r.text}`);
        return r.json;
    };
    let stopped = false;
    return {
        endpoint, key, caFile: pki.caFile, certs: pki, client, port: front.port, backendPort: backend.port,
        backendUrl: `https://127.0.0.1:${backend.port}/`, pids: [front.child.pid, backend.child.pid],
        // {total, unauthorized, faulted, connections, byType: {"GET docs": n},
        //  byOp: {"query docs": n}, requests: [{seq, method, path, resourceType,
        //  resourceLink, op, headers, status, body, fault?}], faults: [...]}
        stats: () => admin('GET', '/__front/stats'),
        reset: () => admin('POST', '/__front/reset'),
        // rule: {status?: 408|429|449|500|503|…, drop?: true, delayMs?, count = 1,
        //        retryAfterMs = 50, method?: 'POST', resourceType?: 'docs'}
        fault: (rule) => admin('POST', '/__front/fault', rule),
        clearFaults: () => admin('DELETE', '/__front/fault'),
        // A raw request to the front signed with our own code; options.key /
        // options.date / options.auth (verbatim Authorization) override.
        request: (method, resourcePath, opts = {}) => {
            const { resourceType, resourceLink } = resourceOf(resourcePath);
            const date = 'date' in opts ? opts.date : new Date().toUTCString();
            const headers = { 'x-ms-version': '2020-07-15', accept: 'application/json', ...opts.headers };
            if (date !== null) headers['x-ms-date'] = date;
            headers.authorization = opts.auth ?? signMasterKey({ key: opts.key ?? key, verb: method,
                resourceType, resourceLink, date: date ?? '' });
            return httpsRequest(endpoint.replace(/\/$/, '') + resourcePath,
                { method, headers, body: opts.body, ca, agent, timeoutMs: opts.timeoutMs });
        },
        backendLogs: () => backend.child.output.stderr,
        stop: track(async () => {
            if (stopped) return;
            stopped = true;
            try { client.dispose(); } catch { /* older SDKs */ }
            agent.destroy();
            adminAgent.destroy();
            await Promise.all([stopGroup(front.child), stopGroup(backend.child)]);
        }),
    };
}

// Resource type and link of a URL path, as Cosmos derives them (ids decoded).
function resourceOf(urlPath) {
    const segs = urlPath.split('?')[0].split('/').filter((s) => s !== '').map(decodeURIComponent);
    const n = segs.length;
    if (n === 0) return { resourceType: '', resourceLink: '' };
    if (n % 2 === 0) return { resourceType: segs[n - 2], resourceLink: segs.join('/') };
    return { resourceType: segs[n - 1], resourceLink: segs.slice(0, -1).join('/') };
}

module.exports = { startCosmos, signMasterKey, httpsRequest, resourceOf, TEST_KEY, stopAll };
