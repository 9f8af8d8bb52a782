"""The Herald JSON protocol across two Herald nodes on one Redis (HERALD_TEST_REDIS_URL, own
--redis-prefix), with python3-websockets (10.x, asyncio): a client on node B subscribes, a client on
node A publishes a `data` frame to the topic (its ack carries the cluster sequence), the client on B
receives it with that sequence and message id; then a second client on B replays it with
lastSequence. Skipped when HERALD_TEST_REDIS_URL is not set.

Run with Debian's /usr/bin/python3:
HERALD_TEST_REDIS_URL=redis://127.0.0.1:6379 HERALD_BIN=build/herald /usr/bin/python3 tests/interop/cluster_json_test.py
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import websockets  # noqa: E402

from herald_server import HeraldServer  # noqa: E402

REDIS = os.environ.get("HERALD_TEST_REDIS_URL", "")
SECRET = "py-cluster-secret-0123456789abcdef"
API_KEY = "py-cluster-api-key"
TIMEOUT = 5


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def admin_token():
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": "py-admin", "role": "admin", "iat": now, "exp": now + 3600}).encode())
    signing = f"{header}.{claims}".encode()
    return f"{header}.{claims}.{b64url(hmac.new(SECRET.encode(), signing, hashlib.sha256).digest())}"


def nodes_seen(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=TIMEOUT) as res:
        return json.loads(res.read()).get("cluster", {}).get("nodes")


@unittest.skipUnless(REDIS, "HERALD_TEST_REDIS_URL is not set")
class ClusterJsonTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        args = ("--redis-url", REDIS, "--redis-prefix", "py-json-" + secrets.token_hex(4), "--jwt-secret", SECRET,
                "--api-key", API_KEY)
        cls.a = HeraldServer(*args)
        cls.b = HeraldServer(*args)
        deadline = time.time() + 10
        while nodes_seen(cls.a) != 2 or nodes_seen(cls.b) != 2:
            if time.time() > deadline:
                raise AssertionError("the nodes did not see each other")
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        for s in (cls.a, cls.b):
            code = s.stop()
            if code != 0:
                raise AssertionError(f"herald exited with {code}:\n{s.log[-3000:]}")

    async def connect(self, server):
        ws = await websockets.connect(server.ws_url(f"/api/v1/ws?token={admin_token()}"))
        hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        self.assertEqual(hello["type"], "connect")
        return ws

    async def until(self, ws, pred):
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            if pred(frame):
                return frame

    async def test_publish_on_one_node_reaches_the_other_and_replays_there(self):
        sub = await self.connect(self.b)
        await sub.send(json.dumps({"type": "subscribe", "messageId": "s1", "data": {"topic": "py-topic"}}))
        ack = await self.until(sub, lambda f: f["type"] == "ack")
        start = ack["data"]["sequence"]
        pub = await self.connect(self.a)
        await pub.send(json.dumps({"type": "data", "messageId": "p1", "topic": "py-topic", "data": {"hello": "py"}}))
        pack = await self.until(pub, lambda f: f["type"] == "ack")
        self.assertEqual(pack["data"]["sequence"], start + 1)
        got = await self.until(sub, lambda f: f["type"] == "data")
        self.assertEqual((got["topic"], got["sequence"], got["data"]), ("py-topic", start + 1, {"hello": "py"}))
        self.assertEqual(got["messageId"], pack["data"]["publishedId"])
        late = await self.connect(self.b)
        await late.send(json.dumps({"type": "subscribe", "messageId": "s2",
                                    "data": {"topic": "py-topic", "lastSequence": start}}))
        lack = await self.until(late, lambda f: f["type"] == "ack")
        self.assertEqual((lack["data"]["recovered"], lack["data"]["sequence"]), (True, start + 1))
        replayed = await self.until(late, lambda f: f["type"] == "data")
        self.assertEqual(replayed["messageId"], got["messageId"])
        for ws in (sub, pub, late):
            await ws.close()


if __name__ == "__main__":
    unittest.main()
