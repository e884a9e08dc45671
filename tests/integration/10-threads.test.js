// 10-threads.test.js: the "Foundation" issue, proven end to end — a real
// apache2 with mod_agentchat, the real @vercel/cosmosdb-server behind the
// signature-checking front, and the official @azure/cosmos SDK reading back
// what the module stored.  Covers the thread lifecycle and its JSON shapes,
// exact message order across pages, thread listing order, principals (API
// keys, httpd's own Basic auth, anonymous) and isolation between them, bad
// input (never HTML, never a partial write), Cosmos faults (retry, 503),
// Cosmos round trips per route, misconfiguration caught by `apache2 -t`, and
// outbound TLS verification being on by default.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startCosmos } = require('./lib/cosmos');
const { startHttpd, configtest, request, delay } = require('./lib/httpd');
const { tmpDir, stopAll } = require('./lib/proc');

const KEYS = {
    alice: 'alice-key-0123456789abcdef',
    bob: 'bob-key-0123456789abcdef-xyz',
    carol: 'carol-key-0123456789abcdef',
};
const MAX_BODY = 4096;
const THREAD_FIELDS = ['agent', 'created_at', 'id', 'last_message_preview', 'message_count', 'metadata',
    'object', 'title', 'updated_at'];
const RFC3339_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const THREAD_ID = /^thread_[A-Za-z0-9_-]{1,64}$/;

let cosmos;
let threadsC;
let messagesC;
let main;   // API keys alice, bob, carol; AgentChatMaxRequestBody 4096
let basic;  // no API keys: /api behind AuthType Basic, /anon open (principal "anonymous")
let noCA;   // no AgentChatCAFile: the test CA is not trusted
let basicUsers = null; // {file} when htpasswd is available
const roundTrips = []; // [{route, cosmos, byOp}]

function cosmosDirectives(extra = '') {
    return `AgentChatCosmosEndpoint ${cosmos.endpoint}
AgentChatCosmosKey ${cosmos.key}
AllowEncodedSlashes NoDecode
${extra}`;
}

// One request to the module.  who: a principal of KEYS, a raw key string via
// {key}, or nothing.
function api(h, method, p, { who, key, headers = {}, body, basicAuth } = {}) {
    const hdr = { ...headers };
    if (who) hdr['x-api-key'] = KEYS[who];
    if (key !== undefined) hdr['x-api-key'] = key;
    if (basicAuth) hdr.authorization = `Basic ${Buffer.from(basicAuth).toString('base64')}`;
    return request(`${h.url}${p}`, { method, headers: hdr, body });
}

// A JSON error of the contract's shape, never HTML.
function assertError(r, status, code) {
    const where = `${r.status} ${r.headers['content-type']} ${r.text.slice(0, 300)}`;
    if (Array.isArray(status)) assert.ok(status.includes(r.status), `status ${r.status} not in ${status}: ${where}`);
    else assert.equal(r.status, status, where);
    assert.match(r.headers['content-type'] || '', /^application\/json/, where);
    assert.ok(r.json && typeof r.json.error === 'object', where);
    if (code) assert.equal(r.json.error.code, code, where);
    assert.equal(typeof r.json.error.code, 'string', where);
    assert.equal(typeof r.json.error.message, 'string', where);
    assert.equal(typeof r.json.error.request_id, 'string', where);
    assert.ok(r.json.error.request_id.length > 0, `empty request_id: ${where}`);
    assert.doesNotMatch(r.text, /<html|<!DOCTYPE/i);
}

function assertThreadShape(t) {
    assert.deepEqual(Object.keys(t).sort(), THREAD_FIELDS, JSON.stringify(t));
    assert.match(t.id, THREAD_ID);
    assert.equal(t.object, 'thread');
    assert.ok(t.title === null || typeof t.title === 'string');
    assert.equal(typeof t.agent, 'string');
    assert.equal(typeof t.metadata, 'object');
    assert.ok(t.metadata !== null && !Array.isArray(t.metadata));
    for (const v of Object.values(t.metadata)) assert.equal(typeof v, 'string');
    assert.match(t.created_at, RFC3339_MS);
    assert.match(t.updated_at, RFC3339_MS);
    assert.ok(t.updated_at >= t.created_at);
    assert.ok(Number.isInteger(t.message_count) && t.message_count >= 0);
    assert.ok(t.last_message_preview === null || typeof t.last_message_preview === 'string');
}

function assertList(r) {
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.equal(r.json.object, 'list');
    assert.ok(Array.isArray(r.json.data));
    assert.equal(typeof r.json.has_more, 'boolean');
    if (r.json.has_more) assert.equal(typeof r.json.next_cursor, 'string');
    else assert.equal(r.json.next_cursor, null);
    return r.json;
}

async function createThread(h, who, body, { prefix = '/api', ...opts } = {}) {
    const r = await api(h, 'POST', `${prefix}/threads`, { who, body, ...opts });
    assert.equal(r.status, 201, r.text);
    assertThreadShape(r.json);
    return r.json;
}

async function storedThread(id, principal) {
    const { resource, statusCode } = await threadsC.item(id, principal).read();
    return statusCode === 200 ? resource : null;
}

async function threadIdsOf(principal) {
    const { resources } = await threadsC.items.query({
        query: 'SELECT c.id FROM c WHERE c.user_id = @u',
        parameters: [{ name: '@u', value: principal }],
    }, { partitionKey: principal }).fetchAll();
    return resources.map((d) => d.id).sort();
}

async function docsOfThread(threadId) {
    const { resources } = await messagesC.items.query({
        query: 'SELECT * FROM c WHERE c.thread_id = @t',
        parameters: [{ name: '@t', value: threadId }],
    }, { partitionKey: threadId }).fetchAll();
    return resources;
}

function messageDoc(threadId, seq, extra = {}) {
    return { id: `msg_${threadId.slice(7)}_${String(seq).padStart(3, '0')}`, thread_id: threadId, type: 'message',
        seq, role: seq % 2 ? 'user' : 'assistant', content: `message number ${seq}`,
        created_at: new Date(Date.UTC(2024, 0, 1, 0, 0, seq)).toISOString(), ...extra };
}

function runDoc(threadId, n, seq) {
    return { id: `run_${threadId.slice(7)}_${n}`, thread_id: threadId, type: 'run', seq, status: 'completed',
        created_at: new Date().toISOString() };
}

