import { AppError } from '../errors.js';
import type { DeliveryRecord } from './outbox.js';

/**
 * How one delivery goes out now: where, with which headers of its dialect (its own
 * signatures over `body`), and the secret of the Standard Webhooks signature.
 */
export interface SendPlan {
  url: string;
  headers?: Record<string, string>;
  /** Signs webhook-signature when present. */
  secret?: string | undefined;
}

/**
 * A kind of delivery target (a callback URL, a web hook, ...), registered by
 * the dialect that owns it. The outbox stores only the kind and the target's key; the
 * adapter turns them into a request when the delivery is sent, so a target's current URL
 * and secret are used and nothing secret is written to the outbox.
 */
export interface TargetAdapter {
  /** The `target.kind` of the deliveries this adapter sends. */
  readonly kind: string;
  /**
   * The delivery as it goes out now, or a string saying why it must not go out at all
   * (unregistered, deleted, disabled): it then becomes a dead letter "not sent: <why>"
   * without a request.
   */
  resolve(delivery: DeliveryRecord): SendPlan | string;
  /** The receiver answered 410 Gone (the delivery is dead). */
  onGone?(delivery: DeliveryRecord): void;
  /** A delivery became a dead letter (for any reason, 410 included). */
  onDead?(delivery: DeliveryRecord): void;
  /** An attempt was answered 2xx (the delivery as stored after it). */
  onDelivered?(delivery: DeliveryRecord): void;
  /**
   * An attempt failed (the delivery as stored after it: retried or dead), except one its
   * adapter refused without a request.
   */
  onFailed?(delivery: DeliveryRecord): void;
}

/** How the error of a delivery refused by its adapter (no request made) begins. */
export const notSentPrefix = 'not sent: ';

/** The adapters of every dialect, by kind. */
export class TargetAdapters {
  private readonly byKind = new Map<string, TargetAdapter>();

  add(adapter: TargetAdapter): void {
    if (this.byKind.has(adapter.kind)) throw new Error(`a target adapter for "${adapter.kind}" is already registered`);
    this.byKind.set(adapter.kind, adapter);
  }

  get(kind: string): TargetAdapter | undefined {
    return this.byKind.get(kind);
  }

  /**
   * The send plan of a delivery; a refusal (or a kind nobody registered) is thrown as
   * ERR_TARGET_FORBIDDEN, which the dispatcher dead-letters at once.
   */
  plan(delivery: DeliveryRecord): SendPlan {
    const adapter = this.byKind.get(delivery.target.kind);
    const planned = adapter ? adapter.resolve(delivery) : `no target of kind "${delivery.target.kind}" is known to this version of earshot`;
    if (typeof planned === 'string') throw new AppError('ERR_TARGET_FORBIDDEN', `${notSentPrefix}${planned}`);
    return planned;
  }
}
