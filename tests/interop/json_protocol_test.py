"""The Herald JSON protocol (/api/v1/ws) with python3-websockets (10.x, asyncio): connect with a
token, subscribe to user:<sub>, receive a notification published through POST /api/v1/publish
(urllib, X-API-Key), ack it (no redelivery), error 2000 for a non-JSON frame, error 3001 for a
forbidden topic, and a clean close.

Run with Debian's /usr/bin/python3: HERALD_BIN=build/herald /usr/bin/python3 tests/interop/json_protocol_test.py
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import websockets  # noqa: E402

from herald_server import HeraldServer  # noqa: E402

SECRET = "py-interop-secret-0123456789abcdef"
API_KEY = "py-interop-api-key"
TIMEOUT = 5


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint(sub, role="user", ttl=3600):
    """An HS256 JWT for the server's --jwt-secret."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": sub, "role": role, "iat": now, "exp": now + ttl}).encode())
    signing = f"{header}.{claims}".encode()
    sig = b64url(hmac.new(SECRET.encode(), signing, hashlib.sha256).digest())
    return f"{header}.{claims}.{sig}"


class JsonProtocolTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = HeraldServer("--jwt-secret", SECRET, "--api-key", API_KEY, "--ack-timeout", "300")

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"herald exited with {code}:\n{cls.server.log[-3000:]}")

    def publish(self, payload):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.server.port}/api/v1/publish", data=json.dumps(payload).encode(), method="POST",
            headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=TIMEOUT) as res:
            self.assertEqual(res.status, 200)
            return json.loads(res.read())

    async def recv(self, ws):
        return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))

    async def reply_to(self, ws, message_id):
        """The ack or error answering the client frame message_id (skipping anything else)."""
        while True:
            f = await self.recv(ws)
            data = f.get("data") or {}
            if f["type"] == "ack" and data.get("messageId") == message_id:
                return f
            if f["type"] == "error" and (data.get("details") or {}).get("messageId") == message_id:
                return f

    async def heartbeat(self, ws):
        """A round trip: whatever the server sent before is read first (returned)."""
        await ws.send(json.dumps({"type": "heartbeat", "data": {}, "timestamp": int(time.time() * 1000)}))
        before = []
        while True:
            f = await self.recv(ws)
            if f["type"] == "heartbeat":
                self.assertIsInstance(f["data"]["serverTime"], int)
                return before
            before.append(f)

    async def test_notification_round_trip_and_errors(self):
        url = self.server.ws_url(f"/api/v1/ws?token={mint('pyuser')}&clientId=py-1&protocol=1.0")
        async with websockets.connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            hello = await self.recv(ws)
            self.assertEqual(hello["type"], "connect")
            self.assertEqual(hello["data"]["clientId"], "py-1")
            self.assertIsInstance(hello["data"]["serverTime"], int)
            self.assertIsInstance(hello["messageId"], str)

            # subscribe to the user's own topic
            await ws.send(json.dumps({"type": "subscribe", "data": {"topic": "user:pyuser"}, "messageId": "py-sub-1",
                                      "timestamp": int(time.time() * 1000)}))
            ack = await self.reply_to(ws, "py-sub-1")
            self.assertEqual(ack["type"], "ack", ack)
            self.assertEqual(ack["data"]["topic"], "user:pyuser")

            # a notification from a backend
            res = await asyncio.to_thread(self.publish, {"topic": "user:pyuser", "type": "notification",
                                                         "data": {"title": "hi", "n": 1}})
            self.assertEqual(res["delivered"], 1)
            note = await self.recv(ws)
            self.assertEqual(note["type"], "notification", note)
            self.assertEqual(note["data"], {"title": "hi", "n": 1})
            self.assertEqual(note["messageId"], res["messageId"])
            self.assertEqual(note["sequence"], res["sequence"])
            self.assertEqual(note["topic"], "user:pyuser")

            # ack it: not sent again after the 300 ms ack timeout
            await ws.send(json.dumps({"type": "ack", "data": {"messageId": note["messageId"]}}))
            await asyncio.sleep(0.9)
            extra = await self.heartbeat(ws)
            self.assertEqual([f for f in extra if f.get("messageId") == note["messageId"]], [], "redelivered after ack")

            # a non-JSON frame: 2000, and the connection stays open
            await ws.send("this is not json")
            err = await self.recv(ws)
            self.assertEqual(err["type"], "error", err)
            self.assertEqual(err["data"]["code"], 2000, err)
            self.assertEqual(await self.heartbeat(ws), [])

            # someone else's topic: 3001 naming the frame
            await ws.send(json.dumps({"type": "subscribe", "data": {"topic": "user:someone-else"},
                                      "messageId": "py-sub-2"}))
            err = await self.reply_to(ws, "py-sub-2")
            self.assertEqual(err["type"], "error", err)
            self.assertEqual(err["data"]["code"], 3001, err)
            self.assertEqual(await self.heartbeat(ws), [])
        self.assertEqual(ws.close_code, 1000)

    async def test_bad_token_refused(self):
        url = self.server.ws_url("/api/v1/ws?token=bogus&protocol=1.0")
        async with websockets.connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            err = await self.recv(ws)
            self.assertEqual(err["type"], "error")
            self.assertEqual(err["data"]["code"], 1001)
            with self.assertRaises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        self.assertEqual(ws.close_code, 1008)

    async def test_publish_without_credentials_401(self):
        req = urllib.request.Request(f"http://127.0.0.1:{self.server.port}/api/v1/publish",
                                     data=b'{"topic":"public:x","type":"data"}', method="POST")
        with self.assertRaises(urllib.error.HTTPError) as ctx:
            await asyncio.to_thread(urllib.request.urlopen, req, None, TIMEOUT)
        self.assertEqual(ctx.exception.code, 401)
        body = json.loads(ctx.exception.read())
        ctx.exception.close()
        self.assertEqual(body["code"], 401)
        self.assertIsInstance(body["message"], str)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
