import { randomUUID } from 'node:crypto';

import type { DeliveryRecord, EnqueueInput, Outbox } from '../delivery/outbox.js';
import type { TargetAdapter } from '../delivery/targets.js';
import { isFinished, type Job } from '../jobs/job.js';
import type { JobChange, JobNotifier } from '../jobs/job-service.js';
import type { StoredTranscript } from '../jobs/job-store.js';
import { v21ResultUrls, type ContentUrls } from './files.js';
import { batchEntity, type BatchRecord, type BatchStore, jobEntity, type TranscriptionEntity } from './transcriptions.js';
import { hookForm, transcriptionView, v21HookView, v21TranscriptionView, webHookView } from './views.js';
import { eventKey, type TranscriptionEventKind } from './webhook-input.js';
import { azureSignature } from './signature.js';
import { isEnabled, subscribes, webhookTargetKind, type Webhook, type WebhookRegistry } from './webhooks.js';

/** The header that carries the event kind. */
export const eventHeader = 'X-MicrosoftSpeechServices-Event';

/** Azure's event for a job's state change. */
export const eventForChange: Record<JobChange, TranscriptionEventKind> = {
  created: 'TranscriptionCreation',
  started: 'TranscriptionProcessing',
  completed: 'TranscriptionCompletion',
  failed: 'TranscriptionCompletion',
  deleted: 'TranscriptionDeletion',
};

/**
 * The delivery id (invocationId, webhook-id) of a fleet event's delivery to one hook: the
 * event's stable id and the hook's, so that each of the event's hooks gets its own
 * delivery and the same event turned into deliveries again (by any device) has the same ids.
 */
export const fleetDeliveryId = (eventId: string, hookId: string): string => `${eventId}:${hookId}`;

/** The events `:test` can replay, in the order they are sent. */
const testableEvents: TranscriptionEventKind[] = ['TranscriptionCreation', 'TranscriptionProcessing', 'TranscriptionCompletion'];

/** The events a transcription has gone through, in order (what `:test` may replay). */
function eventsReached(entity: TranscriptionEntity): TranscriptionEventKind[] {
  const events: TranscriptionEventKind[] = ['TranscriptionCreation'];
  if (entity.status !== 'NotStarted') events.push('TranscriptionProcessing');
  if (entity.status === 'Succeeded' || entity.status === 'Failed') events.push('TranscriptionCompletion');
  return events;
}

export interface AzureNotifierOptions {
  registry: WebhookRegistry;
  outbox: Outbox;
  contentUrls: ContentUrls;
  batches: BatchStore;
  /** A job as the current transaction sees it. */
  findJob: (id: string) => Job | undefined;
  /** A job's stored transcript (v2.1 subscribers get v2 result files made from it). */
  result: (id: string) => StoredTranscript | undefined;
  /** A fleet device: any device's job (the fleet's bucket), its result, and a batch record another device wrote. */
  fleet?: {
    job: (id: string) => Promise<Job | undefined>;
    result: (id: string) => Promise<StoredTranscript | undefined>;
    batch: (id: string) => Promise<BatchRecord | undefined>;
  };
  now?: () => number;
}

/** What `prepare` read from the fleet for one event of a batch's job: the batch and its jobs' states and results. */
interface Prepared {
  jobId: string;
  batch: BatchRecord;
  jobs: Map<string, Job>;
  results: Map<string, StoredTranscript>;
}

/**
 * Queues Azure web hook deliveries. As a JobNotifier it runs inside the transaction of a
 * job's state change (jobs of every dialect) and reports the change of the transcription
 * the job belongs to: TranscriptionCreation when it is created, TranscriptionProcessing
 * when its first recording starts, TranscriptionCompletion when its last one finished,
 * TranscriptionDeletion when its last one is gone (a batch's record goes with it) — once
 * per transcription, whatever the number of its content URLs. A job of another dialect is
 * a transcription of its own. Each goes to every enabled hook subscribed to the event; the
 * body is the transcription in the hook's API version plus `invocationId`, which is the
 * delivery id (also sent as webhook-id): stable across retries, for de-duplication.
 * Also sends `ping` and `:test` deliveries (one per subscribed event).
 */
