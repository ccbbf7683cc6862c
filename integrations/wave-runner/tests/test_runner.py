"""The runner hooks: a failing bridge never breaks the runner."""

import errno
import os
import shutil
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import wave_sessions_bridge.runner as runner  # noqa: E402


def fake_dispatcher_module():
    module = types.ModuleType("wave.testing.event_dispatcher")
    module.__file__ = "/nowhere/tools/wave/testing/event_dispatcher.py"

    class EventDispatcher(object):
        def __init__(self):
            self.dispatched = []

        def dispatch_event(self, dispatcher_token, event_type, data=None):
            self.dispatched.append((dispatcher_token, event_type, data))
            return "the runner's result"

    module.EventDispatcher = EventDispatcher
    return module


def fake_sessions_manager_module():
    module = types.ModuleType("wave.testing.sessions_manager")

    class Session(object):
        def __init__(self, token):
            self.token = token
            self.tests = {}
            self.test_types = []
            self.timeouts = {}
            self.reference_tokens = []
            self.labels = []
            self.type = "wmas"
            self.expiration_date = None
            self.user_agent = "ua"

    class SessionsManager(object):
        def __init__(self, events=None):
            self._sessions = {}
            self.events = events

        def initialize(self):
            pass

        def create_session(self, token):
            session = Session(token)
            self._sessions[token] = session
            return session

        def update_session_configuration(self, token):
            return None

        def update_labels(self, token=None, labels=None):
            pass

        def delete_session(self, token):
            self._sessions.pop(token, None)

        def resume_session(self, token, resume_token):
            # as the runner: the resume event, then the delete
            self.events.dispatch_event(token, "resume", resume_token)
            self.delete_session(token)

    module.SessionsManager = SessionsManager
    return module


class RunnerHooksTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="wave-bridge-runner-")
        self.saved_env = {k: os.environ.get(k) for k in ("WAVE_SESSIONS_URL", "WAVE_SESSIONS_SPOOL", "WAVE_SESSIONS_KEY")}
        self.saved_bridge = runner._bridge
        runner._bridge = None
        self.logged = []
        self.saved_log = runner.log
        runner.log = self.logged.append
        os.environ["WAVE_SESSIONS_URL"] = "http://127.0.0.1:9"
        os.environ.pop("WAVE_SESSIONS_KEY", None)

    def tearDown(self):
        if runner._bridge is not None:
            runner._bridge.spool.stop()
        runner._bridge = self.saved_bridge
        runner.log = self.saved_log
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_a_spool_folder_that_cannot_be_made_does_not_stop_the_runners_import(self):
        a_file = os.path.join(self.dir, "a-file")
        with open(a_file, "w") as f:
            f.write("not a folder")
        os.environ["WAVE_SESSIONS_SPOOL"] = os.path.join(a_file, "spool", "events.ndjson")
        module = fake_dispatcher_module()
        original = module.EventDispatcher.dispatch_event
        runner._apply("wave.testing.event_dispatcher", module)  # raises nothing
        self.assertIs(module.EventDispatcher.dispatch_event, original)
        self.assertTrue(any("failed" in m and "event_dispatcher" in m for m in self.logged), self.logged)
        self.assertEqual(module.EventDispatcher().dispatch_event("t", "custom"), "the runner's result")

    def _bridge_with_a_full_disk(self):
        os.environ["WAVE_SESSIONS_SPOOL"] = os.path.join(self.dir, "spool", "events.ndjson")
        managers = fake_sessions_manager_module()
        dispatcher = fake_dispatcher_module()
        runner._apply("wave.testing.sessions_manager", managers)
        runner._apply("wave.testing.event_dispatcher", dispatcher)
        self.assertIsNotNone(runner._bridge)
        spool = runner._bridge.spool

        def full(entry):
            raise OSError(errno.ENOSPC, "No space left on device")

        spool.append = full
        return managers, dispatcher

    def test_a_failing_append_in_a_hook_does_not_reach_the_runner(self):
        managers, dispatcher = self._bridge_with_a_full_disk()
        manager = managers.SessionsManager()
        manager.initialize()
        session = manager.create_session("tok")  # the create hook fails
        self.assertEqual(session.token, "tok")
        events = dispatcher.EventDispatcher()
        self.assertEqual(events.dispatch_event("tok", "status", "running"), "the runner's result")
        self.assertEqual(events.dispatched, [("tok", "status", "running")])
        manager.delete_session("tok")
        self.assertNotIn("tok", manager._sessions)
        failed = [m for m in self.logged if "failed" in m and "No space left" in m]
        self.assertEqual(len(failed), 3, self.logged)  # create, the event, the delete

    def _resume(self, resume_token):
        os.environ["WAVE_SESSIONS_SPOOL"] = os.path.join(self.dir, "spool", "events.ndjson")
        managers = fake_sessions_manager_module()
        dispatcher = fake_dispatcher_module()
        runner._apply("wave.testing.sessions_manager", managers)
        runner._apply("wave.testing.event_dispatcher", dispatcher)
        spool = runner._bridge.spool
        spool.stop()
        spool.autostart = False  # nothing is sent: the test reads the spool
        manager = managers.SessionsManager(dispatcher.EventDispatcher())
        manager.initialize()
        manager.create_session("tok")
        manager.resume_session("tok", resume_token)
        self.assertNotIn("tok", manager._sessions)
        return [(e["op"], e["method"], e["path"], e.get("body")) for e in spool.pending()]

    def test_a_resume_is_mirrored_as_the_resume_call(self):
        self.assertEqual(
            self._resume("other")[1:],
            [("resume", "POST", "/api/sessions/tok/resume", {"resume_token": "other"})],
        )

    def test_a_resume_without_a_resume_token_is_mirrored_as_a_delete(self):
        for resume_token in (None, ""):
            runner._bridge = None
            shutil.rmtree(os.path.join(self.dir, "spool"), ignore_errors=True)
            self.assertEqual(self._resume(resume_token)[1:], [("delete", "DELETE", "/api/sessions/tok", None)])

    def test_the_backoff_cap_comes_from_the_environment(self):
        import subprocess

        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = (
            "from wave_sessions_bridge import runner; "
            "b = runner.Bridge('http://127.0.0.1:9', None, %r); print(b.spool.max_backoff)"
            % os.path.join(self.dir, "spool", "events.ndjson")
        )
        env = dict(os.environ, WAVE_SESSIONS_MAX_BACKOFF="0.5", PYTHONPATH=here)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.stdout.strip(), "0.5", out.stderr)


if __name__ == "__main__":
    unittest.main()
