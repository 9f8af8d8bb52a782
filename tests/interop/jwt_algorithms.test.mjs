// Tokens with RS256 / ES256 (--jwt-algorithm, --jwt-public-key, --jwt-private-key) and required
// iss/aud (--jwt-issuer, --jwt-audience): accepted when signed right, refused otherwise — including
// the classic switch to HS256 signed with the public key, and alg none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createHmac, sign } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startHerald, HERALD_BIN } from './lib/server.mjs';

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

function jwt(header, claims, signer) {
  const head = `${b64(header)}.${b64(claims)}`;
  return `${head}.${signer ? signer(head) : ''}`;
}

/** First JSON-protocol frame for a token: 'connect' or the error code. */
function connectWith(srv, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(srv.wsUrl(`/api/v1/ws?token=${token}`));
    ws.once('message', (d) => {
      const f = JSON.parse(d);
      ws.terminate();
      resolve(f.type === 'connect' ? 'connect' : f.data.code);
    });
    ws.once('error', reject);
  });
}

for (const alg of ['RS256', 'ES256']) {
  test(`${alg}: tokens signed with the private key are accepted, switches and forgeries refused`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-jwt-'));
    const { publicKey, privateKey } = alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pub = publicKey.export({ type: 'spki', format: 'pem' });
    writeFileSync(join(dir, 'pub.pem'), pub);
    writeFileSync(join(dir, 'priv.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const args = ['--jwt-algorithm', alg, '--jwt-public-key', join(dir, 'pub.pem'), '--jwt-private-key',
      join(dir, 'priv.pem'), '--jwt-issuer', 'herald-test', '--jwt-audience', 'console', '--demo-users', 'false'];
    const srv = await startHerald(args);
    try {
      const claims = { sub: '7', role: 'user', exp: now() + 600, iss: 'herald-test', aud: 'console' };
      const signAsym = (payload) => (h) => sign('sha256', Buffer.from(h), alg === 'ES256'
        ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey).toString('base64url');
      assert.equal(await connectWith(srv, jwt({ alg, typ: 'JWT' }, claims, signAsym())), 'connect');
      // herald token mints with the private key and the configured iss/aud
      const minted = execFileSync(HERALD_BIN, ['token', '--sub', '9', '--role', 'admin', ...args], { encoding: 'utf8' }).trim();
      assert.equal(await connectWith(srv, minted), 'connect');
      // algorithm switch: HS256 "signed" with the public key text
      const hs = jwt({ alg: 'HS256', typ: 'JWT' }, claims, (h) => createHmac('sha256', pub).update(h).digest('base64url'));
      assert.equal(await connectWith(srv, hs), 1001);
      assert.equal(await connectWith(srv, jwt({ alg: 'none' }, claims, null)), 1001);
      // wrong issuer / audience / expired, signed correctly
      assert.equal(await connectWith(srv, jwt({ alg }, { ...claims, iss: 'other' }, signAsym())), 1001);
      assert.equal(await connectWith(srv, jwt({ alg }, { ...claims, aud: 'other' }, signAsym())), 1001);
      assert.equal(await connectWith(srv, jwt({ alg }, { ...claims, exp: now() - 60 }, signAsym())), 1001);
      // another key pair
      const other = alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const forged = jwt({ alg }, claims, (h) => sign('sha256', Buffer.from(h), alg === 'ES256'
        ? { key: other.privateKey, dsaEncoding: 'ieee-p1363' } : other.privateKey).toString('base64url'));
      assert.equal(await connectWith(srv, forged), 1001);
    } finally {
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('an unknown --jwt-algorithm is refused at start, naming the option', () => {
  assert.throws(() => execFileSync(HERALD_BIN, ['serve', '--jwt-algorithm', 'HS512'], { encoding: 'utf8', stdio: 'pipe' }),
    (err) => /jwt-algorithm/.test(err.stderr));
});
