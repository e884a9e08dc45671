// proc.js: child-process plumbing shared by the test libs — spawn a process in
// its own process group, wait (bounded) for a line on its stdout, stop the whole
// group (SIGTERM, then SIGKILL), and a last-resort kill of every live group
// when the test process exits.  Also a world-traversable temp directory helper.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

const live = new Set(); // pgids of groups we started and have not yet reaped

function killAllNow() {
    for (const pgid of live) {
        try { process.kill(-pgid, 'SIGKILL'); } catch { /* already gone */ }
    }
}
const dirs = new Set(); // tmpDir()s, removed at exit unless a test failed or KEEP_TEST_DIRS is set
process.on('exit', () => {
    killAllNow();
    if (process.env.KEEP_TEST_DIRS || process.exitCode) return; // keep logs for a post-mortem
    for (const d of dirs) {
        try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
    }
});
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => { killAllNow(); process.exit(128 + (sig === 'SIGINT' ? 2 : 15)); });
}

// Orderly cleanup: the libs register each started service's stop(); a test
// file calls `after(stopAll)` so a failing test still stops everything.
const stoppers = new Set();
function track(stop) {
    const wrapped = async () => { stoppers.delete(wrapped); await stop(); };
    stoppers.add(wrapped);
    return wrapped;
}
async function stopAll() {
    const errors = [];
    for (const stop of [...stoppers].reverse()) {
        try { await stop(); } catch (e) { errors.push(e); }
    }
    if (errors.length) throw errors[0];
}

// mkdtemp under the OS temp dir, chmod 0755 so www-data can enter it.  Removed
// when the process exits cleanly (kept after a failure, or with KEEP_TEST_DIRS=1).
function tmpDir(prefix = 'agentchat-') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    fs.chmodSync(dir, 0o755);
    dirs.add(dir);
    return dir;
}

// Live (non-zombie) pids whose process group is pgid, read from /proc: a
// zombie left for a non-reaping init must not count as "still running".
function groupMembers(pgid) {
    const pids = [];
    for (const name of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(name)) continue;
        let stat;
        try { stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; }
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid pgrp ...
        if (Number(f[2]) === pgid && f[0] !== 'Z' && f[0] !== 'X') pids.push(Number(name));
    }
    return pids;
}

const groupAlive = (pgid) => groupMembers(pgid).length > 0;

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll fn() every `interval` ms until it returns truthy or `timeoutMs` passes.
async function pollUntil(fn, { timeoutMs = 10000, interval = 50, what = 'condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await delay(interval);
    }
}

// Spawn cmd in a new process group.  stdout/stderr are kept (last 64 KB each).
function spawnGroup(cmd, args, opts = {}) {
    const child = spawn(cmd, args, { ...opts, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child.pid);
    child.output = { stdout: '', stderr: '' };
    for (const s of ['stdout', 'stderr']) {
        child[s].setEncoding('utf8');
        child[s].on('data', (d) => {
            child.output[s] = (child.output[s] + d).slice(-65536);
            if (opts.echo) process.stderr.write(d);
        });
    }
    child.exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
    child.on('error', () => {}); // reported through `exited` / waitForLine
    return child;
}

// Resolve with the first stdout line matching re (its match), reject if the
// process exits first or timeoutMs passes.
function waitForLine(child, re, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
        let buf = '';
        const done = (err, v) => {
            clearTimeout(timer);
            child.stdout.off('data', onData);
            err ? reject(err) : resolve(v);
        };
        const onData = (d) => {
            buf += d;
            const m = buf.match(re);
            if (m) done(null, m);
        };
        const timer = setTimeout(() => done(new Error(`no ${re} from pid ${child.pid} within ${timeoutMs} ms:\n${child.output.stderr}`)), timeoutMs);
        child.stdout.on('data', onData);
        child.exited.then(({ code, sig }) => done(new Error(`pid ${child.pid} exited (${code ?? sig}) before ${re}:\n${child.output.stderr}`)));
    });
}

// SIGTERM the group leader (httpd's parent stops its own children), wait up to
// graceMs for it, then for the rest of the group; SIGKILL whatever is left.
// Resolves once every process of the group is gone (bounded: ~2 x graceMs + 5 s).
async function stopGroup(child, graceMs = 5000) {
    const pgid = child.pid;
    if (!live.has(pgid)) return;
    try { process.kill(pgid, 'SIGTERM'); } catch { /* gone */ }
    if (child.exitCode === null && child.signalCode === null) {
        let timer;
        const timeout = new Promise((r) => { timer = setTimeout(r, graceMs); });
        await Promise.race([child.exited, timeout]);
        clearTimeout(timer);
    }
    try {
        await pollUntil(() => !groupAlive(pgid), { timeoutMs: graceMs, interval: 25, what: `group ${pgid} to exit` });
    } catch {
        try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone */ }
        await pollUntil(() => !groupAlive(pgid), { timeoutMs: 5000, interval: 25, what: `group ${pgid} to die` });
    }
    live.delete(pgid);
}

module.exports = { track, stopAll, tmpDir, spawnGroup, waitForLine, stopGroup, pollUntil, delay, groupAlive, groupMembers };
