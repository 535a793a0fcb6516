import { createHash } from 'node:crypto';

import { StorageType } from '@nats-io/jetstream';
import { type KV, Kvm, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import type { Database } from 'lmdb';

import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DatabaseName, StateDatabase } from '../store/database.js';
import type { FleetBroker, FleetHandles } from './broker.js';

/**
 * The LMDB databases that are fleet-wide: IBM callback URLs, Azure web hooks, and Azure's
 * batch transcription records (their jobs are the fleet's: docs/fleet.md, "Azure batch").
 */
export type ReplicatedStore = Extract<DatabaseName, 'ibm-callbacks' | 'azure-webhooks' | 'azure-transcriptions'>;
export const replicatedStores: readonly ReplicatedStore[] = ['ibm-callbacks', 'azure-webhooks', 'azure-transcriptions'];

/** What the bucket holds per registration: its LMDB key and value. */
interface Replica {
  key: string;
  value: unknown;
}

/**
 * The bucket key of a registration: `<store>.<sha-256 of its key>` (a callback URL holds
 * characters a bucket key may not, and may be 2 KB long).
 */
export function hookKey(store: ReplicatedStore, key: string): string {
  return `${store}.${createHash('sha256').update(key).digest('hex')}`;
}

export interface FleetHooksOptions {
  broker: FleetBroker;
  db: StateDatabase;
  log: Logger;
  /** The bucket (default `earshot-hooks`). */
  bucket?: string;
  replicas?: number;
  /** A registration removed by another device (an Azure hook's pending deliveries are dropped). */
  onRemoved?: (store: ReplicatedStore, key: string) => void;
}

/**
 * Registrations fleet-wide (docs/fleet.md): each device keeps its LMDB stores as they are
 * (all the dialects' code reads them) and replicates them through the key-value bucket
 * `earshot-hooks`. A change made here (registered, unregistered, a hook created, patched,
 * challenged, disabled, deleted: `changed`) is written through to the bucket; every
 * device watches the bucket and applies what others wrote straight to its LMDB, without
 * running anything (so a registration's challenge runs once, on the device that was
 * asked). On every (re)connection: what changed here while the broker was away, and what
 * the bucket never had (registered before this device joined), is written to the bucket;
 * then the whole bucket is copied here (its last value per key: deletions included).
 */
export class FleetHooks {
  private kv: KV | undefined;
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly stopSignal = new AbortController();
  private readonly stopped = new Promise<void>((resolve) => this.stopSignal.signal.addEventListener('abort', () => resolve(), { once: true }));
  /** Changes made here not yet in the bucket (the broker was away). */
  private readonly unsent = new Map<string, { store: ReplicatedStore; key: string }>();
  private pushing: Promise<void> = Promise.resolve();
  /** Changes applied from the bucket since start (for tests). */
  applied = 0;
  /** True once the bucket has been copied here since the last (re)connection. */
  synced = false;

  constructor(private readonly o: FleetHooksOptions) {}

  private store(name: ReplicatedStore): Database<unknown, string> {
    return this.o.db.db<unknown, string>(name);
  }

  /** A registration was written or removed here: to the bucket (now, or once the broker is back). */
  changed(store: ReplicatedStore, key: string): void {
    this.unsent.set(hookKey(store, key), { store, key });
    this.pushing = this.pushing.then(() => this.flush()).catch(() => {});
  }

  /** Resolves once the changes made so far are in the bucket (or the broker is away). */
  flushed(): Promise<void> {
    return this.pushing;
  }

  /**
   * The bucket's value of one record (undefined: none): for a record written elsewhere
   * that this device's watch may not have applied yet.
   * @throws AppError ERR_FLEET_UNAVAILABLE while the bucket cannot be read (the broker away, or not followed yet)
   */
  async read(store: ReplicatedStore, key: string): Promise<unknown> {
    const kv = this.kv;
    if (!kv || !this.o.broker.connected) throw new AppError('ERR_FLEET_UNAVAILABLE', "The fleet's registrations bucket cannot be read yet");
    const entry = await kv.get(hookKey(store, key)).catch((err: unknown) => {
      throw new AppError('ERR_FLEET_UNAVAILABLE', `Could not read the fleet's registrations bucket: ${(err as Error).message}`, { cause: err });
    });
    return entry?.operation === 'PUT' ? entry.json<Replica>().value : undefined;
  }

