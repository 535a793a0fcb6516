import { randomUUID } from 'node:crypto';

import type { DeliveryRecord, EnqueueInput, Outbox } from '../delivery/outbox.js';
import type { TargetAdapter } from '../delivery/targets.js';
import { isFinished, type Job } from '../jobs/job.js';
import type { JobChange, JobNotifier } from '../jobs/job-service.js';
import type { StoredTranscript } from '../jobs/job-store.js';
import { fileId, type ContentUrls } from './files.js';
import { transcriptionView, v21HookView, v21TranscriptionView, webHookView } from './views.js';
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

/** The events `:test` can replay, in the order they are sent. */
const testableEvents: TranscriptionEventKind[] = ['TranscriptionCreation', 'TranscriptionProcessing', 'TranscriptionCompletion'];

/** The events a job has gone through, in order (what `:test` may replay). */
function eventsReached(job: Job): TranscriptionEventKind[] {
  const events: TranscriptionEventKind[] = ['TranscriptionCreation'];
  if (job.status !== 'waiting') events.push('TranscriptionProcessing');
  if (isFinished(job)) events.push('TranscriptionCompletion');
  return events;
}

export interface AzureNotifierOptions {
  registry: WebhookRegistry;
  outbox: Outbox;
  contentUrls: ContentUrls;
  now?: () => number;
}

/**
 * Queues Azure web hook deliveries. As a JobNotifier it runs inside the transaction of a
 * job's state change (jobs of either dialect): created → TranscriptionCreation, started →
 * TranscriptionProcessing, completed/failed → TranscriptionCompletion, deleted →
 * TranscriptionDeletion, to every enabled hook subscribed to the event. The body is the
 * transcription entity in the hook's API version plus `invocationId`, which is the
 * delivery id (also sent as webhook-id): stable across retries, for de-duplication.
 * Also sends `ping` and `:test` deliveries (one per subscribed event).
 */
export class AzureNotifier implements JobNotifier {
  private readonly now: () => number;

  constructor(private readonly o: AzureNotifierOptions) {
    this.now = o.now ?? Date.now;
  }

  notify(job: Job, change: JobChange, _result: StoredTranscript | undefined): void {
    // A fast transcription is answered on its request: Azure's web hooks never hear of it.
    if (job.synchronous) return;
    const kind = eventForChange[change];
    for (const hook of this.o.registry.all()) {
      if (isEnabled(hook) && subscribes(hook, eventKey(kind))) this.o.outbox.enqueue(this.transcriptionDelivery(hook, kind, job));
    }
  }

  /** Sends event `Ping` with the hook itself as the body; resolves once queued. */
  async ping(hookId: string): Promise<DeliveryRecord> {
    const hook = this.o.registry.requireEnabled(hookId);
    const id = randomUUID();
    const entity = hook.apiVersion === 'v2.1' ? v21HookView(hook) : webHookView(hook, hook.baseUrl);
    return this.o.outbox.enqueueDurably(this.delivery(hook, id, 'Ping', { ...entity, invocationId: id }));
  }

  /**
   * `:test`: one delivery per transcription event the hook subscribed to, each with the
   * newest of `jobs` (newest first) that fired that event (TranscriptionDeletion: none, a
   * deleted job is gone); resolves with what was queued, empty when no job fits.
   */
  async test(hookId: string, jobs: Iterable<Job>): Promise<DeliveryRecord[]> {
    const hook = this.o.registry.requireEnabled(hookId);
    const wanted = testableEvents.filter((k) => subscribes(hook, eventKey(k)));
    const found = new Map<TranscriptionEventKind, Job>();
    for (const job of jobs) {
      if (found.size === wanted.length) break;
      if (job.synchronous) continue;
      const reached = eventsReached(job);
      for (const kind of wanted) if (!found.has(kind) && reached.includes(kind)) found.set(kind, job);
    }
    const sent: DeliveryRecord[] = [];
    for (const kind of wanted) {
      const job = found.get(kind);
      if (job) sent.push(await this.o.outbox.enqueueDurably(this.transcriptionDelivery(hook, kind, job)));
    }
    return sent;
  }

  private transcriptionDelivery(hook: Webhook, kind: TranscriptionEventKind, job: Job): EnqueueInput {
    const id = randomUUID();
    let entity: object;
    if (hook.apiVersion === 'v2.1') {
      const done = job.status === 'completed';
      // Valid as long as the result is kept.
      const until = job.expiresAt ?? this.now() + job.resultsTtlMs;
      entity = v21TranscriptionView(job, done ? this.o.contentUrls.url(hook.baseUrl, job.id, fileId(job.id, 'Transcription'), until) : undefined);
    } else {
      entity = transcriptionView(job, hook.baseUrl);
    }
    return this.delivery(hook, id, kind, { ...entity, invocationId: id });
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
