"""The spool and its sender against a local HTTP stub."""

import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wave_sessions_bridge.spool import Spool  # noqa: E402
from stub import Stub, wait_for  # noqa: E402


def push(token, n):
    return {
        "op": "push",
        "token": token,
        "method": "POST",
        "path": "/api/sessions/%s/events" % token,
        "body": {"type": "custom", "data": {"n": n}},
    }


def line_count(path):
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def fast_spool(path, url, **options):
    options.setdefault("min_backoff", 0.01)
    options.setdefault("max_backoff", 0.05)
    options.setdefault("idle_poll", 0.02)
    options.setdefault("request_timeout", 5.0)
    return Spool(path, url, **options)


def _append_many(path, worker, count, size):
    spool = Spool(path, "http://127.0.0.1:9", autostart=False)
    for n in range(count):
        entry = push("t", n)
        entry["body"]["data"] = {"worker": worker, "n": n, "filler": "x" * size}
        spool.append(entry)


class SpoolTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="wave-bridge-spool-")
        self.path = os.path.join(self.dir, "spool", "events.ndjson")
        self.spools = []
        self.stubs = []

    def tearDown(self):
        for spool in self.spools:
            spool.stop()
        for stub in self.stubs:
            stub.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stub(self, answer=None):
        stub = Stub(answer)
        self.stubs.append(stub)
        return stub

    def spool(self, url, **options):
        spool = fast_spool(self.path, url, **options)
        self.spools.append(spool)
        return spool

    def accepted(self, stub):
        """The bodies the stub answered 2xx, in order."""
        return [r["body"]["data"]["n"] for r in stub.requests if r.get("ok")]

    def test_sends_in_order_with_the_kept_idempotency_key(self):
        def answer(request):
            request["ok"] = True
            return 200, "{}"

        stub = self.stub(answer)
        spool = self.spool(stub.url)
        entries = [spool.append(push("a", n)) for n in range(5)]
        wait_for(lambda: len(stub.requests) == 5, "five requests")
        self.assertEqual(self.accepted(stub), [0, 1, 2, 3, 4])
        self.assertEqual(stub.keys(), [e["key"] for e in entries])
        self.assertEqual(stub.requests[0]["path"], "/api/sessions/a/events")
        self.assertEqual(stub.requests[0]["headers"]["content-type"], "application/json")
        wait_for(lambda: spool.pending() == [], "nothing pending")

    def test_retries_5xx_and_connection_errors_with_the_same_key(self):
        def answer(request):
            if request["index"] < 3:
                return 503, '{"error":"busy"}'
            request["ok"] = True
            return 200, "{}"

        stub = self.stub(answer)
        spool = self.spool(stub.url)
        entry = spool.append(push("a", 0))
        spool.append(push("a", 1))
        wait_for(lambda: len(self.accepted(stub)) == 2, "both accepted")
        self.assertEqual(self.accepted(stub), [0, 1])
        self.assertEqual(stub.keys()[:4], [entry["key"]] * 4)
        self.assertFalse(os.path.exists(spool.dead_path))

    def test_waits_for_a_server_that_is_not_there_yet(self):
        # a port with nothing listening: connection refused, then the server appears
        placeholder = Stub()
        url = placeholder.url
        port = placeholder.server.server_address[1]
        placeholder.close()
        spool = self.spool(url)
        spool.append(push("a", 0))
        spool.append(push("a", 1))
        self.assertEqual(len(spool.pending()), 2)

        from http.server import ThreadingHTTPServer

        stub = self.stub(lambda r: (r.__setitem__("ok", True) or 200, "{}"))
        # move the stub onto the refused port
        stub.server.shutdown()
        stub.server.server_close()
        handler = stub.server.RequestHandlerClass
        stub.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        import threading

        threading.Thread(target=stub.server.serve_forever, daemon=True).start()
        wait_for(lambda: len(self.accepted(stub)) == 2, "both accepted once the server is up")
        self.assertEqual(self.accepted(stub), [0, 1])

    def test_a_4xx_goes_to_the_dead_letter_file_and_the_spool_moves_on(self):
        def answer(request):
            if request["body"]["data"]["n"] == 1:
                return 400, '{"error":"bad","code":"INVALID_EVENT"}'
            request["ok"] = True
            return 200, "{}"

        stub = self.stub(answer)
        spool = self.spool(stub.url)
        for n in range(3):
            spool.append(push("a", n))
        wait_for(lambda: len(self.accepted(stub)) == 2, "the good ones accepted")
        self.assertEqual(self.accepted(stub), [0, 2])
        self.assertEqual(len(stub.requests), 3)  # the 400 was not retried
        with open(spool.dead_path) as f:
            dead = [json.loads(line) for line in f]
        self.assertEqual(len(dead), 1)
        self.assertEqual(dead[0]["status"], 400)
        self.assertEqual(dead[0]["entry"]["body"]["data"], {"n": 1})
        self.assertIn("INVALID_EVENT", dead[0]["answer"])

    def _stuck_then_ok(self, status, text, attempts=3):
        def answer(request):
            if request["index"] < attempts:
                return status, text
            request["ok"] = True
            return 200, "{}"

        stub = self.stub(answer)
        spool = self.spool(stub.url)
        logged = []
        import wave_sessions_bridge.spool as spool_module

        original_log = spool_module.log
        spool_module.log = logged.append
        self.addCleanup(setattr, spool_module, "log", original_log)
        entry = spool.append(push("a", 0))
        spool.append(push("a", 1))
        wait_for(lambda: len(self.accepted(stub)) == 2, "both accepted once the setup is fixed")
        wait_for(lambda: spool.pending() == [], "nothing pending")
        self.assertEqual(self.accepted(stub), [0, 1])
        self.assertEqual(stub.keys()[: attempts + 1], [entry["key"]] * (attempts + 1))
        self.assertFalse(os.path.exists(spool.dead_path))
        told = [m for m in logged if "SETUP ERROR" in m]
        self.assertEqual(len(told), 1, logged)  # once, not once per retry
        return told[0]

    def test_a_401_is_retried_until_the_key_is_fixed_and_said_once(self):
        told = self._stuck_then_ok(401, '{"error":"no key","code":"UNAUTHORIZED"}')
        self.assertIn("WAVE_SESSIONS_KEY", told)

    def test_a_403_is_retried_until_the_key_is_fixed(self):
        told = self._stuck_then_ok(403, '{"error":"reader key","code":"FORBIDDEN"}')
        self.assertIn("WAVE_SESSIONS_KEY", told)

    def test_a_route_404_is_retried_and_names_the_url(self):
        told = self._stuck_then_ok(404, "<html>Not Found</html>")
        self.assertIn("WAVE_SESSIONS_URL", told)

    def test_a_404_route_not_found_is_retried(self):
        told = self._stuck_then_ok(404, '{"error":"No such route","code":"ROUTE_NOT_FOUND"}')
        self.assertIn("WAVE_SESSIONS_URL", told)

    def test_a_route_404_is_not_a_done_status(self):
        def answer(request):
            if request["index"] < 2:
                return 404, '{"error":"No such route","code":"ROUTE_NOT_FOUND"}'
            request["ok"] = True
            return 200, "{}"

        stub = self.stub(answer)
        spool = self.spool(stub.url)
        entry = {"op": "delete", "token": "a", "method": "DELETE", "path": "/api/sessions/a", "done_statuses": [404]}
        spool.append(entry)
        wait_for(lambda: any(r.get("ok") for r in stub.requests), "the delete accepted")
        wait_for(lambda: spool.pending() == [], "nothing pending")
        self.assertEqual(len(stub.requests), 3)

    def test_a_404_session_not_found_goes_to_the_dead_letter_file(self):
        def answer(request):
            if request["body"]["data"]["n"] == 0:
                return 404, '{"error":"No session","code":"SESSION_NOT_FOUND"}'
            request["ok"] = True
            return 200, "{}"

        stub = self.stub(answer)
        spool = self.spool(stub.url)
        spool.append(push("a", 0))
        spool.append(push("a", 1))
        wait_for(lambda: len(self.accepted(stub)) == 1, "the second accepted")
        self.assertEqual(len(stub.requests), 2)  # the 404 was not retried
        with open(spool.dead_path) as f:
            dead = [json.loads(line) for line in f]
        self.assertEqual([d["status"] for d in dead], [404])

    def test_a_done_status_counts_as_delivered(self):
        stub = self.stub(lambda r: (404, '{"code":"SESSION_NOT_FOUND"}'))
        spool = self.spool(stub.url)
        entry = push("a", 0)
        entry["done_statuses"] = [404]
        spool.append(entry)
        wait_for(lambda: spool.pending() == [], "the entry done")
        self.assertFalse(os.path.exists(spool.dead_path))

    def test_a_restart_mid_spool_sends_the_rest_once(self):
        def failing_after_two(request):
            if request["body"]["data"]["n"] < 2:
                request["ok"] = True
                return 200, "{}"
            return 503, "{}"

        first = self.stub(failing_after_two)
        spool = self.spool(first.url)
        entries = [spool.append(push("a", n)) for n in range(5)]
        wait_for(lambda: any(r["body"]["data"]["n"] == 2 for r in first.requests), "the third entry tried")
        spool.stop()
        self.assertEqual(self.accepted(first), [0, 1])

        def ok(request):
            request["ok"] = True
            return 200, "{}"

        second = self.stub(ok)
        again = self.spool(second.url)  # as a restarted runner: same files, new process state
        self.assertEqual([e["key"] for e in again.pending()], [e["key"] for e in entries[2:]])
        again.start()
        wait_for(lambda: len(self.accepted(second)) == 3, "the rest accepted")
        wait_for(lambda: again.pending() == [], "nothing pending")
        self.assertEqual(self.accepted(second), [2, 3, 4])
        self.assertEqual(second.keys(), [e["key"] for e in entries[2:]])

    def test_a_compacted_spool_sends_nothing_twice(self):
        def ok(request):
            request["ok"] = True
            return 200, "{}"

        stub = self.stub(ok)
        spool = self.spool(stub.url, compact_bytes=0)
        for n in range(3):
            spool.append(push("a", n))
        wait_for(lambda: len(self.accepted(stub)) == 3, "three accepted")
        # the sender replaces the fully sent spool by an empty one
        wait_for(lambda: line_count(spool.path) == 1, "the spool compacted")
        spool.append(push("a", 3))
        wait_for(lambda: len(self.accepted(stub)) == 4, "the fourth accepted")
        spool.stop()
        again = self.spool(stub.url)
        self.assertEqual(again.pending(), [])
        again.append(push("a", 4))
        wait_for(lambda: len(self.accepted(stub)) == 5, "the fifth accepted")
        self.assertEqual(self.accepted(stub), [0, 1, 2, 3, 4])

    def test_a_line_torn_by_a_crash_is_set_aside(self):
        stub = self.stub(lambda r: (r.__setitem__("ok", True) or 200, "{}"))
        writer = Spool(self.path, stub.url, autostart=False)
        writer.append(push("a", 0))
        with open(self.path, "ab") as f:
            f.write(b'{"op":"push","tok')  # the crash
        spool = self.spool(stub.url)
        spool.append(push("a", 1))
        wait_for(lambda: len(self.accepted(stub)) == 2, "both whole entries accepted")
        self.assertEqual(self.accepted(stub), [0, 1])
        with open(spool.dead_path) as f:
            dead = [json.loads(line) for line in f]
        self.assertEqual(len(dead), 1)
        self.assertIn('"tok', dead[0]["entry"]["torn"])

    def test_two_processes_appending_at_once_keep_entries_whole(self):
        count, size = 60, 70000  # lines far above a pipe's atomic write size
        context = multiprocessing.get_context("fork")
        workers = [context.Process(target=_append_many, args=(self.path, w, count, size)) for w in range(2)]
        for p in workers:
            p.start()
        for p in workers:
            p.join(120)
            self.assertEqual(p.exitcode, 0)
        spool = Spool(self.path, "http://127.0.0.1:9", autostart=False)
        entries = spool.pending()
        self.assertEqual(len(entries), 2 * count)
        self.assertFalse(any("torn" in e for e in entries))
        for w in range(2):
            mine = [e["body"]["data"]["n"] for e in entries if e["body"]["data"]["worker"] == w]
            self.assertEqual(mine, list(range(count)))

    def test_a_forked_child_starts_its_own_sender(self):
        stub = self.stub(lambda r: (r.__setitem__("ok", True) or 200, "{}"))
        spool = self.spool(stub.url)
        spool.append(push("a", 0))
        wait_for(lambda: len(self.accepted(stub)) == 1, "the parent's entry sent")
        spool.stop()  # the parent lets go of the sender's lock
        spool.start()
        pid = os.fork()
        if pid == 0:  # the child: no sender thread came with the fork
            code = 1
            try:
                if spool._thread is None and spool._sender_fd is None:
                    spool.stop()
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.WEXITSTATUS(status), 0)
        spool.append(push("a", 1))
        wait_for(lambda: len(self.accepted(stub)) == 2, "the parent still sends")

    def test_a_fork_while_a_thread_holds_the_lock_leaves_the_lock_with_the_parent(self):
        import threading

        spool = Spool(self.path, "http://127.0.0.1:9", autostart=False)
        spool.append(push("a", 0))
        holding, release = threading.Event(), threading.Event()

        def hold():
            with spool._locked():
                holding.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        self.assertTrue(holding.wait(10), "the lock taken")
        r, w = os.pipe()
        forked = {}
        forked_event = threading.Event()

        def fork():
            pid = os.fork()
            if pid == 0:  # the child: waits until the parent says so, then exits
                try:
                    os.read(r, 1)
                finally:
                    os._exit(0)
            forked["pid"] = pid
            forked_event.set()

        forker = threading.Thread(target=fork)
        forker.start()
        # without the fork guard the fork happens at once, inside the holder's
        # section; with it, the fork waits for the holder to let go
        forked_event.wait(1.0)
        release.set()
        holder.join(10)
        self.assertTrue(forked_event.wait(10), "the fork done")
        forker.join(10)
        appended = threading.Event()

        def append():
            spool.append(push("a", 1))
            appended.set()

        appender = threading.Thread(target=append, daemon=True)
        appender.start()
        try:
            done = appended.wait(20)
        finally:
            os.write(w, b"x")  # the child may exit now
            os.waitpid(forked["pid"], 0)
            os.close(r)
            os.close(w)
        appender.join(10)
        self.assertTrue(done, "the parent's append waited for the forked child to exit")
        self.assertEqual(len(spool.pending()), 2)


if __name__ == "__main__":
    unittest.main()