// Deterministic shuffle (so a failure reproduces).
function shuffled(arr, seed = 42) {
    const a = [...arr];
    let s = seed;
    for (let i = a.length - 1; i > 0; i--) {
        s = (s * 1103515245 + 12345) & 0x7fffffff;
        const j = s % (i + 1);
        [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
}

// Run fn between a stats reset and a stats read; record the Cosmos round trips.
async function measured(route, fn) {
    await cosmos.reset();
    const result = await fn();
    const s = await cosmos.stats();
    roundTrips.push({ route, cosmos: s.total, byOp: Object.entries(s.byOp).map(([k, v]) => `${k}×${v}`).join(', ') });
    return { result, stats: s };
}

// Page through a list URL (bounded), returning [{page json}].
async function pageAll(h, who, base, maxPages = 20) {
    const pages = [];
    let cursor = null;
    for (let i = 0; i < maxPages; i++) {
        const sep = base.includes('?') ? '&' : '?';
        const r = await api(h, 'GET', cursor ? `${base}${sep}cursor=${encodeURIComponent(cursor)}` : base, { who });
        const page = assertList(r);
        pages.push(page);
        if (!page.has_more) return pages;
        cursor = page.next_cursor;
    }
    throw new Error(`${base}: still has_more after ${maxPages} pages`);
}

before(async () => {
    const root = tmpDir('agentchat-threads-');
    cosmos = await startCosmos({ dir: root });
    const keyLines = Object.entries(KEYS).map(([p, k]) => `AgentChatApiKey ${k} ${p}`).join('\n');
    main = await startHttpd({ dir: path.join(root, 'main'), directives: cosmosDirectives(`AgentChatCAFile ${cosmos.caFile}
AgentChatMaxRequestBody ${MAX_BODY}
LimitRequestLine 16384
${keyLines}`) });

    const basicDir = path.join(root, 'basic');
    fs.mkdirSync(basicDir, { recursive: true, mode: 0o755 });
    const htpasswd = path.join(basicDir, 'htpasswd');
    try {
        execFileSync('htpasswd', ['-cbB', htpasswd, 'dave', 'dave-secret'], { stdio: 'pipe' });
        execFileSync('htpasswd', ['-bB', htpasswd, 'erin', 'erin-secret'], { stdio: 'pipe' });
        fs.chmodSync(htpasswd, 0o644);
        basicUsers = { file: htpasswd };
    } catch { basicUsers = null; }
    basic = await startHttpd({ dir: basicDir,
        directives: cosmosDirectives(`AgentChatCAFile ${cosmos.caFile}
<Location /anon>
    SetHandler agentchat
    Require all granted
</Location>`),
        locationDirectives: basicUsers
            ? `AuthType Basic\n    AuthName "agentchat test"\n    AuthUserFile ${htpasswd}\n    Require valid-user`
            : 'Require all granted' });

    noCA = await startHttpd({ dir: path.join(root, 'noca'), directives: cosmosDirectives(`AgentChatApiKey ${KEYS.alice} alice`) });

    const db = cosmos.client.database('agentchat');
    threadsC = db.container('threads');
    messagesC = db.container('messages');
});

function printRoundTrips() {
    if (!roundTrips.length) return;
    const w = Math.max(...roundTrips.map((r) => r.route.length));
    console.log(`\nCosmos round trips per route (mod_agentchat -> front):\n${'route'.padEnd(w)}  trips  operations`);
    for (const r of roundTrips) console.log(`${r.route.padEnd(w)}  ${String(r.cosmos).padStart(5)}  ${r.byOp}`);
}

after(stopAll);

describe('thread lifecycle', () => {
    let t;

    test('startup created the database and both containers with the right partition keys', async () => {
        const { resource: tc } = await threadsC.read();
        assert.deepEqual(tc.partitionKey.paths, ['/user_id']);
        const { resource: mc } = await messagesC.read();
        assert.deepEqual(mc.partitionKey.paths, ['/thread_id']);
    });

    test('POST /api/threads creates a thread of the contract shape, stored with user_id', async () => {
        const before = Date.now();
        const r = await api(main, 'POST', '/api/threads', { who: 'alice',
            body: { title: 'Trip planning \u00e9\u4e2d', metadata: { project: 'x', lang: 'fr' } } });
        assert.equal(r.status, 201, r.text);
        assert.match(r.headers['content-type'], /^application\/json/);
        t = r.json;
        assertThreadShape(t);
        assert.equal(t.title, 'Trip planning \u00e9\u4e2d');
        assert.deepEqual(t.metadata, { project: 'x', lang: 'fr' });
        assert.equal(t.agent, 'default');
        assert.equal(t.message_count, 0);
        assert.equal(t.last_message_preview, null);
        assert.equal(t.created_at, t.updated_at);
        const created = Date.parse(t.created_at);
        assert.ok(created >= before - 2000 && created <= Date.now() + 2000, `created_at ${t.created_at} is not now`);

        const doc = await storedThread(t.id, 'alice');
        assert.ok(doc, 'the SDK finds the thread in partition "alice"');
        assert.equal(doc.user_id, 'alice');
        for (const f of THREAD_FIELDS) assert.deepEqual(doc[f], t[f], `stored ${f}`);
    });

    test('POST with no body creates an untitled thread', async () => {
        const u = await createThread(main, 'alice');
        assert.equal(u.title, null);
        assert.deepEqual(u.metadata, {});
        assert.notEqual(u.id, t.id);
    });

    test('GET /api/threads/{id} returns the same thread', async () => {
        const r = await api(main, 'GET', `/api/threads/${t.id}`, { who: 'alice' });
        assert.equal(r.status, 200, r.text);
        assertThreadShape(r.json);
        assert.deepEqual(r.json, t);
    });

    test('PATCH updates title and metadata (metadata replaced), bumps updated_at, persists', async () => {
        await delay(10);
        const r = await api(main, 'PATCH', `/api/threads/${t.id}`, { who: 'alice',
            body: { title: 'Renamed', metadata: { stage: 'two' } } });
        assert.equal(r.status, 200, r.text);
        assertThreadShape(r.json);
        assert.equal(r.json.id, t.id);
        assert.equal(r.json.title, 'Renamed');
        assert.deepEqual(r.json.metadata, { stage: 'two' });
        assert.equal(r.json.created_at, t.created_at);
        assert.ok(r.json.updated_at > t.updated_at, `${r.json.updated_at} > ${t.updated_at}`);

        await delay(5);
        const r2 = await api(main, 'PATCH', `/api/threads/${t.id}`, { who: 'alice', body: { title: 'Renamed again' } });
        assert.equal(r2.status, 200, r2.text);
        assert.deepEqual(r2.json.metadata, { stage: 'two' }, 'a title-only patch keeps metadata');
        t = r2.json;

        const g = await api(main, 'GET', `/api/threads/${t.id}`, { who: 'alice' });
        assert.deepEqual(g.json, t);
        const doc = await storedThread(t.id, 'alice');
        for (const f of THREAD_FIELDS) assert.deepEqual(doc[f], t[f], `stored ${f}`);
        assert.equal(doc.user_id, 'alice');
    });

    test('GET /api/threads lists it', async () => {
        const pages = await pageAll(main, 'alice', '/api/threads?limit=100');
        const found = pages.flatMap((p) => p.data).find((x) => x.id === t.id);
        assert.ok(found, 'the thread is in alice\'s list');
        assertThreadShape(found);
        assert.deepEqual(found, t);
    });

    test('DELETE removes the thread and every message/run document of it', async () => {
        const docs = [1, 2, 3, 4, 5].map((s) => messageDoc(t.id, s));
        docs.push(runDoc(t.id, 1, 2));
        for (const d of docs) await messagesC.items.create(d);
        // a document of another thread must survive
        const other = await createThread(main, 'alice', { title: 'bystander' });
        await messagesC.items.create(messageDoc(other.id, 1));
        assert.equal((await docsOfThread(t.id)).length, 6);

        const { result: r } = await measured(`DELETE /threads/{id} (${docs.length} docs)`,
            () => api(main, 'DELETE', `/api/threads/${t.id}`, { who: 'alice' }));
        assert.equal(r.status, 204, r.text);
        assert.equal(r.text, '');

        assert.equal(await storedThread(t.id, 'alice'), null, 'thread document gone');
        assert.deepEqual(await docsOfThread(t.id), [], 'no message or run document left');
        assert.equal((await docsOfThread(other.id)).length, 1, 'another thread\'s messages untouched');
        assert.ok(await storedThread(other.id, 'alice'));

        assertError(await api(main, 'GET', `/api/threads/${t.id}`, { who: 'alice' }), 404, 'thread_not_found');
        assertError(await api(main, 'DELETE', `/api/threads/${t.id}`, { who: 'alice' }), 404, 'thread_not_found');
        assertError(await api(main, 'PATCH', `/api/threads/${t.id}`, { who: 'alice', body: { title: 'x' } }), 404, 'thread_not_found');
        assertError(await api(main, 'GET', `/api/threads/${t.id}/messages`, { who: 'alice' }), 404, 'thread_not_found');
        const list = (await pageAll(main, 'alice', '/api/threads?limit=100')).flatMap((p) => p.data);
        assert.ok(!list.some((x) => x.id === t.id), 'not listed any more');
    });
});

describe('message history in exact seq order', () => {
    const N = 25;
    let tid;

    before(async () => {
        tid = (await createThread(main, 'alice', { title: 'history' })).id;
        const docs = Array.from({ length: N }, (_, i) => messageDoc(tid, i + 1));
        // runs share the partition (and even seq values): they are never messages
        docs.push(runDoc(tid, 1, 3), runDoc(tid, 2, 10), runDoc(tid, 3, 26));
        for (const d of shuffled(docs)) await messagesC.items.create(d);
    });

    test('ascending (default), limit=7: 7+7+7+4, exact seq order, cursors right', async () => {
        const pages = await pageAll(main, 'alice', `/api/threads/${tid}/messages?limit=7`);
        assert.deepEqual(pages.map((p) => p.data.length), [7, 7, 7, 4]);
        assert.deepEqual(pages.map((p) => p.has_more), [true, true, true, false]);
        assert.equal(pages[3].next_cursor, null);
        const all = pages.flatMap((p) => p.data);
        assert.deepEqual(all.map((m) => m.content), Array.from({ length: N }, (_, i) => `message number ${i + 1}`));
        assert.ok(all.every((m) => m.id.startsWith('msg_')), 'no run document in the list');
        const m = all[0];
        assert.equal(m.thread_id, tid);
        assert.equal(m.role, 'user');
        assert.equal(all[1].role, 'assistant');
        assert.match(m.created_at, RFC3339_MS);
        assert.ok(!Object.keys(m).some((k) => k.startsWith('_')), `no Cosmos system fields: ${Object.keys(m)}`);
    });

    test('order=desc, limit=7: the exact reverse', async () => {
        const pages = await pageAll(main, 'alice', `/api/threads/${tid}/messages?limit=7&order=desc`);
        assert.deepEqual(pages.map((p) => p.data.length), [7, 7, 7, 4]);
        assert.deepEqual(pages.map((p) => p.has_more), [true, true, true, false]);
        assert.equal(pages[3].next_cursor, null);
        assert.deepEqual(pages.flatMap((p) => p.data).map((m) => m.content),
            Array.from({ length: N }, (_, i) => `message number ${N - i}`));
    });

    test('limit=25 exactly: one page, has_more false; default limit lists all 25', async () => {
        const one = assertList(await api(main, 'GET', `/api/threads/${tid}/messages?limit=25`, { who: 'alice' }));
        assert.equal(one.data.length, 25);
        assert.equal(one.has_more, false);
        const dflt = await pageAll(main, 'alice', `/api/threads/${tid}/messages`);
        assert.equal(dflt.flatMap((p) => p.data).length, 25);
    });

    test('a cursor is bound to its order and listing; garbage cursors are 400', async () => {
        const asc = assertList(await api(main, 'GET', `/api/threads/${tid}/messages?limit=7`, { who: 'alice' }));
        const c = encodeURIComponent(asc.next_cursor);
        assertError(await api(main, 'GET', `/api/threads/${tid}/messages?limit=7&order=desc&cursor=${c}`, { who: 'alice' }),
            400, 'invalid_cursor');
        for (const bad of ['garbage', 'not!base64~', Buffer.from('{"x":1}').toString('base64url'),
            Buffer.from('["ma","1"]').toString('base64url'), 'A'.repeat(3000)]) {
            assertError(await api(main, 'GET', `/api/threads/${tid}/messages?cursor=${encodeURIComponent(bad)}`, { who: 'alice' }),
                400, 'invalid_cursor');
        }
        // a thread-list cursor is not a message cursor
        await createThread(main, 'alice');
        await createThread(main, 'alice');
        const tl = assertList(await api(main, 'GET', '/api/threads?limit=1', { who: 'alice' }));
        assert.equal(tl.has_more, true);
        assertError(await api(main, 'GET', `/api/threads/${tid}/messages?cursor=${encodeURIComponent(tl.next_cursor)}`,
            { who: 'alice' }), 400, 'invalid_cursor');
        // and the asc cursor still works where it belongs
        const p2 = assertList(await api(main, 'GET', `/api/threads/${tid}/messages?limit=7&cursor=${c}`, { who: 'alice' }));
        assert.equal(p2.data[0].content, 'message number 8');
    });
});

describe('thread listing', () => {
    const ids = [];

    before(async () => {
        for (let i = 0; i < 5; i++) {
            ids.push((await createThread(main, 'carol', { title: `carol ${i}` })).id);
            await delay(5); // distinct updated_at (ms resolution)
        }
    });

    test('most recently updated first', async () => {
        const l = assertList(await api(main, 'GET', '/api/threads', { who: 'carol' }));
        assert.deepEqual(l.data.map((x) => x.id), [...ids].reverse());
        assert.equal(l.has_more, false);
        l.data.forEach(assertThreadShape);
    });

    test('limit=2 pages: 2+2+1 with cursors, nothing repeated or lost', async () => {
        const pages = await pageAll(main, 'carol', '/api/threads?limit=2');
        assert.deepEqual(pages.map((p) => p.data.length), [2, 2, 1]);
        assert.deepEqual(pages.map((p) => p.has_more), [true, true, false]);
        assert.deepEqual(pages.flatMap((p) => p.data).map((x) => x.id), [...ids].reverse());
    });

    test('a PATCH moves a thread to the front; order=asc is the reverse', async () => {
        await delay(5);
        const r = await api(main, 'PATCH', `/api/threads/${ids[0]}`, { who: 'carol', body: { metadata: { bumped: 'yes' } } });
        assert.equal(r.status, 200, r.text);
        const want = [ids[0], ids[4], ids[3], ids[2], ids[1]];
        const l = assertList(await api(main, 'GET', '/api/threads', { who: 'carol' }));
        assert.deepEqual(l.data.map((x) => x.id), want);
        const asc = await pageAll(main, 'carol', '/api/threads?limit=2&order=asc');
        assert.deepEqual(asc.flatMap((p) => p.data).map((x) => x.id), [...want].reverse());
        const first = assertList(await api(main, 'GET', '/api/threads?limit=2&order=asc', { who: 'carol' }));
        assertError(await api(main, 'GET', `/api/threads?limit=2&order=desc&cursor=${encodeURIComponent(first.next_cursor)}`,
            { who: 'carol' }), 400, 'invalid_cursor');
        assertError(await api(main, 'GET', '/api/threads?cursor=garbage', { who: 'carol' }), 400, 'invalid_cursor');
    });
});

describe('principals and isolation', () => {
    let at; // alice's thread

    before(async () => {
        at = await createThread(main, 'alice', { title: 'alice private', metadata: { secret: 'yes' } });
        await messagesC.items.create(messageDoc(at.id, 1));
    });

    test('no key, wrong key, empty key: 401 JSON', async () => {
        for (const opts of [{}, { key: 'wrong-key-0123456789abcdef' }, { key: '' }, { key: `${KEYS.alice}x` },
            { key: KEYS.alice.slice(0, -1) }]) {
            const r = await api(main, 'GET', '/api/threads', opts);
            assertError(r, 401, 'unauthorized');
            assert.ok(!r.text.includes(KEYS.alice), 'a key never appears in a response');
        }
        assertError(await api(main, 'POST', '/api/threads', { body: { title: 'x' } }), 401, 'unauthorized');
        assertError(await api(main, 'GET', `/api/threads/${at.id}`), 401, 'unauthorized');
    });

    test('bob cannot see, change, delete or read the messages of alice\'s thread: 404', async () => {
        assertError(await api(main, 'GET', `/api/threads/${at.id}`, { who: 'bob' }), 404, 'thread_not_found');
        assertError(await api(main, 'PATCH', `/api/threads/${at.id}`, { who: 'bob', body: { title: 'pwned' } }),
            404, 'thread_not_found');
        assertError(await api(main, 'GET', `/api/threads/${at.id}/messages`, { who: 'bob' }), 404, 'thread_not_found');
        assertError(await api(main, 'DELETE', `/api/threads/${at.id}`, { who: 'bob' }), 404, 'thread_not_found');

        const bobs = (await pageAll(main, 'bob', '/api/threads?limit=100')).flatMap((p) => p.data);
        assert.ok(!bobs.some((x) => x.id === at.id), 'not in bob\'s list');

        const g = await api(main, 'GET', `/api/threads/${at.id}`, { who: 'alice' });
        assert.equal(g.status, 200, g.text);
        assert.deepEqual(g.json, at, 'alice\'s thread is intact');
        const doc = await storedThread(at.id, 'alice');
        assert.equal(doc.title, 'alice private');
        assert.equal(doc.deleting, undefined, 'not marked for deletion');
        assert.equal((await docsOfThread(at.id)).length, 1, 'its messages are intact');
        assert.deepEqual(await storedThread(at.id, 'bob'), null);
        const m = assertList(await api(main, 'GET', `/api/threads/${at.id}/messages`, { who: 'alice' }));
        assert.equal(m.data.length, 1);
    });

    test('bob\'s own threads are stored under user_id "bob"', async () => {
        const b = await createThread(main, 'bob', { title: 'bob\'s' });
        assert.equal((await storedThread(b.id, 'bob')).user_id, 'bob');
        assertError(await api(main, 'GET', `/api/threads/${b.id}`, { who: 'alice' }), 404, 'thread_not_found');
    });

    test('without API keys, httpd\'s authenticated user (AuthType Basic) is the principal', async (t) => {
        if (!basicUsers) { t.skip('htpasswd (apache2-utils) is not available'); return; }
        const r = await api(basic, 'GET', '/api/threads');
        assert.equal(r.status, 401, 'httpd asks for credentials');
        assert.match(r.headers['www-authenticate'] || '', /^Basic/);
        assert.equal((await api(basic, 'GET', '/api/threads', { basicAuth: 'dave:wrong' })).status, 401);

        const d = await createThread(basic, undefined, { title: 'dave\'s' }, { basicAuth: 'dave:dave-secret' });
        assert.equal((await storedThread(d.id, 'dave')).user_id, 'dave');
        const g = await api(basic, 'GET', `/api/threads/${d.id}`, { basicAuth: 'dave:dave-secret' });
        assert.equal(g.status, 200, g.text);
        assertError(await api(basic, 'GET', `/api/threads/${d.id}`, { basicAuth: 'erin:erin-secret' }), 404, 'thread_not_found');
        assertError(await api(basic, 'DELETE', `/api/threads/${d.id}`, { basicAuth: 'erin:erin-secret' }), 404, 'thread_not_found');
        const el = assertList(await api(basic, 'GET', '/api/threads', { basicAuth: 'erin:erin-secret' }));
        assert.ok(!el.data.some((x) => x.id === d.id));
        assert.ok(await storedThread(d.id, 'dave'), 'dave\'s thread survives erin');
        // a thread created through the API-key server for "alice" is not dave's either
        assertError(await api(basic, 'GET', `/api/threads/${at.id}`, { basicAuth: 'dave:dave-secret' }), 404, 'thread_not_found');
    });

    test('without keys and without auth, everyone is "anonymous" and startup warned about it', async () => {
        const a = await createThread(basic, undefined, { title: 'anon' }, { prefix: '/anon' });
        assert.equal((await storedThread(a.id, 'anonymous')).user_id, 'anonymous');
        const g = await api(basic, 'GET', `/anon/threads/${a.id}`);
        assert.equal(g.status, 200, g.text);
        const l = assertList(await api(basic, 'GET', '/anon/threads?limit=100'));
        assert.ok(l.data.some((x) => x.id === a.id));
        if (basicUsers) {
            assertError(await api(basic, 'GET', `/api/threads/${a.id}`, { basicAuth: 'dave:dave-secret' }), 404, 'thread_not_found');
        }
        assert.match(basic.errorLog(), /no AgentChatApiKey configured.*anonymous/);
        assert.doesNotMatch(main.errorLog(), /no AgentChatApiKey configured/, 'no warning where keys exist');
    });
});

// A request with a chunked body (no Content-Length), for the body limit.
function chunkedPost(url, headers, chunks) {
    return new Promise((resolve, reject) => {
        const req = http.request(url, { method: 'POST', agent: false, timeout: 15000,
            headers: { ...headers, 'transfer-encoding': 'chunked' } }, (res) => {
            const parts = [];
            res.on('data', (c) => parts.push(c));
            res.on('end', () => {
                const text = Buffer.concat(parts).toString('utf8');
                let json;
                try { json = JSON.parse(text); } catch { json = undefined; }
                resolve({ status: res.statusCode, headers: res.headers, text, json });
            });
        });
        req.on('timeout', () => req.destroy(new Error('chunked POST timed out')));
        req.on('error', (e) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? resolve({ status: 0, error: e, headers: {}, text: '' }) : reject(e)));
        for (const c of chunks) req.write(c);
        req.end();
    });
}

describe('bad input: the right status and a JSON error, nothing stored', () => {
    let victim;   // an existing thread of alice's, to PATCH badly
    let countBefore;

    before(async () => {
        victim = await createThread(main, 'alice', { title: 'victim', metadata: { keep: 'me' } });
        countBefore = (await threadIdsOf('alice')).length;
    });

    const json = (body, extra = {}) => ({ who: 'alice', body, headers: { 'content-type': 'application/json', ...extra } });
    const cases = [
        ['malformed JSON', '{"title": "x"', 400, 'invalid_json'],
        ['trailing garbage', '{"title": "x"} x', 400, 'invalid_json'],
        ['a JSON array body', '[{"title": "x"}]', 400, 'invalid_json'],
        ['a JSON string body', '"title"', 400, 'invalid_json'],
        ['title: 5', '{"title": 5}', 422, 'invalid_field'],
        ['title: object', '{"title": {"a": "b"}}', 422, 'invalid_field'],
        ['metadata not an object', '{"metadata": "x"}', 422, 'invalid_field'],
        ['metadata an array', '{"metadata": ["x"]}', 422, 'invalid_field'],
        ['metadata value not a string', '{"metadata": {"a": 1}}', 422, 'invalid_field'],
        ['metadata value null', '{"metadata": {"a": null}}', 422, 'invalid_field'],
        ['unknown field', '{"titel": "typo"}', 422, 'unknown_field'],
        ['title of 257 characters', JSON.stringify({ title: '\u00e9'.repeat(257) }), 422, null],
        ['17 metadata keys', JSON.stringify({ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }), 422, null],
        ['a 65-character metadata key', JSON.stringify({ metadata: { ['k'.repeat(65)]: 'v' } }), 422, null],
        ['an empty metadata key', JSON.stringify({ metadata: { '': 'v' } }), 422, null],
        ['a 513-character metadata value', JSON.stringify({ metadata: { k: 'v'.repeat(513) } }), 422, null],
    ];

    for (const [what, body, status, code] of cases) {
        test(`POST and PATCH with ${what} -> ${status}`, async () => {
            assertError(await api(main, 'POST', '/api/threads', json(body)), status, code);
            assertError(await api(main, 'PATCH', `/api/threads/${victim.id}`, json(body)), status, code);
        });
    }

    test('limits are inclusive: a 256-character title, 16 keys, 64/512-character keys/values are fine', async () => {
        const t = await createThread(main, 'alice', { title: '\u4e2d'.repeat(256),
            metadata: Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, 'v'])) });
        const r = await api(main, 'PATCH', `/api/threads/${t.id}`, { who: 'alice',
            body: { metadata: { ['k'.repeat(64)]: 'v'.repeat(512), ...Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, 'v'])) } } });
        assert.equal(r.status, 200, r.text);
        assert.equal(Object.keys(r.json.metadata).length, 16);
        const d = await api(main, 'DELETE', `/api/threads/${t.id}`, { who: 'alice' });
        assert.equal(d.status, 204, d.text);
    });

    test('PATCH with an empty object -> 422, with no body -> 400', async () => {
        assertError(await api(main, 'PATCH', `/api/threads/${victim.id}`, json('{}')), 422);
        assertError(await api(main, 'PATCH', `/api/threads/${victim.id}`, { who: 'alice' }), 400);
    });

    test('non-UTF-8 body bytes -> 400', async () => {
        const bad = Buffer.concat([Buffer.from('{"title": "'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"}')]);
        assertError(await api(main, 'POST', '/api/threads', json(bad)), 400, 'invalid_utf8');
        assertError(await api(main, 'PATCH', `/api/threads/${victim.id}`, json(bad)), 400, 'invalid_utf8');
        const overlong = Buffer.concat([Buffer.from('{"title": "'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]);
        assertError(await api(main, 'POST', '/api/threads', json(overlong)), 400, 'invalid_utf8');
    });

    test('wrong or missing Content-Type -> 415', async () => {
        const body = '{"title": "x"}';
        for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', 'multipart/form-data; boundary=x']) {
            assertError(await api(main, 'POST', '/api/threads', { who: 'alice', body, headers: { 'content-type': ct } }),
                415, 'unsupported_media_type');
        }
        assertError(await api(main, 'POST', '/api/threads', { who: 'alice', body }), 415, 'unsupported_media_type');
        assertError(await api(main, 'PATCH', `/api/threads/${victim.id}`, { who: 'alice', body, headers: { 'content-type': 'text/plain' } }),
            415, 'unsupported_media_type');
        // parameters are fine
        const ok = await api(main, 'POST', '/api/threads', { who: 'alice', body, headers: { 'content-type': 'application/json; charset=utf-8' } });
        assert.equal(ok.status, 201, ok.text);
        countBefore++;
    });

    test(`a body over AgentChatMaxRequestBody (${MAX_BODY}) -> 413, with or without Content-Length`, async () => {
        const big = JSON.stringify({ title: 'x', metadata: { k: 'v'.repeat(MAX_BODY) } });
        assertError(await api(main, 'POST', '/api/threads', json(big)), 413, 'request_too_large');
        assertError(await api(main, 'PATCH', `/api/threads/${victim.id}`, json(big)), 413, 'request_too_large');
        const r = await chunkedPost(`${main.url}/api/threads`, { 'x-api-key': KEYS.alice, 'content-type': 'application/json' },
            [big.slice(0, 2000), big.slice(2000, 4000), big.slice(4000)]);
        assertError(r, 413, 'request_too_large');
        // exactly at the limit is not too large (it is just invalid here: 422, not 413)
        const pad = MAX_BODY - JSON.stringify({ titel: '' }).length;
        const atLimit = JSON.stringify({ titel: 'x'.repeat(pad) });
        assert.equal(Buffer.byteLength(atLimit), MAX_BODY);
        assertError(await api(main, 'POST', '/api/threads', json(atLimit)), 422, 'unknown_field');
    });

    // [url-encoded id, what, expected statuses]: an id that cannot exist is a
    // JSON 404; an over-long URI may fairly be a JSON 414.
    const hostile = [
        ['thread_..%2F..', 'an encoded slash', [404]],
        [`thread_${encodeURIComponent("'; DROP--")}`, 'SQL in the id', [404]],
        [encodeURIComponent('../../etc/passwd'), 'an encoded path traversal', [404]],
        [encodeURIComponent("thread_x' OR 1=1"), 'SQL-ish OR 1=1', [404]],
        [`thread_${'a'.repeat(65)}`, 'a 65-character suffix', [404]],
        [`thread_${'A'.repeat(300)}`, 'a 300-byte id (longer than a file name may be)', [404]],
        [`thread_${'A'.repeat(5 * 1024)}`, 'a 5 KB id (fits the default LimitRequestLine, longer than PATH_MAX)', [404, 414]],
        [`thread_${'A'.repeat(10 * 1024)}`, 'a 10 KB id', [404, 414]],
        ['thread_', 'an empty suffix', [404]],
        ['Thread_abc', 'the wrong prefix case', [404]],
        ['msg_abc', 'another kind of id', [404]],
        [`thread_${encodeURIComponent('\u00e9\u4e2d')}`, 'non-ASCII', [404]],
    ];
    for (const [id, what, want] of hostile) {
        test(`hostile id: ${what} -> ${want.join('/')} JSON on every thread route`, async () => {
            for (const [m, suffix, body] of [['GET', ''], ['PATCH', '', { title: 'x' }], ['DELETE', ''], ['GET', '/messages']]) {
                const r = await api(main, m, `/api/threads/${id}${suffix}`, { who: 'alice', body });
                assertError(r, want);
            }
        });
    }

    test('an encoded NUL is refused by httpd itself (4xx before the module runs)', async () => {
        // ap_unescape_url() rejects %00 in the path with core's own 404 page:
        // outside the module's reach, so only the status is checked here.
        const r = await api(main, 'GET', '/api/threads/thread_%00abc', { who: 'alice' });
        assert.ok(r.status === 400 || r.status === 404, `${r.status}`);
    });

    test('an id is percent-decoded once, not twice', async () => {
        // "thread_%4X..." (after one decoding) is not a valid id, even though a
        // second decoding would turn it into the real id of victim.
        const suffix = victim.id.slice('thread_'.length);
        const hex = suffix.charCodeAt(0).toString(16).toUpperCase();
        const doubly = `thread_%25${hex}${suffix.slice(1)}`;
        const r = await api(main, 'GET', `/api/threads/${doubly}`, { who: 'alice' });
        assertError(r, 404, 'thread_not_found');
    });

    test('unknown routes -> 404 JSON', async () => {
        for (const p of ['/api/nope', '/api/threads/thread_abc/nope', '/api/threads/thread_abc/messages/x/y/z/w/v',
            '/api/THREADS', '/api/threads/thread_abc/runs']) {
            assertError(await api(main, 'GET', p, { who: 'alice' }), 404, 'not_found');
        }
    });

    test('a path that is not UTF-8 still gets a JSON error body', async () => {
        const r = await api(main, 'GET', '/api/nope%FF%FE', { who: 'alice' });
        assertError(r, 404, 'not_found');
    });

    test('wrong methods -> 405 with Allow', async () => {
        for (const [m, p, allow] of [
            ['PUT', '/api/threads', ['GET', 'POST']],
            ['DELETE', '/api/threads', ['GET', 'POST']],
            ['PATCH', '/api/threads', ['GET', 'POST']],
            ['POST', `/api/threads/${victim.id}`, ['DELETE', 'GET', 'PATCH']],
            ['PUT', `/api/threads/${victim.id}`, ['DELETE', 'GET', 'PATCH']],
            ['DELETE', `/api/threads/${victim.id}/messages`, ['GET', 'POST']],
        ]) {
            const r = await api(main, m, p, { who: 'alice' });
            assertError(r, 405, 'method_not_allowed');
            assert.ok(r.headers.allow, `${m} ${p}: Allow header`);
            const got = r.headers.allow.split(',').map((s) => s.trim()).filter((s) => s !== 'HEAD' && s !== 'OPTIONS').sort();
            assert.deepEqual(got, allow, `${m} ${p}: Allow: ${r.headers.allow}`);
        }
    });

    test('limit=0/101/abc/-1/7.5, order=sideways -> 422 on both listings', async () => {
        for (const base of ['/api/threads', `/api/threads/${victim.id}/messages`]) {
            for (const q of ['limit=0', 'limit=101', 'limit=abc', 'limit=-1', 'limit=7.5', 'limit=', 'order=sideways']) {
                assertError(await api(main, 'GET', `${base}?${q}`, { who: 'alice' }), 422, 'invalid_parameter');
            }
            assertList(await api(main, 'GET', `${base}?limit=1`, { who: 'alice' }));
            assertList(await api(main, 'GET', `${base}?limit=100`, { who: 'alice' }));
        }
    });

    test('after all that, nothing partial was stored and the victim is unchanged', async () => {
        assert.equal((await threadIdsOf('alice')).length, countBefore);
        const doc = await storedThread(victim.id, 'alice');
        for (const f of THREAD_FIELDS) assert.deepEqual(doc[f], victim[f], `victim ${f}`);
        assert.equal(doc.deleting, undefined);
        const { resources } = await threadsC.items.query({
            query: 'SELECT * FROM c WHERE c.user_id = @u', parameters: [{ name: '@u', value: 'alice' }] },
        { partitionKey: 'alice' }).fetchAll();
        for (const d of resources) {
            assert.ok(d.title === null || typeof d.title === 'string', `stored title ${JSON.stringify(d.title)}`);
            assert.ok(d.title === null || d.title.length <= 256);
            assert.ok(Object.keys(d.metadata).length <= 16);
            assert.ok(Object.values(d.metadata).every((v) => typeof v === 'string'));
            assert.ok(!('titel' in d));
        }
    });
});

describe('Cosmos failures', () => {
    let tid;
    before(async () => { tid = (await createThread(main, 'alice', { title: 'faults' })).id; });
    after(async () => { await cosmos.clearFaults(); });

    test('503s beyond the retry budget -> 503 JSON with Retry-After', async () => {
        await cosmos.reset();
        await cosmos.fault({ status: 503, count: 20, method: 'GET', resourceType: 'docs' });
        const t0 = Date.now();
        const r = await api(main, 'GET', `/api/threads/${tid}`, { who: 'alice' });
        const ms = Date.now() - t0;
        await cosmos.clearFaults();
        const s = await cosmos.stats();
        assertError(r, 503);
        assert.ok(/^\d+$/.test(r.headers['retry-after'] || ''), `Retry-After: ${r.headers['retry-after']}`);
        assert.ok(s.faulted >= 2, `the module retried (${s.faulted} attempts)`);
        assert.ok(s.faulted < 20, 'and gave up within a bound');
        assert.ok(ms < 15000, `gave up in ${ms} ms`);
        roundTrips.push({ route: 'GET /threads/{id} (Cosmos 503 forever)', cosmos: s.total,
            byOp: `${s.faulted} faulted, ${ms} ms` });
        assert.ok(!r.text.includes(cosmos.key), 'no secret in the error body');
        // and service resumes
        const ok = await api(main, 'GET', `/api/threads/${tid}`, { who: 'alice' });
        assert.equal(ok.status, 200, ok.text);
    });

    test('one 429 with x-ms-retry-after-ms is retried and the request succeeds', async () => {
        await cosmos.reset();
        await cosmos.fault({ status: 429, count: 1, retryAfterMs: 30, method: 'GET', resourceType: 'docs' });
        const r = await api(main, 'GET', `/api/threads/${tid}`, { who: 'alice' });
        const s = await cosmos.stats();
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.id, tid);
        assert.equal(s.faulted, 1);
        assert.equal(s.total, 2, 'one extra round trip');
        assert.equal(s.byOp['read docs'], 2);
        assert.deepEqual(s.faults, []);
        roundTrips.push({ route: 'GET /threads/{id} (one 429)', cosmos: s.total,
            byOp: Object.entries(s.byOp).map(([k, v]) => `${k}×${v}`).join(', ') });
    });

    test('one 429 on a create is retried and creates exactly one thread', async () => {
        const before = (await threadIdsOf('alice')).length;
        await cosmos.reset();
        await cosmos.fault({ status: 429, count: 1, retryAfterMs: 30, method: 'POST', resourceType: 'docs' });
        const r = await api(main, 'POST', '/api/threads', { who: 'alice', body: { title: 'after 429' } });
        const s = await cosmos.stats();
        assert.equal(r.status, 201, r.text);
        assert.equal(s.total, 2);
        assert.equal((await threadIdsOf('alice')).length, before + 1);
    });
});

