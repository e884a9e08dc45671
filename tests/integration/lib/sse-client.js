// sse-client.js: the one text/event-stream client of the streaming tests.
// openStream() sends a request over HTTP/1.1 (node:http, a fresh connection)
// or HTTP/2 cleartext with prior knowledge (a node:http2 session the caller
// connected) and parses the body incrementally as it arrives.  Every event is
// stamped with `t`, the process.hrtime.bigint() at which the read completing
// it arrived — the clock the fake model stamps its emissions with — so a test
// can compare arrival with upstream emission.  Also the small helpers the
// streaming tests share: within() (bound a promise), textOf() (filler answer
// text), logTail() and why() (what a failing stream assertion should show).
'use strict';

const http = require('node:http');
const http2 = require('node:http2');
const { StringDecoder } = require('node:string_decoder');

const now = () => process.hrtime.bigint();

// Streams not yet ended, so a test file's after() can destroyAll().
const live = new Set();

// Incremental text/event-stream parser: call the returned function with each
// decoded chunk of text.  onEvent({id, event, data: [lines]}) per dispatched
// event — `id` and `event` are null when the event had no such line (no
// 'message' default, so a data-only event is visibly one); an event with no
// data, id or event line is not dispatched.  onComment(text) per `:` line.
function sseParser(onEvent, onComment) {
    let buf = '';
    let ev = { id: null, event: null, data: [] };
    return (text) => {
        buf += text;
        for (;;) {
            const m = /\r\n|\r|\n/.exec(buf);
            if (!m) break;
            if (m[0] === '\r' && m.index === buf.length - 1) break; // maybe half of a CRLF
            const line = buf.slice(0, m.index);
            buf = buf.slice(m.index + m[0].length);
            if (line === '') {
                if (ev.data.length || ev.id !== null || ev.event !== null) onEvent(ev);
                ev = { id: null, event: null, data: [] };
                continue;
            }
            if (line.startsWith(':')) { onComment(line.slice(1).trim()); continue; }
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            let value = c < 0 ? '' : line.slice(c + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (field === 'data') ev.data.push(value);
            else if (field === 'event') ev.event = value;
            else if (field === 'id') ev.id = value;
        }
    };
}

// Open a streaming request and parse its body as it arrives.
//   url   the full URL (with h2, only its path and query are used)
//   opts  {method (default GET, POST when there is a body), body (object: sent
//         as JSON; string: as is, also as application/json), headers,
//         h2: a ClientHttp2Session (http2.connect(url)) to send it on instead}
// Returns st:
//   st.response   Promise<{status, headers, t}>; rejects if the stream ends first
//   st.status, st.headers   once the response arrived
//   st.events     [{id, event, data, raw, t}]: data is the parsed JSON of the
//                 data lines (undefined when not JSON), raw their text
//   st.comments   [{text, t}]
//   st.chunks     [{t, bytes, buf}] every read, in order
//   st.ended      Promise<endInfo>, never rejects; st.endInfo = {how, t, error?}
//                 how: 'end' (complete response), 'aborted', 'closed',
//                 'error' (error set), `reset(<code>)` (h2 stream reset)
//   st.waitFor(pred, timeoutMs = 10000, what = 'event')  the first event
//                 matching pred (pred may also look at st); null once the
//                 stream ended without one; rejects after timeoutMs
//   st.named(name)  events of that name;  st.tokens(name = 'token')  their
//                 data.content concatenated;  st.text()  the whole body so far
//   st.destroy()  drop the connection (h2: RST_STREAM CANCEL) as a client
//                 that goes away would
function openStream(url, { method, body, headers = {}, h2 } = {}) {
    const st = { events: [], comments: [], chunks: [], status: undefined, headers: undefined, endInfo: null,
        lastT: undefined, waiters: new Set() };
    const wake = () => { for (const w of [...st.waiters]) w.check(); };
    const decoder = new StringDecoder('utf8');
    const feed = sseParser((ev) => {
        const raw = ev.data.join('\n');
        let data;
        try { data = JSON.parse(raw); } catch { data = undefined; }
        st.events.push({ id: ev.id, event: ev.event, data, raw, t: st.lastT });
        wake();
    }, (text) => st.comments.push({ text, t: st.lastT }));
    const onData = (buf) => {
        st.lastT = now();
        st.chunks.push({ t: st.lastT, bytes: buf.length, buf });
        feed(decoder.write(buf));
    };

    let resolveResponse, rejectResponse, resolveEnded;
    st.response = new Promise((res, rej) => { resolveResponse = res; rejectResponse = rej; });
    st.response.catch(() => {}); // not awaited by every caller; awaiting it still sees the rejection
    st.ended = new Promise((res) => { resolveEnded = res; });
    const respond = (status, hdrs) => {
        st.status = status;
        st.headers = hdrs;
        resolveResponse({ status, headers: hdrs, t: now() });
    };
    const finish = (how, error) => {
        if (st.endInfo) return;
        st.endInfo = { how, t: now(), error };
        live.delete(st);
        resolveEnded(st.endInfo);
        rejectResponse(new Error(`stream ${how} before a response${error ? `: ${error.message}` : ''}`));
        wake();
    };

    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    if (method === undefined) method = data ? 'POST' : 'GET';
    if (h2) {
        const u = new URL(url);
        const req = h2.request({ ':method': method, ':path': u.pathname + u.search,
            ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}),
            ...headers });
        req.on('response', (h) => respond(h[':status'], h));
        req.on('data', onData);
        req.on('end', () => finish('end'));
        req.on('error', (e) => finish('error', e));
        req.on('close', () => finish(req.rstCode ? `reset(${req.rstCode})` : 'closed'));
        req.end(data);
        st.destroy = () => req.close(http2.constants.NGHTTP2_CANCEL);
    } else {
        const h = { ...headers };
        if (data) { h['content-type'] = 'application/json'; h['content-length'] = data.length; }
        const req = http.request(url, { method, headers: h, agent: false });
        req.on('response', (res) => {
            respond(res.statusCode, res.headers);
            res.on('data', onData);
            res.on('end', () => finish(res.complete ? 'end' : 'aborted'));
            res.on('aborted', () => finish('aborted'));
            res.on('error', (e) => finish('error', e));
            res.on('close', () => finish(res.complete ? 'end' : 'closed'));
        });
        req.on('error', (e) => finish('error', e));
        req.end(data);
        st.destroy = () => req.destroy();
    }
    live.add(st);

    st.waitFor = (pred, timeoutMs = 10000, what = 'event') => new Promise((resolve, reject) => {
        const w = {};
        const timer = setTimeout(() => {
            st.waiters.delete(w);
            reject(new Error(`no ${what} within ${timeoutMs} ms; got ${st.events.map((e) => e.event).join(',')}`));
        }, timeoutMs);
        w.check = () => {
            const hit = st.events.find(pred);
            if (hit || st.endInfo) {
                clearTimeout(timer);
                st.waiters.delete(w);
                resolve(hit || null);
            }
        };
        st.waiters.add(w);
        w.check();
    });
    st.named = (name) => st.events.filter((e) => e.event === name);
    st.tokens = (name = 'token') => st.named(name).map((e) => e.data.content).join('');
    st.text = () => Buffer.concat(st.chunks.map((c) => c.buf)).toString('utf8');
    return st;
}

