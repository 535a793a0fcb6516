import type { Config } from './config.js';
import type { CidrPolicy } from './delivery/cidr.js';
import type { SendRequestOptions, SendResponse } from './delivery/http-client.js';
import type { Outbox } from './delivery/outbox.js';
import type { TargetAdapter } from './delivery/targets.js';
import type { RouteGroup } from './http/server.js';
import type { ReplicatedStore } from './fleet/hooks.js';
import type { JobNotifier, JobService } from './jobs/job-service.js';
import type { Logger } from './log.js';
import type { StateDatabase } from './store/database.js';

/** What the loaded model can do, for dialects that check `model`/`language` parameters. */
export interface ModelAbilities {
  multilingual: boolean;
  languages: readonly string[];
}

/** The shared parts every dialect is built from (made by the composition root). */
export interface DialectContext {
  config: Config;
  log: Logger;
  db: StateDatabase;
  jobs: JobService;
  outbox: Outbox;
  /** Wakes the dispatcher after a delivery was queued outside a job's state change. */
  wakeDeliveries(): void;
  /** One request to a client's URL under the delivery allow-list (registration challenges). */
  request(input: Omit<SendRequestOptions, 'policy'>): Promise<SendResponse>;
  policy: CidrPolicy;
  /** Throws ERR_NOT_READY until the model is loaded. */
  model(): ModelAbilities;
  /** Every dialect's `modelListing` (called at request time: the dialects are built by then). */
  modelListings(): ModelListing[];
  /** A registration (IBM callback URL, Azure web hook) was written or removed: a fleet device replicates it (src/fleet/hooks.ts). */
  registrationChanged?(store: ReplicatedStore, key: string): void;
  /** Resolves once the changes reported so far are in the fleet's bucket (or the broker is away). */
  registrationsReplicated?(): Promise<void>;
  /** A fleet device: the bucket's value of a replicated record (one another device wrote, maybe not applied here yet). */
  replica?(store: ReplicatedStore, key: string): Promise<unknown>;
}

/**
 * A dialect's view of the device's models on the one `GET /v1/models` route that IBM's and
 * OpenAI's clients share: IBM's route answers with IBM's `models` and every listing's
 * members in the same body (each SDK ignores the others' keys).
 */
export interface ModelListing {
  /** Members of the list body beside IBM's `models` (OpenAI's `object` and `data`). */
  listMembers(): Record<string, unknown>;
  /** The dialect's model object by that name (`GET /v1/models/{name}`), or undefined. */
  model(name: string): unknown;
}

/** What the dialect needs once the service's secrets are known, when the service starts. */
export interface DialectStart {
  apiKey: string;
}

/**
 * One API dialect (IBM, Azure, ...): the one thing the composition root knows of it.
 * Each dialect lives in its own folder, with one factory returning this.
 */
export interface Dialect {
  name: string;
  /** How the README names it, above its generated table of routes. */
  title: string;
  /** Queues the dialect's notifications of job state changes (inside their transaction). */
  notifier?: JobNotifier;
  /** The delivery target kinds the dialect's notifications go to. */
  targets?: TargetAdapter[];
  routes: RouteGroup[];
  /** Its entries in the shared model list (see ModelListing). */
  modelListing?: ModelListing;
  start?(start: DialectStart): void | Promise<void>;
  stop?(): void | Promise<void>;
  /** A registration of its store removed on another device of the fleet (and so here). */
  registrationRemoved?(store: ReplicatedStore, key: string): void;
  /** A fleet device's periodic upkeep of the dialect's fleet-wide records (with the fleet's sweep). */
  fleetUpkeep?(): Promise<unknown>;
}
