// Test certificates made at test time with the `openssl` command: a CA of our own and server
// certificates it signs for localhost / 127.0.0.1 (valid, expired, a second one to swap in at a
// reload), plus a key that matches none of them. `const pki = makePki()` gives the file paths;
// pki.dir is removed by pki.cleanup(). Clients trust pki.ca (never "ignore certificate errors").
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const openssl = (args, cwd) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

const SERVER_EXT = [
  'subjectAltName=DNS:localhost,IP:127.0.0.1',
  'basicConstraints=CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth',
].join('\n');

/** A CA and what it signs, in a temporary directory. */
export function makePki() {
  const dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
  writeFileSync(join(dir, 'server.ext'), SERVER_EXT);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key',
    '-out', 'ca.pem', '-days', '3', '-subj', '/CN=Herald Test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  let serial = 1;
  /** A server certificate named `name` (name.pem: the certificate then the CA, name.key); days < 0: expired. */
  const issue = (name, { days = 2, cn = 'localhost' } = {}) => {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
      '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial++),
      '-out', `${name}.crt`, '-days', String(days), '-extfile', 'server.ext'], dir);
    // the chain as a server sends it: leaf, then the CA
    writeFileSync(join(dir, `${name}.pem`), readFileSync(join(dir, `${name}.crt`), 'utf8') + readFileSync(join(dir, 'ca.pem'), 'utf8'));
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`), fingerprint: fingerprintOf(join(dir, `${name}.crt`)) };
  };
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    caPem: readFileSync(join(dir, 'ca.pem')),
    issue,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The SHA-256 fingerprint of a PEM certificate file, as Node prints it (AB:CD:...). */
export function fingerprintOf(pemPath) {
  return new X509Certificate(readFileSync(pemPath)).fingerprint256;
}

/** The TLS port from a server's log (`tls_port=N` in its "listening" line). */
export function tlsPortOf(log) {
  const m = /msg="listening".* tls_port=(\d+)/.exec(log);
  if (!m) throw new Error(`no tls_port in the log:\n${log}`);
  return Number(m[1]);
}
