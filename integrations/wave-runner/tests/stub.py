"""A tiny wave-sessions stand-in for the spool's tests: it records every
request and answers what a script says."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Stub(object):
    def __init__(self, answer=None):
        # answer(request) -> (status, body text); default 200 {}
        self.answer = answer or (lambda request: (200, "{}"))
        self.requests = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(raw.decode("utf-8")) if raw else None,
                }
                with stub.lock:
                    request["index"] = len(stub.requests)
                    stub.requests.append(request)
                status, text = stub.answer(request)
                data = text.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def keys(self):
        with self.lock:
            return [r["headers"].get("idempotency-key") for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition, what, timeout=20.0):
    """Waits until condition() is true; fails with `what` when it does not become true in time."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)
