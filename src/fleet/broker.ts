import { readFileSync } from 'node:fs';

import {
  AckPolicy,
  type ConsumerConfig,
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { connect, credsAuthenticator, type NatsConnection, nanos, type NodeConnectionOptions } from '@nats-io/transport-node';

import type { Logger } from '../log.js';

/** How a device reaches its fleet's broker (EARSHOT_FLEET_*). */
export interface FleetConnectionSettings {
  /** One or more `nats://` / `tls://` URLs, comma-separated. */
  url: string;
  /** A NATS credentials file (user JWT and NKey seed), as `nsc` writes them. */
  credsFile?: string;
  /** A token the server's `authorization { token }` expects. */
  token?: string;
  /** TLS: the CA that signed the server's certificate, and this device's own certificate and key (mutual TLS). */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** The names and limits of what the fleet keeps in JetStream (docs/fleet.md). */
export interface FleetLayout {
  /** The work-queue stream of waiting jobs. */
  stream: string;
  /** Its subjects: `<subjectPrefix>.<lane>.<job id>`. */
  subjectPrefix: string;
  /** The key-value bucket of job states and results. */
  jobsBucket: string;
  /** The Object Store bucket of uploaded audio. */
  audioBucket: string;
  /** Unacknowledged this long, a delivered job goes to another device (in-progress acks reset it). */
  ackWaitMs: number;
  /** The server stops redelivering a job after this many deliveries (a backstop: the attempts rule in the job state fails it first). */
  maxDeliver: number;
  /** A job state and result outlives its last change by at most this long (the bucket's max age; each job's own TTL is applied by the sweep). */
  jobsMaxAgeMs: number;
  /** Caps: the stream, the audio bucket, the jobs bucket (bytes; -1: none). */
  streamMaxBytes: number;
  audioMaxBytes: number;
  jobsMaxBytes: number;
  /** Copies of each (1 for a single broker; 3 on a 3-node cluster). */
  replicas: number;
}

export const defaultFleetLayout: FleetLayout = {
  stream: 'EARSHOT_JOBS',
  subjectPrefix: 'earshot.jobs',
  jobsBucket: 'earshot-jobs',
  audioBucket: 'earshot-audio',
  ackWaitMs: 60_000,
  maxDeliver: 10,
  jobsMaxAgeMs: 31 * 24 * 3600_000,
  streamMaxBytes: 64 * 1024 ** 2,
  audioMaxBytes: -1,
  jobsMaxBytes: -1,
  replicas: 1,
};

/** The pull consumer every device serving `lane` shares. */
export const consumerName = (lane: string): string => `workers-${lane}`;

export type FleetLinkState = 'connecting' | 'connected' | 'unreachable';

/** What a connected broker offers: the stream's client, the two buckets. */
export interface FleetHandles {
  nc: NatsConnection;
  js: JetStreamClient;
  jobs: KV;
  audio: ObjectStore;
}

export interface FleetBrokerOptions {
  settings: FleetConnectionSettings;
  layout?: Partial<FleetLayout>;
  /** The lanes (model classes) whose work-queue consumers this device provisions. */
  lanes: string[];
  /** This device, as the broker lists its connection. */
  name: string;
  log: Logger;
  /** Between attempts while the broker cannot be reached (before the first connection; after it, the client reconnects by itself). */
  retryMs?: number;
}

/** The client's connection options for the settings: servers, credentials, TLS. */
export function connectionOptions(s: FleetConnectionSettings, name: string): NodeConnectionOptions {
  const servers = s.url
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  const tls = s.tlsCa || s.tlsCert || s.tlsKey || servers.some((u) => u.startsWith('tls://'));
  return {
    servers,
    name,
    ...(s.credsFile ? { authenticator: credsAuthenticator(readFileSync(s.credsFile)) } : {}),
    ...(s.token ? { token: s.token } : {}),
    ...(tls
      ? {
          tls: {
            ...(s.tlsCa ? { caFile: s.tlsCa } : {}),
            ...(s.tlsCert ? { certFile: s.tlsCert } : {}),
            ...(s.tlsKey ? { keyFile: s.tlsKey } : {}),
          },
        }
      : {}),
    // Once connected, the client reconnects for ever; `connecting` covers the first connection.
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    timeout: 5000,
  };
}

/**
 * This device's link to the fleet's broker: connects in the background (the device starts
 * and works alone while the broker cannot be reached), provisions the work-queue stream,
 * its consumers and the two buckets on every (re)connection, and says how the link is
 * (`state`, for /readyz and /metrics). Never throws from start(): an unreachable broker
 * is a state, not an error.
 */
export class FleetBroker {
  readonly layout: FleetLayout;
  private current: FleetLinkState = 'connecting';
  private handles: FleetHandles | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** The connection of the loop, from the moment it exists (before it is provisioned). */
  private connection: NatsConnection | undefined;
  private wakeRetry: () => void = () => {};
  private readonly waiters = new Set<() => void>();
  private readonly connectedListeners: Array<() => void> = [];
  /** The reason the last attempt failed (logged once per change). */
  private lastProblem: string | undefined;

  constructor(private readonly o: FleetBrokerOptions) {
    this.layout = { ...defaultFleetLayout, ...o.layout };
  }

  get state(): FleetLinkState {
    return this.current;
  }

  /** The broker's handles while connected; undefined otherwise. */
  get connected(): FleetHandles | undefined {
    return this.current === 'connected' ? this.handles : undefined;
  }

  start(): void {
    this.loop ??= this.connectLoop();
  }

  /** Calls `listener` on every (re)connection, once the broker is provisioned. */
  onConnected(listener: () => void): void {
    this.connectedListeners.push(listener);
  }

  /** Resolves once connected and provisioned (at once if it is), or when stopping. */
  whenConnected(): Promise<void> {
    if (this.current === 'connected' || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeRetry();
    for (const w of this.waiters) w();
    this.waiters.clear();
    // Closing ends the status watch the loop is in (and any reconnecting), or fails the
    // provisioning it is in: a connection still being provisioned is closed too.
    const nc = this.connection;
    if (nc && !nc.isClosed()) await nc.close();
    await this.loop;
    this.handles = undefined;
  }

  private setState(state: FleetLinkState, detail?: string): void {
    if (state === this.current) return;
    this.current = state;
    if (state === 'connected') {
      this.o.log.info('fleet broker connected', { url: this.o.settings.url });
      for (const w of this.waiters) w();
      this.waiters.clear();
      if (!this.stopped) for (const l of this.connectedListeners) l();
    } else if (state === 'unreachable') {
      this.o.log.warn('fleet broker unreachable: working alone until it is back', { url: this.o.settings.url, ...(detail ? { reason: detail } : {}) });
    }
  }

  private async connectLoop(): Promise<void> {
    const retryMs = this.o.retryMs ?? 5000;
    while (!this.stopped) {
      try {
        const nc = await connect(connectionOptions(this.o.settings, this.o.name));
        this.connection = nc;
        if (this.stopped) {
          await nc.close();
          return;
        }
        this.handles = await this.provision(nc);
        if (this.stopped) return; // stop() closed it meanwhile
        this.lastProblem = undefined;
        this.setState('connected');
        await this.watch(nc);
        // Closed: by stop(), or the client gave up (it does not with unlimited reconnects).
        if (this.stopped) return;
        this.setState('unreachable', 'connection closed');
      } catch (err) {
        if (this.stopped) return; // stop() closed the connection it was being provisioned on
        const problem = (err as Error).message;
        if (problem !== this.lastProblem) this.o.log.debug('fleet broker connection failed', { error: err as Error });
        this.lastProblem = problem;
        this.setState('unreachable', problem);
        if (this.connection && !this.connection.isClosed()) await this.connection.close().catch(() => {});
        this.handles = undefined;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, retryMs);
        this.wakeRetry = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Follows the connection's status until it closes: disconnected is unreachable; reconnected provisions again (a new broker may have no stream). */
  private async watch(nc: NatsConnection): Promise<void> {
    const closed = nc.closed();
    for await (const status of nc.status()) {
      if (this.stopped) break;
      if (status.type === 'disconnect') this.setState('unreachable', 'disconnected');
      else if (status.type === 'reconnect') {
        try {
          this.handles = await this.provision(nc);
          this.setState('connected');
        } catch (err) {
          this.o.log.warn('fleet broker reconnected but provisioning failed', { error: err as Error });
        }
      }
    }
    await closed;
  }

  /**
   * Creates (or updates to this layout) the work-queue stream, one durable pull consumer
   * per lane this device serves, the jobs bucket and the audio bucket. Idempotent: every
   * device does it on every connection; the same settings leave everything as it is.
   */
  private async provision(nc: NatsConnection): Promise<FleetHandles> {
    const l = this.layout;
    const jsm = await jetstreamManager(nc);
    const subjects = [`${l.subjectPrefix}.>`];
    const stream = {
      name: l.stream,
      subjects,
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      max_bytes: l.streamMaxBytes,
      // Full: a new job is refused (the device then takes it itself); a waiting one is never dropped.
      discard: DiscardPolicy.New,
      num_replicas: l.replicas,
      // Publishing a job twice (a retry after a lost acknowledgement) stores it once.
      duplicate_window: nanos(120_000),
    };
    try {
      await jsm.streams.info(l.stream);
      await jsm.streams.update(l.stream, stream);
    } catch (err) {
      if (!/stream not found/i.test((err as Error).message)) throw err;
      await jsm.streams.add(stream);
    }
    for (const lane of this.o.lanes) {
      const consumer = {
        durable_name: consumerName(lane),
        filter_subject: `${l.subjectPrefix}.${lane}.*`,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(l.ackWaitMs),
        max_deliver: l.maxDeliver,
        // Many devices pull from one consumer; each may hold one job at a time.
        max_ack_pending: -1,
      };
      await ensureConsumer(jsm, l.stream, consumer);
    }
    const js = jetstream(nc);
    const jobs = await new Kvm(js).create(l.jobsBucket, {
      history: 1,
      ttl: l.jobsMaxAgeMs,
      max_bytes: l.jobsMaxBytes,
      replicas: l.replicas,
      storage: StorageType.File,
    });
    const audio = await new Objm(js).create(l.audioBucket, {
      storage: StorageType.File,
      replicas: l.replicas,
      max_bytes: l.audioMaxBytes,
    });
    return { nc, js, jobs, audio };
  }
}

/**
 * A durable consumer as `config` says, created or brought up to date (provisioning runs on
 * every connection, so a changed setting reaches a consumer made by an older version).
 */
export async function ensureConsumer(jsm: JetStreamManager, stream: string, config: Partial<ConsumerConfig> & { durable_name: string }): Promise<void> {
  try {
    await jsm.consumers.info(stream, config.durable_name);
    await jsm.consumers.update(stream, config.durable_name, config);
  } catch (err) {
    if (!/consumer not found/i.test((err as Error).message)) throw err;
    await jsm.consumers.add(stream, config);
  }
}
