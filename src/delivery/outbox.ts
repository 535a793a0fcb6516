import { randomUUID } from 'node:crypto';
import { validateHeaderName, validateHeaderValue } from 'node:http';

import type { Database } from 'lmdb';

import { invalidArgument } from '../errors.js';
import { type StateDatabase, storableKey } from '../store/database.js';

/**
 * Where a delivery goes, as the dialect that queued it names it. The kind's adapter
 * (targets.ts) resolves it to a request when it is sent; no secret is stored here.
 */
export interface DeliveryTarget {
  /** Registered by the dialect that queued it (see targets.ts). */
  kind: string;
  /** Identifies the target within its kind (a callback URL, a web hook id). */
  key: string;
  /** The target's URL when the delivery was queued: for lists and logs. */
  url: string;
}

export type DeliveryState = 'pending' | 'delivered' | 'dead';

/** One notification in the outbox, as stored. */
export interface DeliveryRecord {
  /** Stable across attempts and redeliveries; sent as webhook-id and X-Earshot-Delivery-Id. */
  id: string;
  /** When it was queued, as a sequence number (monotonic; a redelivery gets a new one). */
  seq: number;
  target: DeliveryTarget;
  /** The event name, e.g. recognitions.completed, TranscriptionCompletion, ping. */
  event: string;
  /** The exact JSON text sent. */
  body: string;
  /** Fixed extra request headers, e.g. an event header. */
  headers: Record<string, string>;
  createdAt: number;
  /** Attempts made (reset by a redelivery). */
  attempts: number;
  /** When the next attempt is due (ms since the epoch); meaningful while pending. */
  nextAttemptAt: number;
  state: DeliveryState;
  lastAttemptAt?: number;
  /** HTTP status of the last attempt, when it got one. */
  lastStatus?: number;
  /** Why the last attempt failed. */
  lastError?: string;
  deliveredAt?: number;
  deadAt?: number;
}

/** What a caller puts in the outbox. */
export interface EnqueueInput {
  /** Give one to put the same id in the body (a dialect's own delivery id field); default a random UUID. */
  id?: string;
  target: DeliveryTarget;
  event: string;
  body: string;
  headers?: Record<string, string>;
  /** Not before this time (ms since the epoch); default now. */
  notBefore?: number;
}

/** The outcome of one attempt, as the dispatcher decided it. */
export type AttemptOutcome =
  | { result: 'delivered'; at: number; status: number }
  | { result: 'retry'; at: number; nextAttemptAt: number; status?: number; error?: string }
  | { result: 'dead'; at: number; status?: number; error?: string };

/** Selects deliveries by target (both given: both must match). */
export interface TargetFilter {
  kind?: string;
  key?: string;
}

/** A target as releases before the delivery adapters stored it (with a copy of its secrets beside it). */
interface LegacyRecord extends Omit<DeliveryRecord, 'target'> {
  target: { kind: string; url: string; key?: string; hookId?: string };
  signing?: unknown;
  orderKey?: string;
}

export interface OutboxCounts {
  pending: number;
  delivered: number;
  dead: number;
}

export interface OutboxOptions {
  now?: () => number;
}

// Keys of the index database, one prefix per index:
//   ['due', nextAttemptAt, seq] → id   every pending delivery, by when its next attempt is due
//   ['pending', seq]            → id   every pending delivery, in the order queued
//   ['done', state, at, seq]    → id   delivered (by deliveredAt) and dead (by deadAt)
//   ['seq']                     → last seq handed out
//   ['format']                  → storageFormat once upgrade() has run
// Every delivery goes out on its own schedule, as the events happen: a failing or slow
// earlier event never holds back a later one (receivers order by event and timestamp).
// (Releases before 2026-12 kept per-target lines under ['line', hash, seq]; upgrade()
// turns them into these keys.)
type IndexKey = (string | number)[];
const maxKey = Number.MAX_SAFE_INTEGER;
// ':' for a fleet event's stable id (`<job>:<change>:<attempt>`, src/fleet/events.ts).
const idPattern = /^[A-Za-z0-9_:-]{1,128}$/;
const kindPattern = /^[a-z0-9-]{1,64}$/;
/** The records and keys of this release; earlier ones are rewritten by upgrade(). */
const storageFormat = 2;