// Destroy every stream still open (for a test file's after()).
function destroyAll() {
    for (const st of [...live]) st.destroy();
}

// Resolve p or reject after ms with a message.
function within(p, ms, what) {
    let timer;
    return Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms); })])
        .finally(() => clearTimeout(timer));
}

const LOREM = 'Streaming means every token leaves the server the moment it arrives upstream, never held back by filters. ';
// Exactly n chunks of `size` characters (ASCII) of an answer for the fake model.
function textOf(n, size) {
    let s = '';
    while (s.length < n * size) s += LOREM;
    return s.slice(0, n * size);
}

// The last n lines of an httpd's error_log (h from lib/httpd's startHttpd).
function logTail(h, n = 15) {
    return h.errorLog().split('\n').slice(-n).join('\n');
}

// What a failing stream assertion should show: the status, the events (done
// and error with their data), how the stream ended, and h's error_log tail.
function why(st, h) {
    const evs = st.events.map((e) => (e.event === 'error' || e.event === 'done' ? `${e.event}${e.raw}` : e.event));
    const ended = st.endInfo ? `${st.endInfo.how}${st.endInfo.error ? ` (${st.endInfo.error.message})` : ''}` : 'no';
    return `status ${st.status}; events: ${evs.join(',')}\nended: ${ended}\n--- error_log (${h.url}) ---\n${logTail(h)}`;
}

module.exports = { sseParser, openStream, destroyAll, within, textOf, logTail, why, now };