describe('Cosmos round trips per route', () => {
    test('create, get, patch are one round trip each; the rest are recorded', async () => {
        const { result: c, stats: sc } = await measured('POST /threads', () =>
            api(main, 'POST', '/api/threads', { who: 'alice', body: { title: 'rt' } }));
        assert.equal(c.status, 201, c.text);
        const id = c.json.id;
        const { result: g, stats: sg } = await measured('GET /threads/{id}', () => api(main, 'GET', `/api/threads/${id}`, { who: 'alice' }));
        assert.equal(g.status, 200);
        const { result: p, stats: sp } = await measured('PATCH /threads/{id}', () =>
            api(main, 'PATCH', `/api/threads/${id}`, { who: 'alice', body: { title: 'rt2' } }));
        assert.equal(p.status, 200, p.text);
        const { result: l } = await measured('GET /threads?limit=20', () => api(main, 'GET', '/api/threads?limit=20', { who: 'alice' }));
        assertList(l);
        const { result: l2 } = await measured('GET /threads?limit=100', () => api(main, 'GET', '/api/threads?limit=100', { who: 'alice' }));
        assertList(l2);
        const { result: nf } = await measured('GET /threads/{missing}', () =>
            api(main, 'GET', '/api/threads/thread_doesnotexist000000000', { who: 'alice' }));
        assertError(nf, 404, 'thread_not_found');

        for (let s = 1; s <= 10; s++) await messagesC.items.create(messageDoc(id, s));
        await messagesC.items.create(runDoc(id, 1, 11));
        const { result: m } = await measured('GET /threads/{id}/messages?limit=20 (10 msgs)', () =>
            api(main, 'GET', `/api/threads/${id}/messages?limit=20`, { who: 'alice' }));
        assert.equal(assertList(m).data.length, 10);
        const { result: m2 } = await measured('GET /threads/{id}/messages?limit=4', () =>
            api(main, 'GET', `/api/threads/${id}/messages?limit=4`, { who: 'alice' }));
        const pg = assertList(m2);
        const { result: m3 } = await measured('GET /threads/{id}/messages?limit=4&cursor', () =>
            api(main, 'GET', `/api/threads/${id}/messages?limit=4&cursor=${encodeURIComponent(pg.next_cursor)}`, { who: 'alice' }));
        assert.equal(assertList(m3).data[0].content, 'message number 5');
        const { result: d } = await measured('DELETE /threads/{id} (11 docs)', () => api(main, 'DELETE', `/api/threads/${id}`, { who: 'alice' }));
        assert.equal(d.status, 204, d.text);
        const e = await api(main, 'POST', '/api/threads', { who: 'alice' });
        const { result: d0 } = await measured('DELETE /threads/{id} (0 docs)', () => api(main, 'DELETE', `/api/threads/${e.json.id}`, { who: 'alice' }));
        assert.equal(d0.status, 204, d0.text);
        printRoundTrips();

        assert.equal(sc.total, 1, `create: ${JSON.stringify(sc.byOp)}`);
        assert.equal(sg.total, 1, `get: ${JSON.stringify(sg.byOp)}`);
        assert.equal(sp.total, 1, `patch: ${JSON.stringify(sp.byOp)}`);
        assert.equal(sc.unauthorized + sg.unauthorized + sp.unauthorized, 0);
        // every query the module sent targeted one partition (a WHERE on the partition key + header)
        const s = await cosmos.stats();
        for (const q of s.requests.filter((x) => x.op === 'query')) {
            assert.ok(q.headers['x-ms-documentdb-partitionkey'], `query without partition key: ${q.body}`);
            assert.match(q.body, /"parameters"/, 'parameterised');
        }
    });
});

