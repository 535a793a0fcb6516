import { invalidArgument } from '../errors.js';

const second = 1000;
const minute = 60 * second;
const hour = 60 * minute;

/**
 * The default waits between attempts (Standard Webhooks' example schedule, shortened):
 * the first attempt is immediate, then retries 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
 * 24 h after each failure, so 8 attempts over about 41.5 hours, then the delivery is a
 * dead letter: a receiver that is down for a day still gets everything, and a receiver
 * that is gone for good shows up in the dead letters within two days.
 */
export const defaultRetryDelaysMs: readonly number[] = [5 * second, 5 * minute, 30 * minute, 2 * hour, 5 * hour, 10 * hour, 24 * hour];

/** How long to wait between attempts and when to give up. */
export interface RetrySchedule {
  /** Wait after the n-th failed attempt (index n-1); when exhausted, the delivery is dead. */
  readonly retryDelaysMs: readonly number[];
  /** Each wait is scaled by a random factor in [1 - jitter, 1 + jitter] (default 0.2). */
  readonly jitter: number;
  /** A receiver's Retry-After is honoured up to this long (default 24 h). */
  readonly maxRetryAfterMs: number;
}

/**
 * A validated schedule; omitted fields take the defaults. Tests pass millisecond delays.
 * @throws AppError ERR_INVALID_ARGUMENT
 */
export function createRetrySchedule(options: Partial<RetrySchedule> = {}): RetrySchedule {
  const retryDelaysMs = [...(options.retryDelaysMs ?? defaultRetryDelaysMs)];
  const jitter = options.jitter ?? 0.2;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 24 * hour;
  for (const delay of retryDelaysMs) {
    if (!Number.isFinite(delay) || delay < 0) throw invalidArgument('retry delay', 'a non-negative number of milliseconds', delay);
  }
  if (!(jitter >= 0 && jitter < 1)) throw invalidArgument('retry jitter', 'a fraction from 0 to below 1', jitter);
  if (!(maxRetryAfterMs >= 0)) throw invalidArgument('maxRetryAfterMs', 'a non-negative number of milliseconds', maxRetryAfterMs);
  return Object.freeze({ retryDelaysMs: Object.freeze(retryDelaysMs), jitter, maxRetryAfterMs });
}

/** Attempts a delivery gets in all: the first one plus one per retry delay. */
export function maxAttempts(schedule: RetrySchedule): number {
  return schedule.retryDelaysMs.length + 1;
}

/**
 * The wait before the next attempt after `attempts` attempts have failed, with jitter
 * (so receivers that come back are not hit by every queued delivery at the same
 * moment), or null when that was the last attempt.
 */
export function retryDelay(schedule: RetrySchedule, attempts: number, random: () => number = Math.random): number | null {
  const base = schedule.retryDelaysMs[attempts - 1];
  if (base === undefined) return null;
  const factor = 1 + (random() * 2 - 1) * schedule.jitter;
  return Math.max(0, Math.round(base * factor));
}

/**
 * Parses a Retry-After header (RFC 9110: delay-seconds or an HTTP-date) into milliseconds
 * from `nowMs`; a date in the past is 0. Returns undefined when absent or unparseable.
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * second;
  // Date.parse also accepts non-HTTP formats; require a weekday or month name so that
  // something like "1.5" is not read as a date.
  if (!/[a-z]{3}/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
