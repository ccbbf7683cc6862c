// Prometheus metrics, on a registry of the server's own (no global state, so
// tests can run servers side by side).

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics(waitingPolls: () => number, openStreams: () => number = () => 0) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'wave_sessions_' });
  return {
    registry,
    eventsAppended: new Counter({
      name: 'wave_sessions_events_appended_total',
      help: 'Events committed to the log',
      registers: [registry],
    }),
    invalidEvents: new Counter({
      name: 'wave_sessions_invalid_events_total',
      help: 'Events of a known type stored with data that matches none of its shapes (EVENT_VALIDATION=record), by type',
      labelNames: ['type'],
      registers: [registry],
    }),
    reportEventsFolded: new Counter({
      name: 'wave_sessions_report_events_folded_total',
      help: 'Events folded into reports: a report of an unchanged session folds none, one of a grown session only the new ones',
      registers: [registry],
    }),
    commits: new Counter({
      name: 'wave_sessions_commits_total',
      help: 'Transactions that committed events (group commit stores several pushes in one)',
      registers: [registry],
    }),
    commitBatchSize: new Histogram({
      name: 'wave_sessions_commit_batch_events',
      help: 'Events stored per committed transaction',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'wave_sessions_http_request_duration_seconds',
      help: 'Time to answer a request, long polls included',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
      registers: [registry],
    }),
    waiting: new Gauge({
      name: 'wave_sessions_waiting_polls',
      help: 'Long polls waiting for an event',
      registers: [registry],
      collect() {
        this.set(waitingPolls());
      },
    }),
    streams: new Gauge({
      name: 'wave_sessions_open_streams',
      help: 'Event streams (Server-Sent Events) open, of one session or of all',
      registers: [registry],
      collect() {
        this.set(openStreams());
      },
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
