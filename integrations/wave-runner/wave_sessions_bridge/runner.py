"""Hooks into the WAVE runner's own classes, installed at import time.

The runner's files are not changed. A finder on sys.meta_path notices when
the runner imports its event dispatcher, its sessions manager and its
sessions API handler, lets them load as usual, then wraps a few methods:

- EventDispatcher.dispatch_event: every event on a session token is also
  appended to the spool (a `resume` as wave-sessions' resume call), under one
  lock with the runner's own dispatch, so that the spool's order is the
  order in which the runner numbered them; device tokens and the devices
  channel stay with the runner;
- ResultsManager: a result the runner accepts is forwarded as a
  `test_result` event just before its `test_completed` (see
  _patch_results_manager), and an observation framework's JSON that the
  runner imported without an error as `results_imported` {api, results};
- SessionsManager: create, configuration update, labels and delete
  (including the runner's expiry deletes) are mirrored under the runner's
  token; the delete that follows a resume is left to the resume call;
- SessionsApiHandler: POST .../events is spooled and answered 200 once
  spooled, without the runner's dispatch; GET .../events waits until the
  session's create has been sent, then long-polls wave-sessions and answers
  what it answers (503 when it cannot be reached).

Configuration (environment): WAVE_SESSIONS_URL (the server's root, without
/api; unset leaves the bridge inactive), WAVE_SESSIONS_KEY (an admin key when
access control is on), WAVE_SESSIONS_SPOOL (the spool file; default
<runner folder>/wave-sessions-spool/events.ndjson), WAVE_SESSIONS_CREATE_WAIT,
WAVE_SESSIONS_POLL_TIMEOUT, WAVE_SESSIONS_MAX_BACKOFF (seconds, default 10)
and WAVE_SESSIONS_MAX_BODY_BYTES (default 1048576).
"""

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import quote

from .spool import Spool, log

TARGETS = {
    "wave.testing.event_dispatcher": "_patch_dispatcher",
    "wave.testing.sessions_manager": "_patch_sessions_manager",
    "wave.network.api.sessions_api_handler": "_patch_sessions_api",
    "wave.testing.results_manager": "_patch_results_manager",
}

TEST_COMPLETED = "test_completed"

# how long a poll through the runner waits for its session's create to be sent
CREATE_WAIT_SECONDS = float(os.environ.get("WAVE_SESSIONS_CREATE_WAIT", "30"))
# the longest an upstream long poll may take (wave-sessions answers [] before)
UPSTREAM_POLL_SECONDS = float(os.environ.get("WAVE_SESSIONS_POLL_TIMEOUT", "600"))
# the longest wait between two tries of a write wave-sessions did not take
MAX_BACKOFF_SECONDS = float(os.environ.get("WAVE_SESSIONS_MAX_BACKOFF", "10"))
# the largest body pushed through the runner's port (wave-sessions' MAX_BODY_BYTES)
MAX_BODY_BYTES = int(os.environ.get("WAVE_SESSIONS_MAX_BODY_BYTES", "1048576"))
# pushed types that need a writer key in wave-sessions: the bridge sends with
# its admin key, so with access control on they are refused on the runner's port
WRITER_TYPES = ("status", "resume")


def _target_of(fullname):
    for suffix, patch in TARGETS.items():
        if fullname == suffix or fullname.endswith("." + suffix):
            return patch
    return None


def _session_path(token, rest=""):
    return "/api/sessions/" + quote(token, safe="") + rest


