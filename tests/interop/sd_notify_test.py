"""systemd readiness (packaging/herald.service is Type=notify): with NOTIFY_SOCKET set, the server
sends READY=1 over that datagram socket once its listeners accept connections (/health answers at
that moment), and STOPPING=1 when SIGTERM starts a graceful stop. A socket of our own stands in for
systemd, which does not run here. Skipped (with a note) for a binary built without libsystemd."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from herald_server import HERALD_BIN, ROOT, SANITIZER_REPORT, with_shards  # noqa: E402


def built_with_systemd():
    out = subprocess.run(["ldd", HERALD_BIN], capture_output=True, text=True).stdout
    return "libsystemd" in out


class SdNotifyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="herald-notify-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock_path = os.path.join(self.dir, "notify.sock")
        self.sock.bind(self.sock_path)
        self.sock.settimeout(10)

    def tearDown(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_ready_then_stopping(self):
        if not built_with_systemd():
            self.skipTest("herald was built without libsystemd (no sd_notify)")
        env = dict(os.environ, NOTIFY_SOCKET=self.sock_path)
        proc = subprocess.Popen(
            [HERALD_BIN, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", os.path.join(self.dir, "data"),
             "--web-root", os.path.join(ROOT, "web"), "--log-level", "debug", *with_shards([])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        log = []
        reader = threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()
        try:
            ready = self.sock.recv(4096).decode()
            self.assertIn("READY=1", ready.split("\n"))
            # the listeners are up by now: /health answers at once (the log line, written before
            # READY=1, may still be on its way through the pipe)
            deadline = time.time() + 5
            while not re.search(r'msg="listening".* port=\d+', "".join(log)) and time.time() < deadline:
                time.sleep(0.01)
            port = int(re.search(r'msg="listening".* port=(\d+)', "".join(log)).group(1))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as res:
                self.assertEqual(res.status, 200)
            proc.send_signal(signal.SIGTERM)
            stopping = self.sock.recv(4096).decode()
            self.assertIn("STOPPING=1", stopping.split("\n"))
            self.assertEqual(proc.wait(timeout=15), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(timeout=5)
            proc.stderr.close()
        text = "".join(log)
        self.assertIsNone(SANITIZER_REPORT.search(text), text)

    def test_without_notify_socket_nothing_is_sent(self):
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        proc = subprocess.Popen(
            [HERALD_BIN, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", os.path.join(self.dir, "data2"),
             "--web-root", "", *with_shards([])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        try:
            line = ""
            while "listening" not in line:
                line = proc.stderr.readline()
                self.assertTrue(line, "herald exited before listening")
            self.sock.settimeout(0.3)
            with self.assertRaises(socket.timeout):
                self.sock.recv(4096)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
            proc.stderr.close()


if __name__ == "__main__":
    unittest.main()