export class AzureNotifier implements JobNotifier {
  private readonly now: () => number;
  private prepared: Prepared | undefined;

  constructor(private readonly o: AzureNotifierOptions) {
    this.now = o.now ?? Date.now;
  }

  /**
   * A fleet event of a batch's job: reads the batch (here, or from the fleet's bucket when
   * this device has not applied it yet) and the states of its jobs (and the results of the
   * completed ones) from the fleet, for `notify` to decide whether the batch changed. Throws
   * when the fleet cannot be read: the event is then redelivered, never reported on a guess.
   */
  async prepare(job: Job, change: JobChange, result: StoredTranscript | undefined): Promise<void> {
    this.prepared = undefined;
    const fleet = this.o.fleet;
    if (!fleet || job.synchronous || !job.group) return;
    const batch = this.o.batches.get(job.group) ?? (await fleet.batch(job.group));
    if (!batch) return;
    const jobs = new Map<string, Job>();
    const results = new Map<string, StoredTranscript>();
    for (const id of batch.jobIds) {
      // The event's own job as the event wrote it (a later change must not rewrite it); gone once deleted.
      const found = id === job.id ? (change === 'deleted' ? undefined : job) : await fleet.job(id);
      if (!found) continue;
      jobs.set(id, found);
      // Results only for a completion (v2.1 subscribers' result URLs): no other event's body has them.
      const transcript =
        found.status !== 'completed' || (change !== 'completed' && change !== 'failed') ? undefined : id === job.id ? result : await fleet.result(id);
      if (transcript) results.set(id, transcript);
    }
    this.prepared = { jobId: job.id, batch, jobs, results };
  }

  notify(job: Job, change: JobChange, _result: StoredTranscript | undefined, eventId?: string): void {
    const prepared = eventId && this.prepared?.jobId === job.id ? this.prepared : undefined;
    this.prepared = undefined;
    // A fast transcription is answered on its request: Azure's web hooks never hear of it.
    if (job.synchronous) return;
    const event = this.transcriptionEvent(job, change, prepared);
    if (!event) return;
    // A fleet batch's event may be found by the events of two of its jobs (handled on two
    // devices at once): its deliveries' ids are the batch's and the event's, so that both
    // carry the same ids (and a device adds one only once).
    const stableId = prepared ? `${prepared.batch.id}:${event.kind}` : eventId;
    const result = prepared ? (id: string) => prepared.results.get(id) : this.o.result;
    for (const hook of this.o.registry.all()) {
      if (!isEnabled(hook) || !subscribes(hook, eventKey(event.kind))) continue;
      const id = stableId && fleetDeliveryId(stableId, hook.id);
      if (prepared && id && this.o.outbox.get(id)) continue;
      this.o.outbox.enqueue(this.transcriptionDelivery(hook, event.kind, event.entity, id, result));
    }
  }

  /** The transcription's event for its job's change, if the change is one for the transcription. */
  private transcriptionEvent(job: Job, change: JobChange, prepared?: Prepared): { kind: TranscriptionEventKind; entity: TranscriptionEntity } | undefined {
    const kind = eventForChange[change];
    const batch = prepared?.batch ?? (job.group ? this.o.batches.get(job.group) : undefined);
    if (!batch) return { kind, entity: jobEntity(job) };
    const find = prepared ? (id: string) => prepared.jobs.get(id) : this.o.findJob;
    // The transaction has written the job's new state (or removed it) already.
    const others = batch.jobIds.filter((id) => id !== job.id).flatMap((id) => find(id) ?? []);
    switch (change) {
      case 'created':
        // The batch's jobs are created together: report it once, with the first.
        return job.id === batch.jobIds[0] ? { kind, entity: batchEntity(batch, find) } : undefined;
      case 'started':
        // In a fleet, two of its jobs may start on two devices before either start is handled
        // (each then finds the other running): every start reports it, under the batch's one
        // delivery id (notify), so a receiver gets one Processing.
        return prepared || others.every((j) => j.status === 'waiting') ? { kind, entity: batchEntity(batch, find) } : undefined;
      case 'completed':
      case 'failed':
        return others.every(isFinished) ? { kind, entity: batchEntity(batch, find) } : undefined;
      case 'deleted': {
        if (others.length) return undefined;
        // The last recording is gone: so is the transcription (in a fleet, its record goes
        // with the fleet's upkeep: AzureTranscriptions.sweep). Its body shows it as it was.
        if (!prepared) this.o.batches.remove(batch.id);
        return { kind, entity: batchEntity(batch, (id) => (id === job.id ? job : undefined)) };
      }
    }
  }

