import { AckPolicy, DiscardPolicy, jetstreamManager, type JsMsg, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Database } from 'lmdb';

import { AppError } from '../errors.js';
import type { Job } from '../jobs/job.js';
import type { JobChange, JobNotifier } from '../jobs/job-service.js';
import type { StoredTranscript } from '../jobs/job-store.js';
import type { Logger } from '../log.js';
import type { StateDatabase } from '../store/database.js';
import { ensureConsumer, type FleetBroker, type FleetHandles } from './broker.js';

/**
 * A job's state change as the fleet reports it: what a device wrote to the jobs bucket
 * (`job`, as written) and the change's stable id, `<job>:<change>:<attempt>` (eventId).
 */
export interface FleetEvent {
  id: string;
  change: JobChange;
  job: Job;
}

/**
 * The stable id of a job's change: the job, the change and the attempt it happened in
 * (the job's `attempts` as written with the change). Whoever reports the change (the
 * device that wrote it, or the one that found it written but unreported) names it alike,
 * so the broker stores it once (Nats-Msg-Id) and a receiver can de-duplicate by it: it
 * is the id of the deliveries it becomes (IBM's webhook-id; Azure's invocationId with the
 * hook's id after it).
 */
export function eventId(jobId: string, change: JobChange, attempt: number): string {
  return `${jobId}:${change}:${attempt}`;
}

/** The parts of an event id; undefined when `id` is not one. */
export function parseEventId(id: string): { job: string; change: JobChange; attempt: number } | undefined {
  const m = /^([A-Za-z0-9_-]+):(created|started|completed|failed|deleted):(0|[1-9][0-9]*)$/.exec(id);
  return m ? { job: m[1]!, change: m[2] as JobChange, attempt: Number(m[3]) } : undefined;
}

/** The change a stored job state records (processing: started; finished: completed or failed; waiting: none). */
export function changeOf(job: Pick<Job, 'status'>): JobChange | undefined {
  switch (job.status) {
    case 'processing':
      return 'started';
    case 'completed':
      return 'completed';
    case 'failed':
      return 'failed';
    default:
      return undefined;
  }
}

/** The event of `change` of `job` (as written). */
export function fleetEvent(job: Job, change: JobChange): FleetEvent {
  return { id: eventId(job.id, change, job.attempts), change, job };
}

export interface FleetEventsLayout {
  /** The work-queue stream of events. */
  stream: string;
  /** Its subjects: `<subjectPrefix>.<job id>`. */
  subjectPrefix: string;
  /** The one pull consumer every device shares. */
  consumer: string;
  /** Unacknowledged this long (its deliveries not committed, or the ack lost), an event goes to a device again. */
  ackWaitMs: number;
  /** A repeated publish of one event id within this window is stored once. */
  duplicateWindowMs: number;
  /** An event's id is remembered by the device that turned it into deliveries this long (a redelivery then adds nothing). */
  handledMs: number;
  streamMaxBytes: number;
  replicas: number;
}

export const defaultEventsLayout: FleetEventsLayout = {
  stream: 'EARSHOT_EVENTS',
  subjectPrefix: 'earshot.events',
  consumer: 'notifiers',
  ackWaitMs: 30_000,
  duplicateWindowMs: 10 * 60_000,
  handledMs: 24 * 3600_000,
  streamMaxBytes: 256 * 1024 ** 2,
  replicas: 1,
};

export interface FleetEventsOptions {
  broker: FleetBroker;
  /** This device's store: its outbox, and the ids of the events it turned into deliveries. */
  db: StateDatabase;
  /** The dialects' notifiers (IBM callbacks, Azure web hooks), as the job service has them. */
  notifiers: () => readonly JobNotifier[];
  /** A completed job's transcript (the fleet's results bucket). */
  result: (jobId: string) => Promise<StoredTranscript | undefined>;
  /** After deliveries were committed: wakes the dispatcher. */
  onNotified?: () => void;
  log: Logger;
  layout?: Partial<FleetEventsLayout>;
  /** How long one pull waits. */
  pullMs?: number;
  now?: () => number;
}

/**
 * Deliveries once per event, fleet-wide (docs/fleet.md, "Deliveries once per event").
 * `publish` puts a job's change on the events stream with its stable id as Nats-Msg-Id
 * (stored once however often it is published within the duplicate window). Every device
 * runs the loop: it pulls an event, turns it into deliveries in its own outbox by calling
 * the notifiers in ONE LMDB transaction that also records the event's id, and acks the
 * event only after that commit. A redelivered event (the ack was lost, or the device died
 * between commit and ack) finds its id recorded and adds nothing on that device; on
 * another device it becomes the same deliveries with the same ids (at least once, and a
 * receiver de-duplicates by webhook-id / invocationId).
 */
export class FleetEvents {
  readonly layout: FleetEventsLayout;
  private provisioned: FleetHandles | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly stopSignal = new AbortController();
  private readonly stopped = new Promise<void>((resolve) => this.stopSignal.signal.addEventListener('abort', () => resolve(), { once: true }));
  private readonly now: () => number;
  private lastPrune = 0;
  /** Events turned into deliveries here since start (for tests and metrics). */
  handled = 0;

