import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { open, type Database, type Key, type RootDatabase } from 'lmdb';

/**
 * Every named database of the environment. They are all opened by open(), outside any
 * transaction: a database first opened inside a transaction that is then aborted is left
 * with an invalid handle (LMDB rolls the open back with the transaction).
 */
export const databaseNames = [
  'jobs',
  'results',
  'jobs-by-created',
  'jobs-waiting',
  'jobs-waiting-interactive',
  'jobs-by-expiry',
  'jobs-counts',
  'ibm-callbacks',
  'outbox',
  'outbox-index',
  'azure-webhooks',
  'azure-transcriptions',
  'fleet-events',
] as const;
export type DatabaseName = (typeof databaseNames)[number];

/** lmdb-js's largest key, in bytes: a longer one can be neither stored nor looked up (lmdb-js throws). */
export const maxKeyBytes = 1978;

/**
 * Whether `key` can be a key of the store. Look-ups of keys from clients (ids, URLs) check
 * it first: a longer key cannot have been stored, so it is not found (not a 500).
 */
export function storableKey(key: string): boolean {
  return Buffer.byteLength(key, 'utf8') <= maxKeyBytes;
}

/**
 * earshot's one LMDB environment (`<stateDir>/db`) and its named databases. Every state
 * change that must survive a power cut goes through `durably()`, which resolves only once
 * the transaction is committed and flushed to the storage medium.
 */
export class StateDatabase {
  private root: RootDatabase | null = null;
  private readonly handles = new Map<DatabaseName, Database>();
  /** The write transaction the last change ran in: a change in another one starts a new commit. */
  private lastTxnId = -1;
  /** Commits and the changes they carried since start (their ratio: the mean batch size). */
  readonly stats = { commits: 0, changes: 0 };

  constructor(private readonly stateDir: string) {}

  open(): void {
    const dir = path.join(this.stateDir, 'db');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Default sync settings: crash-proof commits (overlapping sync, flushed before
    // durably() resolves). No compression: results are small and the Pi's CPU is for whisper.
    this.root = open({ path: dir, maxDbs: 16 });
    for (const name of databaseNames) this.handles.set(name, this.root.openDB({ name }));
  }

  /** A named database of the environment; values are msgpack-encoded. */
  db<V = unknown, K extends Key = Key>(name: DatabaseName): Database<V, K> {
    const handle = this.handles.get(name);
    if (!handle) throw new Error(`StateDatabase.open() must run before database '${name}' is used`);
    return handle as unknown as Database<V, K>;
  }

  /**
   * Runs `fn` in one write transaction (its puts and removes commit together, or none of
   * them if `fn` throws) and resolves once the commit is flushed to disk.
   *
   * Group commit: each call is a child transaction of lmdb-js's next asynchronous batch,
   * so changes issued close together share one commit and one sync, both done by lmdb-js's
   * write thread, never on the event loop. A child that throws is rolled back alone; the
   * others in its batch commit. `fn` runs later than the call (when the batch starts),
   * inside the write transaction: it sees every change committed or batched before it,
   * so checks that must hold when the change is written belong inside `fn`. It must be
   * synchronous.
   */
  async durably<T>(fn: () => T): Promise<T> {
    if (!this.root) throw new Error('StateDatabase.open() must run first');
    const root = this.root;
    const result = (await root.childTransaction(() => {
      const txnId = root.getWriteTxnId();
      if (txnId !== this.lastTxnId) this.stats.commits++;
      this.lastTxnId = txnId;
      this.stats.changes++;
      return fn();
    })) as T;
    await this.root.flushed;
    return result;
  }

  async close(): Promise<void> {
    const root = this.root;
    this.root = null;
    this.handles.clear();
    if (root) {
      await root.flushed;
      await root.close();
    }
  }
}
