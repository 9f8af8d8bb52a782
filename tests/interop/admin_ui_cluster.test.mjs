// The Admin UI across a Redis cluster (issue 13; docs/admin-ui.md): two Herald nodes with --admin-ui
// (--shards $HERALD_SHARDS or 2) and one Node.js socket.io 4.7.2 node with @socket.io/redis-adapter
// and @socket.io/admin-ui 0.5.1's instrument(), all on one Redis (HERALD_TEST_REDIS_URL). An Admin
// UI connected to one Herald node sees every node as one server (server_stats from each), the
// sockets of every node (all_sockets, socket_connected, room_joined), and its actions reach sockets
// on the other nodes (join, _disconnect with and without close); a UI on the Node.js node lists
// Herald's sockets as its own.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { io as connect } from 'socket.io-client';
import { instrument } from '@socket.io/admin-ui';
import { startHerald } from './lib/server.mjs';
import { startNodeNode } from './lib/sio-redis-node.mjs';
import { next } from './lib/wait.mjs';

const REDIS = process.env.HERALD_TEST_REDIS_URL;
const SECRET = 'admin-ui-cluster-secret-0123456789';
const WAIT = 5000;
const b64url = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


function mint(sub, role) {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: String(sub), role, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${crypto.createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

describe('the Admin UI in a Redis cluster of Herald and Node.js nodes', { skip: !REDIS && 'HERALD_TEST_REDIS_URL is not set' }, () => {
  const prefix = `herald-admin-${crypto.randomBytes(4).toString('hex')}`;
  let h1, h2, node;
  const sockets = [];

  async function client(url, auth, opts = {}) {
    const s = connect(url, { transports: ['websocket'], forceNew: true, reconnection: false, auth, ...opts });
    sockets.push(s);
    await new Promise((resolve, reject) => {
      s.once('connect', resolve);
      s.once('connect_error', reject);
    });
    return s;
  }

  before(async () => {
    const args = (id) => ['--redis-url', REDIS, '--redis-prefix', prefix, '--jwt-secret', SECRET, '--demo-users', 'false',
      '--admin-ui', '--admin-ui-server-id', id, '--shards', process.env.HERALD_SHARDS || '2'];
    [h1, h2] = await Promise.all([startHerald(args('h1')), startHerald(args('h2'))]);
    node = await startNodeNode({ redisUrl: REDIS, prefix });
    instrument(node.io, { auth: false, serverId: 'node-1', mode: 'development' });
    // every node counted (Herald polls the count every 2 s): fetchSockets then waits for each
    const deadline = Date.now() + 10000;
    let nodes = [];
    while (Date.now() < deadline) {
      nodes = await Promise.all([h1, h2].map(async (h) => (await (await fetch(h.url('/health'))).json()).cluster.nodes));
      if (nodes.every((n) => n === 3)) break;
      await sleep(100);
    }
    assert.deepEqual(nodes, [3, 3], 'both Herald nodes count the three nodes');
  });
  after(async () => {
    for (const s of sockets) s.close();
    // instrument()'s 2 s stats timer is never cleared (admin-ui 0.5.1): its next emit would publish on
    // the Node node's Redis client once quit, an unhandled "The client is closed" that fails the file
    if (node) node.io.of('/admin').emit = () => true;
    await node?.stop();
    await Promise.all([h1?.stop(), h2?.stop()]);
  });

  test('server_stats of every node; sockets of every node, live and listed; actions reach other nodes', { timeout: 20000 }, async () => {
    const ui = await client(h1.url('/admin'), { token: mint(1, 'admin') });
    const servers = new Set();
    ui.on('server_stats', (st) => servers.add(st.serverId));

    // live: a socket on the other Herald node, and one on the Node.js node
    const onH2 = next(ui, 'socket_connected', (sock) => sock.nsp === '/' && sock.data?.sub === '61');
    const far = await client(h2.url('/'), { token: mint(61, 'user') });
    const [farShape] = await onH2;
    assert.equal(farShape.id, far.id);
    assert.equal(farShape.clientId, far.io.engine.id.slice(0, 12));
    const onNode = next(ui, 'socket_connected', (sock) => sock.nsp === '/' && sock.handshake?.query?.from === 'node-client');
    const nodeClient = await client(`${node.url}/`, {}, { query: { from: 'node-client' } });
    assert.equal((await onNode)[0].id, nodeClient.id);

    // listed: a second UI on h1 gets all_sockets with both
    const ui2 = connect(h1.url('/admin'), { transports: ['websocket'], forceNew: true, reconnection: false, auth: { token: mint(2, 'admin') } });
    sockets.push(ui2);
    const [all] = await next(ui2, 'all_sockets');
    const ids = all.map((s) => s.id);
    assert.ok(ids.includes(far.id), 'the other Herald node\'s socket');
    const farListed = all.find((s) => s.id === far.id);
    assert.deepEqual(farListed.data, { sub: '61', role: 'user' });
    assert.equal(farListed.clientId, far.io.engine.id.slice(0, 12));
    assert.equal(farListed.handshake.address, '127.0.0.1', 'its handshake came along');
    assert.ok(farListed.rooms.includes(far.id));
    assert.ok(ids.includes(nodeClient.id), 'the Node.js node\'s socket');
    const fromNode = all.find((s) => s.id === nodeClient.id);
    assert.equal(fromNode.clientId, nodeClient.io.engine.id.slice(0, 12), 'Node\'s data._admin read');
    assert.deepEqual(fromNode.data, {});

    // the other way round: a UI on the Node.js node (admin-ui's own server) lists Herald's sockets
    const nodeUi = connect(`${node.url}/admin`, { transports: ['websocket'], forceNew: true, reconnection: false });
    sockets.push(nodeUi);
    const [nodeAll] = await next(nodeUi, 'all_sockets');
    const farOnNode = nodeAll.find((s) => s.id === far.id);
    assert.ok(farOnNode, 'admin-ui\'s fetchSockets reaches Herald');
    assert.equal(farOnNode.clientId, far.io.engine.id.slice(0, 12));
    assert.equal(farOnNode.handshake.address, '127.0.0.1');
    assert.deepEqual(farOnNode.data, { sub: '61', role: 'user' });

    // join on the Node.js node: its own instrument() reports room_joined to the Herald UI
    const joined = next(ui, 'room_joined', (nsp, room, id) => room === 'ops' && id === nodeClient.id);
    ui.emit('join', '/', 'ops', nodeClient.id);
    await joined;
    // join on the other Herald node
    const joinedFar = next(ui, 'room_joined', (nsp, room, id) => room === 'ops' && id === far.id);
    ui.emit('join', '/', 'ops', far.id);
    await joinedFar;

    // _disconnect on the other Herald node: namespace only, then the whole connection
    const farId = far.id;
    const reason = new Promise((resolve) => far.once('disconnect', resolve));
    const gone = next(ui, 'socket_disconnected', (nsp, id) => id === farId);
    ui.emit('_disconnect', '/', false, farId);
    assert.equal(await reason, 'io server disconnect');
    assert.equal((await gone)[2], 'server namespace disconnect');
    const far2 = await client(h2.url('/'), { token: mint(62, 'user') });
    const far2Id = far2.id;
    const closed = new Promise((resolve) => far2.once('disconnect', resolve));
    const gone2 = next(ui, 'socket_disconnected', (nsp, id) => id === far2Id);
    ui.emit('_disconnect', '/', true, far2Id);
    assert.equal(await closed, 'transport close');
    assert.equal((await gone2)[2], 'forced server close');

    // every node is a server of its own
    const deadline = Date.now() + 4500;
    while (servers.size < 3 && Date.now() < deadline) await sleep(100);
    assert.deepEqual([...servers].sort(), ['h1', 'h2', 'node-1']);
  });
});
