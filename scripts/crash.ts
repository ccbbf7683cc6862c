// The crash test: concurrent pushers against a server process that is killed
// with SIGKILL at random moments and restarted on the same file. After every
// restart, every push that was answered 200 must be stored under the number
// its answer carried, numbers must run 1..N without gaps, no push may be
// stored twice, and the session's hash chain must verify. `npm run test:crash` runs the full test (20 kills, 32
// pushers); the test suite runs a reduced one through runCrashTest.
//
//   node --import tsx scripts/crash.ts [--rounds N] [--pushers N]

import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startServerProcess, type ServerProcess } from '../test/helpers/process.js';
import { tempDbFile } from '../test/helpers/server.js';

interface Acked {
  number: number;
  data: string;
}

export interface CrashReport {
  rounds: number;
  acked: number;
  stored: number;
  failures: string[];
}

async function readAll(url: string, token: string): Promise<{ number: number; data: unknown }[]> {
  const all: { number: number; data: unknown }[] = [];
  for (let last = 0; ;) {
    const res = await fetch(`${url}/api/sessions/${token}/events?last_event=${last}&limit=1000&timeout=0`);
    const page = (await res.json()) as { number: number; data: unknown }[];
    if (page.length === 0) return all;
    all.push(...page);
    last = page[page.length - 1]!.number;
  }
}

export async function runCrashTest({
  rounds,
  pushers,
  log = () => {},
}: {
  rounds: number;
  pushers: number;
  log?: (line: string) => void;
}): Promise<CrashReport> {
  const dbFile = tempDbFile();
  const acked: Acked[] = [];
  const failures: string[] = [];
  let server: ServerProcess = await startServerProcess([], { DB_FILE: dbFile });
  const created = (await (await fetch(`${server.url}/api/sessions`, { method: 'POST' })).json()) as { token: string };
  const token = created.token;
  let stored = 0;
  try {
    for (let round = 1; round <= rounds; round++) {
      // Given pushers that keep pushing until the server dies under them
      const url = server.url;
      let dead = false;
      const loops = Array.from({ length: pushers }, async (_, p) => {
        for (let i = 0; !dead; i++) {
          const data = `${round}:${p}:${i}`;
          try {
            const res = await fetch(`${url}/api/sessions/${token}/events`, {
              method: 'POST',
              headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ type: 'crash', data }),
            });
            const body = (await res.json()) as { number: number };
            if (res.status === 200) acked.push({ number: body.number, data });
          } catch {
            return; // the server is gone
          }
        }
      });
      // When it is killed at a random moment
      await new Promise((resolve) => setTimeout(resolve, 150 + Math.random() * 600));
      server.child.kill('SIGKILL');
      await server.exited;
      dead = true;
      await Promise.all(loops);
      // Then a server restarted on the same file has every acknowledged push
      server = await startServerProcess([], { DB_FILE: dbFile });
      const events = await readAll(server.url, token);
      stored = events.length;
      events.forEach((e, i) => {
        if (e.number !== i + 1) failures.push(`round ${round}: event ${i + 1} has number ${e.number}`);
      });
      const seen = new Set<unknown>();
      for (const e of events) {
        if (seen.has(e.data)) failures.push(`round ${round}: ${String(e.data)} stored twice`);
        seen.add(e.data);
      }
      for (const a of acked) {
        if (events[a.number - 1]?.data !== a.data)
          failures.push(`round ${round}: acknowledged ${a.data} missing as ${a.number}`);
      }
      const verified = (await (await fetch(`${server.url}/api/sessions/${token}/verify`)).json()) as {
        ok: boolean;
        reason?: string;
      };
      if (!verified.ok) failures.push(`round ${round}: the hash chain does not verify: ${verified.reason}`);
      log(
        `round ${round}/${rounds}: ${acked.length} acknowledged, ${events.length} stored, ${failures.length} failures`,
      );
    }
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  return { rounds, acked: acked.length, stored, failures };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: { rounds: { type: 'string', default: '20' }, pushers: { type: 'string', default: '32' } },
  });
  const report = await runCrashTest({
    rounds: Number(values.rounds),
    pushers: Number(values.pushers),
    log: (line) => console.log(line),
  });
  console.log(
    `${report.rounds} kills, ${report.acked} pushes acknowledged, ${report.stored} stored, ${report.failures.length} failures`,
  );
  for (const f of report.failures.slice(0, 20)) console.log(`  ${f}`);
  process.exit(report.failures.length === 0 ? 0 : 1);
}
