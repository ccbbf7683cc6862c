// The session report, from a log with known times.

import { describe, expect, it } from 'vitest';
import { buildReport } from '../src/domain/report.js';

const log = [
  { number: 1, type: 'status', data: 'running', received_at: 1000 },
  { number: 2, type: 'test_ready', data: { test_path: '/a', test_name: 'A', test_description: '' }, received_at: 1100 },
  { number: 3, type: 'observation_ready', data: { test_path: '/a' }, received_at: 1300 },
  { number: 4, type: 'observation_completed', data: [{ name: 'x', status: 'PASS', message: null }], received_at: 1700 },
  { number: 5, type: 'test_completed', data: '/a', received_at: 1800 },
  { number: 6, type: 'status', data: 'paused', received_at: 2000 },
  { number: 7, type: 'status', data: 'running', received_at: 2500 },
  { number: 8, type: 'test_ready', data: { test_path: '/b', test_name: 'B', test_description: '' }, received_at: 2600 },
  { number: 9, type: 'observation_ready', data: { test_path: '/b' }, received_at: 2700 },
  {
    number: 10,
    type: 'observation_completed',
    data: [
      { name: 'y', status: 'FAIL', message: 'late' },
      { name: 'z', status: 'TIMEOUT', message: 'slow' },
    ],
    received_at: 3000,
  },
  { number: 11, type: 'status', data: 'completed', received_at: 3100 },
];

describe('buildReport', () => {
  it('reports each test, the result counts and the time spent running and paused', () => {
    const report = buildReport(log);
    expect(report.tests.map((t) => [t.test_path, t.durations, t.results.map((r) => r.status)])).toEqual([
      ['/a', { until_observing: 200, observing: 400, total: 700 }, ['PASS']],
      ['/b', { until_observing: 100, observing: 300, total: null }, ['FAIL', 'TIMEOUT']],
    ]);
    expect(report.results).toEqual({ PASS: 1, FAIL: 1, TIMEOUT: 1, NOT_RUN: 0 });
    expect(report.time_running_ms).toBe(1000 + 600);
    expect(report.time_paused_ms).toBe(500);
    expect(report.status).toBe('completed');
    expect(report.status_timeline.map((s) => s.status)).toEqual(['running', 'paused', 'running', 'completed']);
  });

  it('gives the status as of any event', () => {
    expect(buildReport(log, { at: 0 }).status).toBe('pending');
    expect(buildReport(log, { at: 5 }).status).toBe('running');
    expect(buildReport(log, { at: 6 }).status).toBe('paused');
    expect(buildReport(log, { at: 7 }).status).toBe('running');
  });

  it('as of an event, is the whole report of the log up to it: tests, results, counts and timeline', () => {
    const report = buildReport(log, { at: 9 });
    expect(report.events).toBe(9);
    expect(report.tests.map((t) => [t.test_path, t.durations, t.results.map((r) => r.status)])).toEqual([
      ['/a', { until_observing: 200, observing: 400, total: 700 }, ['PASS']],
      ['/b', { until_observing: 100, observing: null, total: null }, []],
    ]);
    expect(report.results).toEqual({ PASS: 1, FAIL: 0, TIMEOUT: 0, NOT_RUN: 0 });
    expect(report.status_timeline.map((s) => s.status)).toEqual(['running', 'paused', 'running']);
    // running until event 9, the newest of the log as of it
    expect(report.time_running_ms).toBe(1000 + 200);
    expect(report.at).toBe(9);
  });
});
