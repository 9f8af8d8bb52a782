// Small waiting helpers shared by the interop tests: sleep, one event, polling, a free port.
import net from 'node:net';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The arguments of the next `event` on emitter (a socket.io-client socket, a child process, ...);
 * rejects after ms. */
export function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
    emitter.once(event, (...args) => { clearTimeout(timer); resolve(args); });
  });
}

/** Polls fn (sync or async) every `every` ms until it returns a truthy value, which it returns;
 * throws "<what>: not within <ms> ms" after ms. */
export async function until(fn, ms, what, every = 50) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(every);
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** The arguments of the next `event` on emitter that pass match(...args); rejects after ms. */
export function next(emitter, event, match = () => true, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { emitter.off(event, on); reject(new Error(`timed out waiting for ${event}`)); }, ms);
    const on = (...args) => {
      if (!match(...args)) return;
      clearTimeout(t);
      emitter.off(event, on);
      resolve(args);
    };
    emitter.on(event, on);
  });
}
