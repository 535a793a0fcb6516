import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { createRetrySchedule, parseRetryAfter, retryDelay, type RetrySchedule } from './backoff.js';
import type { CidrPolicy } from './cidr.js';
import { displayUrl, sendRequest, type SendFunction, type SendResponse } from './http-client.js';
import type { AttemptOutcome, DeliveryRecord, Outbox } from './outbox.js';
import { standardWebhookHeaders } from './signing.js';
import { notSentPrefix, type SendPlan, type TargetAdapters } from './targets.js';

/** Sent on every delivery; receivers' logs then say who called. */
export const deliveryUserAgent = 'earshot-delivery/1 (earshot speech-to-text appliance)';

export interface DispatcherOptions {
  outbox: Outbox;
  /** Resolve each delivery's target when it is sent (URL, the dialect's headers, secret). */
  targets: TargetAdapters;
  policy: CidrPolicy;
  log: Logger;
  /** Default `sendRequest`. */
  send?: SendFunction;
  /** Default `createRetrySchedule()` (immediate, 5 s, 5 min, ... 24 h, then dead). */
  schedule?: RetrySchedule;
  /** Per attempt: DNS, connect, response and body (default 15000). */
  timeoutMs?: number;
  /** Requests under way at once, over all targets (default 16: a few hanging receivers do not hold up the rest). */
  concurrency?: number;
  now?: () => number;
  random?: () => number;
  /** The timer that sleeps until the next due delivery (default Node's); tests pass a fake one. */
  timers?: DispatcherTimers;
  /** Default `deliveryUserAgent`; the composition root may add earshot's version. */
  userAgent?: string;
}

/** The dispatcher's sleep: one pending wake-up at a time. */
export interface DispatcherTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const nodeTimers: DispatcherTimers = {
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Counters and gauges for /metrics. Counters count since start(). */
export interface DispatcherStats {
  /** Deliveries that got a 2xx. */
  sent: number;
  /** Attempts that did not get a 2xx. */
  failedAttempts: number;
  /** Deliveries that became dead letters. */
  deadLettered: number;
  inFlight: number;
  /** Stored, pending deliveries (in flight included). */
  pending: number;
  /** Stored dead letters. */
  dead: number;
  /** Age of the oldest pending delivery, 0 when there is none. */
  oldestPendingAgeMs: number;
  /** From enqueue to 2xx, for the last delivery (undefined before the first). */
  lastDeliveryLatencyMs: number | undefined;
  /** Duration of the last attempt's request. */
  lastAttemptDurationMs: number | undefined;
}

// A timer far in the future is re-armed at least this often: a safety net should `now`
// and the timers ever disagree (the composition root passes the service clock, which
// does not step; see src/clock.ts).
const maxTimerMs = 5 * 60 * 1000;

// After an outcome could not be stored (disk full, store closing), the delivery is still
// due: pause rather than resend it in a tight loop.
const storeFailurePauseMs = 30_000;

/**
 * Drives the outbox: sends due deliveries (resolved by their target's adapter and signed
 * at send time), records every
 * attempt's outcome durably before anything else happens to that delivery, and sleeps
 * until the next due time. At-least-once: a delivery in flight when the process dies is
 * still pending in the outbox and is sent again, with the same id, after a restart.
 *
 * Outcomes: 2xx delivered; 410 Gone dead at once (+ the adapter's onGone); a target its
 * adapter refuses, a forbidden address or an invalid URL dead at once (retrying cannot help until the configuration changes; the
 * dead letter can then be redelivered); 429/503 retried no sooner than Retry-After;
 * anything else (3xx included: redirects are not followed), timeouts and connection
 * errors retried per the schedule, dead after the last attempt. The adapter hears of each
 * attempt's outcome (onDelivered, onFailed: not for refusals) after it is recorded.
 */
export class Dispatcher {
  private readonly outbox: Outbox;
  private readonly send: SendFunction;
  private readonly schedule: RetrySchedule;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly userAgent: string;
  private readonly log: Logger;

  private readonly timers: DispatcherTimers;
  private running = false;
  private timer: unknown = null;
  private wakeQueued = false;
  private pausedUntil = 0;
  private readonly inFlight = new Map<string, { done: Promise<void>; abort: AbortController }>();
  /**
   * Attempts whose request is under way: what `concurrency` limits. An attempt whose
   * answer came stays in flight (not sent again) until its outcome is stored, but frees
   * its slot: outcomes stored together share a commit, and the next requests go meanwhile.
   */
  private sending = 0;
  private counters = { sent: 0, failedAttempts: 0, deadLettered: 0 };
  private lastDeliveryLatencyMs: number | undefined;
  private lastAttemptDurationMs: number | undefined;

