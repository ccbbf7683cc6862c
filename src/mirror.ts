// `wave-sessions mirror`: copies the sessions of a WAVE runner that cannot be
// changed into wave-sessions, over both HTTP APIs. It lists the runner's
// sessions (GET /api/sessions, which needs "enable_read_sessions": true),
// creates each live one here under the runner's token and configuration,
// long-polls its events on the runner and pushes each one here with an
// Idempotency-Key made of the runner process's identity and the runner's
// number (keys are scoped to the session here), so a retry, or a mirror
// started again, never stores an event twice. A `resume` event, after which
// the runner deletes its session, is the resume call here.
//
// The runner numbers each session's events from 0 in memory and keeps them
// 60 s; a runner started again numbers from 0 again and answers a poll whose
// cursor is above its counter only with the next event. Its API tells
// nothing of its process, so the mirror marks it: it pushes an `epoch` event
// with an id of its own to a dispatcher token that no session uses
// (EPOCH_TOKEN) and reads it back. A runner that no longer has that id in its
// cache is another process: every cursor goes back to -1. The id is pushed
// again after each batch is read and before it is stored (and every
// heartbeat), so while any stored event is still in the runner's cache, so is
// an id pushed after it: a mirror started again finds the same id and
// repeats the same keys, and when no id is left, neither is any stored event.
//
// The runner announces results by `test_completed` alone; the verdicts sit in
// its Results API. After each `test_completed` it stores, the mirror reads
// GET /api/results/<token> and records the results that are new as
// `test_result` events: necessarily after their `test_completed`. Each record
// carries an Idempotency-Key made of its test and its occurrence in the
// runner's list, so a retry whose first answer was lost, and a mirror started
// again that sends the same result again, store nothing twice.

import http from 'node:http';
import https from 'node:https';
import { createHash, randomUUID } from 'node:crypto';

/** The runner's dispatcher token for the mirror's epoch events; no session has it. */
export const EPOCH_TOKEN = 'wave-sessions-mirror-epoch';

const FINAL = new Set(['completed', 'aborted']);
const LIVE = new Set(['pending', 'running', 'paused']);

export class MirrorError extends Error {}

export interface MirrorOptions {
  /** The runner's WAVE root, e.g. http://127.0.0.1:8000/_wave (a trailing /api is taken off). */
  runner: string;
  /** wave-sessions' root URL. */
  url: string;
  key?: string | undefined;
  signal: AbortSignal;
  log: (line: string) => void;
  /** How often the runner's session list is read. */
  listIntervalMs?: number;
  /** How often the epoch is checked while nothing happens (well under the runner's 60 s cache). */
  heartbeatMs?: number;
  /** How long a finished or vanished session is still followed, for late events (the runner's cache time). */
  lingerMs?: number;
}

interface RunnerEvent {
  type: string;
  data: unknown;
  number: number;
}

interface Answer {
  status: number;
  text: string;
}

/** One HTTP request with no timeout of its own (a runner's long poll waits for its next event). */
function send(
  method: string,
  url: string,
  { body, headers = {}, signal }: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new Error('aborted'));
      return;
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const target = new URL(url);
    const req = (target.protocol === 'https:' ? https : http).request(target, {
      method,
      headers: {
        ...headers,
        ...(payload !== undefined && {
          'Content-Type': 'application/json',
          'Content-Length': String(Buffer.byteLength(payload)),
        }),
      },
    });
    const onAbort = () => req.destroy(new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        signal?.removeEventListener('abort', onAbort);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    req.end(payload);
  });
}

/** Resolves after `ms`, or at once when `signal` is aborted. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

const backoff = (attempt: number) => Math.min(100 * 2 ** attempt, 5000);

/** How long a poll of the runner for the events a batch skipped may wait (they are cached, or gone). */
const GAP_READ_MS = 2000;

/** How often a read of the runner's results is made again while it lacks the result just completed (about 5 s). */
const RESULT_READS = 15;

/** A result's test path, or null for anything that is not a result. */
function testOf(result: unknown): string | null {
  const test = (result as { test?: unknown } | null)?.test;
  return typeof result === 'object' && result !== null && typeof test === 'string' ? test : null;
}

function errorText(answer: Answer): string {
  try {
    const body = JSON.parse(answer.text) as { error?: string; code?: string };
    return `${answer.status} ${body.code ?? ''} ${body.error ?? answer.text}`.replace(/\s+/g, ' ');
  } catch {
    return `${answer.status} ${answer.text.slice(0, 200)}`;
  }
}

