"""WebSocket echo against python3-websockets (10.x, asyncio): round trips at every length-encoding
boundary, fragmentation, ping/pong, permessage-deflate negotiated by default, the close handshake,
and an invalid UTF-8 text frame written raw (expects close 1007).

Run with Debian's /usr/bin/python3: HERALD_BIN=build/herald /usr/bin/python3 tests/interop/ws_echo_test.py
"""
import asyncio
import os
import random
import struct
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from herald_server import HeraldServer  # noqa: E402

SIZES = [0, 125, 126, 65535, 65536, 1024 * 1024]
TIMEOUT = 20


def random_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def random_text(n, seed):
    """n bytes of valid UTF-8 mixing 1- to 4-byte characters."""
    rnd = random.Random(seed)
    chars = ["a", "Z", "7", " ", "é", "ж", "€", "中", "😀"]
    out, size = [], 0
    while size < n:
        c = rnd.choice(chars)
        if size + len(c.encode()) > n:
            c = "x"
        out.append(c)
        size += len(c.encode())
    return "".join(out)


def masked_frame(opcode, payload, fin=True):
    """A client (masked) frame with a fixed masking key."""
    mask = b"\x37\xfa\x21\x3d"
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


class EchoTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = HeraldServer("--echo-endpoint")
        cls.url = cls.server.ws_url()

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"herald exited with {code}:\n{cls.server.log}")

    async def asyncSetUp(self):
        # IsolatedAsyncioTestCase runs the loop in debug mode; its slow-callback warnings (1 MiB
        # masks and UTF-8 checks take a while) are noise here.
        asyncio.get_running_loop().set_debug(False)

    def connect(self, **kw):
        return websockets.connect(self.url, max_size=None, open_timeout=10, close_timeout=5, **kw)

    async def round_trip(self, ws, payload):
        await ws.send(payload)
        got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        self.assertIs(type(got), type(payload), "opcode preserved (str for text, bytes for binary)")
        self.assertEqual(len(got), len(payload))
        self.assertTrue(got == payload, "content byte for byte")

    async def test_text_round_trips(self):
        async with self.connect() as ws:
            for size in SIZES:
                with self.subTest(size=size):
                    await self.round_trip(ws, random_text(size, size + 1))

    async def test_binary_round_trips(self):
        async with self.connect() as ws:
            for size in SIZES:
                with self.subTest(size=size):
                    await self.round_trip(ws, random_bytes(size, size + 7))

    async def test_round_trips_without_compression(self):
        async with self.connect(compression=None) as ws:
            self.assertEqual(ws.extensions, [])
            for size in SIZES:
                with self.subTest(size=size):
                    await self.round_trip(ws, random_bytes(size, size + 11))
                    await self.round_trip(ws, random_text(size, size + 13))

    async def test_fragmented_send(self):
        async with self.connect() as ws:
            parts = ["frag-one ", "frag-two ", "frag-three €"]
            await ws.send(iter(parts))
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
            self.assertEqual(got, "".join(parts))
            bparts = [random_bytes(70000, i) for i in range(4)]
            await ws.send(iter(bparts))
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
            self.assertEqual(got, b"".join(bparts))

    async def test_ping_pong(self):
        async with self.connect() as ws:
            for payload in [b"", b"hello", random_bytes(125, 3)]:
                with self.subTest(len=len(payload)):
                    waiter = await ws.ping(payload)
                    # websockets resolves the waiter only for a pong with the same payload
                    await asyncio.wait_for(waiter, TIMEOUT)

    async def test_deflate_negotiated_by_default(self):
        async with self.connect() as ws:
            names = [e.name for e in ws.extensions]
            self.assertEqual(names, ["permessage-deflate"])
            ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
            self.assertIn("permessage-deflate", ext)
            self.assertIn("server_no_context_takeover", ext)
            text = "compress me please " * 50000
            await self.round_trip(ws, text)
            for i in range(200):
                await self.round_trip(ws, f"message {i} " + "x" * (i * 37 % 3000))

    async def test_close_1000_round_trip(self):
        ws = await self.connect()
        await self.round_trip(ws, "before close")
        await asyncio.wait_for(ws.close(1000, "done here"), TIMEOUT)
        self.assertEqual(ws.close_code, 1000, "the server answered with 1000")

    async def test_close_4000_round_trip(self):
        ws = await self.connect()
        await asyncio.wait_for(ws.close(4000, "app"), TIMEOUT)
        self.assertEqual(ws.close_code, 4000)

    async def test_invalid_utf8_text_frame_closes_1007(self):
        async with self.connect(compression=None) as ws:
            ws.transport.write(masked_frame(0x1, b"bad \xff\xfe utf-8"))
            with self.assertRaises(ConnectionClosed) as ctx:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            self.assertIsNotNone(ctx.exception.rcvd, "the server sent a close frame")
            self.assertEqual(ctx.exception.rcvd.code, 1007)
        # the server keeps serving
        async with self.connect() as ws:
            await self.round_trip(ws, "still fine")

    async def test_unmasked_frame_closes_1002(self):
        async with self.connect(compression=None) as ws:
            ws.transport.write(b"\x81\x05hello")  # no MASK bit
            with self.assertRaises(ConnectionClosed) as ctx:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            self.assertIsNotNone(ctx.exception.rcvd)
            self.assertEqual(ctx.exception.rcvd.code, 1002)

    async def test_many_concurrent_clients(self):
        async def one(i):
            async with self.connect() as ws:
                for k in range(10):
                    await self.round_trip(ws, f"client {i} message {k}")
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(20))), TIMEOUT * 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