/**
 * The durable outbox of callback and webhook deliveries, in two named LMDB databases
 * (`outbox`: id → record; `outbox-index`: due times, pending and finished deliveries,
 * the sequence counter). Every change is transactional; `enqueue` joins the
 * caller's transaction so a job's state change and its notifications commit together.
 */
export class Outbox {
  private readonly now: () => number;

  constructor(
    private readonly database: StateDatabase,
    options: OutboxOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  // Looked up on each use (a map lookup): handles change when the store is reopened.
  private get records(): Database<DeliveryRecord, string> {
    return this.database.db<DeliveryRecord, string>('outbox');
  }

  private get index(): Database<string | number, IndexKey> {
    return this.database.db<string | number, IndexKey>('outbox-index');
  }

  /**
   * Adds a delivery with synchronous writes. Call it inside the caller's
   * `database.durably(() => { ...; outbox.enqueue(...) })` so that it commits (and is
   * flushed) with the state change it reports; outside a transaction it commits on its
   * own, synchronously, but is not awaited to disk (use `enqueueDurably`). Then call the
   * dispatcher's `notify()`.
   *
   * Never throws for what it is given: a job's state change must not fail because of one
   * of its notifications. An input that cannot be sent (a malformed target, header or id)
   * is stored as a dead letter at once, "not enqueued: <why>", where it can be listed.
   * Only a failing store throws (and then the whole transaction must fail).
   */
  enqueue(input: EnqueueInput): DeliveryRecord {
    // Inside the caller's transaction (durably) this joins it; outside, it is its own.
    return this.records.transactionSync(() => {
      let problem = invalidInput(input);
      let id = input.id ?? randomUUID();
      if (!problem && this.records.get(id) !== undefined) problem = `the delivery id ${id} is already used`;
      if (problem && (!idPattern.test(id) || this.records.get(id) !== undefined)) id = randomUUID();
      const now = this.now();
      const record: DeliveryRecord = {
        id,
        seq: this.nextSeq(),
        target: { kind: String(input.target?.kind), key: String(input.target?.key), url: String(input.target?.url) },
        event: String(input.event),
        body: typeof input.body === 'string' ? input.body : String(input.body),
        headers: problem ? {} : { ...input.headers },
        createdAt: now,
        attempts: 0,
        nextAttemptAt: input.notBefore ?? now,
        state: 'pending',
      };
      if (!problem) {
        this.addPending(record);
        return record;
      }
      const dead: DeliveryRecord = { ...record, nextAttemptAt: now, state: 'dead', deadAt: now, lastError: `not enqueued: ${problem}` };
      this.index.putSync(['done', 'dead', now, dead.seq], id);
      this.records.putSync(id, dead);
      return dead;
    });
  }

  /** `enqueue` in a transaction of its own; resolves once it is on disk. */
  enqueueDurably(input: EnqueueInput): Promise<DeliveryRecord> {
    return this.database.durably(() => this.enqueue(input));
  }

  /**
   * Rewrites what releases before 2026-12 stored: a record's target gets its key (the web
   * hook id, or else the URL), the copy of the target's secrets it carried is erased, and
   * pending deliveries leave their per-target lines to be due on their own. Run once at
   * start, before the dispatcher; resolves to how many records changed. Once done, later
   * starts read one key instead of every record.
   */
  upgrade(): Promise<number> {
    if (this.index.get(['format']) === storageFormat) return Promise.resolve(0);
    return this.database.durably(() => {
      let count = 0;
      for (const { key, value } of [...this.records.getRange()]) {
        const legacy = value as unknown as LegacyRecord;
        if (legacy.target.key !== undefined && !('signing' in legacy) && !('orderKey' in legacy)) continue;
        const { signing: _secrets, orderKey: _line, target, ...rest } = legacy;
        const upgraded: DeliveryRecord = { ...rest, target: { kind: target.kind, key: target.key ?? target.hookId ?? target.url, url: target.url } };
        this.records.putSync(key, upgraded);
        count++;
      }
      for (const { key, value } of [...this.index.getRange({ start: ['line'], end: ['line', '\uffff'] })]) {
        this.index.removeSync(key);
        const record = this.records.get(value as string);
        if (record?.state === 'pending') this.addPending(record);
      }
      this.index.putSync(['format'], storageFormat);
      return count;
    });
  }

  /** One delivery by id. */
  get(id: string): DeliveryRecord | undefined {
    return storableKey(id) ? this.records.get(id) : undefined;
  }

  /**
   * Pending deliveries, earliest due first, with their due time. Those due later than
   * `until` are not listed.
   */
  *due(until = Number.POSITIVE_INFINITY): Generator<{ id: string; dueAt: number }> {
    for (const { key, value } of this.index.getRange({ start: ['due'], end: ['due', maxKey] })) {
      const dueAt = key[1] as number;
      if (dueAt > until) return;
      yield { id: value as string, dueAt };
    }
  }

  /** Every pending delivery, in the order queued. */
  *pending(): Generator<DeliveryRecord> {
    for (const { value } of this.index.getRange({ start: ['pending'], end: ['pending', maxKey] })) {
      const record = this.records.get(value as string);
      if (record) yield record;
    }
  }

  /**
   * The pending delivery queued first, if any: the oldest (creation times follow the
   * sequence but for clock steps). One index read, cheap enough for every scrape.
   */
  oldestPending(): DeliveryRecord | undefined {
    for (const record of this.pending()) return record;
    return undefined;
  }

  /**
   * Records an attempt's outcome, durably: attempts, last status/error, and the next due
   * time, or the move to delivered/dead (which lets the next delivery of its order key
   * go). Ignored (undefined) when the delivery is no longer pending.
   */
  recordAttempt(id: string, outcome: AttemptOutcome): Promise<DeliveryRecord | undefined> {
    return this.database.durably(() => {
      const record = this.records.get(id);
      if (record?.state !== 'pending') return undefined;
      const updated: DeliveryRecord = { ...record, attempts: record.attempts + 1, lastAttemptAt: outcome.at };
      delete updated.lastStatus;
      delete updated.lastError;
      if (outcome.status !== undefined) updated.lastStatus = outcome.status;
      if ('error' in outcome && outcome.error !== undefined) updated.lastError = outcome.error;
      if (outcome.result === 'retry') {
        this.index.removeSync(['due', record.nextAttemptAt, record.seq]);
        updated.nextAttemptAt = outcome.nextAttemptAt;
        this.index.putSync(['due', updated.nextAttemptAt, updated.seq], id);
        this.records.putSync(id, updated);
        return updated;
      }
      this.removePending(record);
      if (outcome.result === 'delivered') {
        updated.state = 'delivered';
        updated.deliveredAt = outcome.at;
      } else {
        updated.state = 'dead';
        updated.deadAt = outcome.at;
      }
      this.index.putSync(['done', updated.state, outcome.at, updated.seq], id);
      this.records.putSync(id, updated);
      return updated;
    });
  }

  /**
   * Deliveries in `state` matching `filter`: pending ones and dead letters oldest first
   * (send order), delivered ones newest first (the recent ones), at most `limit`.
   */
  list(state: DeliveryListState, filter: TargetFilter = {}, limit = Number.POSITIVE_INFINITY): DeliveryRecord[] {
    if (state === 'delivered') return this.listFinished('delivered', filter, limit, true);
    const records = state === 'dead' ? this.listFinished('dead', filter, Number.POSITIVE_INFINITY) : this.listPending(filter);
    return records.sort((a, b) => a.seq - b.seq).slice(0, limit);
  }

  /** Pending deliveries matching `filter`, in the order of `pending()`. */
  listPending(filter: TargetFilter = {}): DeliveryRecord[] {
    return [...this.pending()].filter((record) => matches(record, filter));
  }

  /** Dead letters, oldest first, optionally only those for one target. */
  listDead(filter: TargetFilter = {}, limit = 1000): DeliveryRecord[] {
    return this.listFinished('dead', filter, limit);
  }

  /** Finished deliveries in the order they finished (`newestFirst` reverses it). */
  private listFinished(state: 'dead' | 'delivered', filter: TargetFilter, limit: number, newestFirst = false): DeliveryRecord[] {
    const out: DeliveryRecord[] = [];
    if (limit <= 0) return out;
    const [from, to] = [
      ['done', state],
      ['done', state, maxKey],
    ];
    const range = newestFirst ? { start: to, end: from, reverse: true } : { start: from, end: to };
    for (const { value } of this.index.getRange(range)) {
      const record = this.records.get(value as string);
      if (record && matches(record, filter)) out.push(record);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * Sends a dead letter again: pending, due now, attempts reset, same id. Resolves to the
   * record, or undefined when `id` is not dead.
   */
  redeliver(id: string): Promise<DeliveryRecord | undefined> {
    return this.database.durably(() => this.revive(id));
  }

  /** `redeliver` for every dead letter (matching `filter`); resolves to how many. */
  redeliverAll(filter: TargetFilter = {}): Promise<number> {
    return this.database.durably(() => {
      let count = 0;
      for (const record of this.listDead(filter, Number.POSITIVE_INFINITY)) if (this.revive(record.id)) count++;
      return count;
    });
  }

  /**
   * Drops pending deliveries for a target that no longer exists (a deleted web hook), so
   * they are neither sent nor dead-lettered. Resolves to how many. A delivery already in
   * flight is still sent once; its outcome is then ignored.
   */
  discardPending(filter: TargetFilter): Promise<number> {
    if (filter.kind === undefined || filter.key === undefined) {
      return Promise.reject(invalidArgument('target filter', 'a kind and a key', undefined));
    }
    return this.database.durably(() => {
      const doomed = this.listPending(filter);
      for (const record of doomed) {
        this.removePending(record);
        this.records.removeSync(record.id);
      }
      return doomed.length;
    });
  }

  /**
   * Deletes delivered records older than `deliveredMs` and dead letters older than
   * `deadMs` (defaults: 7 and 30 days), so the SD card does not fill up with history; at
   * most `limit` in this transaction. Resolves to how many were deleted.
   */
  prune(options: { deliveredMs?: number; deadMs?: number; limit?: number } = {}): Promise<number> {
    const day = 24 * 60 * 60 * 1000;
    const now = this.now();
    const cutoffs = { delivered: now - (options.deliveredMs ?? 7 * day), dead: now - (options.deadMs ?? 30 * day) };
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    return this.database.durably(() => {
      let count = 0;
      for (const state of ['delivered', 'dead'] as const) {
        if (count >= limit) break;
        const bounds = { start: ['done', state], end: ['done', state, cutoffs[state]] };
        const range = this.index.getRange(Number.isFinite(limit) ? { ...bounds, limit: limit - count } : bounds);
        for (const { key, value } of [...range]) {
          this.index.removeSync(key);
          this.records.removeSync(value as string);
          count++;
        }
      }
      return count;
    });
  }

  /**
   * Moves every delivery's times by `deltaMs` (inside the caller's durably()): the wall
   * clock stepped, and due times and the ages that decide pruning must stay what they
   * were (see ServiceClock). Returns how many records moved.
   */
  shiftTimes(deltaMs: number): number {
    let count = 0;
    for (const { value: record } of [...this.records.getRange()]) {
      const moved: DeliveryRecord = { ...record, createdAt: record.createdAt + deltaMs, nextAttemptAt: record.nextAttemptAt + deltaMs };
      for (const field of ['lastAttemptAt', 'deliveredAt', 'deadAt'] as const) {
        const at = record[field];
        if (at !== undefined) moved[field] = at + deltaMs;
      }
      if (record.state === 'pending') {
        this.index.removeSync(['due', record.nextAttemptAt, record.seq]);
        this.index.putSync(['due', moved.nextAttemptAt, moved.seq], moved.id);
      } else {
        this.index.removeSync(['done', record.state, doneAt(record), record.seq]);
        this.index.putSync(['done', moved.state, doneAt(moved), moved.seq], moved.id);
      }
      this.records.putSync(moved.id, moved);
      count++;
    }
    return count;
  }

  /**
   * The newest time the outbox recorded: the last delivery queued, delivered or
   * dead-lettered (0 when there is none). A floor for the clock.
   */
  newestRecorded(): number {
    let newest = 0;
    for (const state of ['delivered', 'dead'] as const) {
      for (const key of this.index.getKeys({ start: ['done', state, maxKey], end: ['done', state], reverse: true, limit: 1 })) {
        newest = Math.max(newest, key[2] as number);
      }
    }
    for (const { value } of this.index.getRange({ start: ['pending', maxKey], end: ['pending'], reverse: true, limit: 1 })) {
      newest = Math.max(newest, this.records.get(value as string)?.createdAt ?? 0);
    }
    return newest;
  }

  /** How many deliveries are in each state. */
  counts(): OutboxCounts {
    return {
      pending: this.index.getKeysCount({ start: ['pending'], end: ['pending', maxKey] }),
      delivered: this.index.getKeysCount({ start: ['done', 'delivered'], end: ['done', 'delivered', maxKey] }),
      dead: this.index.getKeysCount({ start: ['done', 'dead'], end: ['done', 'dead', maxKey] }),
    };
  }

  private nextSeq(): number {
    const seq = ((this.index.get(['seq']) as number | undefined) ?? 0) + 1;
    this.index.putSync(['seq'], seq);
    return seq;
  }

  /** Stores a pending record with its index entries. */
  private addPending(record: DeliveryRecord): void {
    this.index.putSync(['pending', record.seq], record.id);
    this.index.putSync(['due', record.nextAttemptAt, record.seq], record.id);
    this.records.putSync(record.id, record);
  }

  /** Takes a pending record's index entries away (it is finished, or gone). */
  private removePending(record: DeliveryRecord): void {
    this.index.removeSync(['pending', record.seq]);
    this.index.removeSync(['due', record.nextAttemptAt, record.seq]);
  }

  private revive(id: string): DeliveryRecord | undefined {
    const record = this.records.get(id);
    if (record?.state !== 'dead') return undefined;
    this.index.removeSync(['done', 'dead', doneAt(record), record.seq]);
    const revived: DeliveryRecord = { ...record, state: 'pending', attempts: 0, seq: this.nextSeq(), nextAttemptAt: this.now() };
    delete revived.deadAt;
    this.addPending(revived);
    return revived;
  }
}

/** What a listing can ask for: dead letters, pending deliveries, or the recently delivered. */
export type DeliveryListState = 'dead' | 'pending' | 'delivered';

/** Listings show at most this many deliveries (the newest, for delivered ones). */
export const deliveryListLimit = 1000;

/** A listing's `state` query parameter: dead (the default), pending or delivered; undefined when it is none of them. */
export function deliveryListState(value: string | null): DeliveryListState | undefined {
  if (value === null || value === '' || value === 'dead') return 'dead';
  if (value === 'pending' || value === 'delivered') return value;
  return undefined;
}

/** The error message for a `state` that `deliveryListState` refused. */
export function invalidListState(value: string | null): string {
  return `Invalid state '${value}'. Valid states are dead, pending, delivered`;
}

/** When a finished delivery finished, as its ['done', ...] index key has it. */
function doneAt(record: DeliveryRecord): number {
  return (record.state === 'delivered' ? record.deliveredAt : record.deadAt) ?? 0;
}

function matches(record: DeliveryRecord, filter: TargetFilter): boolean {
  return (filter.kind === undefined || record.target.kind === filter.kind) && (filter.key === undefined || record.target.key === filter.key);
}

/** Why `input` cannot be sent, or undefined when it can. */
function invalidInput(input: EnqueueInput): string | undefined {
  const expected = (name: string, what: string, actual: unknown) => invalidArgument(name, what, actual).message;
  if (input.id !== undefined && !idPattern.test(input.id)) return expected('delivery id', 'up to 128 letters, digits, "-", "_" or ":"', input.id);
  if (typeof input.target?.kind !== 'string' || !kindPattern.test(input.target.kind)) {
    return expected('target.kind', 'a kind name (lower-case letters, digits and "-")', input.target?.kind);
  }
  if (typeof input.target.key !== 'string' || input.target.key === '') return expected('target.key', 'a non-empty string', input.target.key);
  if (typeof input.target.url !== 'string' || !/^https?:\/\//i.test(input.target.url))
    return expected('target.url', 'an http: or https: URL', input.target.url);
  if (typeof input.event !== 'string' || input.event === '') return expected('event', 'a non-empty string', input.event);
  if (typeof input.body !== 'string') return expected('body', 'a JSON string', input.body);
  for (const [name, value] of Object.entries(input.headers ?? {})) {
    // Checked now: a header Node refuses to send would otherwise fail every attempt.
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      return expected(`header ${JSON.stringify(name)}`, 'a valid HTTP header name and string value', value);
    }
  }
  if (input.notBefore !== undefined && !Number.isFinite(input.notBefore)) return expected('notBefore', 'a time in ms since the epoch', input.notBefore);
  return undefined;
}
