import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { announceGeneratedKey, resolveApiKey } from './api-key.js';
import { azureDialect } from './azure/dialect.js';
import { ServiceClock, type ServiceClockOptions } from './clock.js';
import type { Config } from './config.js';
import { createRetrySchedule } from './delivery/backoff.js';
import { CidrPolicy } from './delivery/cidr.js';
import { deliveryUserAgent, Dispatcher } from './delivery/dispatcher.js';
import { sendRequest } from './delivery/http-client.js';
import { Outbox } from './delivery/outbox.js';
import { OwnEndpoints } from './delivery/own-endpoints.js';
import { TargetAdapters } from './delivery/targets.js';
import type { Dialect, DialectContext } from './dialect.js';
import { decodeAudio, DEFAULT_DECODER_MEMORY_MB, IN_MEMORY_MAX_SAMPLES, transcribeDecoded } from './engine/audio-decoder.js';
import { loadAddon } from './engine/native.js';
import { engineConfig, WhisperEngine } from './engine/whisper-engine.js';
import { AppError } from './errors.js';
import { FleetBroker, type FleetLinkState } from './fleet/broker.js';
import { fleetDeviceId } from './fleet/device-id.js';
import { FleetEvents } from './fleet/events.js';
import { FleetHooks } from './fleet/hooks.js';
import { FleetJobs } from './fleet/fleet-jobs.js';
import { FleetQueue, modelLanes } from './fleet/queue.js';
import { fleetTranscribe } from './fleet/transcribe.js';
import { type FleetTranscribe, FleetWorker } from './fleet/worker.js';
import { keyAuthenticator } from './http/auth.js';
import { hostCheck } from './http/host-check.js';
import { openApiDocument } from './http/openapi.js';
import { HttpServer, type Request, type RouteGroup } from './http/server.js';
import { ibmDialect } from './ibm/dialect.js';
import { openAiDialect } from './openai/dialect.js';
import { defaultIdleTimeoutMs, fetchJobAudio } from './jobs/content-fetch.js';
import { DiskSpace } from './jobs/disk-space.js';
import { EngineTurn } from './jobs/engine-turn.js';
import { JobService } from './jobs/job-service.js';
import type { Job } from './jobs/job.js';
import { JobStore } from './jobs/job-store.js';
import { Scheduler } from './jobs/scheduler.js';
import { Spool } from './jobs/spool.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { defineGauges } from './ops/gauges.js';
import { deviceInfo } from './ops/device.js';
import { opsRoutes } from './ops/routes.js';
import { packageVersion } from './paths.js';
import { LiveFeed, queueSnapshot } from './page/live-feed.js';
import { loadPageAssets } from './page/assets.js';
import { pageRoutes } from './page/routes.js';
import { StateDatabase } from './store/database.js';
import { inSlices } from './store/slices.js';
import { cgroupMemoryLimit, Systemd } from './systemd.js';
import { wyomingDialect } from './wyoming/dialect.js';

/** The API dialects this service speaks; adding one adds a folder and a line here. */
export const dialectFactories: Array<(ctx: DialectContext) => Dialect> = [ibmDialect, azureDialect, openAiDialect, wyomingDialect];

const sweepIntervalMs = 60_000;
/** How often a fleet device looks whether it (re)joined (to copy its own finished jobs) and sweeps the fleet (every sixth time). */
const defaultFleetTickMs = 10_000;
/** Records per sweep transaction: 20 expired jobs take about 2 ms of event-loop time here (x86), a few ms on a Pi. */
const sweepSlice = { jobs: 20, deliveries: 100 };

/** The service's clocks, and how often a fleet device ticks (tests step the wall clock, or make the tick rare to see what the connection alone does). */
export interface AppClocks extends Pick<ServiceClockOptions, 'wall' | 'monotonic' | 'synchronized' | 'earliest'> {
  fleetTickMs?: number;
}

/**
 * The composition root: builds the shared parts and the dialects from the config, starts
 * them in order and stops them in reverse. The constructor does nothing; start() does the
 * work (and fails with an AppError that says what to do).
 */