  constructor(private readonly options: DispatcherOptions) {
    this.outbox = options.outbox;
    this.send = options.send ?? sendRequest;
    this.schedule = options.schedule ?? createRetrySchedule();
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.concurrency = options.concurrency ?? 16;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.timers = options.timers ?? nodeTimers;
    this.userAgent = options.userAgent ?? deliveryUserAgent;
    this.log = options.log;
  }

  /** Starts sending: whatever is due now (including what was in flight before a restart), then on schedule. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.counters = { sent: 0, failedAttempts: 0, deadLettered: 0 };
    this.pump();
  }

  /**
   * Stops taking work and waits for attempts in flight, at most `graceMs` (default 5 s);
   * then aborts the rest. An aborted attempt is not recorded: it stays pending and is
   * sent again after the next start.
   */
  async stop(graceMs = 5000): Promise<void> {
    this.running = false;
    if (this.timer) this.timers.clear(this.timer);
    this.timer = null;
    const settled = Promise.all([...this.inFlight.values()].map((f) => f.done));
    let grace: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([settled.then(() => false), new Promise<boolean>((resolve) => (grace = setTimeout(() => resolve(true), graceMs)))]);
    clearTimeout(grace);
    if (timedOut) {
      for (const flight of this.inFlight.values()) flight.abort.abort(new AppError('ERR_SHUTTING_DOWN', 'delivery attempt aborted: earshot is stopping'));
      await settled;
    }
  }

  /** Something was enqueued (and committed): look for due work now rather than at the next timer. */
  notify(): void {
    if (!this.running || this.wakeQueued) return;
    this.wakeQueued = true;
    // Coalesces a burst of enqueues into one scan.
    setImmediate(() => {
      this.wakeQueued = false;
      this.pump();
    });
  }

  /** Counters and gauges for /metrics. */
  stats(): DispatcherStats {
    const counts = this.outbox.counts();
    const oldest = this.outbox.oldestPending();
    return {
      ...this.counters,
      inFlight: this.inFlight.size,
      pending: counts.pending,
      dead: counts.dead,
      oldestPendingAgeMs: oldest ? Math.max(0, this.now() - oldest.createdAt) : 0,
      lastDeliveryLatencyMs: this.lastDeliveryLatencyMs,
      lastAttemptDurationMs: this.lastAttemptDurationMs,
    };
  }

  /** Starts due attempts up to the concurrency limit, then sleeps until the next due time. */
  private pump(): void {
    if (!this.running) return;
    if (this.timer) this.timers.clear(this.timer);
    this.timer = null;
    const now = this.now();
    let wakeAt: number | undefined = this.pausedUntil > now ? this.pausedUntil : undefined;
    if (wakeAt === undefined) {
      try {
        wakeAt = this.startDue(now);
      } catch (err) {
        // The store is closing or failing; the next notify/start tries again.
        this.log.error('delivery scan failed', { error: err });
        return;
      }
    }
    if (wakeAt !== undefined) {
      this.timer = this.timers.set(() => this.pump(), Math.min(Math.max(0, wakeAt - this.now()), maxTimerMs));
    }
  }

  /** Begins what is due; returns when the next not-yet-due delivery is due, if a timer is needed. */
  private startDue(now: number): number | undefined {
    for (const { id, dueAt } of this.outbox.due()) {
      if (this.inFlight.has(id)) continue;
      // Full: the next attempt to finish pumps again.
      if (this.sending >= this.concurrency) return undefined;
      if (dueAt > now) return dueAt;
      const record = this.outbox.get(id);
      if (record?.state === 'pending') this.begin(record);
    }
    return undefined;
  }

  private begin(record: DeliveryRecord): void {
    // In flight before the attempt starts: it may be answered (a refused target) before
    // its first await, and the scan that follows must not begin it again.
    const flight = { done: Promise.resolve(), abort: new AbortController() };
    this.inFlight.set(record.id, flight);
    this.sending++;
    let slotHeld = true;
    const releaseSlot = () => {
      if (!slotHeld) return;
      slotHeld = false;
      this.sending--;
      this.pump();
    };
    flight.done = this.attempt(record, flight.abort.signal, releaseSlot)
      .catch((err) => {
        this.log.error('delivery outcome could not be stored; pausing deliveries', { id: record.id, error: err, pauseMs: storeFailurePauseMs });
        this.pausedUntil = this.now() + storeFailurePauseMs;
      })
      .finally(() => {
        this.inFlight.delete(record.id);
        if (slotHeld) releaseSlot();
        else this.pump();
      });
  }