/** Mirrors the runner's sessions until `signal` is aborted; throws MirrorError when it cannot run at all. */
export async function runMirror(options: MirrorOptions): Promise<void> {
  const { log } = options;
  // a key that wave-sessions refuses ends the whole mirror, with that reason
  const halt = new AbortController();
  let fatal: MirrorError | null = null;
  const signal = AbortSignal.any([options.signal, halt.signal]);
  const runnerRoot = options.runner.replace(/\/+$/, '').replace(/\/api$/, '');
  const runnerApi = `${runnerRoot}/api`;
  const server = options.url.replace(/\/+$/, '');
  const listIntervalMs = options.listIntervalMs ?? 1000;
  const heartbeatMs = options.heartbeatMs ?? 20_000;
  const lingerMs = options.lingerMs ?? 60_000;
  const auth: Record<string, string> = options.key ? { Authorization: `Bearer ${options.key}` } : {};

  const runnerPush = (token: string, event: { type: string; data: unknown }) =>
    send('POST', `${runnerApi}/sessions/${encodeURIComponent(token)}/events`, { body: event, signal });

  /** The runner's cached events above `after`, or (none cached) the next one; `stop` ends the wait. */
  async function runnerPoll(token: string, after: number, stop: AbortSignal): Promise<RunnerEvent[]> {
    const answer = await send('GET', `${runnerApi}/sessions/${encodeURIComponent(token)}/events?last_event=${after}`, {
      signal: stop,
    });
    if (answer.status !== 200) throw new Error(`the runner answered ${answer.status} to a poll of ${token}`);
    const events = JSON.parse(answer.text) as RunnerEvent[] | null;
    return Array.isArray(events) ? events : [];
  }

  // ---- the runner process's identity ----
  let epoch: string | null = null;
  let generation = 0;
  let check: { startedAt: number; done: Promise<void> } | null = null;
  const followers = new Map<string, Follower>();

  /** Pushes a probe, reads the cache back, keeps or makes the epoch, pushes it again. */
  async function checkEpoch(): Promise<void> {
    const probe = await runnerPush(EPOCH_TOKEN, { type: 'probe', data: null });
    if (probe.status !== 200) throw new Error(`the runner answered ${probe.status} to a push`);
    // the probe is cached, so this answers at once; bounded all the same
    const bounded = AbortSignal.any([signal, AbortSignal.timeout(30_000)]);
    const cached = await runnerPoll(EPOCH_TOKEN, -1, bounded);
    const ids = cached
      .filter((e) => e.type === 'epoch' && typeof e.data === 'string')
      .sort((a, b) => a.number - b.number)
      .map((e) => e.data as string);
    const found = epoch !== null && ids.includes(epoch) ? epoch : (ids[0] ?? null);
    const next = found ?? randomUUID();
    const pushed = await runnerPush(EPOCH_TOKEN, { type: 'epoch', data: next });
    if (pushed.status !== 200) throw new Error(`the runner answered ${pushed.status} to a push`);
    if (next !== epoch) {
      if (epoch !== null) {
        log(`the runner was started again (its epoch ${epoch} is gone): following every session from its first event`);
      }
      log(`runner epoch ${next}${found === null ? ' (new)' : ''}`);
      epoch = next;
      generation += 1;
      // polls may be waiting on the new process with old cursors: they start again
      for (const f of followers.values()) f.restartPoll();
    }
  }

  /** The epoch as checked by a check that began at `since` or later; retries until the runner answers. */
  async function epochSince(since: number): Promise<{ epoch: string; generation: number }> {
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new Error('stopped');
      const current = check;
      if (current && current.startedAt >= since) {
        try {
          await current.done;
          return { epoch: epoch!, generation };
        } catch {
          // fall through to a check of our own
        }
      } else if (current) {
        await current.done.catch(() => {});
        continue;
      }
      const startedAt = Date.now();
      const done = checkEpoch();
      check = { startedAt, done };
      try {
        await done;
        return { epoch: epoch!, generation };
      } catch (error) {
        if (signal.aborted) throw new Error('stopped');
        if (attempt % 10 === 0) log(`cannot reach the runner at ${runnerRoot}: ${(error as Error).message}; retrying`);
        await sleep(backoff(attempt), signal);
      } finally {
        if (check?.done === done) check = null;
      }
    }
  }

  // ---- writes to wave-sessions ----

  /** Sends until answered; 2xx and 4xx are answers, 5xx, 408, 429 and network errors are retried. */
  async function toServer(method: string, path: string, body: unknown, headers: Record<string, string>) {
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await send(method, `${server}${path}`, { body, headers: { ...auth, ...headers }, signal });
        if (answer.status === 401 || answer.status === 403) {
          fatal ??= new MirrorError(
            `wave-sessions refused the mirror (${errorText(answer)}): with access control on, give --key (or WAVE_SESSIONS_KEY) a writer key`,
          );
          halt.abort();
          throw fatal;
        }
        if (answer.status < 500 && answer.status !== 408 && answer.status !== 429) return answer;
        if (attempt % 10 === 0) log(`wave-sessions answered ${errorText(answer)} to ${method} ${path}; retrying`);
      } catch (error) {
        if (signal.aborted) throw new Error('stopped');
        if (attempt % 10 === 0) log(`cannot reach wave-sessions at ${server}: ${(error as Error).message}; retrying`);
      }
      await sleep(backoff(attempt), signal);
      if (signal.aborted) throw new Error('stopped');
    }
  }

  /** Creates the session here under the runner's token; false when it must not be followed. */
  async function createHere(token: string, config: Record<string, unknown>): Promise<boolean> {
    const body: Record<string, unknown> = { token };
    for (const key of ['tests', 'types', 'timeouts', 'reference_tokens', 'labels', 'is_public', 'type']) {
      if (config[key] !== undefined && config[key] !== null) body[key] = config[key];
    }
    const userAgent = typeof config.user_agent === 'string' ? config.user_agent : 'wave-sessions-mirror';
    const answer = await toServer('POST', '/api/sessions', body, { 'User-Agent': userAgent });
    if (answer.status === 200) return true;
    const code = (() => {
      try {
        return (JSON.parse(answer.text) as { code?: string }).code;
      } catch {
        return undefined;
      }
    })();
    if (code === 'SESSION_EXISTS') {
      log(`session ${token} exists here with another configuration; its events are mirrored into it`);
      return true;
    }
    log(`session ${token} is not mirrored: wave-sessions answered ${errorText(answer)}`);
    return false;
  }

  /** Stores one event; true when wave-sessions has it (also when it had it already). */
  async function storeEvent(token: string, event: RunnerEvent, epochId: string): Promise<boolean> {
    const session = `/api/sessions/${encodeURIComponent(token)}`;
    const key = { 'Idempotency-Key': `wave-mirror:${epochId}:${event.number}` };
    // the runner's resume deletes its session after this event: the resume call does both here
    const resume = event.type === 'resume' && typeof event.data === 'string' && event.data !== '';
    const answer = resume
      ? await toServer('POST', `${session}/resume`, { resume_token: event.data }, key)
      : await toServer('POST', `${session}/events`, { type: event.type, data: event.data ?? null }, key);
    if (answer.status !== 200) {
      // retrying cannot fix a refusal: it is logged, with the event, and the mirror goes on
      log(
        `event ${event.number} of ${token} (${event.type}) refused: ${errorText(answer)}; event: ${JSON.stringify(event)}`,
      );
    }
    return answer.status === 200;
  }

  // ---- results ----

  /** What this mirror knows of a session's results: the tests it saw complete, and how many results of each it recorded. */
  interface Results {
    completed: Set<string>;
    recorded: Map<string, number>;
  }

  /**
   * Records the runner's results for `token` that this mirror has not
   * recorded: those of the tests whose test_completed it stored, or
   * (`awaited` null, when the session has completed) all of them; one that an
   * earlier run recorded is answered from its key and stored no second time.
   * The runner dispatches a test_completed just before it keeps the result,
   * so a read that lacks the awaited test's result is made again, for a while.
   */
  async function recordResults(token: string, results: Results, awaited: string | null): Promise<void> {
    let list: Record<string, unknown>[] | null = null;
    for (let attempt = 0; ; attempt++) {
      list = await readRunnerResults(token);
      if (signal.aborted) return;
      if (list !== null && (awaited === null || list.some((r) => r.test === awaited))) break;
      if (attempt >= RESULT_READS) break;
      await sleep(Math.min(20 * 2 ** attempt, 500), signal);
    }
    if (list === null) {
      log(`cannot read the results of ${token} on the runner; they are read again after its next test_completed`);
      return;
    }
    if (awaited !== null && !list.some((r) => r.test === awaited)) {
      log(`the runner has no result for ${awaited} of ${token} after its test_completed; it is read again later`);
    }
    const seen = new Map<string, number>();
    for (const result of list) {
      const test = result.test as string;
      const occurrence = seen.get(test) ?? 0;
      seen.set(test, occurrence + 1);
      if (occurrence < (results.recorded.get(test) ?? 0)) continue;
      if (awaited !== null && !results.completed.has(test)) continue; // after its own test_completed
      const key = `wave-mirror-result:${createHash('sha256').update(test).digest('hex')}:${occurrence}`;
      const answer = await toServer(
        'POST',
        `/api/sessions/${encodeURIComponent(token)}/events`,
        { type: 'test_result', data: result },
        { 'Idempotency-Key': key },
      );
      // a refusal (such as a result an import changed, under a key already used) cannot be fixed by sending it again
      results.recorded.set(test, occurrence + 1);
      if (answer.status !== 200) {
        log(`the result of ${test} of ${token} was refused: ${errorText(answer)}; result: ${JSON.stringify(result)}`);
      }
    }
  }

  /**
   * The runner's results of `token`, in its order, or null when it does not
   * answer them (the runner away, or failing while it writes its results
   * file). While it writes that file, a read lists the results both from
   * memory and from the file: a result listed twice counts once.
   */
  async function readRunnerResults(token: string): Promise<Record<string, unknown>[] | null> {
    const answer = await send('GET', `${runnerApi}/results/${encodeURIComponent(token)}`, { signal }).catch(() => null);
    if (answer?.status !== 200) return null;
    let byApi: unknown;
    try {
      byApi = JSON.parse(answer.text);
    } catch {
      return null;
    }
    if (typeof byApi !== 'object' || byApi === null) return null;
    const listed = new Set<string>();
    const list: Record<string, unknown>[] = [];
    for (const api of Object.values(byApi)) {
      if (!Array.isArray(api)) continue;
      for (const result of api as unknown[]) {
        const text = JSON.stringify(result);
        if (testOf(result) === null || listed.has(text)) continue;
        listed.add(text);
        list.push(result as Record<string, unknown>);
      }
    }
    return list;
  }

  // ---- one session ----

  interface Follower {
    /** Ends the poll in flight, so that the next one starts from a fresh epoch check. */
    restartPoll(): void;
    /** From now on, the session is followed for lingerMs more. */
    finishing(): void;
    active(): void;
    done: Promise<void>;
  }

  function follow(token: string, config: Record<string, unknown>): Follower {
    let poll: AbortController | null = null;
    let finishingSince: number | null = null;
    const stopped = () => signal.aborted || (finishingSince !== null && Date.now() - finishingSince > lingerMs);
    let lingerTimer: NodeJS.Timeout | null = null;
    const follower: Follower = {
      restartPoll: () => poll?.abort(),
      finishing() {
        if (finishingSince !== null) return;
        finishingSince = Date.now();
        lingerTimer = setTimeout(() => poll?.abort(), lingerMs + 10);
      },
      active() {
        finishingSince = null;
        if (lingerTimer) clearTimeout(lingerTimer);
      },
      done: (async () => {
        if (!(await createHere(token, config).catch(() => false))) return;
        const results: Results = { completed: new Set(), recorded: new Map() };
        log(`following session ${token}`);
        let cursor = -1;
        let seenGeneration = -1;
        for (let attempt = 0; !stopped();) {
          try {
            // a check no older than half a second: a runner started again in between is noticed
            const before = await epochSince(Date.now() - 500);
            if (before.generation !== seenGeneration) {
              cursor = -1;
              seenGeneration = before.generation;
            }
            poll = new AbortController();
            let events = await runnerPoll(token, cursor, AbortSignal.any([signal, poll.signal]));
            if (events.length > 0 && Math.min(...events.map((e) => e.number)) > cursor + 1) {
              // A waiting poll of the runner answers only the last of the events
              // dispatched before it returns (each replaces the one before), so a
              // batch that skips numbers is read again from the cursor: the runner
              // answers that at once from its cache, unless the cache has dropped
              // them (then the wait is cut short and the batch is what is left).
              const bounded = AbortSignal.any([signal, poll.signal, AbortSignal.timeout(GAP_READ_MS)]);
              const again = await runnerPoll(token, cursor, bounded).catch(() => []);
              const numbers = new Set(events.map((e) => e.number));
              events = [...events, ...again.filter((e) => !numbers.has(e.number))];
            }
            // the events count only if the runner is still the same process after they came
            const after = await epochSince(Date.now());
            if (after.generation !== seenGeneration) continue;
            for (const event of events.sort((a, b) => a.number - b.number)) {
              if (event.number <= cursor) continue;
              const stored = await storeEvent(token, event, after.epoch);
              if (stored && event.type === 'test_completed' && typeof event.data === 'string') {
                results.completed.add(event.data);
                await recordResults(token, results, event.data);
              } else if (stored && event.type === 'status' && event.data === 'completed') {
                // every result is in the runner now, also one whose test_completed left its cache unread
                await recordResults(token, results, null);
              }
              cursor = event.number;
            }
            attempt = 0;
          } catch {
            if (stopped()) break;
            // the runner went away, or the poll was ended for a new epoch
            await sleep(backoff(attempt++), signal);
          }
        }
        if (lingerTimer) clearTimeout(lingerTimer);
        if (!signal.aborted) log(`no longer following session ${token}`);
      })(),
    };
    return follower;
  }

  // ---- the session list ----

  async function readSessions(): Promise<Map<string, { status: string; config: Record<string, unknown> }>> {
    const found = new Map<string, { status: string; config: Record<string, unknown> }>();
    const count = 100;
    for (let index = 0; ; index += count) {
      const answer = await send(
        'GET',
        `${runnerApi}/sessions?index=${index}&count=${count}&expand=configuration,status`,
        { signal },
      );
      if (answer.status === 404) throw new MirrorError(readSessionsDisabled());
      if (answer.status !== 200) throw new Error(`the runner answered ${answer.status} to GET /api/sessions`);
      const page = JSON.parse(answer.text) as {
        items?: string[];
        _embedded?: { configuration?: Record<string, unknown>[]; status?: { token: string; status: string }[] };
      };
      const configs = new Map((page._embedded?.configuration ?? []).map((c) => [c.token as string, c]));
      const statuses = new Map((page._embedded?.status ?? []).map((s) => [s.token, s.status]));
      for (const token of page.items ?? []) {
        const status = statuses.get(token);
        const config = configs.get(token);
        if (status !== undefined && config !== undefined) found.set(token, { status, config });
      }
      // the runner's page has no total: a short page is the last one
      if ((page.items ?? []).length < count) return found;
    }
  }

  const readSessionsDisabled = () =>
    `the runner at ${runnerRoot} does not list its sessions (GET /api/sessions answers 404): ` +
    'set "enable_read_sessions": true in the "wave" section of its config.json and start it again';

  // ---- start ----

  for (let attempt = 0; ; attempt++) {
    try {
      const answer = await send('GET', `${runnerApi}/status`, { signal });
      if (answer.status === 200) {
        const status = JSON.parse(answer.text) as { read_sessions_enabled?: unknown };
        if (status.read_sessions_enabled !== true) throw new MirrorError(readSessionsDisabled());
        break;
      }
      throw new Error(`GET /api/status answered ${answer.status}`);
    } catch (error) {
      if (error instanceof MirrorError) throw error;
      if (signal.aborted) return;
      if (attempt % 10 === 0) log(`cannot reach the runner at ${runnerRoot}: ${(error as Error).message}; retrying`);
      await sleep(backoff(attempt), signal);
    }
  }
  log(`mirroring the runner at ${runnerRoot} into ${server}`);

  // one heartbeat at a time: while the runner is away, the one running retries
  let beating = false;
  const heartbeat = setInterval(() => {
    if (beating) return;
    beating = true;
    void epochSince(Date.now())
      .catch(() => {})
      .finally(() => (beating = false));
  }, heartbeatMs);
  // tokens decided against for good (finished before the mirror saw them, or refused here)
  const passed = new Set<string>();
  try {
    await epochSince(Date.now());
    while (!signal.aborted) {
      let sessions;
      try {
        sessions = await readSessions();
      } catch (error) {
        if (error instanceof MirrorError) throw error;
        if (signal.aborted) break;
        await sleep(listIntervalMs, signal);
        continue;
      }
      for (const [token, { status, config }] of sessions) {
        const follower = followers.get(token);
        if (follower) {
          if (FINAL.has(status)) follower.finishing();
          else follower.active();
          continue;
        }
        if (passed.has(token)) continue;
        if (!LIVE.has(status) && !(await unfinishedHere(token))) {
          passed.add(token);
          continue;
        }
        const started = follow(token, config);
        if (FINAL.has(status)) started.finishing();
        followers.set(token, started);
        void started.done.finally(() => {
          followers.delete(token);
          passed.add(token);
        });
      }
      for (const [token, follower] of followers) if (!sessions.has(token)) follower.finishing();
      await sleep(listIntervalMs, signal);
    }
  } finally {
    clearInterval(heartbeat);
    await Promise.allSettled([...followers.values()].map((f) => f.done));
  }
  // set by the followers, which the type-check does not see
  const reason = fatal as MirrorError | null;
  if (reason) throw reason;

  /** A session that finished on the runner is still followed if it is here and not finished (the mirror stopped early). */
  async function unfinishedHere(token: string): Promise<boolean> {
    const answer = await toServer('GET', `/api/sessions/${encodeURIComponent(token)}/status`, undefined, {}).catch(
      () => null,
    );
    if (answer?.status !== 200) return false;
    return !FINAL.has((JSON.parse(answer.text) as { status: string }).status);
  }
}
