"""Starts a herald server for Python interop tests (same contract as lib/server.mjs).

HERALD_SHARDS=N in the environment runs every server with `--shards N` unless the caller's args
name --shards themselves."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
HERALD_BIN = os.environ.get("HERALD_BIN", os.path.join(ROOT, "build", "herald"))
# Sanitizer reports (ASan, UBSan, LSan, TSan) that fail a test when found in the server's log.
SANITIZER_REPORT = re.compile(r"ERROR: AddressSanitizer|runtime error:|LeakSanitizer|WARNING: ThreadSanitizer")


def with_shards(args):
    """args plus `--shards $HERALD_SHARDS` when that variable is set and args do not name --shards."""
    n = os.environ.get("HERALD_SHARDS", "")
    if not n or any(a == "--shards" or a.startswith("--shards=") for a in args):
        return list(args)
    return [*args, "--shards", n]


class HeraldServer:
    def __init__(self, *args):
        self.data_dir = tempfile.mkdtemp(prefix="herald-py-")
        self.proc = subprocess.Popen(
            [HERALD_BIN, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", self.data_dir,
             "--web-root", os.path.join(ROOT, "web"), *with_shards(args)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = ""
        self.port = None
        deadline = time.time() + 10
        while self.port is None:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError("herald exited before listening:\n" + self.log)
            self.log += line
            m = re.search(r'msg="listening".* port=(\d+)', line)
            if m:
                self.port = int(m.group(1))
            if time.time() > deadline:
                raise RuntimeError("herald did not start:\n" + self.log)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log += line

    def ws_url(self, path="/ws/echo"):
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self._reader.join(timeout=5)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if SANITIZER_REPORT.search(self.log):
            raise AssertionError("sanitizer report in herald log:\n" + self.log)
        return code