export class App {
  readonly metrics = new Metrics();
  private parts: ReturnType<App['build']> | undefined;
  /** The link to the fleet's broker (EARSHOT_FLEET_URL), once the model says which lanes this device serves. */
  private fleet: FleetBroker | undefined;
  /** A fleet device's events loop (deliveries once per event) and registration replication (docs/fleet.md). */
  private fleetEvents: FleetEvents | undefined;
  private fleetHooks: FleetHooks | undefined;
  private fleetWorker: FleetWorker | undefined;
  private fleetTimer: NodeJS.Timeout | undefined;
  /** Whose turn it is on the engine: the local scheduler's batch jobs or the fleet worker's. */
  private readonly turn = new EngineTurn();
  private sweepTimer: NodeJS.Timeout | undefined;
  private started = false;
  /** Until start() knows the API key, every request that needs one is refused. */
  private authenticate: (req: Pick<Request, 'headers'>) => void = () => {
    throw new AppError('ERR_NOT_READY', 'The service is starting');
  };

  constructor(
    readonly config: Config,
    private readonly log: Logger,
    /** The clocks the service's time comes from (tests step the wall clock). */
    private readonly clocks: AppClocks = {},
  ) {}

  /** The service's time (after start). */
  get clock(): ServiceClock {
    if (!this.parts) throw new Error('App.start() has not run');
    return this.parts.clock;
  }

  /** The jobs domain (after start): what the dialects call. */
  get jobs(): JobService {
    if (!this.parts) throw new Error('App.start() has not run');
    return this.parts.jobs;
  }

  /** The dialect named `name` (after start): tests reach a dialect's own listener through it. */
  dialect(name: string): Dialect | undefined {
    if (!this.parts) throw new Error('App.start() has not run');
    return this.parts.dialects.find((d) => d.name === name);
  }

  /** The HTTP server (after start). */
  get http(): HttpServer {
    if (!this.parts) throw new Error('App.start() has not run');
    return this.parts.http;
  }

