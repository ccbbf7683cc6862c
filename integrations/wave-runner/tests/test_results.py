"""The results hooks: what the runner accepts is forwarded once, before its
test_completed, in the runner's order; what it ignores or fails to import is
not. The runner's classes are stood in for by small copies of the parts the
hooks depend on (create_result's checks and order, complete_test's timer
bookkeeping, the dispatcher's numbering); the real runner is driven by
test/runner-results.int.test.ts."""

import os
import shutil
import sys
import tempfile
import threading
import time
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wave_sessions_bridge.runner as runner  # noqa: E402


def fake_runner_modules():
    """(dispatcher module, sessions manager module, results manager module), shaped as the runner's."""
    dispatcher = types.ModuleType("wave.testing.event_dispatcher")
    dispatcher.__file__ = "/nowhere/tools/wave/testing/event_dispatcher.py"

    class EventDispatcher(object):
        def __init__(self):
            self.numbered = []  # (token, type, data) in the runner's numbering
            self.lock = threading.Lock()

        def dispatch_event(self, dispatcher_token, event_type, data=None):
            with self.lock:
                self.numbered.append((dispatcher_token, event_type, data))
            time.sleep(0)  # let another thread run between numbering and returning, as the GIL may

    dispatcher.EventDispatcher = EventDispatcher

    sessions = types.ModuleType("wave.testing.sessions_manager")

    class Session(object):
        def __init__(self, token, tests):
            self.token = token
            self.running_tests = {}
            self.pending_tests = {"demo": list(tests)}

    class SessionsManager(object):
        def __init__(self):
            self._sessions = {}

        def initialize(self):
            pass

        def create_session(self, token, tests=()):
            self._sessions[token] = Session(token, tests)
            return self._sessions[token]

        def read_session(self, token):
            return self._sessions.get(token)

        def update_session_configuration(self, token):
            return None

        def update_labels(self, token=None, labels=None):
            pass

        def delete_session(self, token):
            self._sessions.pop(token, None)

        def resume_session(self, token, resume_token):
            self.delete_session(token)

    sessions.SessionsManager = SessionsManager

    results = types.ModuleType("wave.testing.results_manager")

    class NotFoundException(Exception):
        pass

    class ResultsManager(object):
        """create_result and import_results_api_json with the runner's checks, in the runner's order."""

        def __init__(self, sessions_manager, events):
            self.sessions = sessions_manager
            self.events = events
            self.timeouts = []  # as TestsManager._timeouts: one entry per running test
            self.cache = []
            self.imported = []
            self.checked = lambda: None  # called between create_result's checks and complete_test

        def start_test(self, token, test):
            session = self.sessions.read_session(token)
            session.pending_tests["demo"].remove(test)
            session.running_tests.setdefault("demo", []).append(test)
            self.timeouts.append({"test": test})

        def create_result(self, token, data):
            result = self.prepare_result(data)
            test = result["test"]
            session = self.sessions.read_session(token)
            if session is None:
                return
            if test not in session.running_tests.get("demo", []) + session.pending_tests.get("demo", []):
                return
            if test not in session.running_tests.get("demo", []):
                return
            self.checked()
            self.complete_test(test, session)
            self.cache.append((token, result))

        def complete_test(self, test, session):
            # TestsManager.complete_test: a second completion of one test fails here, before its dispatch
            if test in session.running_tests["demo"]:
                session.running_tests["demo"].remove(test)
            timeout = next((t for t in self.timeouts if t["test"] == test), None)
            time.sleep(0)
            self.timeouts.remove(timeout)
            self.events.dispatch_event(dispatcher_token=session.token, event_type="test_completed", data=test)

        def prepare_result(self, result):
            statuses = {0: "PASS", 1: "FAIL", 2: "TIMEOUT", 3: "NOTRUN"}
            if "tests" in result:
                for test in result["tests"]:
                    test["status"] = statuses.get(test["status"], test["status"])
                result["subtests"] = result.pop("tests")
            result["status"] = {0: "OK", 1: "ERROR", 2: "TIMEOUT", 3: "NOTRUN"}.get(result["status"], result["status"])
            return result

        def on_test_timeout(self, token, test):
            data = {
                "test": test,
                "status": "TIMEOUT",
                "message": None,
                "subtests": [{"status": "TIMEOUT", "xstatus": "SERVERTIMEOUT"}],
                "logs": [],
            }
            self.create_result(token, data)

        def import_results_api_json(self, token, api, blob):
            if api == "missing":
                raise OSError("no results folder for this api")
            self.imported.append((token, api, blob))
            if self.sessions.read_session(token) is None:
                raise NotFoundException()

    results.ResultsManager = ResultsManager
    return dispatcher, sessions, results


class ResultsHooksTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="wave-bridge-results-")
        self.saved_env = {k: os.environ.get(k) for k in ("WAVE_SESSIONS_URL", "WAVE_SESSIONS_SPOOL", "WAVE_SESSIONS_KEY")}
        self.saved_bridge = runner._bridge
        runner._bridge = None
        self.logged = []
        self.saved_log = runner.log
        runner.log = self.logged.append
        os.environ["WAVE_SESSIONS_URL"] = "http://127.0.0.1:9"
        os.environ["WAVE_SESSIONS_SPOOL"] = os.path.join(self.dir, "spool", "events.ndjson")
        os.environ.pop("WAVE_SESSIONS_KEY", None)

        dispatcher, sessions, results = fake_runner_modules()
        for name, module in (
            ("wave.testing.event_dispatcher", dispatcher),
            ("wave.testing.sessions_manager", sessions),
            ("wave.testing.results_manager", results),
        ):
            runner._apply(name, module)
        self.bridge = runner._bridge
        self.bridge.spool.stop()
        self.bridge.spool.autostart = False  # nothing is sent: the tests read the spool
        self.events = dispatcher.EventDispatcher()
        self.sessions = sessions.SessionsManager()
        self.sessions.initialize()
        self.results = results.ResultsManager(self.sessions, self.events)

    def tearDown(self):
        self.bridge.spool.stop()
        runner._bridge = self.saved_bridge
        runner.log = self.saved_log
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.dir, ignore_errors=True)

    def spooled(self, token=None):
        """(type, data) of the spooled pushes, in the spool's order."""
        return [
            (e["body"]["type"], e["body"]["data"])
            for e in self.bridge.spool.pending()
            if e["op"] == "push" and (token is None or e["token"] == token)
        ]

    def session(self, token, tests):
        self.sessions.create_session(token, tests)
        for test in tests:
            self.results.start_test(token, test)

    def test_an_accepted_result_is_forwarded_as_stored_just_before_its_test_completed(self):
        self.session("tok", ["/demo/1.html", "/demo/2.html"])
        # the browser's shape, which prepare_result turns into the stored one
        self.results.create_result(
            "tok", {"test": "/demo/1.html", "status": 0, "message": None, "tests": [{"name": "a", "status": 1, "message": "m"}]}
        )
        self.results.create_result("tok", {"test": "/demo/2.html", "status": "OK", "message": None, "subtests": []})
        stored = {"test": "/demo/1.html", "status": "OK", "message": None, "subtests": [{"name": "a", "status": "FAIL", "message": "m"}]}
        self.assertEqual(self.results.cache[0], ("tok", stored))
        self.assertEqual(
            self.spooled(),
            [
                ("test_result", stored),
                ("test_completed", "/demo/1.html"),
                ("test_result", {"test": "/demo/2.html", "status": "OK", "message": None, "subtests": []}),
                ("test_completed", "/demo/2.html"),
            ],
        )

    def test_a_result_the_runner_ignores_is_not_forwarded(self):
        self.session("tok", ["/demo/1.html"])
        self.sessions.create_session("pending", ["/demo/1.html"])  # in the session, not running
        self.results.create_result("nobody", {"test": "/demo/1.html", "status": "OK"})  # unknown session
        self.results.create_result("tok", {"test": "/demo/9.html", "status": "OK"})  # not in the session
        self.results.create_result("pending", {"test": "/demo/1.html", "status": "OK"})  # not running
        self.results.create_result("tok", {"test": "/demo/1.html", "status": "OK"})
        self.results.create_result("tok", {"test": "/demo/1.html", "status": "ERROR"})  # no longer running
        self.assertEqual(
            self.spooled(),
            [("test_result", {"test": "/demo/1.html", "status": "OK"}), ("test_completed", "/demo/1.html")],
        )
        self.assertEqual(len(self.results.cache), 1)

    def test_a_timeout_on_the_timer_thread_is_forwarded_before_its_test_completed(self):
        self.session("tok", ["/demo/1.html"])
        timer = threading.Timer(0.01, self.results.on_test_timeout, ["tok", "/demo/1.html"])
        timer.start()
        timer.join(10)
        self.assertFalse(timer.is_alive())
        self.assertEqual(
            self.spooled(),
            [
                (
                    "test_result",
                    {
                        "test": "/demo/1.html",
                        "status": "TIMEOUT",
                        "message": None,
                        "subtests": [{"status": "TIMEOUT", "xstatus": "SERVERTIMEOUT"}],
                        "logs": [],
                    },
                ),
                ("test_completed", "/demo/1.html"),
            ],
        )

    def test_a_result_racing_the_timeout_is_forwarded_once_with_the_winner(self):
        # the two pass create_result's checks together, then race in complete_test
        barrier = threading.Barrier(2, timeout=10)
        self.results.checked = barrier.wait
        for round_ in range(20):
            token = "race-%d" % round_
            self.session(token, ["/demo/1.html"])
            errors = []

            def post():
                try:
                    self.results.create_result(token, {"test": "/demo/1.html", "status": "OK", "message": "posted"})
                except Exception as e:  # the loser fails in complete_test, as in the runner
                    errors.append(e)

            def time_out():
                try:
                    self.results.on_test_timeout(token, "/demo/1.html")
                except Exception as e:
                    errors.append(e)

            threads = [threading.Thread(target=post), threading.Thread(target=time_out)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            spooled = self.spooled(token)
            kept = [r for t, r in self.results.cache if t == token]
            self.assertEqual(len(kept), 1)
            # both passed the checks; the one that lost in complete_test dispatched nothing
            self.assertEqual(len(errors), 1, errors)
            # the one forwarded is the one the runner kept
            self.assertEqual(spooled, [("test_result", kept[0]), ("test_completed", "/demo/1.html")])

    def test_the_spool_holds_the_runners_order_when_threads_dispatch_at_once(self):
        tests = ["/demo/%d.html" % n for n in range(120)]
        self.session("tok", tests)
        chunks = [tests[i::6] for i in range(6)]

        def complete(chunk):
            for test in chunk:
                self.results.create_result("tok", {"test": test, "status": "OK"})

        threads = [threading.Thread(target=complete, args=(chunk,)) for chunk in chunks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        spooled = self.spooled()
        completed = [data for type_, data in spooled if type_ == "test_completed"]
        self.assertEqual(completed, [data for _, _, data in self.events.numbered])
        # each result right before its own test_completed
        for i in range(0, len(spooled), 2):
            self.assertEqual(spooled[i], ("test_result", {"test": spooled[i + 1][1], "status": "OK"}))

    def test_a_successful_import_is_forwarded_with_its_json_as_given(self):
        self.session("tok", ["/demo/1.html"])
        blob = b'{"results": [{"test": "/demo/1.html", "status": "OK", "subtests": [{"name": "OF-1", "status": "FAIL"}]}], "x": 1}'
        self.results.import_results_api_json("tok", "demo", blob)
        self.assertEqual(
            self.spooled(),
            [
                (
                    "results_imported",
                    {
                        "api": "demo",
                        "results": {
                            "results": [
                                {"test": "/demo/1.html", "status": "OK", "subtests": [{"name": "OF-1", "status": "FAIL"}]}
                            ],
                            "x": 1,
                        },
                    },
                )
            ],
        )

    def test_a_failed_import_or_one_for_no_session_is_not_forwarded(self):
        self.session("tok", ["/demo/1.html"])
        with self.assertRaises(OSError):
            self.results.import_results_api_json("tok", "missing", b'{"results": []}')
        with self.assertRaises(Exception):
            self.results.import_results_api_json("nobody", "demo", b'{"results": []}')
        # the runner took it, but it is no JSON: logged, not forwarded
        self.results.import_results_api_json("tok", "demo", b"not json")
        self.assertEqual(self.spooled(), [])
        self.assertTrue(any("not JSON" in m for m in self.logged), self.logged)

    def test_a_failing_spool_never_reaches_the_runner_and_its_result_is_still_kept(self):
        self.session("tok", ["/demo/1.html"])

        def full(entry):
            raise OSError(28, "No space left on device")

        self.bridge.spool.append = full
        self.results.create_result("tok", {"test": "/demo/1.html", "status": "OK"})
        self.results.import_results_api_json("tok", "demo", b'{"results": []}')
        self.assertEqual(self.results.cache, [("tok", {"test": "/demo/1.html", "status": "OK"})])
        self.assertEqual(self.events.numbered, [("tok", "test_completed", "/demo/1.html")])
        failed = [m for m in self.logged if "No space left" in m]
        self.assertEqual(len(failed), 3, self.logged)  # the result, its test_completed, the import


if __name__ == "__main__":
    unittest.main()