describe('misconfiguration is caught by apache2 -t', () => {
    const cases = [
        ['AgentChatCosmosKey without AgentChatCosmosEndpoint', () => `AgentChatCosmosKey ${cosmos.key}`, 'AgentChatCosmosEndpoint'],
        ['an unreadable key file', () => `AgentChatCosmosEndpoint ${cosmos.endpoint}\nAgentChatCosmosKey file:/nonexistent/cosmos.key`, 'AgentChatCosmosKey'],
        ['a bad endpoint URL', () => `AgentChatCosmosEndpoint notaurl\nAgentChatCosmosKey ${cosmos.key}`, 'AgentChatCosmosEndpoint'],
        ['an ftp endpoint URL', () => `AgentChatCosmosEndpoint ftp://127.0.0.1/\nAgentChatCosmosKey ${cosmos.key}`, 'AgentChatCosmosEndpoint'],
        ['a non-base64 key', () => `AgentChatCosmosEndpoint ${cosmos.endpoint}\nAgentChatCosmosKey not*base64!secret`, 'AgentChatCosmosKey'],
        ['AgentChatCosmosEndpoint without AgentChatCosmosKey', () => `AgentChatCosmosEndpoint ${cosmos.endpoint}`, 'AgentChatCosmosKey'],
        ['a short API key', () => `AgentChatCosmosEndpoint ${cosmos.endpoint}\nAgentChatCosmosKey ${cosmos.key}\nAgentChatApiKey short alice`, 'AgentChatApiKey'],
        ['a tiny AgentChatMaxRequestBody', () => `AgentChatCosmosEndpoint ${cosmos.endpoint}\nAgentChatCosmosKey ${cosmos.key}\nAgentChatMaxRequestBody 10`, 'AgentChatMaxRequestBody'],
    ];
    for (const [what, directives, name] of cases) {
        test(`${what} -> configtest fails naming ${name}`, async () => {
            const r = await configtest({ directives: directives() });
            assert.equal(r.ok, false, r.output);
            assert.ok(r.output.includes(name), r.output);
            assert.ok(!r.output.includes('not*base64!secret'), 'a secret is never echoed');
            assert.ok(!r.output.includes(cosmos.key), 'a secret is never echoed');
        });
    }

    test('a complete configuration passes', async () => {
        const r = await configtest({ directives: `AgentChatCosmosEndpoint ${cosmos.endpoint}\nAgentChatCosmosKey ${cosmos.key}\nAgentChatCAFile ${cosmos.caFile}` });
        assert.equal(r.ok, true, r.output);
    });
});

describe('outbound TLS verification is on by default', () => {
    test('without AgentChatCAFile the self-signed Cosmos front is refused: 5xx JSON, never a success', async () => {
        await cosmos.reset();
        const r = await api(noCA, 'GET', '/api/threads', { who: 'alice' });
        assertError(r, [502, 503]);
        const w = await api(noCA, 'POST', '/api/threads', { who: 'alice', body: { title: 'must not be stored' } });
        assertError(w, [502, 503]);
        const s = await cosmos.stats();
        assert.equal(s.total, 0, 'no request got past the TLS handshake');
        const { resources } = await threadsC.items.query({
            query: 'SELECT c.id FROM c WHERE c.user_id = @u AND c.title = @t',
            parameters: [{ name: '@u', value: 'alice' }, { name: '@t', value: 'must not be stored' }] },
        { partitionKey: 'alice' }).fetchAll();
        assert.deepEqual(resources, []);
        assert.match(noCA.errorLog(), /certificate|SSL|TLS/i, 'the error log says why');
    });
});