  private build() {
    const { config, log } = this;
    const db = new StateDatabase(config.stateDir);
    const spool = new Spool(config.stateDir);
    const store = new JobStore(db);
    const { fleetTickMs: _, ...clocks } = this.clocks;
    const clock: ServiceClock = new ServiceClock({
      ...clocks,
      log: log.child('clock'),
      rebase: async (deltaMs, switchOver) => {
        await db.durably(() => {
          store.shiftTimes(deltaMs);
          outbox.shiftTimes(deltaMs);
          switchOver();
        });
        dispatcher.notify();
      },
    });
    const outbox = new Outbox(db, { now: clock.now });
    // Known once listening (port 0 binds a free one); the configured port until then.
    const ownPorts = (): number[] => [http.port || config.port].filter((port) => port > 0);
    const policy = new CidrPolicy(config.callbackCidrs, new OwnEndpoints(ownPorts));
    const targets = new TargetAdapters();
    const engine = new WhisperEngine(engineConfig(config), log.child('engine'));
    const dispatcher = new Dispatcher({
      outbox,
      targets,
      policy,
      log: log.child('delivery'),
      schedule: createRetrySchedule({ retryDelaysMs: config.retryDelaysMs }),
      timeoutMs: config.deliveryTimeoutMs,
      now: clock.now,
    });
    const disk = new DiskSpace(config.stateDir, config.minFreeBytes);
    const jobs: JobService = new JobService({
      db,
      store,
      spool,
      disk,
      onNotified: () => dispatcher.notify(),
      onQueued: () => scheduler.wake(),
      maxWaiting: config.maxQueued,
      log: log.child('jobs'),
      now: clock.now,
    });
    // Audio URLs go where callbacks may go: the same allow-list, never this service itself.
    // The local scheduler's fetch step, and the fleet worker's for jobs with a source (Azure's batches).
    const fetchSource = (job: Job, path: string, signal: AbortSignal, onProgress?: (bytes: number) => void) =>
      fetchJobAudio({
        url: job.source!.url,
        path,
        policy,
        maxBytes: config.maxUploadBytes,
        diskBytes: disk.largestPossible(),
        // A host that sends nothing fails its job well before the watchdog would restart the service.
        idleTimeoutMs: Math.min(defaultIdleTimeoutMs, config.stallSeconds * 500),
        signal,
        ...(onProgress ? { onProgress } : {}),
      });
    const scheduler = new Scheduler({
      service: jobs,
      turn: this.turn,
      store,
      spool,
      disk,
      engine,
      log: log.child('jobs'),
      // No decoded audio on the card: counted to check the upload (short audio kept in
      // memory), then handed to the engine (kept, or decoded again into a pipe it reads).
      decode: (job, inputPath, signal, onProgress) =>
        decodeAudio({
          inputPath,
          format: job.format,
          limits: { maxSeconds: config.maxAudioSeconds },
          signal,
          sandbox: config.decoderSandbox,
          onProgress,
          keepSamples: IN_MEMORY_MAX_SAMPLES,
        }),
      stream: (job, inputPath, decoded, signal, consume) =>
        transcribeDecoded(
          {
            inputPath,
            format: job.format,
            limits: { maxSeconds: config.maxAudioSeconds },
            signal,
            sandbox: config.decoderSandbox,
          },
          decoded,
          consume,
        ),
      fetch: fetchSource,
    });
    const dialects: Dialect[] = dialectFactories.map((create) =>
      create({
        config,
        log,
        db,
        jobs,
        outbox,
        policy,
        wakeDeliveries: () => dispatcher.notify(),
        request: (input) => sendRequest({ ...input, headers: { 'User-Agent': deliveryUserAgent, ...input.headers }, policy }),
        model: () => {
          // Until the model is loaded, what it can transcribe is unknown.
          if (!engine.model) throw new AppError('ERR_NOT_READY', 'The model is still loading; try again shortly');
          return engine.model;
        },
        modelListings: () => dialects.flatMap((d) => (d.modelListing ? [d.modelListing] : [])),
        registrationChanged: (store, key) => this.fleetHooks?.changed(store, key),
        registrationsReplicated: async () => this.fleetHooks?.flushed(),
        replica: async (store, key) => this.fleetHooks?.read(store, key),
      }),
    );
    for (const dialect of dialects) {
      if (dialect.notifier) jobs.subscribe(dialect.notifier);
      for (const target of dialect.targets ?? []) targets.add(target);
    }
    const liveFeed = new LiveFeed(() => queueSnapshot(jobs));
    let openapi: unknown;
    const groups: RouteGroup[] = [
      ...dialects.flatMap((d) => d.routes),
      opsRoutes({
        metrics: this.metrics,
        metricsNeedKey: config.metricsAuth === 'key',
        notReadyReason: () => this.notReadyReason(engine, scheduler),
        fleet: () => this.fleetState(),
        // From the very groups the server serves, once: they do not change while it runs.
        openapi: () => (openapi ??= openApiDocument({ groups, version: packageVersion(), auth: config.auth === 'key' })),
        device: () =>
          deviceInfo({
            modelFile: config.modelPath,
            model: engine.model ?? undefined,
            disk,
            jobs: () => store.countByStatus(),
            auth: config.auth === 'key' ? 'key' : 'none',
            fleet: this.fleetState(),
          }),
      }),
      pageRoutes(loadPageAssets()),
    ];
    const http = new HttpServer({
      host: config.host,
      port: config.port,
      log: log.child('http'),
      metrics: this.metrics,
      authenticate: (req) => this.authenticate(req),
      groups,
      sockets: [liveFeed.route],
    });
    const systemd = new Systemd({
      notify: (state) => loadAddon().notify(state),
      healthy: () => scheduler.stalledMs() < config.stallSeconds * 1000,
      log,
    });
    defineGauges(this.metrics, { db, store, engine, dispatcher, disk, scheduler });
    if (config.fleetUrl) {
      this.metrics.gauge(
        'earshot_fleet_connected',
        "1 while the fleet's broker (EARSHOT_FLEET_URL) is connected and provisioned; 0 while the device works alone",
        () => (this.fleetState() === 'connected' ? 1 : 0),
      );
    }
    return { db, clock, store, spool, disk, outbox, engine, dispatcher, jobs, scheduler, dialects, http, systemd, fetchSource };
  }

  /**
   * A fleet device turns the fleet's job events into deliveries in its outbox (any device
   * may pull any event; each becomes deliveries once) and replicates the registrations
   * (IBM callbacks, Azure web hooks) through the fleet's bucket (docs/fleet.md).
   */
  private startFleetDeliveries(broker: FleetBroker, queue: FleetQueue): void {
    const p = this.parts!;
    this.fleetEvents = new FleetEvents({
      broker,
      db: p.db,
      notifiers: () => p.dialects.flatMap((d) => (d.notifier ? [d.notifier] : [])),
      result: (id) => queue.result(id),
      onNotified: () => p.dispatcher.notify(),
      log: this.log.child('fleet'),
      now: p.clock.now,
    });
    this.fleetHooks = new FleetHooks({
      broker,
      db: p.db,
      log: this.log.child('fleet'),
      onRemoved: (store, key) => {
        for (const d of p.dialects) d.registrationRemoved?.(store, key);
      },
    });
    this.fleetEvents.start();
    this.fleetHooks.start();
  }

