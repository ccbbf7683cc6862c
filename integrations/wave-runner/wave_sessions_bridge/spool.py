"""A durable spool of writes to wave-sessions, and the thread that sends them.

The calling thread only appends one JSON line to the spool file, under a
cross-process lock, and fsyncs it; it never waits on the network. A sender
thread, started lazily by the first append in a process, sends the entries
in the order of the file, one at a time:

- each with the Idempotency-Key kept in its entry, so that a write sent again
  after a crash or a lost answer is answered from wave-sessions' record of it
  and stored once;
- a connection error, a timeout, a 5xx, a 408 or a 429 is retried with
  backoff, for as long as it takes;
- a 401, a 403, or a 404 that is not wave-sessions' SESSION_NOT_FOUND says
  that the bridge is set up wrong (WAVE_SESSIONS_KEY, or a WAVE_SESSIONS_URL
  that is not wave-sessions' root): the entry is kept and retried with
  backoff, and the problem is logged once, until the setup is fixed;
- any other 4xx cannot be fixed by sending it again: the entry goes to the
  dead-letter file with the answer, is logged, and the spool moves on.

What has been sent is recorded in the offset file (`<spool>.offset`: the
spool's id and the byte offset of the first entry not yet done), replaced
atomically and fsynced after each entry. When everything is sent, the spool
is replaced by an empty one with a new id, so an offset that names the old
id means "from the start" and a crash between the two steps sends nothing
twice and loses nothing.

Several processes may append to one spool (the runner forks its HTTP
servers); one sender at a time holds `<spool>.sender`, and lets go of it
when it has nothing to send. Threads do not survive fork, so a forked child
forgets its parent's sender and starts its own on its first append (or when
the runner's hooks start it). A fork waits while a thread of the process
holds the spool's lock, so that no child inherits a held lock.

Standard library only; Python 3.9 or later.
"""

import errno
import fcntl
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

RETRIED_STATUSES = (408, 429)
# answers that say the bridge is set up wrong, not that the entry is wrong
SETUP_STATUSES = (401, 403)
_spools = []  # every Spool of this process, for the fork hook
# Held around every flock'ed section of this process, and by fork: a child
# forked while a thread holds a flock would share the lock's file and keep
# the lock after the parent lets go of it, until the child exits.
_process_lock = threading.Lock()


def log(message):
    """One line in the runner's log (its stderr)."""
    try:
        sys.stderr.write("wave-sessions bridge: %s\n" % message)
        sys.stderr.flush()
    except Exception:
        pass


