import { io } from 'socket.io-client';
import { startHerald } from '../tests/interop/lib/server.mjs';
const srv = await startHerald(['--test-handlers', '--log-level', 'debug']);
srv.child.on('exit', (c, s) => console.log('EXIT', c, s));
const transports = [process.argv[2] || 'polling'];
const s = io(srv.url(), { transports, forceNew: true, reconnection: false });
await new Promise((r) => s.on('connect', r));
console.log('connected', s.id, s.io.engine.transport.name);
s.close();
await new Promise((r) => setTimeout(r, 300));
console.log(srv.log.slice(-3000)); try { await srv.stop(); } catch (e) { console.log(e.message.split('\n').filter(l => /ERROR|#[0-9]/.test(l)).slice(0, 12).join('\n')); }
