#!/usr/bin/python3
"""A second Socket.IO load generator, written apart from bench/loadgen.c on another client stack:
Python asyncio with the `websockets` library (Debian's python3-websockets), speaking Engine.IO v4 /
Socket.IO v5 over WebSocket itself. It exists so that a Socket.IO figure is not an artefact of one
generator: run it against Herald and against bench/sio-server.js and compare with herald-loadgen.

Modes (the handlers of --test-handlers / bench/sio-server.js):
  fanout  --connections N --window K: N receivers + 1 publisher emitting `broadcast`, K in flight;
          a broadcast leaves the window when the publisher gets its own `msg`.
  ack     --connections N: each emits `echo` with an ack id and waits for the answer.
  idle    --connections N: opens N sockets and holds them for --hold s (memory with `ps`).
Server CPU (user + system, every thread) comes from /proc/PID/stat of --server-pid over the
measured window. Prints one JSON line.

Usage: /usr/bin/python3 bench/sio_load.py fanout --port P --server-pid PID [--connections 1000]
       [--window 1] [--duration 5] [--warmup 1] [--size 32]
"""
import argparse
import asyncio
import json
import os
import resource
import sys
import time

import websockets

HZ = os.sysconf('SC_CLK_TCK')


def proc_cpu_s(pid):
    """utime + stime of pid in seconds (None without a pid)."""
    if not pid:
        return None
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def self_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Socket:
    """One Socket.IO client on namespace / over a WebSocket: open, CONNECT, pings answered."""

    def __init__(self, url):
        self.url = url
        self.ws = None
        self.on_event = None  # fn(text) for each `42...` packet
        self.on_ack = None    # fn(text) for each `43...` packet

    async def open(self):
        self.ws = await websockets.connect(self.url, compression=None, max_size=None, ping_interval=None)
        opened = await self.ws.recv()
        if not opened.startswith('0{'):
            raise RuntimeError(f'expected an Engine.IO open packet, got {opened[:40]!r}')
        await self.ws.send('40')
        while True:
            p = await self.ws.recv()
            if p.startswith('40'):
                return
            if p.startswith('44'):
                raise RuntimeError(f'CONNECT refused: {p[:80]}')
            if p == '2':
                await self.ws.send('3')

    async def run(self):
        """Reads until the connection closes, dispatching packets."""
        try:
            async for p in self.ws:
                if p == '2':
                    await self.ws.send('3')
                elif p.startswith('42') and self.on_event:
                    self.on_event(p)
                elif p.startswith('43') and self.on_ack:
                    self.on_ack(p)
        except websockets.ConnectionClosed:
            pass


async def open_all(url, n, concurrency=200):
    sem = asyncio.Semaphore(concurrency)

    async def one():
        async with sem:
            for attempt in range(4):
                s = Socket(url)
                try:
                    await s.open()
                    return s
                except (OSError, RuntimeError, websockets.WebSocketException):
                    await asyncio.sleep(0.1 * (attempt + 1))
            raise RuntimeError('could not connect after 4 attempts')

    return await asyncio.gather(*(one() for _ in range(n)))


async def measure(a, warmup, duration, counter):
    """Waits warmup, then counts over duration: (items, wall s, server CPU s, own CPU s)."""
    await asyncio.sleep(warmup)
    c0, s0, t0, o0 = counter(), proc_cpu_s(a.server_pid), time.monotonic(), self_cpu_s()
    await asyncio.sleep(duration)
    c1, s1, t1, o1 = counter(), proc_cpu_s(a.server_pid), time.monotonic(), self_cpu_s()
    srv = None if s0 is None else s1 - s0
    return c1 - c0, t1 - t0, srv, o1 - o0


def report(mode, a, items, wall, srv, own, **extra):
    out = {'mode': mode, 'generator': 'sio_load.py (python asyncio + websockets)', 'connections': a.connections,
           'duration_s': round(wall, 3), 'items': items, 'items_per_s': round(items / wall, 1),
           'server_cpu_s': None if srv is None else round(srv, 3),
           'server_cpu_us_per_item': None if srv is None or not items else round(1e6 * srv / items, 3),
           'generator_cpu_pct': round(100 * own / wall, 1)}
    out.update(extra)
    print(json.dumps(out), flush=True)