  /** The fleet link's state; undefined on a single device (no EARSHOT_FLEET_URL). */
  private fleetState(): FleetLinkState | undefined {
    if (!this.config.fleetUrl) return undefined;
    return this.fleet?.state ?? 'connecting';
  }

  private notReadyReason(engine: WhisperEngine, scheduler: Scheduler): string | undefined {
    if (!this.started) return 'starting';
    if (!engine.ready) return 'model not loaded';
    return scheduler.pausedReason;
  }

  async start(): Promise<void> {
    const { config, log } = this;
    // First: a broken key file stops the start before anything else is touched.
    const apiKey = resolveApiKey(config.apiKey, config.stateDir);
    this.parts = this.build();
    const p = this.parts;
    p.db.open();
    p.spool.open();
    const upgraded = await p.outbox.upgrade();
    if (upgraded) log.info('outbox records upgraded (stored secrets erased)', { count: upgraded });
    if (await p.store.upgrade()) log.info('jobs counted by status (kept from now on)');
    // Before anything reads a time: the wall clock may not be set yet (no RTC).
    await p.clock.start(Math.max(p.store.newestCreated(), p.outbox.newestRecorded()));
    this.authenticate = config.auth === 'key' ? keyAuthenticator(apiKey.key) : hostCheck({ listenHost: config.host, extra: config.allowedHosts });
    announceGeneratedKey(apiKey, log);
    for (const dialect of p.dialects) await dialect.start?.({ apiKey: apiKey.key });
    const port = await p.http.listen();
    log.info('listening', { host: config.host, port, auth: config.auth, uws: p.http.uwsBuild });
    log.info('limits', {
      maxUploadBytes: config.maxUploadBytes,
      maxAudioSeconds: config.maxAudioSeconds,
      maxQueued: config.maxQueued,
      decoderMemoryMb: DEFAULT_DECODER_MEMORY_MB,
      cgroupMemory: cgroupMemoryLimit(),
    });
    await p.engine.load();
    if (!config.fleetUrl) {
      const kept = await p.jobs.keepHandOvers();
      if (kept) log.info('jobs on their way to a fleet this device left stay here', { count: kept });
    }
    await p.scheduler.start();
    if (config.fleetUrl) {
      // In the background: an unreachable broker is a state (the device works alone), never a failed start.
      this.fleet = new FleetBroker({
        settings: {
          url: config.fleetUrl,
          ...(config.fleetCreds ? { credsFile: config.fleetCreds } : {}),
          ...(config.fleetToken ? { token: config.fleetToken } : {}),
          ...(config.fleetTlsCa ? { tlsCa: config.fleetTlsCa } : {}),
          ...(config.fleetTlsCert ? { tlsCert: config.fleetTlsCert } : {}),
          ...(config.fleetTlsKey ? { tlsKey: config.fleetTlsKey } : {}),
        },
        lanes: modelLanes(p.engine.model!),
        layout: { ackWaitMs: config.fleetAckWaitSeconds * 1000 },
        name: `earshot ${os.hostname()}:${port}`,
        log: log.child('fleet'),
      });
      const queue = new FleetQueue(this.fleet);
      this.startFleetDeliveries(this.fleet, queue);
      this.startFleet(this.fleet, queue, p.engine.model!);
    }
    p.dispatcher.start();
    this.sweepTimer = setInterval(() => void this.sweepSafely(), sweepIntervalMs);
    this.sweepTimer.unref();
    this.started = true;
    p.systemd.ready(`serving on port ${port} with ${config.model}`);
    log.info('ready', { model: config.model, url: `http://${config.host}:${port}` });
  }

