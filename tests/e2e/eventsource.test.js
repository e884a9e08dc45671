// eventsource.test.js: the stateless stream (/api/agent/stream) read by the
// browser's own EventSource — a GET with ?message=, unnamed `message` events
// carrying {"text"}, and a `done` event on which the page closes the source (an
// EventSource would otherwise reconnect).  Nothing may be stored: the Cosmos
// containers are compared before and after with the official SDK.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startStack, launchBrowser, screenshot, stopAll, pollUntil } = require('./lib/stack');

const PAGE = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>EventSource</title></head>
<body><pre id="out"></pre>
<script>
const texts = [];
const events = [];
const es = new EventSource('/api/agent/stream?message=hello');
es.onopen = () => events.push('open');
es.onmessage = (e) => { events.push('message'); texts.push(JSON.parse(e.data).text); document.getElementById('out').textContent = texts.join(''); };
es.addEventListener('done', (e) => {
  events.push('done');
  es.close();
  window.result = { text: texts.join(''), done: JSON.parse(e.data), events, messages: texts.length };
});
es.onerror = () => {
  events.push('error');
  // After an error the browser reconnects on its own: stop after the first so a
  // broken stream fails the test instead of looping.
  if (!window.result) { es.close(); window.result = { error: true, text: texts.join(''), events, messages: texts.length }; }
};
</script></body></html>
`;

let stack;
let browser;
let page;

before(async () => {
    stack = await startStack({ modelDelayMs: 10, htdocs: { 'es.html': PAGE } });
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.setDefaultTimeout(15000);
});

after(async () => {
    if (page) await screenshot(page, 'eventsource-final');
    if (browser) await browser.close();
    await stopAll();
});

// Every document of every container of the database, by container: id → _etag.
async function snapshot() {
    const out = {};
    const { resources: containers } = await stack.db.containers.readAll().fetchAll();
    for (const c of containers) {
        const { resources } = await stack.db.container(c.id).items.readAll().fetchAll();
        out[c.id] = Object.fromEntries(resources.map((d) => [d.id, d._etag]));
    }
    return out;
}

test('EventSource on /api/agent/stream gets the answer; nothing is stored', { timeout: 30000 }, async () => {
    // Some stored state first, so "unchanged" means something (and the containers exist).
    const t = await stack.api('POST', '/api/threads', { title: 'before' });
    assert.equal(t.status, 201, t.text);
    const m = await stack.api('POST', `/api/threads/${t.json.id}/messages`, { content: 'hi there' });
    assert.equal(m.status, 200, m.text);
    const before = await snapshot();
    assert.equal(Object.keys(before.threads || {}).length, 1, JSON.stringify(before));
    const msgIds = Object.keys(before.messages || {}).filter((id) => id.startsWith('msg_'));
    assert.equal(msgIds.length, 2, JSON.stringify(before)); // (the run document lives there too)
    stack.model.reset();

    await page.goto(`${stack.httpd.url}/es.html`);
    const result = await (await page.waitForFunction(() => window.result, null, { timeout: 15000 })).jsonValue();
    await screenshot(page, 'eventsource');
    assert.ok(!result.error, `the EventSource failed: ${JSON.stringify(result)}\n${stack.httpd.errorLog().split('\n').slice(-20).join('\n')}`);
    assert.equal(result.text, '[dev model] You said: hello');
    assert.ok(result.messages > 1, `the text came in several events: ${result.messages}`);
    assert.equal(result.events[0], 'open');
    assert.equal(result.events[result.events.length - 1], 'done');
    assert.equal(result.done.finish_reason, 'stop');
    assert.equal(await page.locator('#out').textContent(), result.text);

    // One model call, one stream request (no reconnect), and the model saw only "hello".
    assert.equal(stack.model.requests.length, 1);
    const sent = stack.model.requests[0].body.messages;
    assert.equal(sent[sent.length - 1].content, 'hello');
    assert.equal(sent.filter((x) => x.role === 'user').length, 1, 'no stored history was sent');
    // (logged when the request ends, which may be just after the page saw `done`)
    const streamLines = () => stack.httpd.accessLog().split('\n').filter((l) => l.includes('/api/agent/stream'));
    await pollUntil(() => streamLines().length > 0, { timeoutMs: 5000, what: 'the access log line' });
    const streams = streamLines();
    assert.equal(streams.length, 1, streams.join('\n'));
    assert.match(streams[0], /"GET \/api\/agent\/stream\?message=hello HTTP\/1\.1" 200 /);

    const afterSnap = await snapshot();
    assert.deepEqual(afterSnap.threads, before.threads, 'threads unchanged');
    assert.deepEqual(afterSnap.messages, before.messages, 'messages unchanged');
    assert.deepEqual(afterSnap, before, 'no container changed');
});
