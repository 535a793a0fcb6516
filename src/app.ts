import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { resolveApiKey } from './api-key.js';
import { ContentUrls } from './azure/files.js';
import { AzureNotifier, followWebhook } from './azure/notifier.js';
import { policyTargetCheck, WebhookRegistry } from './azure/webhooks.js';
import type { Config } from './config.js';
import { createRetrySchedule } from './delivery/backoff.js';
import { CidrPolicy } from './delivery/cidr.js';
import { deliveryUserAgent, Dispatcher } from './delivery/dispatcher.js';
import { sendRequest } from './delivery/http-client.js';
import { Outbox } from './delivery/outbox.js';
import { decodeAudio, DEFAULT_DECODER_MEMORY_MB } from './engine/audio-decoder.js';
import type { Engine } from './engine/engine.js';
import { loadAddon, type NativeAddon } from './engine/native.js';
import { WhisperEngine } from './engine/whisper-engine.js';
import { keyAuthenticator } from './http/auth.js';
import { azureRoutes } from './http/azure-routes.js';
import { ibmDeliveryRoutes } from './http/delivery-routes.js';
import { ibmRoutes } from './http/ibm-routes.js';
import { opsRoutes } from './http/ops-routes.js';
import { HttpServer, type Request } from './http/server.js';
import { AppError } from './errors.js';
import { CallbackRegistry, IbmNotifier } from './ibm/callbacks.js';
import { JobService } from './jobs/job-service.js';
import { JobStore } from './jobs/job-store.js';
import { Scheduler } from './jobs/scheduler.js';
import { Spool } from './jobs/spool.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { StateDatabase } from './store/database.js';
import { cgroupMemoryLimit, Systemd } from './systemd.js';

const sweepIntervalMs = 60_000;

/**
 * The composition root: builds every part from the config, starts them in order and
 * stops them in reverse. Constructors do nothing; start() does the work.
 */
export class App {
  readonly metrics = new Metrics();
  readonly db: StateDatabase;
  readonly engine: Engine;
  readonly http: HttpServer;
  private readonly addon: NativeAddon;
  private readonly spool: Spool;
  private readonly outbox: Outbox;
  private readonly dispatcher: Dispatcher;
  private readonly store: JobStore;
  private readonly service: JobService;
  private readonly scheduler: Scheduler;
  private readonly registry: CallbackRegistry;
  private readonly webhooks: WebhookRegistry;
  private readonly contentUrls = new ContentUrls();
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly systemd: Systemd;
  /** Set in start(), once the API key is known. */
  private authenticate: (req: Request) => void = () => {
    throw new AppError('ERR_NOT_READY', 'The service is starting');
  };
  private started = false;

  constructor(
    readonly config: Config,
    private readonly log: Logger,
  ) {
    this.addon = loadAddon();
    this.db = new StateDatabase(config.stateDir);
    this.spool = new Spool(config.stateDir);
    this.engine = new WhisperEngine(
      {
        modelPath: config.modelPath,
        threads: config.threads,
        nice: config.inferenceNice,
        flashAttn: config.flashAttn,
        windowSeconds: config.windowSeconds,
        ...(config.vadModelPath ? { vadModelPath: config.vadModelPath } : {}),
        defaults: {
          ...(config.temperatureFallback ? {} : { temperatureIncrement: 0 }),
          ...(config.vadModelPath ? { vad: true } : {}),
        },
      },
      log.child('engine'),
      this.addon,
    );
    const policy = new CidrPolicy(config.callbackCidrs);
    // Built lazily in start(): LMDB databases can only be opened once the environment is.
    this.outbox = new Outbox(this.db);
    this.webhooks = new WebhookRegistry({
      db: this.db,
      challenge: async (url, headers, timeoutMs) => {
        const r = await sendRequest({ method: 'POST', url, headers: { ...headers, 'User-Agent': deliveryUserAgent }, body: '', timeoutMs, policy });
        return { status: r.status, body: r.body, location: r.headers.location };
      },
      checkTarget: policyTargetCheck(policy),
      outbox: this.outbox,
      log: log.child('azure'),
    });
    const azureNotifier = new AzureNotifier({ registry: this.webhooks, outbox: this.outbox, contentUrls: this.contentUrls });
    this.dispatcher = new Dispatcher({
      outbox: this.outbox,
      policy,
      log: log.child('delivery'),
      // Web hook deliveries follow their hook: disabled hooks get nothing, URL and secret as they are now.
      prepare: followWebhook(this.webhooks),
      onGone: (delivery) => void this.webhooks.deliveryGone(delivery),
      onDead: (delivery) => void this.webhooks.deliveryDead(delivery),
      schedule: createRetrySchedule({ retryDelaysMs: config.retryDelaysMs }),
      timeoutMs: config.deliveryTimeoutMs,
    });
    this.store = new JobStore(this.db);
    this.registry = new CallbackRegistry(
      this.db,
      async (url, headers, timeoutMs) => {
        const r = await sendRequest({ method: 'GET', url, headers, timeoutMs, policy });
        return { status: r.status, body: r.body };
      },
      config.ibmSignature,
    );
    this.service = new JobService({
      db: this.db,
      store: this.store,
      spool: this.spool,
      notifiers: [
        new IbmNotifier(this.registry, this.outbox, config.ibmSignature),
        azureNotifier,
      ],
      onNotified: () => this.dispatcher.notify(),
      onQueued: () => this.scheduler.wake(),
      maxWaiting: config.maxQueued,
      log: log.child('jobs'),
    });
    this.scheduler = new Scheduler({
      service: this.service,
      store: this.store,
      spool: this.spool,
      engine: this.engine,
      log: log.child('jobs'),
      decode: (job, inputPath, outputPath, signal) =>
        decodeAudio({
          inputPath,
          outputPath,
          format: job.format,
          limits: { maxSeconds: config.maxAudioSeconds },
          signal,
          sandbox: config.decoderSandbox,
        }),
    });
    // The languages whisper.cpp knows: fixed for the build, asked once.
    const languages = this.addon.languages();
    this.http = new HttpServer({
      host: config.host,
      port: config.port,
      log: log.child('http'),
      metrics: this.metrics,
      authenticate: (req) => this.authenticate(req),
      groups: [
        ibmRoutes({
          service: this.service,
          registry: this.registry,
          spool: this.spool,
          model: () => {
            // Until the model is loaded, what it can transcribe is unknown.
            if (!this.engine.model) throw new AppError('ERR_NOT_READY', 'The model is still loading; try again shortly');
            return { multilingual: this.engine.model.multilingual, languages };
          },
          minAudioBytes: 100,
          maxAudioBytes: config.maxUploadBytes,
        }),
        ibmDeliveryRoutes({ outbox: this.outbox, registry: this.registry, wake: () => this.dispatcher.notify() }),
        ...azureRoutes({
          service: this.service,
          registry: this.webhooks,
          notifier: azureNotifier,
          outbox: this.outbox,
          contentUrls: this.contentUrls,
          wake: () => this.dispatcher.notify(),
        }),
        opsRoutes({ metrics: this.metrics, notReadyReason: () => this.notReadyReason() }),
      ],
    });
    this.systemd = new Systemd({
      notify: (state) => this.addon.notify(state),
      healthy: () => this.scheduler.stalledMs() < config.stallSeconds * 1000,
      log,
    });
    this.defineGauges();
  }

