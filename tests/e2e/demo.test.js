// demo.test.js: the demo chat page (demo/index.html) in a real browser —
// headless Debian chromium driven by playwright-core — against the `make run`
// stack (httpd + mod_agentchat, Cosmos-protocol server, the development model
// with a per-chunk delay so streaming is visible, fake Open-Meteo).
// One thread is driven through the page: a question that calls get_weather and
// calculate (tool traces, an answer that grows while it streams, the auto title
// in the sidebar), a reload that shows the stored history from the API, and a
// long echo stopped mid-stream with the Stop button.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startStack, launchBrowser, screenshot, stopAll } = require('./lib/stack');

const QUESTION = "What's the weather in Paris and what is 2+2?";
// Long and tool-free (no weather words, no arithmetic, no "search"): the
// development model echoes it back, "[dev model] You said: …", 4 chars a chunk.
const LONG = Array.from({ length: 60 }, (_, i) => `Sentence number ${'abcdefghij'[i % 10]} of a long story about a quiet river.`).join(' ');
const LONG_ECHO = `[dev model] You said: ${LONG}`;
const DELAY_MS = 30; // per model chunk

let stack;
let browser;
let page;
let firstAnswer; // text of the streamed answer to QUESTION
const pageErrors = []; // uncaught exceptions in the page

const T = { timeout: 15000 };

before(async () => {
    stack = await startStack({ modelDelayMs: DELAY_MS, demo: true });
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.setDefaultTimeout(15000);
    page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
    if (page) await screenshot(page, 'demo-final');
    if (browser) await browser.close();
    await stopAll();
});

function errorLogTail() {
    return stack.httpd.errorLog().split('\n').slice(-20).join('\n');
}

// The last assistant message's text length, in the page.
const lastAnswerLen = () => page.evaluate(() => {
    const all = document.querySelectorAll('.msg.assistant');
    return all.length ? all[all.length - 1].textContent.length : -1;
});

test('the demo page is served at / and starts empty', T, async () => {
    const r = await page.goto(`${stack.httpd.url}/`);
    assert.equal(r.status(), 200);
    assert.equal(await page.title(), 'mod_agentchat demo');
    await page.locator('#text').waitFor();
    assert.equal(await page.locator('#threads li').count(), 0);
    assert.equal(await page.locator('#stop').isDisabled(), true);
});

test('a question with tools: traces, an answer that streams in, the thread in the sidebar', { timeout: 30000 }, async () => {
    // Record every length the answer takes while it streams (mutation observer).
    await page.evaluate(() => {
        window.__lengths = [];
        new MutationObserver(() => {
            const a = document.querySelector('.msg.assistant');
            const len = a ? a.textContent.length : 0;
            const meta = !!document.querySelector('.meta');
            const last = window.__lengths[window.__lengths.length - 1];
            if (len && (!last || last.len !== len)) window.__lengths.push({ len, meta, t: performance.now() });
        }).observe(document.getElementById('log'), { childList: true, subtree: true, characterData: true });
    });
    await page.locator('#text').fill(QUESTION);
    await page.locator('#go').click();
    await page.locator('.msg.user', { hasText: QUESTION }).waitFor();
    assert.equal(await page.locator('#stop').isDisabled(), false, 'Stop is enabled while the answer runs');

    // Tool traces, start and end.
    await page.locator('.trace', { hasText: 'get_weather(' }).waitFor();
    await page.locator('.trace', { hasText: 'calculate(' }).waitFor();
    const traces = await page.locator('.trace').allTextContents();
    assert.ok(traces.some((t) => /get_weather\(\{"location":"Paris"\}\)/.test(t)), traces.join('\n'));
    assert.ok(traces.some((t) => /calculate\(\{"expression":"2\+2"\}\)/.test(t)), traces.join('\n'));

    // The answer appears and grows: two samples taken while it still streams
    // (no `done` meta line yet), the second longer than the first.
    const answer = page.locator('.msg.assistant');
    const len1 = await (await page.waitForFunction(() => {
        const a = document.querySelector('.msg.assistant');
        return a && a.textContent.length > 0 && !document.querySelector('.meta') && a.textContent.length;
    }, null, { timeout: 15000 })).jsonValue();
    const len2 = await (await page.waitForFunction((l1) => {
        const a = document.querySelector('.msg.assistant');
        return a.textContent.length > l1 && !document.querySelector('.meta') && a.textContent.length;
    }, len1, { timeout: 15000 })).jsonValue();
    await page.locator('.meta').waitFor();
    await screenshot(page, 'demo-answer');
    firstAnswer = await answer.textContent();
    assert.ok(len1 < len2 && len2 < firstAnswer.length,
        `the answer grew while streaming: ${len1} < ${len2} < ${firstAnswer.length}`);
    const lengths = await page.evaluate(() => window.__lengths);
    const beforeDone = lengths.filter((l) => !l.meta);
    assert.ok(beforeDone.length >= 5, `the answer was painted in many steps, not once: ${JSON.stringify(lengths)}`);
    assert.ok(beforeDone[beforeDone.length - 1].t - beforeDone[0].t >= 3 * DELAY_MS,
        `the paints are spread over time: ${JSON.stringify(beforeDone)}`);

    assert.match(firstAnswer, /^\[dev model\] Here is what the tools returned:/);
    assert.match(firstAnswer, /get_weather: .*Paris/);
    assert.match(firstAnswer, /18\.5/); // fake Open-Meteo's Paris temperature
    assert.match(firstAnswer, /calculate: .*4/);
    const meta = await page.locator('.meta').textContent();
    assert.match(meta, /^stop · first token \d+ ms · \d+ prompt \/ \d+ completion tokens$/);

    // The page re-enables Send and lists the thread with its automatic title.
    await page.waitForFunction(() => !document.getElementById('go').disabled && document.getElementById('stop').disabled);
    await page.locator('#threads li').first().waitFor();
    const r = await stack.api('GET', '/api/threads');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.length, 1);
    assert.equal(r.json.data[0].title, QUESTION, 'a short first message is the whole title');
    await page.locator('#threads li div', { hasText: QUESTION }).waitFor();
    assert.equal(await page.locator('#threads li').count(), 1);
    assert.equal(await page.locator('#threads li').first().getAttribute('class'), 'active');
});

