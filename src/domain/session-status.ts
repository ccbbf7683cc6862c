// The session's status, its transition table and the control calls, as pure
// functions: the store applies them inside the transaction that appends the
// matching `status` event.

import { ConflictError } from './errors.js';

export const SESSION_STATUSES = ['pending', 'running', 'paused', 'completed', 'aborted'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** The statuses a pushed `status` event may carry. */
export const PUSHABLE_STATUSES = ['paused', 'running', 'completed', 'aborted'] as const;
export type PushableStatus = (typeof PUSHABLE_STATUSES)[number];

const TRANSITIONS: Record<SessionStatus, readonly PushableStatus[]> = {
  pending: ['running', 'completed', 'aborted'],
  running: ['paused', 'completed', 'aborted'],
  paused: ['running', 'completed', 'aborted'],
  completed: [],
  aborted: [],
};

export function isLegalTransition(from: SessionStatus, to: PushableStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertLegalTransition(from: SessionStatus, to: PushableStatus): void {
  if (!isLegalTransition(from, to)) {
    const allowed = TRANSITIONS[from];
    const hint = allowed.length === 0 ? `a ${from} session cannot change status` : `allowed: ${allowed.join(', ')}`;
    throw new ConflictError(
      `Cannot change the session status from "${from}" to "${to}" (${hint}).`,
      'ILLEGAL_STATUS_TRANSITION',
    );
  }
}

export type ControlAction = 'start' | 'pause' | 'stop';

/**
 * The status a control call moves the session to, or null when the old
 * server would change nothing (the call still answers 200 then).
 */
export function decideControl(status: SessionStatus, action: ControlAction): PushableStatus | null {
  switch (action) {
    case 'start':
      return status === 'pending' || status === 'paused' ? 'running' : null;
    case 'pause':
      return status === 'running' ? 'paused' : null;
    case 'stop':
      return status === 'completed' || status === 'aborted' ? null : 'aborted';
  }
}

export interface StatusDates {
  status: SessionStatus;
  dateStarted: number | null;
  dateFinished: number | null;
  expirationDate: number | null;
}

/** The session's status projection after a `status` event received at `now`. */
export function evolveStatus(state: StatusDates, next: PushableStatus, now: number): StatusDates {
  const firstStart = next === 'running' && state.dateStarted === null;
  const finished = next === 'completed' || next === 'aborted';
  return {
    status: next,
    dateStarted: firstStart ? now : state.dateStarted,
    dateFinished: finished ? now : state.dateFinished,
    // the first start clears the expiration date, as the old server does
    expirationDate: firstStart ? null : state.expirationDate,
  };
}
