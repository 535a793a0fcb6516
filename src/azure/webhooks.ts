import { randomBytes, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';

import type { Database } from 'lmdb';

import type { CidrPolicy } from '../delivery/cidr.js';
import { checkIpLiteral, displayUrl, guardedLookup, targetPort } from '../delivery/http-client.js';
import type { DeliveryRecord, Outbox } from '../delivery/outbox.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { type StateDatabase, storableKey } from '../store/database.js';
import { AzureError, invalid } from './errors.js';
import { azureSignature } from './signature.js';
import { mergeEvents, type WebHookEventKey, type WebhookInput, type WebhookPatch } from './webhook-input.js';

/** Azure's `Status` of an entity. */
export type AzureStatus = 'NotStarted' | 'Running' | 'Succeeded' | 'Failed';

/** Azure's `EntityError`. */
export interface EntityError {
  code: string;
  message: string;
}

/** A web hook as stored (LMDB `azure-webhooks`, msgpack). Times are ms since the epoch. */
export interface Webhook extends WebhookInput {
  id: string;
  /**
   * NotStarted: challenge under way. Succeeded: receives events. Failed: challenge failed,
   * 410 Gone, or every delivery failed for `failureMs`; receives nothing until a PATCH.
   */
  status: AzureStatus;
  error?: EntityError;
  createdAt: number;
  lastActionAt: number;
  /** The service's origin as the hook's creator reached it (`http://pi.local:8080`): the links in delivered bodies use it. */
  baseUrl: string;
  /** The time of the first failed attempt since the last delivery that succeeded (none: not failing). */
  failingSince?: number;
}

/** The answer to a registration challenge. */
export interface ChallengeAnswer {
  status: number;
  body: string;
}

/** One POST of the challenge with `body`; rejects with an AppError (forbidden target, timeout, refused, ...). */
export type ChallengeRequest = (url: string, headers: Record<string, string>, body: string, timeoutMs: number) => Promise<ChallengeAnswer>;

/** Checks that a URL may be called (resolved address under the allow-list); rejects with an AppError. */
export type TargetCheck = (url: string) => Promise<void>;

export interface WebhookRegistryOptions {
  db: StateDatabase;
  /** The v3.1 registration challenge (a POST; see `WebhookRegistry`). */
  challenge: ChallengeRequest;
  /** Before a hook is stored (v2.1 hooks have no challenge; v3.1 ones are challenged after). */
  checkTarget: TargetCheck;
  outbox: Outbox;
  log: Logger;
  now?: () => number;
  challengeTimeoutMs?: number;
  /** A hook whose every delivery has failed for this long turns Failed (EARSHOT_HOOK_FAILURE_HOURS; 72 h). */
  failureMs?: number;
  /** A cap, so that a script creating hooks in a loop cannot fill the card. */
  maxHooks?: number;
}

/** The error code of a hook that failed its challenge (Azure's detailed code for a bad callback URI). */
export const challengeFailedCode = 'InvalidCallbackUri';
/** Azure's: a hook fails once its deliveries have failed for 72 h. */
export const defaultHookFailureMs = 72 * 3_600_000;

/** The error code of a hook disabled because its deliveries failed. */
export const deliveryFailedCode = 'DeliveryFailed';

/** The outbox's target kind of web hooks; the target's key is the hook id. */
export const webhookTargetKind = 'azure-webhook';

/** A hook that receives events: challenge passed, not disabled, active (v2.1). */
export const isEnabled = (hook: Webhook): boolean => hook.active && hook.status === 'Succeeded';

/** Whether the hook subscribed to an event (v3.1 key). */
export const subscribes = (hook: Webhook, key: WebHookEventKey): boolean => hook.events.includes(key);

/**
 * A check of the target for hooks without a challenge: the host name resolved, and every
 * address it resolves to outside the allow-list refused, the way deliveries connect.
 */
export function policyTargetCheck(policy: CidrPolicy): TargetCheck {
  return async (url) => {
    const parsed = new URL(url);
    const host = checkIpLiteral(parsed, policy);
    if (isIP(host)) return;
    await new Promise<void>((resolve, reject) => {
      guardedLookup(policy, targetPort(parsed))(host, { all: true }, (err) => {
        if (!err) return resolve();
        if (err instanceof AppError) return reject(err);
        reject(new AppError('ERR_TARGET_DNS', `could not resolve host ${host} of ${displayUrl(url)} (${err.code ?? err.message})`));
      });
    });
  };
}

/**
 * Azure Speech web hooks (v3.1 and v2.1 share one list and one id space, as in Azure,
 * where `properties.apiVersion` says which payload shape a hook gets), persisted in LMDB.
 *
 * A v3.1 hook is usable once its URL answered the registration challenge: a POST to
 * `webUrl?validationToken=<token>` with `X-MicrosoftSpeechServices-Event: Challenge`, the
 * token as its body (and, with a secret, the signature of that body), answered by 200 and
 * the token within 5 s. As in Azure, the hook is registered first (NotStarted: the create
 * or PATCH answers at once) and challenged after; the challenge sets it Succeeded, or
 * Failed with the reason. A hook left NotStarted by a restart is challenged again at
 * start. A URL whose address is not allowed is refused outright.
 */
export class WebhookRegistry {
  /** Told the id of every hook written or removed here (src/fleet/hooks.ts replicates it). */
  onChange: ((id: string) => void) | undefined;
  private readonly now: () => number;
  private readonly challengeTimeoutMs: number;
  private readonly failureMs: number;
  /** Challenges under way. */
  private readonly challenging = new Set<{ done: Promise<void> }>();
  /** The latest challenge of each hook: a newer one (a PATCH meanwhile) supersedes the older. */
  private readonly generations = new Map<string, number>();

  constructor(private readonly o: WebhookRegistryOptions) {
    this.now = o.now ?? Date.now;
    this.challengeTimeoutMs = o.challengeTimeoutMs ?? 5000;
    this.failureMs = o.failureMs ?? defaultHookFailureMs;
  }

  // Looked up on each use: the environment opens in App.start(), after construction.
  private get hooks(): Database<Webhook, string> {
    return this.o.db.db<Webhook, string>('azure-webhooks');
  }

  get(id: string): Webhook | undefined {
    return storableKey(id) ? this.hooks.get(id) : undefined;
  }

  private checkRoom(): void {
    const max = this.o.maxHooks ?? 100;
    if (this.hooks.getKeysCount() >= max) {
      throw new AzureError(
        'ERR_LIMIT_REACHED',
        `${max} web hooks exist, the most this service keeps (EARSHOT_MAX_HOOKS); delete one first`,
        'InvalidPrerequisite',
      );
    }
  }

  /** @throws AppError ERR_NOT_FOUND */
  require(id: string): Webhook {
    const hook = this.get(id);
    if (!hook) throw new AppError('ERR_NOT_FOUND', `The web hook '${id}' was not found`);
    return hook;
  }

  /** Every hook, oldest first. */
  all(): Webhook[] {
    const hooks = [...this.hooks.getRange()].map((e) => e.value);
    return hooks.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  /** Registers a hook (challenge or target check first); resolves once stored. */
  async create(input: WebhookInput, baseUrl: string): Promise<Webhook> {
    this.checkRoom();
    const now = this.now();
    const draft: Webhook = { ...input, id: randomUUID(), status: 'NotStarted', createdAt: now, lastActionAt: now, baseUrl };
    const hook = { ...draft, ...(await this.verify(draft)), lastActionAt: this.now() };
    await this.checkAllowed(hook.webUrl);
    // Checked again with the write: concurrent creations all passed the first check.
    await this.o.db.durably(() => {
      this.checkRoom();
      this.hooks.putSync(hook.id, hook);
    });
    this.onChange?.(hook.id);
    this.o.log.info('web hook created', { hook: hook.id, url: displayUrl(hook.webUrl), status: hook.status, apiVersion: hook.apiVersion });
    if (hook.status === 'NotStarted') this.challengeLater(hook.id);
    return hook;
  }

  /**
   * Applies a PATCH. A new URL, or any PATCH of a hook that is not Succeeded, runs the
   * challenge again, after the PATCH is stored (NotStarted meanwhile; v2.1 hooks: the
   * target check, at once); passing it re-enables the hook.
   */
  async update(id: string, patch: WebhookPatch, baseUrl: string): Promise<Webhook> {
    const current = this.require(id);
    const next: Webhook = { ...current, baseUrl };
    if (patch.webUrl !== undefined) next.webUrl = patch.webUrl;
    if (patch.displayName !== undefined) next.displayName = patch.displayName;
    if (patch.description === null) delete next.description;
    else if (patch.description !== undefined) next.description = patch.description;
    if (patch.events) {
      next.events = mergeEvents(current.events, patch.events);
      // v2.1 names no longer describe the events; v2.1 views derive them again.
      delete next.v21Events;
    }
    if (patch.eventList) {
      next.events = patch.eventList.events;
      next.v21Events = patch.eventList.v21Events;
    }
    if (patch.active !== undefined) next.active = patch.active;
    if (patch.properties === null) delete next.properties;
    else if (patch.properties) next.properties = patch.properties;
    if (patch.secret === null) delete next.secret;
    else if (patch.secret !== undefined) next.secret = patch.secret;
    if (patch.customProperties === null) delete next.customProperties;
    else if (patch.customProperties) {
      const merged: Record<string, string> = { ...current.customProperties };
      for (const [k, v] of Object.entries(patch.customProperties)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      if (Object.keys(merged).length > 10) throw new AzureError('ERR_INVALID_ARGUMENT', 'customProperties would have more than 10 entries', 'InvalidPayload');
      if (Object.keys(merged).length) next.customProperties = merged;
      else delete next.customProperties;
    }
    let updated: Webhook = next;
    if (next.webUrl !== current.webUrl || current.status !== 'Succeeded') {
      await this.checkAllowed(next.webUrl);
      updated = { ...next, ...(await this.verify(next)) };
      delete updated.error;
      // Re-enabled: its failures start counting afresh.
      delete updated.failingSince;
    }
    updated.lastActionAt = this.now();
    await this.o.db.durably(() => {
      if (!this.hooks.get(id)) throw new AppError('ERR_NOT_FOUND', `The web hook '${id}' was deleted meanwhile`);
      this.hooks.putSync(id, updated);
    });
    this.onChange?.(id);
    if (updated.status !== current.status) {
      this.o.log.info('web hook status changed', { hook: id, from: current.status, to: updated.status, reason: updated.error?.message });
    }
    if (updated.status === 'NotStarted') this.challengeLater(id);
    return updated;
  }

  /** Removes a hook and drops its pending deliveries; resolves false when there was none. */
  async delete(id: string): Promise<boolean> {
    if (!this.get(id)) return false;
    await this.o.db.durably(() => this.hooks.removeSync(id));
    this.onChange?.(id);
    const dropped = await this.o.outbox.discardPending({ kind: webhookTargetKind, key: id });
    this.o.log.info('web hook deleted', { hook: id, droppedDeliveries: dropped });
    return true;
  }

  /**
   * Marks a hook Failed with the reason (no-op when it is gone or already Failed): it
   * receives nothing more until a PATCH re-enables it.
   */
  async disable(id: string, error: EntityError): Promise<void> {
    let changed = false;
    await this.o.db.durably(() => {
      const hook = this.hooks.get(id);
      if (!hook || hook.status === 'Failed') return;
      this.hooks.putSync(id, { ...hook, status: 'Failed', error, lastActionAt: this.now() });
      changed = true;
    });
    if (changed) this.onChange?.(id);
    if (changed) this.o.log.warn('web hook disabled', { hook: id, reason: error.message });
  }

  /** Dispatcher onGone: the receiver answered 410 Gone. */
  deliveryGone(delivery: DeliveryRecord): Promise<void> {
    return this.disableFor(delivery, `The web hook URL answered 410 Gone to delivery ${delivery.id} (${delivery.event}); PATCH the web hook to re-enable it`);
  }

  /**
   * Dispatcher onFailed: an attempt to deliver to the hook failed (retried or dead). A
   * dead letter alone never disables the hook (other events may still go through, and
   * the dead letter can be redelivered); the hook turns Failed once every attempt to it
   * has failed, without a success in between, for `failureMs` since the first of them.
   */
  async deliveryFailed(delivery: DeliveryRecord): Promise<void> {
    if (delivery.target.kind !== webhookTargetKind) return;
    const id = delivery.target.key;
    const hook = this.hooks.get(id);
    if (hook?.status !== 'Succeeded') return;
    const now = this.now();
    if (hook.failingSince === undefined) {
      await this.logged(id, () =>
        this.o.db.durably(() => {
          const current = this.hooks.get(id);
          if (current && current.status === 'Succeeded' && current.failingSince === undefined) this.hooks.putSync(id, { ...current, failingSince: now });
        }),
      );
      this.onChange?.(id);
      return;
    }
    if (now - hook.failingSince < this.failureMs) return;
    const why = delivery.lastError ?? (delivery.lastStatus ? `HTTP ${delivery.lastStatus}` : 'failed');
    const hours = Math.round((this.failureMs / 3_600_000) * 100) / 100;
    await this.disableFor(
      delivery,
      `Every delivery to the web hook has failed since ${new Date(hook.failingSince).toISOString()} (${hours} h or more; EARSHOT_HOOK_FAILURE_HOURS), the last one ${delivery.id} (${delivery.event}): ${why}. PATCH the web hook to re-enable it, then redeliver its dead letters`,
    );
  }

  /** Dispatcher onDelivered: a success ends the hook's run of failures. */
  async deliveryDelivered(delivery: DeliveryRecord): Promise<void> {
    if (delivery.target.kind !== webhookTargetKind) return;
    const id = delivery.target.key;
    if (this.hooks.get(id)?.failingSince === undefined) return;
    await this.logged(id, () =>
      this.o.db.durably(() => {
        const current = this.hooks.get(id);
        if (current?.failingSince === undefined) return;
        const { failingSince: _, ...rest } = current;
        this.hooks.putSync(id, rest);
      }),
    );
    this.onChange?.(id);
  }

  private async logged(hookId: string, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (err) {
      this.o.log.error('could not record the delivery outcome of a web hook', { hook: hookId, error: err });
    }
  }

  private async disableFor(delivery: DeliveryRecord, message: string): Promise<void> {
    if (delivery.target.kind !== webhookTargetKind) return;
    const hookId = delivery.target.key;
    try {
      await this.disable(hookId, { code: deliveryFailedCode, message });
    } catch (err) {
      this.o.log.error('could not disable a failing web hook', { hook: hookId, error: err });
    }
  }

  /** Why a delivery to this hook must not go out now, or undefined when it may. */
  refusal(id: string): string | undefined {
    const hook = this.hooks.get(id);
    if (!hook) return `web hook ${id} no longer exists`;
    if (!hook.active) return `web hook ${id} is inactive`;
    if (hook.status !== 'Succeeded') {
      return `web hook ${id} is disabled (status ${hook.status}${hook.error ? `: ${hook.error.message}` : ''}); PATCH it to re-enable it, then redeliver`;
    }
    return undefined;
  }

  /** The hook, when it receives events; otherwise Azure's InvalidPrerequisite with the reason. */
  requireEnabled(id: string): Webhook {
    const hook = this.require(id);
    const why = this.refusal(id);
    if (why) throw invalid('InvalidPrerequisite', `Nothing is sent to this web hook: ${why}`);
    return hook;
  }

  /** The status a hook is stored with: v2.1 Succeeded (no challenge), v3.1 NotStarted until challenged. */
  private async verify(hook: Webhook): Promise<{ status: AzureStatus }> {
    return { status: hook.apiVersion === 'v2.1' ? 'Succeeded' : 'NotStarted' };
  }

  /** Refuses (400) a URL whose address is not allowed. */
  private async checkAllowed(url: string): Promise<void> {
    try {
      await this.o.checkTarget(url);
    } catch (err) {
      throw refused(err, url);
    }
  }

  /**
   * Challenges the hook in the background; the verdict is stored unless the hook was
   * deleted, or a newer PATCH started another challenge, meanwhile.
   */
  private challengeLater(id: string): void {
    const generation = (this.generations.get(id) ?? 0) + 1;
    this.generations.set(id, generation);
    const latest = () => this.generations.get(id) === generation;
    const run = { done: Promise.resolve() };
    run.done = this.challengeNow(id, latest)
      .catch((err) => this.o.log.error('web hook challenge could not be recorded', { hook: id, error: err }))
      .finally(() => {
        this.challenging.delete(run);
        if (latest()) this.generations.delete(id);
      });
    this.challenging.add(run);
  }

  private async challengeNow(id: string, latest: () => boolean): Promise<void> {
    await Promise.resolve(); // the caller answers first
    const hook = this.hooks.get(id);
    if (hook?.status !== 'NotStarted' || !latest()) return;
    const message = await this.runChallenge(hook);
    if (!latest()) return;
    await this.o.db.durably(() => {
      const now = this.hooks.get(id);
      if (now?.status !== 'NotStarted') return;
      const verdict: Webhook = { ...now, status: message === undefined ? 'Succeeded' : 'Failed', lastActionAt: this.now() };
      if (message !== undefined) verdict.error = { code: challengeFailedCode, message };
      this.hooks.putSync(id, verdict);
    });
    this.onChange?.(id);
    if (message === undefined) this.o.log.info('web hook challenge passed', { hook: id, url: displayUrl(hook.webUrl) });
    else this.o.log.info('web hook challenge failed', { hook: id, url: displayUrl(hook.webUrl), reason: message });
  }

  /** Resolves once no challenge is under way (for tests and stop()). */
  async challenged(): Promise<void> {
    while (this.challenging.size) await Promise.all([...this.challenging].map((r) => r.done));
  }

  /** At start: challenges the hooks a stop left NotStarted. */
  resumeChallenges(): void {
    for (const hook of this.all()) if (hook.status === 'NotStarted') this.challengeLater(hook.id);
  }

  /** Resolves undefined when the challenge passed, or why it failed. */
  private async runChallenge(hook: Webhook): Promise<string | undefined> {
    const token = randomBytes(16).toString('hex');
    const target = new URL(hook.webUrl);
    target.searchParams.append('validationToken', token);
    // The body is the token, so that the signature is over exactly the bytes of the body,
    // as for every other request, and is also the signature of the token.
    const body = token;
    const headers: Record<string, string> = { 'X-MicrosoftSpeechServices-Event': 'Challenge', 'Content-Type': 'text/plain; charset=utf-8' };
    if (hook.secret) headers['X-MicrosoftSpeechServices-Signature'] = azureSignature(hook.secret, body);
    let answer: ChallengeAnswer;
    try {
      answer = await this.o.challenge(target.toString(), headers, body, this.challengeTimeoutMs);
    } catch (err) {
      const error = err as AppError;
      if (error.code === 'ERR_TARGET_FORBIDDEN' || error.code === 'ERR_INVALID_ARGUMENT') return `Challenge failed: ${refused(err, hook.webUrl).message}`;
      if (error.code === 'ERR_TARGET_TIMEOUT') return `Challenge failed: the web hook URL did not respond within ${this.challengeTimeoutMs / 1000} seconds`;
      return `Challenge failed: ${error.message}`;
    }
    if (answer.status >= 300 && answer.status < 400) {
      return `Challenge failed: the web hook URL answered HTTP ${answer.status} (a redirect); redirects are not followed: register the final URL`;
    }
    if (answer.status !== 200)
      return `Challenge failed: the web hook URL responded with status code ${answer.status}; expected 200 with the validationToken as the body`;
    if (answer.body.trim() !== token) {
      // Only the length of what came back: echoing the target's bytes would make hook
      // registration an oracle that reads other hosts of the LAN.
      return `Challenge response payload doesn't match validation token. Expected: ${token}, actual: a ${Buffer.byteLength(answer.body)}-byte body that differs`;
    }
    return undefined;
  }
}

/** A target that may not be called: a 400 that names the reason. */
function refused(err: unknown, url: string): AppError {
  const error = err instanceof AppError ? err : new AppError('ERR_TARGET_UNREACHABLE', String(err));
  return new AzureError(error.code, `The web hook URL ${displayUrl(url)} cannot be used: ${error.message}`, 'InvalidCallbackUri');
}
