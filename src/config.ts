// Configuration: each setting is an environment variable and a command-line
// flag (the flag wins). Bad values stop the start with one clear line.

import { Command, InvalidArgumentError } from 'commander';
import { EVENT_VALIDATION_MODES, type EventValidation } from './domain/event-types.js';

export interface Config {
  port: number;
  host: string;
  dbFile: string;
  /** PostgreSQL's URL (postgres://…): when set, the store is there and dbFile is unused; '' for SQLite. */
  databaseUrl: string;
  longPollTimeoutMs: number;
  maxBodyBytes: number;
  /** A results_imported event's body: an observation framework's results for one API. */
  maxResultsBytes: number;
  /** An import's whole body, and one line of it (0: four times the larger of maxBodyBytes and maxResultsBytes). */
  maxImportBytes: number;
  maxImportLineBytes: number;
  corsOrigins: string[];
  logLevel: string;
  maxWaitingPolls: number;
  maxWaitingPollsPerSession: number;
  requestTimeoutMs: number;
  accessControl: boolean;
  /** A push on an unknown token in UUID form creates a pending session first. */
  autoCreateSessions: boolean;
  /** Days to keep completed or aborted sessions; 0 keeps them forever. */
  retentionDays: number;
  /** Event streams (Server-Sent Events): the most open at once, the heartbeat, the longest one lasts. */
  maxStreams: number;
  maxStreamsPerSession: number;
  streamHeartbeatMs: number;
  streamMaxMs: number;
  /** record: data of a known type that matches no shape is stored, marked invalid; strict: refused with 400. */
  eventValidation: EventValidation;
}

interface Setting {
  key: keyof Config;
  env: string;
  flag: string;
  description: string;
  fallback: string;
  parse: (value: string, name: string) => Config[keyof Config];
  /** The default when it follows from the settings before it (`fallback` then only describes it). */
  derive?: (config: Partial<Record<keyof Config, unknown>>) => Config[keyof Config];
}

export class ConfigError extends Error {}

function integer(min: number, max: number) {
  return (value: string, name: string): number => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
      throw new ConfigError(`${name} must be an integer from ${min} to ${max}, not "${value}".`);
    }
    return Number(value);
  };
}

function nonEmpty(value: string, name: string): string {
  if (value.trim() === '') throw new ConfigError(`${name} must not be empty.`);
  return value.trim();
}

function postgresUrl(value: string, name: string): string {
  const url = value.trim();
  if (url === '') return '';
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new ConfigError(`${name} must be a PostgreSQL URL, postgres://user:password@host:port/database.`);
  }
  return url;
}

function onOff(value: string, name: string): boolean {
  if (value !== 'on' && value !== 'off') throw new ConfigError(`${name} must be on or off, not "${value}".`);
  return value === 'on';
}

