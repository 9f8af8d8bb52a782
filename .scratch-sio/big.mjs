import { startHerald } from '../tests/interop/lib/server.mjs';
const h = await startHerald(['--test-handlers', '--max-http-buffer-size', '1024']);
h.child.on('exit', (c, s) => console.log('HERALD EXIT', c, s, h.log.split('\n').filter((l,i,a)=>a.indexOf(l)===i).join('\n').slice(0, 5000)));
const u = (q) => h.url('/socket.io/?EIO=4&transport=polling' + q);
const o5 = JSON.parse((await (await fetch(u(''))).text()).slice(1));
const r = await fetch(u('&sid=' + o5.sid), { method: 'POST', body: '4' + 'x'.repeat(2000) }).catch(e => e.message);
console.log(r.status ?? r);
await h.stop().catch(e => console.log('stop', e.message.slice(0, 100)));
