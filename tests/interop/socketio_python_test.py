"""Socket.IO interop with python3-socketio (Debian's 5.x, sync socketio.Client) against
`herald serve --test-handlers`: connect with an auth payload, echo with a callback and with call(),
message-back (text and bytes), a broadcast triggered by another client, the /custom namespace,
disconnect. Long-polling always; WebSocket too when python3-websocket (websocket-client) is present.

Run with Debian's /usr/bin/python3: HERALD_BIN=build/herald /usr/bin/python3 tests/interop/socketio_python_test.py
"""
import os
import queue
import sys
import threading
import time
import unittest
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import socketio  # noqa: E402

from herald_server import HeraldServer  # noqa: E402

try:
    import websocket  # noqa: F401  (websocket-client, needed by python-engineio for WebSocket)
    HAVE_WEBSOCKET = True
except ImportError:
    HAVE_WEBSOCKET = False

TIMEOUT = 10


def strip_offset(args):
    """Herald's default connection state recovery appends an offset (a string) to stored events, as
    Node's socket.io does; python-socketio passes it on as an extra argument."""
    return args[:-1] if args and isinstance(args[-1], str) else args


class Recorder:
    """Collects the arguments of one event, thread-safe."""

    def __init__(self, sio, event, namespace="/"):
        self.items = queue.Queue()
        sio.on(event, self._on, namespace=namespace)

    def _on(self, *args):
        self.items.put(args)

    def get(self, timeout=TIMEOUT):
        return self.items.get(timeout=timeout)


class SocketIOPythonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = HeraldServer("--test-handlers")
        cls.url = f"http://127.0.0.1:{cls.server.port}"

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.clients = []
        # python-engineio keeps its requests.Session (polling) open after disconnect
        warnings.filterwarnings("ignore", category=ResourceWarning)

    def tearDown(self):
        for c in self.clients:
            if c.connected:
                c.disconnect()
            http = getattr(c.eio, "http", None)
            if http is not None:
                http.close()

    def client(self, **connect_args):
        sio = socketio.Client(reconnection=False)
        self.clients.append(sio)
        return sio, connect_args

    def connect(self, sio, connect_args):
        args = {"transports": ["polling"], "wait_timeout": TIMEOUT, **connect_args}
        sio.connect(self.url, **args)
        self.assertTrue(sio.connected)
        return sio

    def test_connect_auth_event(self):
        sio, args = self.client()
        auth = Recorder(sio, "auth")
        self.connect(sio, {"auth": {"user": "py", "n": 3}})
        self.assertTrue(sio.get_sid())
        self.assertEqual(sio.transport(), "polling")
        self.assertEqual(strip_offset(auth.get()), ({"user": "py", "n": 3},))

    def test_echo(self):
        sio, args = self.client()
        self.connect(sio, args)
        # emit with a callback
        done = threading.Event()
        got = []

        def on_ack(*a):
            got.append(a)
            done.set()

        sio.emit("echo", "hello from python", callback=on_ack)
        self.assertTrue(done.wait(TIMEOUT), "no ack for echo")
        self.assertEqual(got, [("hello from python",)])
        # call() waits for the ack
        self.assertEqual(sio.call("echo", {"nested": [1, "two", None], "u": "é中😀"}, timeout=TIMEOUT),
                         {"nested": [1, "two", None], "u": "é中😀"})
        self.assertEqual(sio.call("message-with-ack", (1, "two", [3]), timeout=TIMEOUT), (1, "two", [3]))

    def test_message_back_text_and_bytes(self):
        sio, args = self.client()
        back = Recorder(sio, "message-back")
        self.connect(sio, args)
        sio.emit("message", (1, "two", {"three": 3}))
        self.assertEqual(strip_offset(back.get()), (1, "two", {"three": 3}))
        sio.emit("message", (b"\x00\x01\xfe\xff", {"blob": b"abc"}))
        self.assertEqual(strip_offset(back.get()), (b"\x00\x01\xfe\xff", {"blob": b"abc"}))
        self.assertEqual(sio.call("echo", b"\x10\x20", timeout=TIMEOUT), b"\x10\x20")

    def test_broadcast_from_another_client(self):
        listener, a1 = self.client()
        msgs = Recorder(listener, "msg")
        self.connect(listener, a1)
        sender, a2 = self.client()
        sender_msgs = Recorder(sender, "msg")
        self.connect(sender, a2)
        sender.emit("broadcast", {"from": "sender"})
        self.assertEqual(strip_offset(msgs.get()), ({"from": "sender"},))
        self.assertEqual(strip_offset(sender_msgs.get()), ({"from": "sender"},))

    def test_custom_namespace(self):
        sio, args = self.client()
        auth = Recorder(sio, "auth", namespace="/custom")
        self.connect(sio, {"namespaces": ["/custom"], "auth": {"where": "custom"}})
        self.assertEqual(sio.call("echo", "custom", namespace="/custom", timeout=TIMEOUT), "custom")
        self.assertEqual(strip_offset(auth.get()), ({"where": "custom"},))

    def test_disconnect(self):
        sio, args = self.client()
        gone = threading.Event()
        sio.on("disconnect", gone.set)
        self.connect(sio, args)
        self.assertEqual(sio.call("echo", "before", timeout=TIMEOUT), "before")
        sio.disconnect()
        self.assertTrue(gone.wait(TIMEOUT), "no disconnect event")
        self.assertFalse(sio.connected)
        # the server is still fine for others
        other, a = self.client()
        self.connect(other, a)
        self.assertEqual(other.call("echo", "after", timeout=TIMEOUT), "after")

    @unittest.skipUnless(HAVE_WEBSOCKET, "python3-websocket (websocket-client) is not installed: WebSocket not tested")
    def test_websocket_and_upgrade(self):
        for transports in (["websocket"], ["polling", "websocket"]):
            sio, args = self.client()
            self.connect(sio, {"transports": transports})
            deadline = time.time() + TIMEOUT
            while sio.transport() != "websocket" and time.time() < deadline:
                time.sleep(0.02)
            self.assertEqual(sio.transport(), "websocket")
            self.assertEqual(sio.call("echo", "over ws", timeout=TIMEOUT), "over ws")
            sio.disconnect()


if __name__ == "__main__":
    program = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if program.result.wasSuccessful() else 1)