class Bridge(object):
    def __init__(self, url, api_key, spool_path):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.spool_path = spool_path
        self.spool = Spool(spool_path, url, api_key=api_key, max_backoff=MAX_BACKOFF_SECONDS)
        self.managers = []
        self.local = threading.local()
        # held around the runner's dispatch of an event and its append to the
        # spool: two threads dispatching at once append in the order in which
        # the runner numbered their events (reentrant: a dispatch inside a
        # dispatch, as a listener might make, does not deadlock)
        self.order = threading.RLock()

    def add_manager(self, manager):
        if manager not in self.managers:
            self.managers.append(manager)

    # ---- which tokens are sessions -----------------------------------------

    def is_session(self, token):
        for manager in self.managers:
            sessions = getattr(manager, "_sessions", None)
            if isinstance(sessions, dict) and token in sessions:
                return True
        return False

    # ---- what the runner does ------------------------------------------------

    def on_event(self, token, event_type, data):
        if not isinstance(token, str) or not self.is_session(token):
            return
        if event_type == "resume":
            if not isinstance(data, str) or not data:
                # wave-sessions refuses a resume without a token (400), and the
                # runner deletes the session all the same: mirror that delete
                log("a resume of %s without a valid resume_token (%r) is mirrored as a delete" % (token, data))
                self.on_delete(token)
                return
            self.spool.append(
                {
                    "op": "resume",
                    "token": token,
                    "method": "POST",
                    "path": _session_path(token, "/resume"),
                    "body": {"resume_token": data},
                }
            )
            return
        self.push(token, event_type, data)

    def push(self, token, event_type, data):
        self.spool.append(
            {
                "op": "push",
                "token": token,
                "method": "POST",
                "path": _session_path(token, "/events"),
                "body": {"type": event_type, "data": data},
            }
        )

    def on_result(self, token, test):
        """Before a `test_completed` of `test`: the result that the runner's create_result on this thread is storing."""
        call = getattr(self.local, "result_call", None)
        if call is None or call["token"] != token or call["forwarded"]:
            return
        result = call["result"]
        if not isinstance(result, dict) or result.get("test") != test or not self.is_session(token):
            return
        call["forwarded"] = True
        self.push(token, "test_result", result)

    def on_import(self, token, api, blob):
        if not isinstance(token, str) or not self.is_session(token):
            return
        if isinstance(blob, str):
            blob = blob.encode("utf-8")
        try:
            results = json.loads(bytes(blob))
        except (TypeError, ValueError) as e:
            log("the results imported for %s (%s) are not JSON (%s): not forwarded" % (token, api, e))
            return
        self.push(token, "results_imported", {"api": api, "results": results})

    def on_create(self, session):
        body = {
            "token": session.token,
            "tests": session.tests,
            "types": session.test_types,
            "timeouts": session.timeouts,
            "reference_tokens": session.reference_tokens or [],
            "labels": session.labels or [],
            "type": session.type,
        }
        if isinstance(session.expiration_date, int) and not isinstance(session.expiration_date, bool):
            body["expiration_date"] = session.expiration_date
        self.spool.append(
            {
                "op": "create",
                "token": session.token,
                "method": "POST",
                "path": "/api/sessions",
                "body": body,
                "user_agent": session.user_agent or None,
            }
        )

    def on_update(self, session):
        self.spool.append(
            {
                "op": "update",
                "token": session.token,
                "method": "PUT",
                "path": _session_path(session.token),
                "body": {
                    "tests": session.tests,
                    "types": session.test_types,
                    "timeouts": session.timeouts,
                    "reference_tokens": session.reference_tokens or [],
                    "type": session.type,
                },
            }
        )

    def on_labels(self, token, labels):
        self.spool.append(
            {"op": "labels", "token": token, "method": "PUT", "path": _session_path(token, "/labels"), "body": labels}
        )

    def on_delete(self, token):
        self.spool.append(
            {
                "op": "delete",
                "token": token,
                "method": "DELETE",
                "path": _session_path(token),
                # sent again after a crash, it finds the session already gone
                "done_statuses": [404],
            }
        )

    # ---- the events API through the runner's port ------------------------------

    def create_pending(self, token):
        return self.spool.has_pending(lambda e: e.get("op") == "create" and e.get("token") == token)

    def poll(self, token, query):
        """(status, content type, body bytes) of a long poll answered by wave-sessions."""
        deadline = time.monotonic() + CREATE_WAIT_SECONDS
        while self.create_pending(token):
            if time.monotonic() > deadline:
                return _error(503, "The session is not in wave-sessions yet (its create waits to be sent).", "UPSTREAM_PENDING")
            time.sleep(0.05)
        url = self.url + _session_path(token, "/events") + ("?" + query if query else "")
        headers = {"User-Agent": "wave-sessions-bridge"}
        if self.api_key:
            headers["Authorization"] = "Bearer " + self.api_key
        request = urllib.request.Request(url, headers=headers, method="GET")
        try:
            with urllib.request.urlopen(request, timeout=UPSTREAM_POLL_SECONDS) as response:
                return response.status, response.headers.get("Content-Type", "application/json"), response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", "application/json"), e.read()
        except Exception as e:
            return _error(503, "wave-sessions at %s cannot be reached (%s)." % (self.url, e), "UPSTREAM_UNAVAILABLE")


def _safely(what, call, *args):
    """Runs one of the bridge's hooks; its failure is logged, never raised into the runner."""
    try:
        call(*args)
    except Exception as e:
        log("%s failed: %r (the runner goes on; this write is not mirrored)" % (what, e))


def _error(status, message, code):
    return status, "application/json", json.dumps({"error": message, "code": code}).encode("utf-8")


# ---- the patches -------------------------------------------------------------

_bridge = None
_inactive_told = False


