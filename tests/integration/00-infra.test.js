// 00-infra.test.js: proves the integration-test infrastructure itself, without
// mod_agentchat: the signature-checking Cosmos front in front of the real
// cosmosdb-server (SDK round trips, 401s, stats, faults, TLS trust), the
// cosmosdb-server quirks the module has to live with, and the httpd runner.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const https = require('node:https');
const crypto = require('node:crypto');
const { CosmosClient } = require('@azure/cosmos');
const { startCosmos, signMasterKey, httpsRequest } = require('./lib/cosmos');
const { startHttpd, configtest, request } = require('./lib/httpd');
const { tmpDir, stopAll, groupMembers } = require('./lib/proc');

const OTHER_KEY = crypto.createHash('sha512').update('some other account').digest('base64');
const DB = 'infra';
const PK = JSON.stringify(['t1']);

let cosmos;
let container;

before(async () => {
    cosmos = await startCosmos({ dir: tmpDir('agentchat-infra-') });
    const { database } = await cosmos.client.databases.createIfNotExists({ id: DB });
    ({ container } = await database.containers.createIfNotExists({
        id: 'messages', partitionKey: { paths: ['/thread_id'] },
        indexingPolicy: { compositeIndexes: [[{ path: '/seq', order: 'ascending' }, { path: '/id', order: 'ascending' }]] },
    }));
});
after(stopAll);

describe('Cosmos front with the SDK', () => {
    test('create, point read (odd id), parameterised query', async () => {
        const id = 'doc with spaces \u00e9 \u4e2d';
        await container.items.create({ id, thread_id: 't1', seq: 1, text: 'hello' });
        await container.items.create({ id: 'm2', thread_id: 't1', seq: 2, text: 'world' });
        await container.items.create({ id: 'other', thread_id: 't2', seq: 1, text: 'elsewhere' });
        const { resource, statusCode } = await container.item(id, 't1').read();
        assert.equal(statusCode, 200);
        assert.equal(resource.text, 'hello');
        const { resources } = await container.items.query({
            query: 'SELECT * FROM c WHERE c.thread_id = @t AND c.seq >= @s ORDER BY c.seq',
            parameters: [{ name: '@t', value: 't1' }, { name: '@s', value: 1 }],
        }, { partitionKey: 't1' }).fetchAll();
        assert.deepEqual(resources.map((r) => r.id), [id, 'm2']);
    });

    test('SDK point read of a missing document is a 404 (the SDK sends enablecrosspartition)', async () => {
        const { statusCode, resource } = await container.item('missing', 't1').read();
        assert.equal(statusCode, 404);
        assert.equal(resource, undefined);
    });

    test('requests are counted per operation and logged with their headers', async () => {
        await cosmos.reset();
        await container.item('m2', 't1').read();
        const s = await cosmos.stats();
        assert.equal(s.total, 1);
        assert.equal(s.byType['GET docs'], 1);
        assert.equal(s.byOp['read docs'], 1);
        assert.equal(s.connections, 1);
        const [r] = s.requests;
        assert.equal(r.resourceLink, `dbs/${DB}/colls/messages/docs/m2`);
        assert.equal(r.headers['x-ms-documentdb-partitionkey'], PK);
        assert.equal(r.status, 200);
    });
});

describe('Cosmos front rejects what Cosmos rejects', () => {
    const path = `/dbs/${DB}/colls/messages/docs/m2`;
    const headers = { 'x-ms-documentdb-partitionkey': PK };

    test('our own signer is accepted', async () => {
        const r = await cosmos.request('GET', path, { headers });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.id, 'm2');
    });

    test('a signature over another resource link is 401 Unauthorized', async () => {
        const date = new Date().toUTCString();
        const auth = signMasterKey({ verb: 'GET', resourceType: 'docs', resourceLink: `dbs/${DB}/colls/messages/docs/m3`, date });
        const r = await cosmos.request('GET', path, { headers, date, auth });
        assert.equal(r.status, 401);
        assert.equal(r.json.code, 'Unauthorized');
        assert.match(r.json.message, /payload to sign: 'get\\ndocs\\ndbs\/infra\/colls\/messages\/docs\/m2\\n/);
    });

    test('a request signed with another key is 401', async () => {
        const r = await cosmos.request('GET', path, { headers, key: OTHER_KEY });
        assert.equal(r.status, 401);
        assert.equal(r.json.code, 'Unauthorized');
    });

    test('a missing or stale x-ms-date is 401', async () => {
        assert.equal((await cosmos.request('GET', path, { headers, date: null })).status, 401);
        const stale = new Date(Date.now() - 20 * 60 * 1000).toUTCString();
        const r = await cosmos.request('GET', path, { headers, date: stale });
        assert.equal(r.status, 401);
        assert.match(r.json.message, /not valid at the current time/);
    });

    test('an Authorization header that is not URL-encoded is 401', async () => {
        const date = new Date().toUTCString();
        const auth = decodeURIComponent(signMasterKey({ verb: 'GET', resourceType: 'docs', resourceLink: path.slice(1), date }));
        assert.equal((await cosmos.request('GET', path, { headers, date, auth })).status, 401);
    });

    test('rejections are counted', async () => {
        await cosmos.reset();
        await cosmos.request('GET', path, { headers, key: OTHER_KEY });
        const s = await cosmos.stats();
        assert.equal(s.total, 1);
        assert.equal(s.unauthorized, 1);
        assert.equal(s.requests[0].status, 401);
    });
});

