#!/usr/bin/env node
// fake-model-cli.js: run the fake chat-completions upstream standalone — the
// local, clearly labelled "[dev model]" that `make run` points the module at.
// With no scripted turns every request is answered by the development model
// (echo, get_weather / calculate tool calls, answers from tool results).
//
//   node fake-model-cli.js [--port 8091] [--azure] [--api-key K] [--deployment D]
//                          [--delay-ms 20] [--chunk-size 4] [--crlf] [--keep-alive] [--quiet]
//
// The key may also come from FAKE_MODEL_API_KEY.  Port 0 picks a free port.
// Prints "fake model listening on http://127.0.0.1:PORT" once ready; SIGINT or
// SIGTERM stops it.  Only ever binds 127.0.0.1.
'use strict';

const { startFakeModel } = require('./fake-model');

function usage(msg) {
    if (msg) process.stderr.write(`fake-model-cli: ${msg}\n`);
    process.stderr.write('usage: node fake-model-cli.js [--port N] [--azure] [--api-key K] [--deployment D] '
        + '[--delay-ms N] [--chunk-size N] [--crlf] [--keep-alive] [--quiet]\n');
    process.exit(msg ? 2 : 0);
}

function parseArgs(argv) {
    const o = { port: 8091, delayMs: 20, apiKey: process.env.FAKE_MODEL_API_KEY || undefined };
    const num = (v, name) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) usage(`${name} needs a non-negative integer`);
        return n;
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
        switch (a) {
        case '--port': o.port = num(val(), a); break;
        case '--azure': o.flavor = 'azure'; break;
        case '--api-key': o.apiKey = val(); break;
        case '--deployment': o.deployment = val(); break;
        case '--delay-ms': o.delayMs = num(val(), a); break;
        case '--chunk-size': o.chunkSize = Math.max(1, num(val(), a)); break;
        case '--crlf': o.crlf = true; break;
        case '--keep-alive': o.keepAlive = true; break;
        case '--quiet': o.quiet = true; break;
        case '-h': case '--help': usage(); break;
        default: usage(`unknown argument ${a}`);
        }
    }
    return o;
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    if (!o.quiet) o.log = (line) => process.stdout.write(`fake model: ${line}\n`);
    const model = await startFakeModel(o);
    process.stdout.write(`fake model listening on ${model.url}\n`);
    if (!o.quiet) {
        process.stdout.write(`  OpenAI: POST ${model.url}/v1/chat/completions\n`
            + `  Azure:  POST ${model.url}/openai/deployments/${o.deployment || '<deployment>'}/chat/completions?api-version=2024-10-21\n`);
    }
    const shutdown = () => { model.stop().then(() => process.exit(0), () => process.exit(1)); };
    for (const sig of ['SIGINT', 'SIGTERM']) {
        process.removeAllListeners(sig); // proc.js's test-runner handlers: nothing of theirs to kill here
        process.once(sig, shutdown);
    }
}

main().catch((e) => { process.stderr.write(`fake-model-cli: ${e.message}\n`); process.exit(1); });
