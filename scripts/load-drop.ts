// The load test for abandoned polls: hold many long polls on a server
// process, drop half of them abruptly (sockets destroyed, no goodbye), wake
// the rest, and do it again. Afterwards no waiter, timer or socket of a poll
// may remain and the server's memory may not grow from cycle to cycle.
// `npm run test:load` holds 10,000 polls and drops 5,000; the test suite runs
// a smaller version.
//
//   node --import tsx scripts/load-drop.ts [--polls N] [--cycles N]

import fs from 'node:fs';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startServerProcess } from '../test/helpers/process.js';
import { tempDbFile } from '../test/helpers/server.js';

export interface DropReport {
  /** Waiting polls the server counted after each drop, and after each wake. */
  waitingAfterDrop: number[];
  waitingAfterWake: number[];
  /** Server RSS (KiB) after each cycle. */
  rssKb: number[];
  /**
   * The server's timers and TCP sockets (what keeps its event loop alive:
   * `process.getActiveResourcesInfo()`, from /metrics) before the first cycle
   * and after each; a dropped poll whose timer or socket stayed would add one
   * per poll.
   */
  timersBefore: number;
  /** Timers while every poll of each cycle waits: one per poll, so the count sees a poll's timer. */
  timersWaiting: number[];
  timersAfter: number[];
  socketsBefore: number;
  socketsAfter: number[];
  /** The sessions the polls are spread over (one push to each wakes its polls). */
  sessions: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0);
}

async function waitingPolls(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^wave_sessions_waiting_polls (\d+)/m.exec(text)?.[1] ?? -1);
}

/** The server's active timers and TCP sockets. */
async function activeResources(url: string): Promise<{ timers: number; sockets: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const count = (type: string) =>
    Number(new RegExp(`^wave_sessions_nodejs_active_resources\\{type="${type}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { timers: count('Timeout'), sockets: count('TCPSocketWrap') };
}

async function heapUsedKb(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Math.round(Number(/^wave_sessions_nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? 0) / 1024);
}

async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check()) && Date.now() < deadline) await sleep(50);
}

export async function runDropTest({
  polls,
  cycles,
  log = () => {},
}: {
  polls: number;
  cycles: number;
  log?: (line: string) => void;
}): Promise<DropReport> {
  const sessions = Math.max(1, Math.round(polls / 100));
  const server = await startServerProcess([], {
    DB_FILE: tempDbFile(),
    MAX_WAITING_POLLS: String(polls * 2),
    LONG_POLL_TIMEOUT_MS: '600000',
  });
  const pid = server.child.pid!;
  const report: DropReport = {
    waitingAfterDrop: [],
    waitingAfterWake: [],
    rssKb: [],
    timersBefore: 0,
    timersWaiting: [],
    timersAfter: [],
    socketsBefore: 0,
    socketsAfter: [],
    sessions,
  };
  try {
    const tokens: string[] = [];
    for (let i = 0; i < sessions; i++) {
      const res = await fetch(`${server.url}/api/sessions`, { method: 'POST' });
      tokens.push(((await res.json()) as { token: string }).token);
    }
    const before = await activeResources(server.url);
    report.timersBefore = before.timers;
    report.socketsBefore = before.sockets;
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    for (let cycle = 1; cycle <= cycles; cycle++) {
      // Given `polls` long polls waiting, spread over the sessions
      const requests = Array.from({ length: polls }, (_, i) => {
        const req = http.get(`${server.url}/api/sessions/${tokens[i % sessions]}/events`, { agent });
        const answered = new Promise<void>((resolve) => {
          req.on('response', (res) => {
            res.resume();
            res.on('end', resolve);
          });
          req.on('error', () => resolve());
        });
        return { req, answered };
      });
      await until(async () => (await waitingPolls(server.url)) >= polls, 60_000);
      report.timersWaiting.push((await activeResources(server.url)).timers);
      // When half of the clients vanish without a word
      for (const r of requests.slice(0, polls / 2)) r.req.destroy();
      await until(async () => (await waitingPolls(server.url)) <= polls / 2, 30_000);
      report.waitingAfterDrop.push(await waitingPolls(server.url));
      // and the rest are woken by one push to each session
      await Promise.all(
        tokens.map((t) =>
          fetch(`${server.url}/api/sessions/${t}/events`, {
            method: 'POST',
            body: JSON.stringify({ type: 'wake', data: cycle }),
          }),
        ),
      );
      await Promise.all(requests.slice(polls / 2).map((r) => r.answered));
      report.waitingAfterWake.push(await waitingPolls(server.url));
      // the server closes the answered polls' connections (Connection: close)
      // once it has sent their answers; the pushes' keep-alive connections,
      // one per session at most, stay
      await until(async () => (await activeResources(server.url)).sockets <= report.socketsBefore + sessions, 30_000);
      const after = await activeResources(server.url);
      report.timersAfter.push(after.timers);
      report.socketsAfter.push(after.sockets);
      await sleep(500);
      report.rssKb.push(rssKb(pid));
      log(
        `cycle ${cycle}/${cycles}: ${report.waitingAfterDrop.at(-1)} waiting after dropping ${polls / 2}, ` +
          `${report.waitingAfterWake.at(-1)} after the wake, ${after.timers} timers and ${after.sockets} sockets ` +
          `(${report.timersBefore} and ${report.socketsBefore} before), server RSS ${report.rssKb.at(-1)} KiB, heap ${await heapUsedKb(server.url)} KiB, ${report.timersWaiting.at(-1)} timers while waiting`,
      );
    }
    agent.destroy();
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  return report;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: { polls: { type: 'string', default: '10000' }, cycles: { type: 'string', default: '3' } },
  });
  const polls = Number(values.polls);
  const report = await runDropTest({ polls, cycles: Number(values.cycles), log: (line) => console.log(line) });
  const leftOver =
    report.waitingAfterWake.some((n) => n !== 0) ||
    report.waitingAfterDrop.some((n) => n !== polls / 2) ||
    // a few timers of the server's own come and go; a leak adds one per dropped poll
    report.timersAfter.some((n) => n > report.timersBefore + 10) ||
    report.socketsAfter.some((n) => n > report.socketsBefore + report.sessions);
  const growth = report.rssKb.at(-1)! / report.rssKb[0]!;
  console.log(
    `waiters, timers or sockets left behind: ${leftOver ? 'yes' : 'none'}; RSS last/first cycle: ${growth.toFixed(2)}`,
  );
  process.exit(leftOver || growth > 1.5 ? 1 : 0);
}