/** MAX_STREAMS_PER_SESSION when it is not set: a tenth of MAX_STREAMS, at least 1. */
export const defaultStreamsPerSession = (maxStreams: number) => Math.max(1, Math.floor(maxStreams / 10));

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const SETTINGS: Setting[] = [
  {
    key: 'port',
    env: 'PORT',
    flag: '--port',
    description: 'TCP port to listen on',
    fallback: '8000',
    parse: integer(0, 65535),
  },
  {
    key: 'host',
    env: 'HOST',
    flag: '--host',
    description: 'address to listen on (0.0.0.0 for devices on the lab network)',
    fallback: '127.0.0.1',
    parse: nonEmpty,
  },
  {
    key: 'dbFile',
    env: 'DB_FILE',
    flag: '--db-file',
    description: 'SQLite database file (its folder is created when missing)',
    fallback: './data/wave-sessions.db',
    parse: nonEmpty,
  },
  {
    key: 'databaseUrl',
    env: 'DATABASE_URL',
    flag: '--database-url',
    description:
      'PostgreSQL instead of the SQLite file, for several servers on one database (postgres://user:password@host/db)',
    fallback: '',
    parse: postgresUrl,
  },
  {
    key: 'longPollTimeoutMs',
    env: 'LONG_POLL_TIMEOUT_MS',
    flag: '--long-poll-timeout-ms',
    description: 'longest a poll waits before answering []',
    fallback: '60000',
    parse: integer(0, 24 * 3600 * 1000),
  },
  {
    key: 'maxBodyBytes',
    env: 'MAX_BODY_BYTES',
    flag: '--max-body-bytes',
    description: 'largest request body accepted',
    fallback: String(1024 * 1024),
    parse: integer(1, 1024 * 1024 * 1024),
  },
  {
    key: 'maxResultsBytes',
    env: 'MAX_RESULTS_BYTES',
    flag: '--max-results-bytes',
    description: "largest body of a results_imported event (an API's results), which may exceed MAX_BODY_BYTES",
    fallback: String(16 * 1024 * 1024),
    parse: integer(1, 1024 * 1024 * 1024),
  },
  {
    key: 'maxImportBytes',
    env: 'MAX_IMPORT_BYTES',
    flag: '--max-import-bytes',
    description: 'largest export accepted by POST /api/sessions/import; more answers 413',
    fallback: String(1024 * 1024 * 1024),
    parse: integer(1, 2 ** 50),
  },
  {
    key: 'maxImportLineBytes',
    env: 'MAX_IMPORT_LINE_BYTES',
    flag: '--max-import-line-bytes',
    description:
      'longest line of an import (one event: a pushed body and its metadata); 0: 4 x the larger of MAX_BODY_BYTES and MAX_RESULTS_BYTES',
    fallback: '0',
    parse: integer(0, 1024 * 1024 * 1024),
  },
  {
    key: 'maxWaitingPolls',
    env: 'MAX_WAITING_POLLS',
    flag: '--max-waiting-polls',
    description: 'most long polls waiting at once; more answer 503 with Retry-After',
    fallback: '20000',
    parse: integer(1, 10_000_000),
  },
  {
    key: 'maxWaitingPollsPerSession',
    env: 'MAX_WAITING_POLLS_PER_SESSION',
    flag: '--max-waiting-polls-per-session',
    description: 'most long polls waiting on one session; more answer 503 with Retry-After',
    fallback: '5000',
    parse: integer(1, 10_000_000),
  },
  {
    key: 'maxStreams',
    env: 'MAX_STREAMS',
    flag: '--max-streams',
    description: 'most event streams (Server-Sent Events) open at once, of each kind; more answer 503 with Retry-After',
    fallback: '1000',
    parse: integer(1, 1_000_000),
  },
  {
    key: 'maxStreamsPerSession',
    env: 'MAX_STREAMS_PER_SESSION',
    flag: '--max-streams-per-session',
    description: 'most streams of one session open at once; more answer 503 with Retry-After',
    fallback: 'a tenth of MAX_STREAMS',
    parse: integer(1, 1_000_000),
    derive: (config) => defaultStreamsPerSession(config.maxStreams as number),
  },
  {
    key: 'streamHeartbeatMs',
    env: 'STREAM_HEARTBEAT_MS',
    flag: '--stream-heartbeat-ms',
    description: 'an event stream sends a comment line after this long without an event',
    fallback: '15000',
    parse: integer(10, 3_600_000),
  },
  {
    key: 'streamMaxMs',
    env: 'STREAM_MAX_MS',
    flag: '--stream-max-ms',
    description: 'the server ends an event stream after this long; the client resumes from its last event id',
    fallback: '300000',
    parse: integer(100, 24 * 3600 * 1000),
  },
  {
    key: 'requestTimeoutMs',
    env: 'REQUEST_TIMEOUT_MS',
    flag: '--request-timeout-ms',
    description:
      'time a client has to send its request headers and body (an import: the longest wait for its next piece; a long poll then waits on its own timeout)',
    fallback: '30000',
    parse: integer(100, 3_600_000),
  },
  {
    key: 'accessControl',
    env: 'ACCESS_CONTROL',
    flag: '--access-control',
    description: 'on: writes, deletes and cross-session reads need an API key (wave-sessions keys add)',
    fallback: 'off',
    parse: onOff,
  },
  {
    key: 'autoCreateSessions',
    env: 'AUTO_CREATE_SESSIONS',
    flag: '--auto-create-sessions',
    description:
      'on: a push on an unknown token in UUID form creates a pending session first (a proxy in front of an unpatched runner)',
    fallback: 'off',
    parse: onOff,
  },
  {
    key: 'eventValidation',
    env: 'EVENT_VALIDATION',
    flag: '--event-validation',
    description:
      'record: an event of a known type whose data matches none of its shapes is stored, marked invalid, and answered 200; strict: it is refused with 400 (status and resume are strict in both)',
    fallback: 'record',
    parse: (value, name) => {
      if (!(EVENT_VALIDATION_MODES as readonly string[]).includes(value)) {
        throw new ConfigError(`${name} must be ${EVENT_VALIDATION_MODES.join(' or ')}, not "${value}".`);
      }
      return value;
    },
  },
  {
    key: 'retentionDays',
    env: 'RETENTION_DAYS',
    flag: '--retention-days',
    description:
      'delete completed or aborted sessions this many days after they finished, unless labelled hold (0: keep forever)',
    fallback: '0',
    parse: integer(0, 100_000),
  },
  {
    key: 'corsOrigins',
    env: 'CORS_ORIGINS',
    flag: '--cors-origins',
    description: 'comma-separated origins allowed to call the API from a browser, or *',
    fallback: '*',
    parse: (value, name) => {
      const origins = value
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean);
      if (origins.length === 0) throw new ConfigError(`${name} must list at least one origin or *.`);
      return origins;
    },
  },
  {
    key: 'logLevel',
    env: 'LOG_LEVEL',
    flag: '--log-level',
    description: `log level (${LOG_LEVELS.join(', ')})`,
    fallback: 'info',
    parse: (value, name) => {
      if (!LOG_LEVELS.includes(value))
        throw new ConfigError(`${name} must be one of ${LOG_LEVELS.join(', ')}, not "${value}".`);
      return value;
    },
  },
];

/** Reads the configuration from `argv` (flags) over `env`; throws ConfigError. */
export function readConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const program = new Command('wave-sessions')
    .description('A durable server for the session events of the WAVE / DPCTF Test Runner')
    .usage('[serve] [options]')
    .exitOverride()
    .configureOutput({ writeErr: () => {} })
    .allowExcessArguments(false);
  for (const s of SETTINGS) {
    program.option(`${s.flag} <value>`, `${s.description} (env ${s.env}, default ${s.fallback})`, (v: string) => {
      if (v.trim() === '') throw new InvalidArgumentError('must not be empty');
      return v;
    });
  }
  try {
    program.parse([...argv], { from: 'user' });
  } catch (error) {
    const err = error as { code?: string; message?: string };
    if (err.code === 'commander.helpDisplayed') throw error;
    throw new ConfigError((err.message ?? String(error)).replace(/^error: /, ''));
  }
  const flags = program.opts<Record<string, string | undefined>>();
  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const s of SETTINGS) {
    const fromFlag = flags[s.key];
    const raw = fromFlag ?? env[s.env];
    config[s.key] =
      raw === undefined && s.derive
        ? s.derive(config)
        : s.parse(raw ?? s.fallback, fromFlag !== undefined ? s.flag : s.env);
  }
  return config as Config;
}