  /** Sends event `Ping` with the hook itself as the body; resolves once queued. */
  async ping(hookId: string): Promise<DeliveryRecord> {
    const hook = this.o.registry.requireEnabled(hookId);
    const id = randomUUID();
    const entity = hook.apiVersion === 'v2.1' ? v21HookView(hook) : webHookView(hook, hookForm(hook));
    return this.o.outbox.enqueueDurably(this.delivery(hook, id, 'Ping', { ...entity, invocationId: id }));
  }

  /**
   * `:test`: one delivery per transcription event the hook subscribed to, each with the
   * newest of `entities` (newest first) that fired that event (TranscriptionDeletion: none,
   * a deleted transcription is gone); resolves with what was queued, empty when none fits.
   */
  async test(hookId: string, entities: Iterable<TranscriptionEntity>): Promise<DeliveryRecord[]> {
    const hook = this.o.registry.requireEnabled(hookId);
    const wanted = testableEvents.filter((k) => subscribes(hook, eventKey(k)));
    const found = new Map<TranscriptionEventKind, TranscriptionEntity>();
    for (const entity of entities) {
      if (found.size === wanted.length) break;
      const reached = eventsReached(entity);
      for (const kind of wanted) if (!found.has(kind) && reached.includes(kind)) found.set(kind, entity);
    }
    const sent: DeliveryRecord[] = [];
    for (const kind of wanted) {
      const entity = found.get(kind);
      if (entity) sent.push(await this.o.outbox.enqueueDurably(this.transcriptionDelivery(hook, kind, entity)));
    }
    return sent;
  }

  private transcriptionDelivery(
    hook: Webhook,
    kind: TranscriptionEventKind,
    entity: TranscriptionEntity,
    stableId?: string,
    result: (id: string) => StoredTranscript | undefined = this.o.result,
  ): EnqueueInput {
    const id = stableId || randomUUID();
    const form = hookForm(hook);
    let body: object;
    if (hook.apiVersion === 'v2.1') {
      const { v3, v2 } = v21ResultUrls(entity, this.o.contentUrls, hook.baseUrl, result, this.now());
      body = v21TranscriptionView(entity, v3, v2);
    } else {
      body = transcriptionView(entity, form);
    }
    return this.delivery(hook, id, kind, { ...body, invocationId: id });
  }

  private delivery(hook: Webhook, id: string, event: string, body: object): EnqueueInput {
    return {
      id,
      target: { kind: webhookTargetKind, key: hook.id, url: hook.webUrl },
      event,
      body: JSON.stringify(body),
      headers: { [eventHeader]: event },
    };
  }
}

/**
 * Sends web hook deliveries as the hook is when they go out, not as it was when they were
 * queued: a delivery to a hook that is disabled (Failed), inactive or deleted is refused
 * without a request (dead at once, so it can be redelivered after a PATCH re-enabled the
 * hook); the others go to the hook's current URL, signed with its current secret
 * (X-MicrosoftSpeechServices-Signature, and webhook-signature with the same secret). A
 * 410 Gone disables the hook, and so do failures of every delivery for `failureMs`; a
 * dead letter alone does not.
 */
export function webhookTarget(registry: WebhookRegistry): TargetAdapter {
  return {
    kind: webhookTargetKind,
    resolve(delivery) {
      const why = registry.refusal(delivery.target.key);
      if (why) return why;
      const hook = registry.get(delivery.target.key)!;
      if (!hook.secret) return { url: hook.webUrl };
      return { url: hook.webUrl, headers: { 'X-MicrosoftSpeechServices-Signature': azureSignature(hook.secret, delivery.body) }, secret: hook.secret };
    },
    onGone: (delivery) => void registry.deliveryGone(delivery),
    onFailed: (delivery) => void registry.deliveryFailed(delivery),
    onDelivered: (delivery) => void registry.deliveryDelivered(delivery),
  };
}