  /**
   * The service's part in a fleet (docs/fleet.md, "In the service"): batch uploads go to
   * the fleet's queue while the broker is connected; a FleetWorker runs the fleet's jobs
   * here in the engine turns the local scheduler leaves (its own waiting jobs first, as
   * they can run nowhere else); after every (re)connection (and while jobs wait here) its
   * waiting batch transcriptions are handed to the fleet's queue and its running and
   * finished jobs copied to the fleet; every minute the fleet is swept.
   */
  private startFleet(broker: FleetBroker, queue: FleetQueue, model: { multilingual: boolean }): void {
    const { config, log } = this;
    const p = this.parts!;
    const fleetJobs = new FleetJobs({
      broker,
      queue,
      events: this.fleetEvents,
      log: log.child('fleet'),
      device: fleetDeviceId(config.stateDir),
      now: p.clock.now,
    });
    p.jobs.joinFleet(fleetJobs);
    // A pulled job's audio while it runs; what a crash left there is of no use now.
    const workDir = path.join(config.stateDir, 'fleet');
    rmSync(workDir, { recursive: true, force: true });
    const run = fleetTranscribe({ engine: p.engine, maxAudioSeconds: config.maxAudioSeconds, sandbox: config.decoderSandbox });
    const started = this.metrics.counter('earshot_fleet_jobs_started_total', "Fleet jobs this device started transcribing (from the fleet's queue)");
    const transcribe: FleetTranscribe = (job, ...rest) => {
      started.inc();
      log.debug('running a fleet job', { job: job.id, attempt: job.attempts });
      return run(job, ...rest);
    };
    this.fleetWorker = new FleetWorker({
      broker,
      queue,
      lanes: modelLanes(model),
      transcribe,
      workDir,
      log: log.child('fleet'),
      events: this.fleetEvents,
      fetchSource: p.fetchSource,
      pullMs: 2000,
      now: p.clock.now,
      // This device's own waiting jobs first: no other device can run them.
      turn: (signal) => this.turn.acquireWhen(() => p.store.waitingCount() === 0 && !p.disk.shortage(), signal, 1000),
    });
    const fleetTickMs = this.clocks.fleetTickMs ?? defaultFleetTickMs;
    let joined: unknown;
    let ticks = 0;
    const tick = async () => {
      const handles = broker.connected;
      if (!handles) return;
      const rejoined = handles !== joined;
      if (rejoined) {
        const copied = await p.jobs.shareOwn();
        if (copied) log.info("this device's running and finished jobs copied to the fleet", { count: copied });
      }
      // Batch transcriptions left waiting here (taken while the broker was away): to the fleet's queue.
      if (rejoined || p.store.waitingCount() > 0) {
        const handed = await p.jobs.handOver();
        if (handed) log.info("this device's waiting jobs handed to the fleet", { count: handed });
      }
      joined = handles;
      if (ticks++ % Math.max(1, Math.round(sweepIntervalMs / fleetTickMs)) === 0) {
        const swept = await fleetJobs.sweep();
        if (swept.expired || swept.leftovers || swept.orphans) log.info('fleet swept', swept);
        for (const d of p.dialects) await d.fleetUpkeep?.();
      }
    };
    let ticking = false;
    const runTick = () => {
      if (ticking) return;
      ticking = true;
      tick()
        .catch((err: unknown) => log.warn('fleet upkeep failed', { error: err as Error }))
        .finally(() => {
          ticking = false;
        });
    };
    this.fleetTimer = setInterval(runTick, fleetTickMs);
    this.fleetTimer.unref();
    // And at once on each (re)connection: the batch records this device took while the
    // broker was away reach the other devices then (FleetHooks), and their jobs should
    // follow within seconds, not a tick later (meanwhile those devices answer 404 for them).
    broker.onConnected(runTick);
    broker.start();
    this.fleetWorker.start();
  }

  /**
   * Removes expired jobs and old deliveries now (a timer does it every minute), all of
   * them, in slices of one short transaction each (`inSlices`): any backlog goes at once
   * without holding requests up.
   */
  async sweep(): Promise<{ jobs: number; deliveries: number }> {
    const p = this.parts!;
    const jobs = await inSlices((limit) => p.jobs.sweep(limit), sweepSlice.jobs);
    if (jobs) this.log.debug('expired jobs removed', { count: jobs });
    const deliveries = await inSlices((limit) => p.outbox.prune({ limit }), sweepSlice.deliveries);
    return { jobs, deliveries };
  }

  private async sweepSafely(): Promise<void> {
    try {
      await this.sweep();
    } catch (err) {
      this.log.error('sweeping expired jobs failed', { error: err as Error });
    }
  }

  /** Stops accepting requests, puts the running job back to waiting, flushes, closes. */
  async stop(): Promise<void> {
    const p = this.parts;
    if (!p) return;
    p.systemd.stopping();
    clearInterval(this.sweepTimer);
    p.clock.stop();
    p.http.close();
    clearInterval(this.fleetTimer);
    await Promise.all([p.scheduler.stop(), this.fleetWorker?.stop()]);
    await this.fleetEvents?.stop();
    await this.fleetHooks?.stop();
    await this.fleet?.stop();
    await p.dispatcher.stop();
    for (const dialect of [...p.dialects].reverse()) await dialect.stop?.();
    p.engine.close();
    await p.spool.close();
    await p.db.close();
    this.log.info('stopped');
  }
}