  constructor(private readonly o: FleetEventsOptions) {
    this.layout = { ...defaultEventsLayout, ...o.layout };
    this.now = o.now ?? Date.now;
  }

  private get handledIds(): Database<number, string> {
    return this.o.db.db<number, string>('fleet-events');
  }

  /** The stream and its consumer, on this connection (again after a reconnection: the broker may be a new one). */
  private async handles(): Promise<FleetHandles> {
    const h = this.o.broker.connected;
    if (!h) throw new AppError('ERR_FLEET_UNAVAILABLE', `The fleet's broker cannot be reached (${this.o.broker.state})`);
    if (this.provisioned === h) return h;
    const l = this.layout;
    const jsm = await jetstreamManager(h.nc);
    const stream = {
      name: l.stream,
      subjects: [`${l.subjectPrefix}.>`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      max_bytes: l.streamMaxBytes,
      discard: DiscardPolicy.New,
      num_replicas: l.replicas,
      duplicate_window: nanos(l.duplicateWindowMs),
    };
    try {
      await jsm.streams.info(l.stream);
      await jsm.streams.update(l.stream, stream);
    } catch (err) {
      if (!/stream not found/i.test((err as Error).message)) throw err;
      await jsm.streams.add(stream);
    }
    const consumer = {
      durable_name: l.consumer,
      filter_subject: `${l.subjectPrefix}.>`,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(l.ackWaitMs),
      max_deliver: -1,
      max_ack_pending: -1,
    };
    await ensureConsumer(jsm, l.stream, consumer);
    this.provisioned = h;
    return h;
  }

  /**
   * Reports `change` of `job` (as just written to the jobs bucket) to the fleet; resolves
   * once the broker stored the event (or already had it: the same id).
   * @throws AppError ERR_FLEET_UNAVAILABLE
   */
  async publish(job: Job, change: JobChange): Promise<string> {
    const event = fleetEvent(job, change);
    try {
      const h = await this.handles();
      await h.js.publish(`${this.layout.subjectPrefix}.${job.id}`, JSON.stringify(event), { msgID: event.id });
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('ERR_FLEET_UNAVAILABLE', `Could not publish the fleet event ${event.id}: ${(err as Error).message}`, { cause: err });
    }
    return event.id;
  }

  /**
   * Turns an event into deliveries in this device's outbox, in one transaction that
   * records its id; resolves false when this device had done so already (nothing added).
   */
  async record(event: FleetEvent): Promise<boolean> {
    const result = event.change === 'completed' ? await this.o.result(event.job.id) : undefined;
    const notifiers = this.o.notifiers();
    // What a notifier reads from the fleet (an Azure batch's other jobs), before the synchronous transaction.
    for (const n of notifiers) await n.prepare?.(event.job, event.change, result);
    const added = await this.o.db.durably(() => {
      if (this.handledIds.get(event.id) !== undefined) return false;
      for (const n of notifiers) n.notify(event.job, event.change, result, event.id);
      this.handledIds.putSync(event.id, this.now());
      return true;
    });
    if (added) {
      this.handled++;
      this.o.onNotified?.();
    }
    return added;
  }

  /** Pulls the next event (undefined when none came within `expiresMs`). */
  async pull(expiresMs: number): Promise<{ event: FleetEvent; msg: JsMsg } | undefined> {
    const h = await this.handles();
    const consumer = await h.js.consumers.get(this.layout.stream, this.layout.consumer);
    const msg = await consumer.next({ expires: Math.max(1000, expiresMs) });
    return msg ? { event: msg.json<FleetEvent>(), msg } : undefined;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await Promise.race([this.o.broker.whenConnected(), this.stopped]);
      if (this.stopping) break;
      try {
        await this.prune();
        const pulled = await this.pull(this.o.pullMs ?? 5000);
        if (!pulled) continue;
        if (this.stopping) {
          pulled.msg.nak();
          break;
        }
        await this.record(pulled.event);
        // Only after the commit: a crash before this redelivers the event, which then adds nothing here.
        await pulled.msg.ackAck();
      } catch (err) {
        if (this.stopping) break;
        this.o.log.warn('could not turn a fleet event into deliveries', { error: err as Error });
        await Promise.race([new Promise((resolve) => setTimeout(resolve, 1000)), this.stopped]);
      }
    }
  }

  /** Forgets event ids older than `handledMs` (no redelivery comes that late), hourly. */
  private async prune(): Promise<void> {
    const now = this.now();
    if (now - this.lastPrune < 3600_000) return;
    this.lastPrune = now;
    const cutoff = now - this.layout.handledMs;
    await this.o.db.durably(() => {
      let removed = 0;
      for (const { key, value } of [...this.handledIds.getRange()]) {
        if (value < cutoff && removed++ < 10_000) this.handledIds.removeSync(key);
      }
    });
  }
}
