import { randomBytes } from 'node:crypto';

import type { Database } from 'lmdb';

import type { Outbox } from '../delivery/outbox.js';
import type { TargetAdapter } from '../delivery/targets.js';
import { AppError } from '../errors.js';
import type { Job } from '../jobs/job.js';
import type { JobChange, JobNotifier } from '../jobs/job-service.js';
import type { StoredTranscript } from '../jobs/job-store.js';
import { maxKeyBytes, type StateDatabase, storableKey } from '../store/database.js';
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

/**
 * A callback URL as earshot keeps it: the WHATWG serialization (`href`) of an absolute
 * http(s) URL without credentials or fragment, so that every spelling of one URL (a
 * leading space, `http:host/x`, backslashes, a missing `/`) is one registration, and
 * nothing stored can fail a later check. The CIDR allow-list is checked when connecting.
 * @throws AppError ERR_INVALID_ARGUMENT with the reason
 */
export function normalizeCallbackUrl(url: string): string {
  const refuse = (why: string) => new AppError('ERR_INVALID_ARGUMENT', `The callback_url '${url}' ${why}`);
  if (url.length > 2048) throw new AppError('ERR_INVALID_ARGUMENT', 'The callback_url is longer than 2048 characters');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refuse('is not a valid absolute URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw refuse('must be an http or https URL');
  if (parsed.username || parsed.password) throw refuse('must not contain credentials: sign callbacks with user_secret instead');
  if (url.includes('#')) throw refuse('must not contain a fragment (#)');
  if (!storableKey(parsed.href)) throw new AppError('ERR_INVALID_ARGUMENT', `The callback_url is longer than ${maxKeyBytes} bytes once normalized`);
  return parsed.href;
}

/** The normalized URL, or the string as it is when it cannot be (a registration of an earlier release). */
const lookupKey = (url: string): string => {
  try {
    return normalizeCallbackUrl(url);
  } catch {
    return url;
  }
};

const alphanumerics = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** IBM's challenge_string: random alphanumerics (`[A-Za-z0-9]`), 32 of them. */
function challengeString(): string {
  // 248 = 4 × 62: taking bytes below it keeps every character equally likely.
  let out = '';
  while (out.length < 32) for (const b of randomBytes(48)) if (b < 248 && out.length < 32) out += alphanumerics[b % 62];
  return out;
}

/**
 * IBM's allow-list of callback URLs (POST /v1/register_callback), persisted in LMDB. A
 * URL is allow-listed only after it answered one challenge GET with the challenge string.
 */
export class CallbackRegistry {
  /** Told the URL (the key) of every registration written or removed here (src/fleet/hooks.ts replicates it). */
  onChange: ((key: string) => void) | undefined;

  constructor(
    private readonly db: StateDatabase,
    private readonly challenge: ChallengeRequest,
    private readonly algorithm: IbmSignatureAlgorithm,
    /** A cap, so that a script registering URLs in a loop cannot fill the card. */
    private readonly maxRegistrations = 100,
  ) {}

  private checkRoom(url: string): void {
    if (this.registrations.getKeysCount() >= this.maxRegistrations) {
      throw new AppError(
        'ERR_LIMIT_REACHED',
        `unable to register callback url '${url}': ${this.maxRegistrations} callback URLs are registered, the most this service keeps (EARSHOT_MAX_HOOKS); unregister one first`,
      );
    }
  }

  private get registrations(): Database<CallbackRegistration, string> {
    return this.db.db<CallbackRegistration, string>('ibm-callbacks');
  }

  /** The registration of a callback URL, in any spelling of it. */
  get(url: string): CallbackRegistration | undefined {
    const key = lookupKey(url);
    return storableKey(key) ? this.registrations.get(key) : undefined;
  }

  /**
   * Allow-lists the normalized form of `url` after its challenge; resolves with that form
   * and `created: false` when it was already allow-listed.
   * @throws AppError ERR_INVALID_ARGUMENT (not a callback URL), ERR_LIMIT_REACHED (as many as allowed are
   *   registered) or ERR_CALLBACK_REGISTRATION (the challenge failed)
   */
  async register(raw: string, secret: string | undefined): Promise<{ created: boolean; url: string }> {
    const url = normalizeCallbackUrl(raw);
    if (this.registrations.get(url)) return { created: false, url };
    this.checkRoom(url);

    const challenge = challengeString();
    const target = new URL(url);
    target.searchParams.append('challenge_string', challenge);
    const headers: Record<string, string> = { Accept: 'text/plain' };
    if (secret) headers['X-Callback-Signature'] = ibmSignature(secret, challenge, this.algorithm);
    const failure = (why: string) => new AppError('ERR_CALLBACK_REGISTRATION', `unable to register callback url '${url}', ${why}`);
    let answer: { status: number; body: string };
    try {
      answer = await this.challenge(target.toString(), headers, challengeTimeoutMs);
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw failure(code === 'ERR_TARGET_TIMEOUT' ? `callback server did not respond within ${challengeTimeoutMs / 1000} seconds` : (err as Error).message);
    }
    if (answer.status !== 200) throw failure(`callback server responded with status code ${answer.status}`);
    if (answer.body.trim() !== challenge) {
      throw failure('callback server response did not contain the challenge string');
    }
    // Checked again with the write: concurrent registrations all passed the first check.
    const created = await this.db.durably(() => {
      if (this.registrations.get(url)) return false;
      this.checkRoom(url);
      this.registrations.putSync(url, { url, ...(secret ? { secret } : {}), created: Date.now() });
      return true;
    });
    if (created) this.onChange?.(url);
    return { created, url };
  }

  /**
   * Re-keys registrations stored by releases that kept the URL as given, under its
   * normalized form; run at start. Resolves to how many changed.
   */
  upgrade(): Promise<number> {
    return this.db.durably(() => {
      let count = 0;
      for (const { key, value } of [...this.registrations.getRange()]) {
        const url = lookupKey(key);
        if (url === key) continue;
        this.registrations.removeSync(key);
        if (!this.registrations.get(url)) this.registrations.putSync(url, { ...value, url });
        count++;
      }
      return count;
    });
  }

  /** Resolves false when the URL (in any spelling) was not registered. */
  async unregister(url: string): Promise<boolean> {
    const key = lookupKey(url);
    if (!this.get(key)) return false;
    await this.db.durably(() => this.registrations.removeSync(key));
    this.onChange?.(key);
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

  notify(job: Job, change: JobChange, result: StoredTranscript | undefined, eventId?: string): void {
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
    const registration = this.registry.get(callback.url);
    if (!registration) return;
    const payload = {
      id: job.id,
      event,
      user_token: job.userToken ?? '',
      ...(event === 'recognitions.completed_with_results' && result ? { results: [speechRecognitionResults(result, job.output, job.warnings)] } : {}),
    };
    this.outbox.enqueue({
      // One callback URL per job: a fleet event's delivery id is the event's id.
      ...(eventId ? { id: eventId } : {}),
      target: { kind: callbackTargetKind, key: registration.url, url: registration.url },
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