  /** Sends one attempt, calls `answered` once the request is over, then stores the outcome. */
  private async attempt(record: DeliveryRecord, signal: AbortSignal, answered: () => void): Promise<void> {
    const started = this.now();
    const attemptNo = record.attempts + 1;
    let response: SendResponse | undefined;
    let error: AppError | undefined;
    try {
      const plan = this.options.targets.plan(record);
      response = await this.send({
        method: 'POST',
        url: plan.url,
        headers: this.headersFor(record, plan, attemptNo, started),
        body: record.body,
        timeoutMs: this.timeoutMs,
        policy: this.options.policy,
        signal,
      });
    } catch (err) {
      if (signal.aborted) return; // stopping: left pending, sent again after restart
      error = err instanceof AppError ? err : new AppError('ERR_TARGET_UNREACHABLE', err instanceof Error ? err.message : String(err), { cause: err });
    }
    const at = this.now();
    this.lastAttemptDurationMs = at - started;
    answered();
    const outcome = this.decide(attemptNo, at, response, error);
    const stored = await this.outbox.recordAttempt(record.id, outcome);
    if (!stored) return; // discarded or changed meanwhile
    this.report(stored, outcome, response, error);
  }

  private headersFor(record: DeliveryRecord, plan: SendPlan, attemptNo: number, nowMs: number): Record<string, string> {
    return {
      ...record.headers,
      ...plan.headers,
      'Content-Type': 'application/json',
      'User-Agent': this.userAgent,
      'X-Earshot-Delivery-Id': record.id,
      'X-Earshot-Delivery-Attempt': String(attemptNo),
      ...standardWebhookHeaders({ id: record.id, nowMs, body: record.body, secret: plan.secret }),
    };
  }

  private decide(attemptNo: number, at: number, response?: SendResponse, error?: AppError): AttemptOutcome {
    if (response && response.status >= 200 && response.status < 300) return { result: 'delivered', at, status: response.status };
    const detail = response ? { status: response.status, error: describeStatus(response) } : { error: error!.message };
    if (response?.status === 410) return { result: 'dead', at, ...detail, error: 'HTTP 410 Gone: the receiver asked not to be called again' };
    if (error && (error.code === 'ERR_TARGET_FORBIDDEN' || error.code === 'ERR_INVALID_ARGUMENT')) return { result: 'dead', at, ...detail };
    let delay = retryDelay(this.schedule, attemptNo, this.random);
    if (delay === null) return { result: 'dead', at, ...detail };
    if (response && (response.status === 429 || response.status === 503)) {
      const retryAfter = parseRetryAfter(response.headers['retry-after'], at);
      if (retryAfter !== undefined) delay = Math.max(delay, Math.min(retryAfter, this.schedule.maxRetryAfterMs));
    }
    return { result: 'retry', at, nextAttemptAt: at + delay, ...detail };
  }

  private report(stored: DeliveryRecord, outcome: AttemptOutcome, response?: SendResponse, error?: AppError): void {
    const fields = {
      id: stored.id,
      event: stored.event,
      url: displayUrl(stored.target.url),
      target: `${stored.target.kind} ${stored.target.key}`,
      attempt: stored.attempts,
      status: response?.status,
      code: error?.code,
      error: error?.message,
    };
    if (outcome.result === 'delivered') {
      this.counters.sent++;
      this.lastDeliveryLatencyMs = outcome.at - stored.createdAt;
      // No info line per success: on an SD card, the journal is written for problems only.
      this.log.debug('delivered', { ...fields, latencyMs: this.lastDeliveryLatencyMs });
      this.callback('onDelivered', stored);
      return;
    }
    this.counters.failedAttempts++;
    if (!stored.lastError?.startsWith(notSentPrefix)) this.callback('onFailed', stored);
    if (outcome.result === 'retry') {
      this.log.info('delivery attempt failed, will retry', { ...fields, retryInMs: outcome.nextAttemptAt - outcome.at });
      return;
    }
    this.counters.deadLettered++;
    this.log.warn('delivery dead-lettered', { ...fields, reason: stored.lastError });
    if (response?.status === 410) this.callback('onGone', stored);
    this.callback('onDead', stored);
  }

  private callback(name: 'onGone' | 'onDead' | 'onDelivered' | 'onFailed', delivery: DeliveryRecord): void {
    try {
      this.options.targets.get(delivery.target.kind)?.[name]?.(delivery);
    } catch (err) {
      this.log.error(`${name} handler failed`, { id: delivery.id, error: err });
    }
  }
}

function describeStatus(response: SendResponse): string {
  const location = response.headers.location;
  if (response.status >= 300 && response.status < 400 && location) {
    return `HTTP ${response.status} redirect to ${displayUrl(location)} (redirects are not followed: register the final URL)`;
  }
  return `HTTP ${response.status}`;
}
