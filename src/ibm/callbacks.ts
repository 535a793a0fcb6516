import { randomBytes } from 'node:crypto';

import type { Database } from 'lmdb';

import type { Outbox } from '../delivery/outbox.js';
import type { TargetAdapter } from '../delivery/targets.js';
import { AppError } from '../errors.js';
import type { Job } from '../jobs/job.js';
import type { JobChange, JobNotifier } from '../jobs/job-service.js';
import type { StoredTranscript } from '../jobs/job-store.js';
import type { StateDatabase } from '../store/database.js';
import { ibmSignature, type IbmSignatureAlgorithm } from './signature.js';
import { speechRecognitionResults } from './views.js';

/** IBM's callback events, in the `events` query parameter of POST /v1/recognitions. */
export const ibmEvents = ['recognitions.started', 'recognitions.completed', 'recognitions.completed_with_results', 'recognitions.failed'] as const;
export type IbmEvent = (typeof ibmEvents)[number];

/** The outbox's target kind of IBM callbacks; the target's key is the callback URL. */
export const callbackTargetKind = 'ibm-callback';

export interface CallbackRegistration {
  url: string;
  /** The user_secret given at registration: the key of X-Callback-Signature. */
  secret?: string;
  created: number;
}

/** One GET of the challenge; resolves with the receiver's answer or rejects (timeout, refused, forbidden). */
export type ChallengeRequest = (url: string, headers: Record<string, string>, timeoutMs: number) => Promise<{ status: number; body: string }>;

const challengeTimeoutMs = 5000;

/** A callback URL must be absolute http(s); the CIDR allow-list is checked when connecting. */
export function checkCallbackUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AppError('ERR_INVALID_ARGUMENT', `The callback_url '${url}' is not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new AppError('ERR_INVALID_ARGUMENT', `The callback_url '${url}' must be an http or https URL`);
  }
  if (url.length > 2048) throw new AppError('ERR_INVALID_ARGUMENT', 'The callback_url is longer than 2048 characters');
  return parsed;
}

/**
 * IBM's allow-list of callback URLs (POST /v1/register_callback), persisted in LMDB. A
 * URL is allow-listed only after it answered one challenge GET with the challenge string.
 */
export class CallbackRegistry {
  constructor(
    private readonly db: StateDatabase,
    private readonly challenge: ChallengeRequest,
    private readonly algorithm: IbmSignatureAlgorithm,
  ) {}

  private get registrations(): Database<CallbackRegistration, string> {
    return this.db.db<CallbackRegistration, string>('ibm-callbacks');
  }

  get(url: string): CallbackRegistration | undefined {
    return this.registrations.get(url);
  }

  /** Resolves `created: false` when the URL was already allow-listed. */
  async register(url: string, secret: string | undefined): Promise<{ created: boolean }> {
    checkCallbackUrl(url);
    if (this.registrations.get(url)) return { created: false };

    const challengeString = randomBytes(12).toString('base64url');
    const target = new URL(url);
    target.searchParams.append('challenge_string', challengeString);
    const headers: Record<string, string> = { Accept: 'text/plain' };
    if (secret) headers['X-Callback-Signature'] = ibmSignature(secret, challengeString, this.algorithm);
    const failure = (why: string) => new AppError('ERR_CALLBACK_REGISTRATION', `unable to register callback url '${url}', ${why}`);
    let answer: { status: number; body: string };
    try {
      answer = await this.challenge(target.toString(), headers, challengeTimeoutMs);
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw failure(code === 'ERR_TARGET_TIMEOUT' ? `callback server did not respond within ${challengeTimeoutMs / 1000} seconds` : (err as Error).message);
    }
    if (answer.status !== 200) throw failure(`callback server responded with status code ${answer.status}`);
    if (answer.body.trim() !== challengeString) {
      throw failure('callback server response did not contain the challenge string');
    }
    await this.db.durably(() => {
      this.registrations.putSync(url, { url, ...(secret ? { secret } : {}), created: Date.now() });
    });
    return { created: true };
  }

  /** Resolves false when the URL was not registered. */
  async unregister(url: string): Promise<boolean> {
    if (!this.registrations.get(url)) return false;
    await this.db.durably(() => this.registrations.removeSync(url));
    return true;
  }
}

/**
 * Queues IBM callback notifications for a job's state change, in its transaction:
 * `{"id", "event", "user_token"}` (+ `results` for completed_with_results). They are
 * signed when sent (`callbackTarget`), with the secret registered then.
 */
export class IbmNotifier implements JobNotifier {
  constructor(
    private readonly registry: CallbackRegistry,
    private readonly outbox: Outbox,
  ) {}

  notify(job: Job, change: JobChange, result: StoredTranscript | undefined): void {
    const callback = job.callback;
    if (!callback) return;
    const wanted = (event: IbmEvent) => callback.events.includes(event);
    let event: IbmEvent | undefined;
    if (change === 'started' && wanted('recognitions.started')) event = 'recognitions.started';
    if (change === 'failed' && wanted('recognitions.failed')) event = 'recognitions.failed';
    if (change === 'completed') {
      if (wanted('recognitions.completed_with_results')) event = 'recognitions.completed_with_results';
      else if (wanted('recognitions.completed')) event = 'recognitions.completed';
    }
    if (!event) return;
    // A URL unregistered after the job was created gets nothing more, as IBM documents.
    if (!this.registry.get(callback.url)) return;
    const payload = {
      id: job.id,
      event,
      user_token: job.userToken ?? '',
      ...(event === 'recognitions.completed_with_results' && result ? { results: [speechRecognitionResults(result, job.output, job.warnings)] } : {}),
    };
    this.outbox.enqueue({
      orderKey: `${callback.url} ${job.id}`,
      target: { kind: callbackTargetKind, key: callback.url, url: callback.url },
      event,
      body: JSON.stringify(payload),
    });
  }
}

/**
 * Sends IBM callbacks as the registration is when they go out: to an unregistered URL
 * nothing more (a dead letter "not sent: ..."), signed with the secret registered now
 * (X-Callback-Signature, and webhook-signature with the same secret).
 */
export function callbackTarget(registry: CallbackRegistry, algorithm: IbmSignatureAlgorithm): TargetAdapter {
  return {
    kind: callbackTargetKind,
    resolve(delivery) {
      const registration = registry.get(delivery.target.key);
      if (!registration) return `callback URL unregistered (${delivery.target.key})`;
      if (!registration.secret) return { url: registration.url };
      return {
        url: registration.url,
        headers: { 'X-Callback-Signature': ibmSignature(registration.secret, delivery.body, algorithm) },
        secret: registration.secret,
      };
    },
  };
}