  private notReadyReason(): string | undefined {
    if (!this.started) return 'starting';
    if (!this.engine.ready) return 'model not loaded';
    return undefined;
  }

  private defineGauges(): void {
    this.metrics.gauge('earshot_jobs', 'Jobs by status', () =>
      Object.entries(this.store.countByStatus()).map(([status, n]) => [{ status }, n]),
    );
    this.metrics.gauge('earshot_model_loaded', '1 when the whisper model is loaded', () => (this.engine.ready ? 1 : 0));
    // One scrape reads the dispatcher's stats once (they walk the pending deliveries).
    let cached: { at: number; stats: ReturnType<Dispatcher['stats']> } | undefined;
    const stats = () => {
      if (!cached || performance.now() - cached.at > 1000) cached = { at: performance.now(), stats: this.dispatcher.stats() };
      return cached.stats;
    };
    this.metrics.gauge('earshot_deliveries', 'Outbox deliveries by state', () => {
      const s = stats();
      return [
        [{ state: 'pending' }, s.pending],
        [{ state: 'dead' }, s.dead],
        [{ state: 'in_flight' }, s.inFlight],
      ];
    });
    this.metrics.gauge('earshot_deliveries_sent', 'Deliveries answered with 2xx since start', () => stats().sent);
    this.metrics.gauge('earshot_delivery_oldest_pending_seconds', 'Age of the oldest pending delivery', () =>
      stats().oldestPendingAgeMs / 1000,
    );
  }

  async start(): Promise<void> {
    this.db.open();
    this.spool.open();
    const { key, generated } = resolveApiKey(this.config.apiKey, this.config.stateDir);
    this.authenticate = this.config.auth === 'key' ? keyAuthenticator(key) : () => {};
    // Content URLs stay valid across restarts and stop working when the key changes.
    this.contentUrls.setKey(createHmac('sha256', key).update('earshot azure content urls').digest());
    if (generated) this.log.info(`generated an API key (shown once): ${key}`);
    const port = await this.http.listen();
    this.log.info('listening', { host: this.config.host, port, auth: this.config.auth });
    this.log.info('limits', {
      maxUploadBytes: this.config.maxUploadBytes,
      maxAudioSeconds: this.config.maxAudioSeconds,
      maxQueued: this.config.maxQueued,
      decoderMemoryMb: DEFAULT_DECODER_MEMORY_MB,
      cgroupMemory: cgroupMemoryLimit(),
    });
    await this.engine.load();
    this.warnIfGeneratedModel();
    await this.scheduler.start();
    this.dispatcher.start();
    this.sweepTimer = setInterval(() => void this.sweep(), sweepIntervalMs);
    this.sweepTimer.unref();
    this.started = true;
    this.systemd.ready(`serving on port ${port} with ${this.config.model}`);
    this.log.info('ready', { model: this.config.model, url: `http://${this.config.host}:${port}` });
  }

  /** scripts/make-test-model leaves a sidecar naming itself: say so, loudly, once. */
  private warnIfGeneratedModel(): void {
    try {
      const sidecar = JSON.parse(readFileSync(`${this.config.modelPath}.json`, 'utf8')) as { generator?: string };
      if (sidecar.generator?.includes('make-test-model')) {
        this.log.warn('the model is a generated random-weight test model: transcripts will be meaningless', {
          model: this.config.modelPath,
        });
      }
    } catch {
      // no sidecar: a real model
    }
  }

  private async sweep(): Promise<void> {
    try {
      const removed = await this.service.sweep();
      if (removed) this.log.debug('expired jobs removed', { count: removed });
      await this.outbox.prune();
    } catch (err) {
      this.log.error('sweeping expired jobs failed', { error: err as Error });
    }
  }

  /** Stops accepting requests, puts the running job back to waiting, flushes, closes. */
  async stop(): Promise<void> {
    this.systemd.stopping();
    clearInterval(this.sweepTimer);
    this.http.close();
    await this.scheduler.stop();
    await this.dispatcher.stop();
    this.engine.close();
    await this.db.close();
    this.log.info('stopped');
  }
}