describe('fault injection', () => {
    const path = `/dbs/${DB}/colls/messages/docs/m2`;
    const headers = { 'x-ms-documentdb-partitionkey': PK };

    test('429 with x-ms-retry-after-ms, then normal service', async () => {
        await cosmos.fault({ status: 429, count: 1 });
        const r = await cosmos.request('GET', path, { headers });
        assert.equal(r.status, 429);
        assert.equal(r.headers['x-ms-retry-after-ms'], '50');
        assert.equal((await cosmos.request('GET', path, { headers })).status, 200);
    });

    test('503 and a dropped connection, matched by method and resource type', async () => {
        await cosmos.fault({ status: 503, method: 'GET', resourceType: 'docs' });
        await cosmos.fault({ drop: true, method: 'GET', resourceType: 'docs' });
        assert.equal((await cosmos.request('GET', path, { headers })).status, 503);
        await assert.rejects(cosmos.request('GET', path, { headers }), /socket hang up|ECONNRESET/);
        assert.equal((await cosmos.request('GET', path, { headers })).status, 200);
    });

    test('the SDK retries injected 429s and succeeds', async () => {
        await cosmos.reset();
        await cosmos.fault({ status: 429, count: 2, retryAfterMs: 20 });
        const { statusCode } = await container.item('m2', 't1').read();
        assert.equal(statusCode, 200);
        const s = await cosmos.stats();
        assert.equal(s.faulted, 2);
        assert.equal(s.byOp['read docs'], 3);
        assert.deepEqual(s.faults, []);
    });
});

describe('TLS trust', () => {
    test('a client that does not trust the test CA is refused', async () => {
        await assert.rejects(httpsRequest(cosmos.endpoint, { agent: false }),
            (e) => /certificate|self.signed|issuer/i.test(`${e.code} ${e.message}`));
        const untrusting = new CosmosClient({ endpoint: cosmos.endpoint, key: cosmos.key,
            agent: new https.Agent({ keepAlive: false }), connectionPolicy: { enableEndpointDiscovery: false } });
        await assert.rejects(untrusting.database(DB).read());
        untrusting.dispose();
    });

    test('the backend serves the test certificate too', async () => {
        const r = await httpsRequest(cosmos.backendUrl, { ca: fs.readFileSync(cosmos.caFile) });
        assert.equal(r.status, 200);
    });
});