  private async flush(): Promise<void> {
    const kv = this.kv;
    if (!kv || !this.o.broker.connected) return;
    for (const [k, { store, key }] of [...this.unsent]) {
      try {
        await this.write(kv, store, key);
        this.unsent.delete(k);
      } catch (err) {
        this.o.log.warn('could not replicate a registration to the fleet (again on reconnection)', { store, error: err as Error });
        return;
      }
    }
  }

  /** Writes the local state of one registration to the bucket. */
  private async write(kv: KV, store: ReplicatedStore, key: string): Promise<void> {
    const value = this.store(store).get(key);
    if (value === undefined) await kv.delete(hookKey(store, key));
    else await kv.put(hookKey(store, key), JSON.stringify({ key, value } satisfies Replica));
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    this.watcher?.stop();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await Promise.race([this.o.broker.whenConnected(), this.stopped]);
      const h = this.o.broker.connected;
      if (this.stopping || !h) break;
      try {
        await this.follow(h);
      } catch (err) {
        if (!this.stopping) this.o.log.warn('fleet registrations: replication interrupted', { error: err as Error });
      }
      this.synced = false;
      this.watcher?.stop();
      this.watcher = undefined;
      this.kv = undefined;
      if (!this.stopping) await Promise.race([new Promise((resolve) => setTimeout(resolve, 500)), this.stopped]);
    }
  }

  /** On one connection: sends what the bucket lacks, copies the bucket, then follows it until the connection changes. */
  private async follow(h: FleetHandles): Promise<void> {
    const kv = await new Kvm(h.js).create(this.o.bucket ?? 'earshot-hooks', {
      history: 1,
      storage: StorageType.File,
      replicas: this.o.replicas ?? 1,
    });
    // Registrations the bucket has never seen (made before this device joined the fleet).
    for (const store of replicatedStores) {
      for (const key of [...this.store(store).getKeys()]) {
        const k = hookKey(store, key);
        if (!this.unsent.has(k) && !(await kv.get(k))) this.unsent.set(k, { store, key });
      }
    }
    this.kv = kv;
    this.pushing = this.pushing.then(() => this.flush()).catch(() => {});
    await this.pushing;
    const watcher = await kv.watch();
    this.watcher = watcher;
    const connectionChanged = setInterval(() => {
      if (this.o.broker.connected !== h) watcher.stop();
    }, 500);
    try {
      // The watch delivers each key's last value first (the full copy), then every change.
      let initial = (await kv.status()).values;
      if (initial === 0) this.synced = true;
      for await (const entry of watcher) {
        await this.apply(entry);
        if (!this.synced && (entry.isUpdate || --initial <= 0)) this.synced = true;
        if (this.stopping) break;
      }
    } finally {
      clearInterval(connectionChanged);
    }
  }

  /** Applies a bucket entry to this device's LMDB (nothing when it holds that already). */
  private async apply(entry: KvWatchEntry): Promise<void> {
    const [store] = entry.key.split('.', 1) as [ReplicatedStore];
    if (!replicatedStores.includes(store)) return;
    // A change of ours not yet sent wins over an older one from the bucket.
    if (this.unsent.has(entry.key)) return;
    const db = this.store(store);
    if (entry.operation === 'PUT') {
      const replica = entry.json<Replica>();
      if (hookKey(store, replica.key) !== entry.key) return;
      if (JSON.stringify(db.get(replica.key)) === JSON.stringify(replica.value)) return;
      await this.o.db.durably(() => db.putSync(replica.key, replica.value));
      this.applied++;
      return;
    }
    // Deleted: find the local key by its hash (a few hundred registrations at most).
    for (const key of [...db.getKeys()]) {
      if (hookKey(store, key) !== entry.key) continue;
      await this.o.db.durably(() => db.removeSync(key));
      this.applied++;
      this.o.onRemoved?.(store, key);
    }
  }
}
