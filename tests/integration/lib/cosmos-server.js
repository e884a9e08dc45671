// cosmos-server.js: child-process entry point that runs the real
// @vercel/cosmosdb-server over HTTPS with the test certificate on
// 127.0.0.1 (ephemeral port) and prints "LISTENING <port>".
// Usage: node cosmos-server.js '{"cert":"/path/server.pem","key":"/path/server.key"}'
// It exits when its stdin closes, so it never outlives the test process.
'use strict';

const fs = require('node:fs');
const { createHttpsServer } = require('@vercel/cosmosdb-server');

const cfg = JSON.parse(process.argv[2]);
const server = createHttpsServer({
    cert: fs.readFileSync(cfg.cert),
    key: fs.readFileSync(cfg.key),
    keepAlive: true,
});
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
