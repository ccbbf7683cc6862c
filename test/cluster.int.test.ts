// Three servers on one PostgreSQL database behind nginx, as deployed: a
// thousand long polls spread over them and pushes through all three, one
// server SIGKILLed in the middle of a push and started again. Every poller and
// every event stream must get every stored event once, in order; every
// acknowledged push must be stored under the number it was answered; the
// waiters of the servers that stayed up must all be woken; streams cut by the
// kill resume through nginx, on another server, from their Last-Event-ID.

import { setMaxListeners } from 'node:events';
import fs from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, NGINX, openFilesLimit, startCluster } from '../scripts/lib/cluster.js';
import { databaseUrlFor, TEST_BACKEND } from './helpers/backend.js';
import type { WaveEvent } from './helpers/client.js';
import { readMetric } from './helpers/metrics.js';
import { tempDbFile } from './helpers/server.js';
import { openStream, type SseStream } from './helpers/sse.js';
import { waitFor } from './helpers/wait.js';

const POLLERS = 1000;
const SESSIONS = 8;
const PUSHERS = 6;
/** Acknowledged pushes before the kill, while the server is down, and after its restart. */
const BEFORE_KILL = 24;
const WHILE_DOWN = 16;
const AFTER_RESTART = 16;
const KILLED = 1;
/** Longer than the run: an empty answer means a waiter was never woken. */
const LONG_POLL_TIMEOUT_MS = 120_000;

const nginxAvailable = (() => {
  const present = fs.existsSync(NGINX);
  if (!present && process.env.CI === 'true' && TEST_BACKEND === 'postgres')
    throw new Error(`nginx is missing at ${NGINX} (Debian package nginx); CI needs it.`);
  return present;
})();

type Phase = 'before' | 'down' | 'after';
const now = () => performance.now();

interface Poller {
  token: string;
  cursor: number;
  seen: WaveEvent[];
  done: boolean;
  /** Answers that were not 200 with events: a timeout's [], an error status, a broken connection. */
  faults: string[];
}

interface Push {
  token: string;
  /** data: {pusher, seq}, unique among all pushes. */
  pusher: number;
  seq: number;
  /** The phase it was sent in; when it was sent and answered (performance.now()). */
  phase: Phase;
  sentAt: number;
  answeredAt: number;
  status: number;
  /** The server that answered (the last one nginx tried). */
  upstream: string;
  number?: number;
  error?: string;
}