def _get_bridge(module):
    """The process's bridge, made on the first patch; None when inactive."""
    global _bridge, _inactive_told
    if _bridge is not None:
        return _bridge
    url = os.environ.get("WAVE_SESSIONS_URL", "").strip()
    if not url:
        if not _inactive_told:
            _inactive_told = True
            log("inactive: WAVE_SESSIONS_URL is not set; the runner's events stay in the runner only")
        return None
    spool_path = os.environ.get("WAVE_SESSIONS_SPOOL", "").strip()
    if not spool_path:
        # <runner>/tools/wave/<package>/<module>.py -> <runner>
        here = os.path.abspath(getattr(module, "__file__", None) or os.getcwd())
        root = here
        for _ in range(4):
            root = os.path.dirname(root)
        if not os.path.isdir(os.path.join(root, "tools", "wave")):
            root = os.getcwd()
        spool_path = os.path.join(root, "wave-sessions-spool", "events.ndjson")
    _bridge = Bridge(url, os.environ.get("WAVE_SESSIONS_KEY", "").strip() or None, spool_path)
    log("active: mirroring the runner's sessions to %s (spool %s)" % (_bridge.url, spool_path))
    return _bridge


def _patch_dispatcher(module, bridge):
    cls = module.EventDispatcher
    original = cls.dispatch_event

    def dispatch_event(self, dispatcher_token, event_type, data=None):
        with bridge.order:
            result = original(self, dispatcher_token, event_type, data)
            if event_type == TEST_COMPLETED:
                _safely("forwarding a test result", bridge.on_result, dispatcher_token, data)
            _safely("mirroring a %r event" % (event_type,), bridge.on_event, dispatcher_token, event_type, data)
        return result

    cls.dispatch_event = dispatch_event


def _patch_sessions_manager(module, bridge):
    cls = module.SessionsManager
    initialize = cls.initialize
    create_session = cls.create_session
    update_configuration = cls.update_session_configuration
    update_labels = cls.update_labels
    delete_session = cls.delete_session
    resume_session = cls.resume_session

    def _initialize(self, *args, **kwargs):
        result = initialize(self, *args, **kwargs)
        _safely("registering the sessions manager", bridge.add_manager, self)
        return result

    def _create_session(self, *args, **kwargs):
        _safely("registering the sessions manager", bridge.add_manager, self)
        session = create_session(self, *args, **kwargs)
        if session is not None:
            _safely("mirroring a create", bridge.on_create, session)
        return session

    def _update_configuration(self, token, *args, **kwargs):
        session = update_configuration(self, token, *args, **kwargs)
        if session is not None:  # only a pending session changes
            _safely("mirroring a configuration update", bridge.on_update, session)
        return session

    def _update_labels(self, token=None, labels=None):
        result = update_labels(self, token=token, labels=labels)

        def mirror():
            session = self._sessions.get(token) if isinstance(token, str) else None
            # the runner changes no labels of a public session, nor for a missing body
            if session is not None and labels is not None and not getattr(session, "is_public", False):
                bridge.on_labels(token, list(session.labels or []))

        _safely("mirroring labels", mirror)
        return result

    def _delete_session(self, token):
        existed = token in self._sessions
        result = delete_session(self, token)
        gone = existed and token not in self._sessions
        if gone and not getattr(bridge.local, "resuming", False):
            _safely("mirroring a delete", bridge.on_delete, token)
        return result

    def _resume_session(self, token, resume_token):
        # the resume call deletes the session in wave-sessions itself
        bridge.local.resuming = True
        try:
            return resume_session(self, token, resume_token)
        finally:
            bridge.local.resuming = False

    cls.initialize = _initialize
    cls.create_session = _create_session
    cls.update_session_configuration = _update_configuration
    cls.update_labels = _update_labels
    cls.delete_session = _delete_session
    cls.resume_session = _resume_session