def _fsync_dir(path):
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Spool(object):
    def __init__(
        self,
        path,
        url,
        api_key=None,
        request_timeout=30.0,
        min_backoff=0.2,
        max_backoff=10.0,
        idle_poll=0.5,
        compact_bytes=1 << 20,
        user_agent="wave-sessions-bridge",
        autostart=True,
    ):
        self.path = os.path.abspath(path)
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.request_timeout = request_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.idle_poll = idle_poll
        self.compact_bytes = compact_bytes
        self.user_agent = user_agent
        self.autostart = autostart
        self.lock_path = self.path + ".lock"
        self.offset_path = self.path + ".offset"
        self.sender_path = self.path + ".sender"
        self.dead_path = self.path + ".dead"
        d = os.path.dirname(self.path)
        if d and not os.path.isdir(d):
            os.makedirs(d, exist_ok=True)
        self._reset_process_state()
        self._told_stuck = set()
        _spools.append(self)

    # ---- process state (reset in a forked child) -------------------------

    def _reset_process_state(self):
        self._thread = None
        self._thread_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sender_fd = None

    def _after_fork_in_child(self):
        # the parent's sender thread does not exist here; its lock file
        # descriptor is a copy that must not keep the parent's lock alive
        fd = self._sender_fd
        self._reset_process_state()
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    # ---- the calling side -------------------------------------------------

    def append(self, entry):
        """Adds one write; returns it with its Idempotency-Key. Starts the sender if needed."""
        entry = dict(entry)
        entry.setdefault("key", str(uuid.uuid4()))
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        with self._locked():
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                prefix = b""
                if size == 0:
                    prefix = self._header_line()
                elif not self._ends_with_newline(size):
                    # a line torn by a crash: end it, the reader skips it
                    prefix = b"\n"
                os.write(fd, prefix + line)
                os.fsync(fd)
            finally:
                os.close(fd)
        self._wake.set()
        if self.autostart:
            self.start()
        return entry

    def start(self):
        """Starts this process's sender thread, once."""
        with self._thread_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="wave-sessions-sender", daemon=True)
            self._thread.start()

    def stop(self, timeout=10.0):
        """Stops the sender (for tests and a clean exit); unsent entries stay in the spool."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None
        self._release_sender_lock()

    def pending(self):
        """The entries not yet done, in order (reads the files; any process)."""
        return [entry for _, entry in self._read_pending()[1]]

    def has_pending(self, predicate):
        return any(predicate(entry) for entry in self.pending())

    # ---- files -----------------------------------------------------------

    def _locked(self):
        spool = self

        class _Lock(object):
            def __enter__(self):
                self.held = _process_lock
                self.held.acquire()
                try:
                    self.fd = os.open(spool.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
                    try:
                        fcntl.flock(self.fd, fcntl.LOCK_EX)
                    except BaseException:
                        os.close(self.fd)
                        raise
                except BaseException:
                    self.held.release()
                    raise

            def __exit__(self, *exc):
                try:
                    os.close(self.fd)  # releases the flock
                finally:
                    self.held.release()

        return _Lock()

    def _header_line(self):
        return (json.dumps({"spool": str(uuid.uuid4())}) + "\n").encode("utf-8")

    def _ends_with_newline(self, size):
        with open(self.path, "rb") as f:
            f.seek(size - 1)
            return f.read(1) == b"\n"

    def _read_offset(self):
        try:
            with open(self.offset_path, "r") as f:
                data = json.load(f)
            return data.get("spool"), int(data.get("offset", 0))
        except (OSError, ValueError):
            return None, 0

    def _write_offset(self, spool_id, offset):
        tmp = self.offset_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"spool": spool_id, "offset": offset}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.offset_path)
        _fsync_dir(self.offset_path)

    def _read_pending(self):
        """(spool id, [(end offset, entry)]) of the entries after the offset; skips torn lines."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None, []
            raise
        first = data.find(b"\n")
        if first < 0:
            return None, []
        try:
            spool_id = json.loads(data[:first].decode("utf-8"))["spool"]
        except (ValueError, KeyError, TypeError):
            spool_id = None
        done_id, offset = self._read_offset()
        start = offset if (done_id == spool_id and offset > first) else first + 1
        entries = []
        pos = start
        while pos < len(data):
            end = data.find(b"\n", pos)
            if end < 0:
                break  # being written, or torn by a crash
            raw = data[pos:end]
            pos = end + 1
            try:
                entry = json.loads(raw.decode("utf-8"))
                if not isinstance(entry, dict):
                    raise ValueError("not an object")
            except ValueError:
                entry = {"torn": raw.decode("utf-8", "replace")}
            entries.append((pos, entry))
        return spool_id, entries

    def _dead_letter(self, entry, status, answer):
        record = {"entry": entry, "status": status, "answer": answer, "at": time.time()}
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
        fd = os.open(self.dead_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        what = "%s %s" % (entry.get("method"), entry.get("path")) if "torn" not in entry else "a torn line"
        log("%s answered %s and will not be sent again (kept in %s): %s" % (what, status, self.dead_path, answer[:300]))

    def _compact(self, spool_id):
        """Replaces a fully sent spool by an empty one with a new id."""
        with self._locked():
            current_id, entries = self._read_pending()
            if current_id != spool_id or entries:
                return
            try:
                if os.path.getsize(self.path) < self.compact_bytes:
                    return
            except OSError:
                return
            tmp = self.path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(self._header_line())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path)

    # ---- the sender -------------------------------------------------------

    def _hold_sender_lock(self):
        if self._sender_fd is not None:
            return True
        fd = os.open(self.sender_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._sender_fd = fd
        return True

    def _release_sender_lock(self):
        fd = self._sender_fd
        self._sender_fd = None
        if fd is not None:
            os.close(fd)

    def _run(self):
        while not self._stop.is_set():
            try:
                if not self._hold_sender_lock():
                    self._stop.wait(self.idle_poll)  # another process sends
                    continue
                self._wake.clear()
                spool_id, entries = self._read_pending()
                if not entries:
                    if spool_id is not None:
                        self._compact(spool_id)
                    # idle: another process with something to send may take over
                    self._release_sender_lock()
                    self._wake.wait(self.idle_poll)
                    continue
                for end, entry in entries:
                    if not self._deliver(entry):
                        return  # stopped
                    self._write_offset(spool_id, end)
            except Exception as e:  # never let the thread die
                log("sender error: %r" % (e,))
                self._stop.wait(self.idle_poll)

    def _deliver(self, entry):
        """Sends one entry until it is done (True) or the sender stops (False)."""
        if "torn" in entry:
            self._dead_letter(entry, None, "not a complete JSON line (torn by a crash?)")
            return True
        backoff = self.min_backoff
        warned = False
        while not self._stop.is_set():
            status, answer = self._send(entry)
            if status is not None and 200 <= status < 300:
                if warned:
                    log("wave-sessions answers again; sending the spooled writes")
                    self._told_stuck.clear()
                return True
            stuck = status is not None and self._stuck(status, answer)
            if not stuck and status is not None and status in entry.get("done_statuses", ()):
                return True
            if stuck:
                self._tell_stuck(entry, status, answer)
                warned = True
            elif status is not None and 400 <= status < 500 and status not in RETRIED_STATUSES:
                self._dead_letter(entry, status, answer)
                return True
            if not warned:
                log("cannot send to %s yet (%s); retrying with backoff" % (self.url, answer[:200]))
                warned = True
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff)
        return False

    @staticmethod
    def _stuck(status, answer):
        """True for an answer that the bridge's setup, not the entry, is wrong."""
        if status in SETUP_STATUSES:
            return True
        if status != 404:
            return False
        try:
            code = json.loads(answer).get("code")
        except (ValueError, AttributeError):
            code = None
        # wave-sessions answers SESSION_NOT_FOUND for a session it does not
        # have; any other 404 (ROUTE_NOT_FOUND, another server's page) means
        # WAVE_SESSIONS_URL does not lead to wave-sessions' API
        return code != "SESSION_NOT_FOUND"

    def _tell_stuck(self, entry, status, answer):
        if status == 404:
            problem = (
                "404 for %s %s%s: WAVE_SESSIONS_URL (%s) does not seem to be wave-sessions' root URL "
                "(without /api)" % (entry.get("method"), self.url, entry.get("path"), self.url)
            )
            key = (404, self.url)
        else:
            problem = "%s from %s: WAVE_SESSIONS_KEY is %s" % (
                status,
                self.url,
                "missing (access control is on)" if not self.api_key else "not accepted (a wrong or non-admin key?)",
            )
            key = (status, self.url)
        if key in self._told_stuck:
            return
        self._told_stuck.add(key)
        log(
            "SETUP ERROR: %s. Nothing more is sent until this is fixed; the writes stay in %s and are retried. "
            "Answer: %s" % (problem, self.path, answer[:300])
        )

    def _send(self, entry):
        """(status or None, answer text) of one attempt."""
        body = entry.get("body")
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Idempotency-Key": entry["key"], "User-Agent": entry.get("user_agent") or self.user_agent}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = "Bearer " + self.api_key
        request = urllib.request.Request(
            self.url + entry["path"], data=data, headers=headers, method=entry.get("method", "POST")
        )
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            try:
                text = e.read().decode("utf-8", "replace")
            except Exception:
                text = ""
            return e.code, text
        except Exception as e:  # connection refused, reset, timeout, ...
            return None, repr(e)


def _before_fork():
    _process_lock.acquire()  # no fork while a flock'ed section runs


def _after_fork_in_parent():
    _process_lock.release()


def _after_fork_in_child():
    global _process_lock
    _process_lock = threading.Lock()  # the child's only thread holds nothing
    for spool in _spools:
        spool._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