/** The server that answered: nginx lists every server it tried, the last one answered. */
const answeredBy = (upstream: string | null) => (upstream ?? '').split(',').at(-1)!.trim();

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe.skipIf(TEST_BACKEND !== 'postgres' || !nginxAvailable)('three servers on PostgreSQL behind nginx', () => {
  let cluster: Cluster;
  let databaseUrl: string;
  const clients: pg.Client[] = [];
  // ends every poll, push and stream still running when the test ends; each fetch listens to it
  const stop = new AbortController();
  setMaxListeners(0, stop.signal);

  beforeAll(async () => {
    // the test holds a connection per poll and stream (Node has raised its
    // own soft limit to the hard one already)
    const limit = openFilesLimit('self');
    if (limit < POLLERS + 1000) throw new Error(`${POLLERS} polls need more open files than ulimit -n (${limit})`);
    databaseUrl = await databaseUrlFor(tempDbFile());
    cluster = await startCluster({
      servers: 3,
      databaseUrl,
      longPollTimeoutMs: LONG_POLL_TIMEOUT_MS,
      clients: POLLERS,
    });
  }, 120_000);

  afterAll(async () => {
    stop.abort();
    for (const client of clients) await client.end().catch(() => {});
    await cluster?.close();
  }, 60_000);

  async function connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: databaseUrl });
    clients.push(client);
    await client.connect();
    return client;
  }

  it('answers every poller and stream every event once, in order, through a SIGKILL and restart of one server', async () => {
    const { url, servers } = cluster;
    const killed = servers[KILLED]!;
    let phase: Phase = 'before';

    // Given sessions created through nginx
    const tokens: string[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const res = await fetch(`${url}/api/sessions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(200);
      tokens.push(((await res.json()) as { token: string }).token);
    }

    // and event streams through nginx, at least one on each server
    const streams: { token: string; parts: SseStream[]; upstreams: string[] }[] = [];
    const streamed = () => new Set(streams.map((s) => s.upstreams[0]));
    while (streamed().size < servers.length && streams.length < 30) {
      const token = tokens[streams.length % SESSIONS]!;
      const s = await openStream(`${url}/api/sessions/${token}/events/stream`);
      expect(s.status).toBe(200);
      streams.push({ token, parts: [s], upstreams: [answeredBy(s.headers.get('x-upstream'))] });
    }
    expect(streamed()).toEqual(new Set(servers.map((s) => s.address)));

    // and a thousand long polls through nginx, each following its session
    // from the start with its own cursor
    const pollers: Poller[] = Array.from({ length: POLLERS }, (_, i) => ({
      token: tokens[i % SESSIONS]!,
      cursor: 0,
      seen: [],
      done: false,
      faults: [],
    }));
    /** Every answer with events: when, and from which server. */
    const answers: { at: number; upstream: string }[] = [];
    async function runPoller(p: Poller): Promise<void> {
      while (!p.done && !stop.signal.aborted) {
        try {
          const res = await fetch(`${url}/api/sessions/${p.token}/events?last_event=${p.cursor}`, {
            signal: stop.signal,
          });
          const upstream = answeredBy(res.headers.get('x-upstream'));
          const text = await res.text();
          if (res.status !== 200) {
            p.faults.push(`${phase}: ${res.status} from ${upstream}: ${text.slice(0, 100)}`);
            continue;
          }
          const events = JSON.parse(text) as WaveEvent[];
          if (events.length === 0) {
            p.faults.push(`${phase}: [] from ${upstream} (the poll timed out: never woken)`);
            continue;
          }
          p.seen.push(...events);
          p.cursor = events.at(-1)!.number;
          p.done = events.some((e) => e.type === 'end');
          answers.push({ at: now(), upstream });
        } catch (error) {
          if (stop.signal.aborted) return;
          p.faults.push(`${phase}: ${(error as Error).message}`);
        }
      }
    }
    const polling = Promise.all(pollers.map(runPoller));

    // spread over the three servers: every poll and stream waits, each server holds a share
    const waiting = () => Promise.all(servers.map((s) => readMetric(s.url, 'wave_sessions_waiting_polls')));
    const spread = await waitFor(
      'every poll and stream to wait on a server',
      async () => {
        const counts = await waiting();
        return counts.reduce((a, b) => a + b, 0) === POLLERS + streams.length ? counts : undefined;
      },
      60_000,
      { everyMs: 100 },
    );
    for (const count of spread) expect(count).toBeGreaterThan(POLLERS / 6);

    // When pushers push through nginx without pause
    const pushes: Push[] = [];
    async function push(token: string, pusher: number, seq: number): Promise<void> {
      const sent: Push = { token, pusher, seq, phase, sentAt: now(), answeredAt: 0, status: 0, upstream: '' };
      try {
        const res = await fetch(`${url}/api/sessions/${token}/events`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ type: 'tick', data: { pusher, seq } }),
          signal: stop.signal,
        });
        sent.upstream = answeredBy(res.headers.get('x-upstream'));
        const text = await res.text();
        sent.status = res.status;
        if (res.status === 200) sent.number = (JSON.parse(text) as WaveEvent).number;
        else sent.error = text.slice(0, 200);
      } catch (error) {
        sent.error = (error as Error).message;
      }
      sent.answeredAt = now();
      pushes.push(sent);
    }
    let seqs = 0;
    /** Pushes from PUSHERS loops, to every session in turn, until `enough`. */
    async function pushUntil(enough: () => boolean): Promise<void> {
      await Promise.all(
        Array.from({ length: PUSHERS }, async (_, pusher) => {
          while (!enough() && !stop.signal.aborted) {
            const seq = seqs++;
            await push(tokens[seq % SESSIONS]!, pusher, seq);
          }
        }),
      );
    }
    const acked = (which: Phase, by?: string) =>
      pushes.filter((p) => p.status === 200 && p.phase === which && (by === undefined || p.upstream === by)).length;
    let killing = false;
    const pushing = pushUntil(() => killing && acked('down') >= WHILE_DOWN);

    await waitFor('pushes before the kill', () => acked('before') >= BEFORE_KILL, 60_000);
    await waitFor('every stream to have events', () => streams.every((s) => s.parts[0]!.messages.length > 0), 30_000);

    // and one server is SIGKILLed in the middle of a push: the push waits,
    // in its transaction, for the row of a session that the test holds locked
    const holder = await connect();
    const watcher = await connect();
    const held = tokens[0]!;
    await holder.query('begin');
    await holder.query('select 1 from sessions where token = $1 for update', [held]);
    killing = true;
    const probes: Promise<void>[] = [];
    await waitFor(
      'a push of the server to kill to wait for the locked session',
      async () => {
        const { rows } = await watcher.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
            where application_name = $1 and wait_event_type = 'Lock' and query ilike '%for update%'`,
          [killed.applicationName],
        );
        if (rows[0]!.n > 0) return true;
        // pushes on the locked session, until nginx has sent one to that server
        if (probes.length < 30) probes.push(push(held, PUSHERS + probes.length, probes.length));
        return false;
      },
      30_000,
      { everyMs: 50 },
    );
    const killAt = now();
    phase = 'down';
    await cluster.kill(KILLED);
    const killedAt = now();
    await holder.query('commit');

    // Then its streams end, and resume through nginx on another server from their last id
    const cut = streams.filter((s) => s.upstreams[0] === killed.address);
    let ended = 0;
    for (const s of cut) void s.parts[0]!.ended.then(() => (ended += 1));
    await waitFor("the killed server's streams to end", () => ended === cut.length, 30_000);
    for (const s of cut) {
      const last = s.parts[0]!.messages.at(-1)!.id!;
      const again = await openStream(`${url}/api/sessions/${s.token}/events/stream`, { 'Last-Event-ID': last });
      expect(again.status).toBe(200);
      await waitFor('the resumed stream to begin', () => again.text().includes('\n\n'));
      expect(again.text().startsWith(`retry: 1000\nid: ${last}\n\n`)).toBe(true);
      s.parts.push(again);
      s.upstreams.push(answeredBy(again.headers.get('x-upstream')));
    }

    // and pushes go on through the two others while it is down
    await Promise.all([pushing, ...probes]);
    const restartAt = now();
    await cluster.restart(KILLED);
    phase = 'after';
    const restartedAt = now();
    // and, once it is back, through all three again
    await pushUntil(() => acked('after') >= AFTER_RESTART && acked('after', killed.address) >= 3);

    // and a last event for each session ends the pollers and streams
    for (const token of tokens) {
      const res = await fetch(`${url}/api/sessions/${token}/events`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'end', data: null }),
      });
      expect(res.status).toBe(200);
    }
    await waitFor('every poller to get the last event', () => pollers.every((p) => p.done), 60_000, {
      detail: () => {
        const left = pollers.filter((p) => !p.done);
        const faults = JSON.stringify(left[0]?.faults);
        return `${left.length} pollers left, e.g. at ${left[0]?.cursor} with faults ${faults}; ${cluster.logs()}`;
      },
    });
    await polling;
    const streamDone = (s: (typeof streams)[number]) => s.parts.at(-1)!.messages.some((m) => m.event === 'end');
    await waitFor('every stream to get the last event', () => streams.every(streamDone), 30_000);
    for (const s of streams) for (const part of s.parts) part.close();

    // the log of each session, as stored
    const logs = new Map<string, WaveEvent[]>();
    for (const token of tokens) {
      const res = await fetch(`${servers[0]!.url}/api/sessions/${token}/events?last_event=0`);
      logs.set(token, (await res.json()) as WaveEvent[]);
    }
    // numbered 1..N with no gap or duplicate, the last event last
    for (const log of logs.values()) {
      expect(log.map((e) => e.number)).toEqual(range(log.length));
      expect(log.at(-1)!.type).toBe('end');
    }
    // every push stored at most once, and every acknowledged one under the number it was answered
    const stored = new Map<string, WaveEvent>();
    for (const [token, log] of logs) {
      for (const e of log.filter((x) => x.type === 'tick')) {
        const { pusher, seq } = e.data as { pusher: number; seq: number };
        const key = `${token} ${pusher} ${seq}`;
        expect(stored.has(key), `${key} stored twice`).toBe(false);
        stored.set(key, e);
      }
    }
    const keyOf = (p: Push) => `${p.token} ${p.pusher} ${p.seq}`;
    for (const p of pushes.filter((x) => x.status === 200)) expect(stored.get(keyOf(p))?.number).toBe(p.number);
    // a push fails only when its server was killed under it: nginx answers
    // 502 and does not send it elsewhere; it may or may not have been stored
    const failed = pushes.filter((p) => p.status !== 200);
    expect(failed.length).toBeGreaterThan(0);
    for (const p of failed) {
      expect([p.status, p.upstream], JSON.stringify(p)).toEqual([502, killed.address]);
      expect(p.answeredAt > killAt && p.sentAt < restartAt, JSON.stringify(p)).toBe(true);
    }
    // and nothing else was stored
    expect(stored.size).toBe(pushes.length - failed.length + failed.filter((p) => stored.has(keyOf(p))).length);

    // pushes went through all three servers, before the kill and after the restart
    for (const { address } of servers) expect(acked('before', address)).toBeGreaterThan(0);

    // every poller got exactly the log of its session, and was never left to time out
    for (const p of pollers) {
      expect(p.faults).toEqual([]);
      expect(p.seen).toEqual(logs.get(p.token));
    }
    // the two servers that stayed up answered polls while the third was down, and it answered again once back
    const answered = (by: string, from: number, to: number) =>
      answers.filter((a) => a.upstream === by && a.at > from && a.at < to).length;
    for (const { address } of servers) {
      if (address !== killed.address) expect(answered(address, killedAt, restartAt)).toBeGreaterThan(0);
    }
    expect(answered(killed.address, restartedAt, Infinity)).toBeGreaterThan(0);

    // every stream got exactly the log, those cut by the kill after resuming on another server
    for (const s of streams) {
      const events = s.parts.flatMap((part) => part.messages.map((m) => JSON.parse(m.data) as WaveEvent));
      expect(events).toEqual(logs.get(s.token));
      expect(s.parts.flatMap((part) => part.messages.map((m) => Number(m.id)))).toEqual(range(events.length));
    }
    expect(cut.length).toBeGreaterThan(0);
    for (const s of cut) {
      expect(s.parts.length).toBe(2);
      expect(s.upstreams[1]).not.toBe(killed.address);
      expect(s.parts[1]!.messages[0]!.id).toBe(String(Number(s.parts[0]!.messages.at(-1)!.id) + 1));
    }
    // the others were never cut
    for (const s of streams.filter((x) => !cut.includes(x))) expect(s.parts.length).toBe(1);

    // and nothing is left waiting on any server
    await waitFor('no waiter left', async () => (await waiting()).every((n) => n === 0), 30_000, {
      everyMs: 100,
    });
  }, 180_000);
});