def _patch_sessions_api(module, bridge):
    cls = module.SessionsApiHandler
    push_event = cls.push_event
    register_event_listener = cls.register_event_listener

    def _is_session(handler, token):
        try:
            return handler._sessions_manager.read_session(token) is not None
        except Exception:
            return False

    def _push_event(self, request, response):
        token = self.parse_uri(request)[2]
        if not _is_session(self, token):
            return push_event(self, request, response)  # not a session: the runner's own
        try:
            declared = int(request.headers.get("Content-Length") or 0)
        except (TypeError, ValueError):
            declared = 0
        if declared > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
            self.send_json(
                {"error": "The request body is larger than the limit of %d bytes." % MAX_BODY_BYTES, "code": "BODY_TOO_LARGE"},
                response,
                413,
            )
            return
        try:
            message = json.loads(request.body.decode("utf-8"))
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                raise ValueError("not {type, data}")
        except ValueError:
            self.send_json({"error": 'The body must be JSON {"type": "...", "data": ...}.', "code": "INVALID_EVENT"}, response, 400)
            return
        if bridge.api_key and message["type"] in WRITER_TYPES:
            # access control is on: the bridge's admin key must not lend a
            # keyless client the right to move the session's status
            self.send_json(
                {
                    "error": "A pushed %r event needs a writer key: push it to wave-sessions with one." % message["type"],
                    "code": "FORBIDDEN",
                },
                response,
                403,
            )
            return
        try:
            bridge.push(token, message["type"], message.get("data"))
        except Exception as e:
            log("cannot spool a pushed event: %r" % (e,))
            self.send_json({"error": "The event could not be stored.", "code": "SPOOL_FAILED"}, response, 503)
            return
        self.send_json({}, response, 200)

    def _register_event_listener(self, request, response):
        token = self.parse_uri(request)[2]
        status, content_type, body = bridge.poll(token, request.url_parts.query)
        response.content = body
        self.set_headers(response, [("Content-Type", content_type), ("Cache-Control", "no-store")])
        response.status = status

    cls.push_event = _push_event
    cls.register_event_listener = _register_event_listener


def _patch_results_manager(module, bridge):
    """Forwards the results the runner accepts, and its successful imports.

    create_result(token, data) runs prepare_result, then returns early for an
    unknown session, a test not in it or a test not running; otherwise it
    calls complete_test, which dispatches `test_completed`, and only then
    caches the result and may complete the session. So the result is
    forwarded from the dispatch of that `test_completed`, on the thread of
    the create_result that made it (a request's, or the timeout timer's):
    its dispatch is the proof that the runner accepted the result, the
    result goes to the spool just before the event, under the same lock, and
    a result the runner ignores, or a second create_result for the same test
    that loses the race in complete_test, dispatches nothing and forwards
    nothing.
    """
    cls = module.ResultsManager
    create_result = cls.create_result
    prepare_result = cls.prepare_result
    import_results_api_json = cls.import_results_api_json

    def _create_result(self, token, data):
        outer = getattr(bridge.local, "result_call", None)
        bridge.local.result_call = {"token": token, "result": None, "forwarded": False}
        try:
            return create_result(self, token, data)
        finally:
            bridge.local.result_call = outer

    def _prepare_result(self, result):
        prepared = prepare_result(self, result)
        call = getattr(bridge.local, "result_call", None)
        if call is not None and call["result"] is None:
            call["result"] = prepared  # the object that the runner caches
        return prepared

    def _import_results_api_json(self, token, api, blob):
        result = import_results_api_json(self, token, api, blob)
        # only reached when the runner's import raised nothing
        with bridge.order:
            _safely("forwarding imported results", bridge.on_import, token, api, blob)
        return result

    cls.create_result = _create_result
    cls.prepare_result = _prepare_result
    cls.import_results_api_json = _import_results_api_json


_PATCHES = {
    "_patch_dispatcher": _patch_dispatcher,
    "_patch_sessions_manager": _patch_sessions_manager,
    "_patch_sessions_api": _patch_sessions_api,
    "_patch_results_manager": _patch_results_manager,
}


def _apply(fullname, module):
    if getattr(module, "_wave_sessions_bridge", False):
        return
    module._wave_sessions_bridge = True
    try:
        bridge = _get_bridge(module)
        if bridge is None:
            return
        _PATCHES[_target_of(fullname)](module, bridge)
    except Exception as e:  # never stop the runner's import
        log("hooking %s failed: %r (the runner goes on without the bridge there)" % (fullname, e))


class _Finder(object):
    """Lets the other finders find the runner's modules, and patches them once loaded."""

    def find_spec(self, fullname, path=None, target=None):
        if _target_of(fullname) is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def patched_exec_module(module):
            exec_module(module)
            _apply(fullname, module)

        loader.exec_module = patched_exec_module
        return spec


def _start_sender_in_child():
    # the runner forks its HTTP servers from the process that imported its
    # modules: each starts a sender, so that what an earlier run left in the
    # spool is sent without waiting for a new event
    if _bridge is not None:
        # a thread of the parent may have held it at the fork; none is here
        _bridge.order = threading.RLock()
        try:
            _bridge.spool.start()
        except Exception as e:
            log("cannot start the sender: %r" % (e,))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_start_sender_in_child)


def activate():
    """Installs the import hook (once); modules already imported are patched now."""
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
    for name, module in list(sys.modules.items()):
        if module is not None and _target_of(name) is not None:
            _apply(name, module)
