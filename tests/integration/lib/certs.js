// certs.js: a throw-away test PKI made with the openssl CLI — a CA and a server
// certificate for 127.0.0.1 / localhost signed by it.  Everything is written
// world-readable (httpd children run as www-data and read the CA file).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

function openssl(args, cwd) {
    try {
        execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30000 });
    } catch (e) {
        throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr || e.message}`);
    }
}

// Creates dir (mode 0755) when needed and writes ca.key, ca.pem, server.key,
// server.pem into it.  Returns their absolute paths.  EC P-256 keys: fast to make.
function generateCerts(dir) {
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, 0o755);
    const f = (n) => path.join(dir, n);
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
        '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '30',
        '-subj', '/CN=mod_agentchat test CA',
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    fs.writeFileSync(f('server.ext'), [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        ''].join('\n'));
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1'], dir);
    openssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
        '-CAcreateserial', '-out', f('server.pem'), '-days', '30', '-sha256',
        '-extfile', f('server.ext')], dir);
    for (const n of fs.readdirSync(dir)) {
        if (fs.statSync(f(n)).isFile()) fs.chmodSync(f(n), 0o644);
    }
    return { dir, caFile: f('ca.pem'), caKeyFile: f('ca.key'),
        certFile: f('server.pem'), keyFile: f('server.key') };
}

module.exports = { generateCerts };