async def fanout(a, url):
    receivers = await open_all(url, a.connections)
    pub = (await open_all(url, 1))[0]
    payload = 'x' * a.size
    frame = '42' + json.dumps(['broadcast', payload], separators=(',', ':'))
    state = {'deliveries': 0, 'sent': 0, 'done': 0, 'bad': 0}
    window = asyncio.Semaphore(a.window)

    def on_receiver(p):
        if p.startswith('42["msg"'):
            state['deliveries'] += 1

    def on_publisher(p):
        if p.startswith('42["msg"'):
            state['deliveries'] += 1
            state['done'] += 1
            window.release()

    for s in receivers:
        s.on_event = on_receiver
    pub.on_event = on_publisher
    readers = [asyncio.create_task(s.run()) for s in receivers + [pub]]
    stop = False

    async def publish():
        while not stop:
            await window.acquire()
            await pub.ws.send(frame)
            state['sent'] += 1

    task = asyncio.create_task(publish())
    items, wall, srv, own = await measure(a, a.warmup, a.duration, lambda: state['deliveries'])
    stop = True
    task.cancel()
    for _ in range(50):  # drain: every copy of what was sent
        if state['deliveries'] >= state['sent'] * (a.connections + 1):
            break
        await asyncio.sleep(0.1)
    expected = state['sent'] * (a.connections + 1)
    for s in receivers + [pub]:
        await s.ws.close()
    for r in readers:
        r.cancel()
    report('fanout', a, items, wall, srv, own, window=a.window, receivers=a.connections,
           broadcasts=state['sent'], deliveries_total=state['deliveries'], deliveries_expected=expected,
           drained=state['deliveries'] == expected)


async def ack(a, url):
    socks = await open_all(url, a.connections)
    payload = 'y' * a.size
    state = {'acks': 0, 'bad': 0}
    stop = False

    async def loop(s):
        next_id = 0
        got = asyncio.Event()
        want = {}

        def on_ack(p):
            i = 2
            while i < len(p) and p[i].isdigit():
                i += 1
            if int(p[2:i]) == want.get('id') and json.loads(p[i:]) == [payload]:
                state['acks'] += 1
            else:
                state['bad'] += 1
            got.set()

        s.on_ack = on_ack
        reader = asyncio.create_task(s.run())
        while not stop:
            want['id'] = next_id
            got.clear()
            await s.ws.send(f'42{next_id}' + json.dumps(['echo', payload], separators=(',', ':')))
            await got.wait()
            next_id += 1
        await s.ws.close()
        reader.cancel()

    tasks = [asyncio.create_task(loop(s)) for s in socks]
    items, wall, srv, own = await measure(a, a.warmup, a.duration, lambda: state['acks'])
    stop = True
    await asyncio.wait(tasks, timeout=5)
    report('ack', a, items, wall, srv, own, bad_acks=state['bad'])


async def idle(a, url):
    socks = await open_all(url, a.connections)
    readers = [asyncio.create_task(s.run()) for s in socks]
    if a.ready_file:
        with open(a.ready_file, 'w') as f:
            f.write(f'open={len(socks)}\n')
    await asyncio.sleep(a.hold)
    for s in socks:
        await s.ws.close()
    for r in readers:
        r.cancel()
    report('idle', a, len(socks), max(a.hold, 1e-9), None, 0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('mode', choices=['fanout', 'ack', 'idle'])
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--path', default='/socket.io/')
    p.add_argument('--server-pid', type=int, default=0)
    p.add_argument('--connections', type=int, default=1000)
    p.add_argument('--window', type=int, default=1)
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--duration', type=float, default=5)
    p.add_argument('--warmup', type=float, default=1)
    p.add_argument('--hold', type=float, default=10)
    p.add_argument('--ready-file', default='')
    a = p.parse_args()
    if not (1 <= a.connections <= 100000 and 1 <= a.window <= 1024 and 0 <= a.size <= 1 << 20 and a.duration > 0):
        p.error('out of range: connections 1..100000, window 1..1024, size 0..1 MiB, duration > 0')
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = f'ws://{a.host}:{a.port}{a.path}?EIO=4&transport=websocket'
    try:
        asyncio.run({'fanout': fanout, 'ack': ack, 'idle': idle}[a.mode](a, url))
    except (OSError, RuntimeError) as e:
        print(f'sio_load.py: {e}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
