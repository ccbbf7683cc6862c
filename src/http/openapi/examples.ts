// The request examples of the OpenAPI document. test/openapi.int.test.ts
// checks each against its schema and sends each to a real server.

import { chainHash, GENESIS_HASH } from '../../domain/audit.js';
import { DEFAULT_CONFIG } from '../../domain/session-config.js';

export interface Example {
  summary: string;
  value: unknown;
}

export const EXAMPLE_TOKEN = 'db0f2a86-c7fe-439a-b9bb-4e8cfb32fdd8';

/** Example data of the known event types; a type without one is documented without an example. */
export const EVENT_DATA_EXAMPLES: Readonly<Record<string, Example>> = {
  status: { summary: 'The session starts running', value: 'running' },
  resume: { summary: "The session's clients move to another session", value: '5dd40409-60f3-44ad-b277-27fd05c678c8' },
  test_ready: {
    summary: 'A test page is ready (the seed shape; two more are accepted)',
    value: {
      test_path: '/dpctf/playback/1.html',
      test_name: 'playback 1',
      test_description: 'Sequential track playback',
    },
  },
  observation_ready: {
    summary: 'The observation framework watches a test',
    value: { test_path: '/dpctf/playback/1.html' },
  },
  observation_completed: {
    summary: 'The observation framework reports its results',
    value: [
      { name: 'every frame rendered', status: 'PASS', message: null },
      { name: 'start-up delay', status: 'FAIL', message: '1.9 s > 1.2 s' },
    ],
  },
  test_completed: { summary: 'A test is over', value: '/dpctf/playback/1.html' },
  playback: { summary: 'A media element event forwarded by a test page', value: { type: 'play' } },
  test_result: {
    summary: 'A harness result the runner accepted',
    value: {
      test: '/dpctf/playback/1.html',
      status: 'OK',
      message: null,
      subtests: [{ name: 'plays to the end', status: 'PASS', message: null }],
    },
  },
  results_imported: {
    summary: "An observation framework's results for one API",
    value: { api: 'dpctf', results: { results: [{ test: '/dpctf/playback/1.html', status: 'OK', subtests: [] }] } },
  },
};

/** A push of a type this server does not know: any data. */
export const OTHER_EVENT_EXAMPLE: Example = {
  summary: 'Any other type, with any data',
  value: { type: 'device_log', data: { level: 'info', message: 'decoder reset' } },
};

const IMPORT_TOKEN = '5dd40409-60f3-44ad-b277-27fd05c678c8';

/**
 * A small export, as `GET .../export` writes it and `POST /sessions/import`
 * takes it: a session that started and had one test ready. Its hashes are
 * computed here, so that it always verifies.
 */
export function exportExample(): string {
  const source = { address: '192.0.2.10', user_agent: 'Mozilla/5.0 (SMART-TV; Linux; Tizen 6.5)', key: null };
  const events = [
    { type: 'status', data: 'running', received_at: '2026-11-23T14:56:14.833Z' },
    { type: 'test_ready', data: EVENT_DATA_EXAMPLES.test_ready!.value, received_at: '2026-11-23T14:56:14.845Z' },
  ];
  const lines: unknown[] = [
    {
      kind: 'session',
      format: 'wave-sessions-export',
      version: 1,
      token: IMPORT_TOKEN,
      status: 'running',
      config: DEFAULT_CONFIG,
      labels: ['lab-3'],
      is_public: false,
      user_agent: source.user_agent,
      browser: { name: 'Samsung Internet', version: '15.0' },
      date_created: '2026-11-23T14:56:10.000Z',
      date_started: events[0]!.received_at,
      date_finished: null,
      expiration_date: null,
      deleted_at: null,
      deleted_reason: null,
    },
  ];
  let head = GENESIS_HASH;
  events.forEach((event, i) => {
    head = chainHash(head, {
      token: IMPORT_TOKEN,
      number: i + 1,
      type: event.type,
      data: JSON.stringify(event.data),
      received_at: Date.parse(event.received_at),
      source_address: source.address,
      source_user_agent: source.user_agent,
      source_key: source.key,
    });
    lines.push({ kind: 'event', number: i + 1, ...event, source, hash: head });
  });
  lines.push({ kind: 'end', events: events.length, head_hash: head });
  return lines.map((line) => `${JSON.stringify(line)}\n`).join('');
}