describe('cosmosdb-server behaviour the module must live with', () => {
    const feed = `/dbs/${DB}/colls/messages/docs`;
    const query = (body, extra = {}) => cosmos.request('POST', feed, { body, headers: {
        'content-type': 'application/query+json', 'x-ms-documentdb-isquery': 'true',
        'x-ms-documentdb-partitionkey': PK, ...extra } });

    test('paging: x-ms-continuation is a JSON string; an unreadable one restarts at page one', async () => {
        const body = { query: 'SELECT * FROM c WHERE c.thread_id = @t ORDER BY c.seq', parameters: [{ name: '@t', value: 't1' }] };
        const p1 = await query(body, { 'x-ms-max-item-count': '1' });
        assert.equal(p1.json.Documents.length, 1);
        const cont = p1.headers['x-ms-continuation'];
        assert.match(cont, /^\{"token":"\+RID:[^"]+","range":\{"min":"","max":"FF"\}\}$/);
        const p2 = await query(body, { 'x-ms-max-item-count': '1', 'x-ms-continuation': cont });
        assert.equal(p2.json.Documents[0].id, 'm2');
        const bad = await query(body, { 'x-ms-max-item-count': '1', 'x-ms-continuation': 'garbage' });
        assert.equal(bad.json.Documents[0].id, p1.json.Documents[0].id);
    });

    test('a query must filter on the partition key (the header alone is not enough)', async () => {
        assert.equal((await query({ query: 'SELECT * FROM c' })).status, 400);
    });

    test('ORDER BY on two fields needs a composite index; OFFSET/LIMIT does not parse; TOP works', async () => {
        const t = [{ name: '@t', value: 't1' }];
        const two = await query({ query: 'SELECT * FROM c WHERE c.thread_id = @t ORDER BY c.seq ASC, c.id ASC', parameters: t });
        assert.equal(two.status, 200, two.text); // the container has that composite index
        const noIdx = await query({ query: 'SELECT * FROM c WHERE c.thread_id = @t ORDER BY c.seq DESC, c.id ASC', parameters: t });
        assert.equal(noIdx.status, 400);
        const off = await query({ query: 'SELECT * FROM c WHERE c.thread_id = @t ORDER BY c.seq OFFSET 0 LIMIT 1', parameters: t });
        assert.equal(off.status, 400);
        const top = await query({ query: 'SELECT TOP 1 * FROM c WHERE c.thread_id = @t ORDER BY c.seq DESC', parameters: t });
        assert.deepEqual(top.json.Documents.map((d) => d.id), ['m2']);
    });

    test('raw point read of a missing doc: 500 without enablecrosspartition, 404 with it', async () => {
        const p = `${feed}/nope`;
        assert.equal((await cosmos.request('GET', p, { headers: { 'x-ms-documentdb-partitionkey': PK } })).status, 500);
        assert.equal((await cosmos.request('GET', p, { headers: { 'x-ms-documentdb-partitionkey': PK,
            'x-ms-documentdb-query-enablecrosspartition': 'true' } })).status, 404);
    });

    test('batch: per-operation partitionKey needed, HTTP 200 even when an op fails, not atomic', async () => {
        const r = await cosmos.request('POST', feed, { headers: { 'content-type': 'application/json',
            'x-ms-cosmos-is-batch-request': 'true', 'x-ms-cosmos-batch-atomic': 'true', 'x-ms-documentdb-partitionkey': PK },
        body: [
            { operationType: 'Create', resourceBody: { id: 'b1', thread_id: 't1', seq: 10 } },
            { operationType: 'Upsert', partitionKey: PK, resourceBody: { id: 'b2', thread_id: 't1', seq: 11 } },
            { operationType: 'Replace', id: 'm2', partitionKey: PK, ifMatch: '"stale"', resourceBody: { id: 'm2', thread_id: 't1', seq: 2 } },
            { operationType: 'Create', resourceBody: { id: 'b3', thread_id: 't1', seq: 12 } },
        ] });
        assert.equal(r.status, 200);
        assert.deepEqual(r.json.map((o) => o.statusCode), [201, 201, 412, 424]);
        const { statusCode } = await container.item('b1', 't1').read();
        assert.equal(statusCode, 200); // real Cosmos would have rolled b1 back
    });
});

describe('httpd runner (without the module)', () => {
    test('configtest reports a bad directive', async () => {
        const r = await configtest({ module: false, directives: 'NoSuchDirective on' });
        assert.equal(r.ok, false);
        assert.match(r.output, /Invalid command 'NoSuchDirective'/);
        assert.equal((await configtest({ module: false })).ok, true);
    });

    test('starts on a loopback port, serves, stops with its whole process tree', async () => {
        const dir = tmpDir('agentchat-httpd-');
        const h = await startHttpd({ dir, module: false });
        fs.writeFileSync(`${dir}/htdocs/hello.txt`, 'hi');
        const r = await request(`${h.url}/hello.txt`);
        assert.equal(r.status, 200);
        assert.equal(r.text, 'hi');
        assert.ok(groupMembers(h.pid).length >= 2, 'parent and at least one child');
        await h.stop();
        assert.deepEqual(groupMembers(h.pid), []);
        assert.match(h.accessLog(), /GET \/hello.txt HTTP\/1.1" 200/);
    });
});

describe('cleanup', () => {
    test('stopping the Cosmos side leaves no process behind', async () => {
        const pids = cosmos.pids;
        await cosmos.stop();
        for (const pid of pids) assert.deepEqual(groupMembers(pid), []);
    });
});