test('after a reload, clicking the thread shows its history from the API', T, async () => {
    assert.ok(firstAnswer, 'the previous test produced an answer');
    await page.reload();
    await page.locator('#threads li div', { hasText: QUESTION }).waitFor();
    assert.equal(await page.locator('#log > *').count(), 0, 'nothing is shown before a thread is opened');
    await page.locator('#threads li').first().click();
    await page.locator('.msg.assistant').waitFor();
    await screenshot(page, 'demo-history');

    const user = await page.locator('.msg.user').allTextContents();
    const assistant = await page.locator('.msg.assistant').allTextContents();
    assert.deepEqual(user, [QUESTION]);
    assert.deepEqual(assistant, [firstAnswer], 'the stored answer is the one that was streamed');
    const traces = await page.locator('.trace').allTextContents();
    assert.equal(traces.length, 2, traces.join('\n'));
    assert.match(traces.find((t) => t.includes('get_weather')) || '', /get_weather\(\{"location":"Paris"\}\) → .*18\.5/);
    assert.match(traces.find((t) => t.includes('calculate')) || '', /calculate\(\{"expression":"2\+2"\}\) → .*4/);
    // Order: the traces come before the assistant message they belong to.
    const order = await page.locator('#log > *').evaluateAll((els) => els.map((e) => e.className));
    assert.deepEqual(order, ['msg user', 'trace', 'trace', 'msg assistant']);
    assert.equal(await page.locator('#threads li').first().getAttribute('class'), 'active');
});

test('Stop cancels a long answer mid-stream', { timeout: 30000 }, async () => {
    // Same thread (opened above); the echo takes ~LONG_ECHO/4 chunks × 30 ms ≈ 20 s.
    const before = await page.locator('.msg.assistant').count();
    await page.locator('#text').fill(LONG);
    await page.locator('#go').click();
    await page.locator('.msg.assistant').nth(before).waitFor();
    await page.waitForFunction((n) => {
        const a = document.querySelectorAll('.msg.assistant')[n];
        return a && a.textContent.length >= 120;
    }, before);
    // While it runs, Send is disabled, and Enter in the box must not send either.
    assert.equal(await page.locator('#go').isDisabled(), true);
    await page.locator('#text').fill('not now');
    await page.locator('#text').press('Enter');
    assert.equal(await page.locator('.msg.user').count(), 2, 'Enter did not send a second message mid-run');
    assert.equal(await page.locator('#text').inputValue(), 'not now', 'the draft is kept');

    const atClick = await lastAnswerLen();
    await page.locator('#stop').click();

    const cancelled = page.locator('.meta', { hasText: 'cancelled' });
    await cancelled.waitFor({ timeout: 10000 });
    await page.waitForFunction(() => !document.getElementById('go').disabled, null, { timeout: 10000 });
    const atEnd = await lastAnswerLen();
    await screenshot(page, 'demo-cancelled');
    assert.ok(atEnd >= atClick, `${atEnd} >= ${atClick}`);
    assert.ok(atEnd < LONG_ECHO.length / 2,
        `the answer stopped well before its end: ${atEnd} of ${LONG_ECHO.length} chars\n${errorLogTail()}`);
    const text = await page.locator('.msg.assistant').nth(before).textContent();
    assert.ok(LONG_ECHO.startsWith(text), 'what was shown is a prefix of the echo');
    assert.match(await cancelled.textContent(), /^cancelled · /);
    assert.equal(await page.locator('.msg.err').count(), 0, 'no error shown');
    assert.equal(await page.locator('.msg.user').count(), 2);

    // It does not grow any more: httpd closed the upstream stream long before
    // its end, and the shown answer is what it was when the run ended.
    const model = stack.model.requests[stack.model.requests.length - 1];
    const outcome = await Promise.race([model.finished, new Promise((r) => setTimeout(() => r('still open'), 5000))]);
    assert.notEqual(outcome, 'still open', 'the upstream stream was closed after the cancel');
    assert.ok(model.emitted.length < LONG_ECHO.length / 4, `model emitted ${model.emitted.length} chunks`);
    assert.equal(await lastAnswerLen(), atEnd);
    assert.deepEqual(pageErrors, [], 'no uncaught exception in the page');
});
