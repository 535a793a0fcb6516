// The delivery suite (`npm run bench -- --suite delivery`): web hook delivery to a fast
// receiver on loopback:
//   1. throughput: deliveries per second out of the LMDB outbox (the service's outbox,
//      dispatcher, web hook send path and HTTP client, with their default settings), for a
//      backlog of Azure TranscriptionCreation deliveries fanned out to several hooks; the
//      receiver runs on a thread of its own (scripts/lib/counting-receiver.ts), as a real
//      one runs elsewhere
//   2. latency: from a job's completion (its `updated` time, stamped just before the
//      commit) to the first attempt of its TranscriptionCompletion delivery arriving at the
//      receiver, through the service as `npm start` runs it (target < 100 ms)
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { ContentUrls } from '../../src/azure/files.js';
import { BatchStore } from '../../src/azure/transcriptions.js';
import { AzureNotifier, webhookTarget } from '../../src/azure/notifier.js';
import { parseCreateV31 } from '../../src/azure/webhook-input.js';
import { policyTargetCheck, WebhookRegistry } from '../../src/azure/webhooks.js';
import { CidrPolicy } from '../../src/delivery/cidr.js';
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import { sendRequest } from '../../src/delivery/http-client.js';
import { Outbox } from '../../src/delivery/outbox.js';
import { TargetAdapters } from '../../src/delivery/targets.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import type { Job } from '../../src/jobs/job.js';
import { createLogger } from '../../src/log.js';
import { StateDatabase } from '../../src/store/database.js';
import { benchAuth, startService } from '../lib/bench-service.js';
import { startCountingReceiver } from '../lib/counting-receiver.js';
import type { Figure } from '../lib/figures.js';
import { median, percentile } from '../lib/stats.js';

/** A receiver that answers Azure's challenge and 200s everything else at once. */
async function startReceiver(onEvent: (event: string, body: string, at: number) => void) {
  const server = createServer((req, res) => {
    const token = new URL(req.url ?? '/', 'http://x').searchParams.get('validationToken');
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (token) return void res.writeHead(200).end(token);
      onEvent(String(req.headers['x-microsoftspeechservices-event']), body, Date.now());
      res.writeHead(200).end();
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function fakeJob(i: number): Job {
  const now = Date.now();
  return {
    id: `bench-${i}`,
    created: now,
    updated: now,
    status: 'waiting',
    contentType: 'audio/wav',
    format: parseAudioMediaType('audio/wav'),
    audioBytes: 32000,
    model: 'en-US_BroadbandModel',
    options: { language: 'en' },
    output: { timestamps: false, wordConfidence: false },
    resultsTtlMs: 3600_000,
    attempts: 0,
    warnings: [],
  };
}

async function throughput(
  dir: string,
  deliveries: number,
  hooks: number,
  concurrency: number | undefined,
): Promise<{ perSecond: number; ms: number; count: number; commits: number; changes: number }> {
  const log = createLogger({ level: 'warn' });
  const db = new StateDatabase(path.join(dir, `throughput-${concurrency ?? 'default'}`));
  db.open();
  const policy = new CidrPolicy(['127.0.0.0/8']);
  const outbox = new Outbox(db);
  const receiver = await startCountingReceiver();
  const registry = new WebhookRegistry({
    db,
    outbox,
    log,
    checkTarget: policyTargetCheck(policy),
    challenge: async (url, headers, body, timeoutMs) => {
      const r = await sendRequest({ method: 'POST', url, headers, body, timeoutMs, policy });
      return { status: r.status, body: r.body };
    },
  });
  const contentUrls = new ContentUrls();
  contentUrls.setKey(Buffer.from('bench'));
  const notifier = new AzureNotifier({ registry, outbox, contentUrls, batches: new BatchStore(db), findJob: () => undefined, result: () => undefined });
  for (let h = 0; h < hooks; h++) {
    await registry.create(
      parseCreateV31({ displayName: `h${h}`, webUrl: receiver.url, events: { transcriptionCreation: true }, properties: { secret: 'bench-secret' } }),
      'http://127.0.0.1:8080',
    );
  }
  // Hooks are challenged after they are registered; only enabled ones get events.
  await registry.challenged();
  // The backlog: one job "created" per transaction, fanned out to every hook.
  const jobs = Math.ceil(deliveries / hooks);
  for (let i = 0; i < jobs; i++) await db.durably(() => notifier.notify(fakeJob(i), 'created', undefined));
  const count = jobs * hooks;
  const targets = new TargetAdapters();
  targets.add(webhookTarget(registry));
  const dispatcher = new Dispatcher({ outbox, targets, policy, log, ...(concurrency ? { concurrency } : {}) });
  const before = { ...db.stats };
  const started = Date.now();
  dispatcher.start();
  while (receiver.received() < count) await new Promise((r) => setTimeout(r, 5));
  const ms = receiver.lastAt() - started;
  const commits = db.stats.commits - before.commits;
  const changes = db.stats.changes - before.changes;
  await dispatcher.stop();
  await receiver.close();
  await db.close();
  return { perSecond: (count / ms) * 1000, ms, count, commits, changes };
}

/** 1 s of 16 kHz mono 16-bit PCM (a tone): a short job. */
function l16(): Buffer {
  const out = Buffer.alloc(32000);
  for (let i = 0; i < 16000; i++) out.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 16000)), i * 2);
  return out;
}

async function latency(dir: string, model: string, jobs: number): Promise<number[]> {
  const arrivals = new Map<string, number>();
  const receiver = await startReceiver((event, body, at) => {
    if (event === 'TranscriptionCompletion') arrivals.set((JSON.parse(body) as { id: string }).id, at);
  });
  const service = await startService(path.join(dir, 'latency'), model, Math.max(1, os.availableParallelism()));
  const samples: number[] = [];
  try {
    const created = await fetch(`${service.base}/speechtotext/v3.1/webhooks`, {
      method: 'POST',
      headers: { ...benchAuth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ displayName: 'bench', webUrl: receiver.url, events: { transcriptionCompletion: true }, properties: { secret: 's' } }),
    });
    if (created.status !== 201) throw new Error(`create hook: ${created.status} ${await created.text()}`);
    const self = ((await created.json()) as { self: string }).self;
    // The challenge follows the 201: wait for it, or the first jobs would fire no events.
    for (let i = 0; ; i++) {
      const hook = (await (await fetch(self, { headers: benchAuth })).json()) as { status: string };
      if (hook.status === 'Succeeded') break;
      if (hook.status === 'Failed' || i > 500) throw new Error(`hook challenge: ${hook.status}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const audio = l16();
    for (let i = 0; i < jobs; i++) {
      const res = await fetch(`${service.base}/v1/recognitions`, {
        method: 'POST',
        headers: { ...benchAuth, 'Content-Type': 'audio/l16;rate=16000;endianness=little-endian' },
        body: audio,
      });
      const { id } = (await res.json()) as { id: string };
      while (!arrivals.has(id)) await new Promise((r) => setTimeout(r, 5));
      const job = (await (await fetch(`${service.base}/v1/recognitions/${id}`, { headers: benchAuth })).json()) as { updated: string; status: string };
      samples.push(arrivals.get(id)! - Date.parse(job.updated));
    }
  } finally {
    service.proc.kill('SIGTERM');
    await receiver.close();
  }
  return samples;
}

export interface DeliverySuiteOptions {
  deliveries: number;
  hooks: number;
  /** Jobs through the service for the latency. */
  jobs: number;
  /** The service's model file. */
  model: string;
  /** Dispatcher concurrencies to compare; undefined is the service's default. */
  concurrency: Array<number | undefined>;
}

/** Prints one throughput line per concurrency, then the latency line; returns the headline figures. */
export async function runDeliverySuite(o: DeliverySuiteOptions): Promise<Figure[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'earshot-bench-delivery-'));
  const figures: Figure[] = [];
  try {
    for (const concurrency of o.concurrency) {
      const t = await throughput(dir, o.deliveries, o.hooks, concurrency);
      const setting = concurrency === undefined ? 'default concurrency' : `concurrency ${concurrency}`;
      figures.push(
        { suite: 'delivery', name: `deliveries to a local receiver, ${setting}`, value: t.perSecond, unit: '/s', target: { op: '≥', value: 1000 } },
        { suite: 'delivery', name: `state changes per commit (delivery outcomes), ${setting}`, value: t.changes / Math.max(1, t.commits), unit: '' },
      );
      console.log(
        `throughput (concurrency ${concurrency === undefined ? 'default (16)' : concurrency}): ${t.count} deliveries to ${o.hooks} hooks, signed, outcome of each attempt stored durably, in ${t.ms} ms = ${t.perSecond.toFixed(0)} deliveries/s; ${t.changes} state changes in ${t.commits} commits (mean batch ${(t.changes / t.commits).toFixed(1)})`,
      );
    }
    const l = await latency(dir, o.model, o.jobs);
    const fmt = (x: number) => `${x.toFixed(0)} ms`;
    figures.push({ suite: 'delivery', name: 'job completion → first delivery attempt, median', value: median(l), unit: 'ms', target: { op: '<', value: 100 } });
    console.log(
      `job completion → first delivery attempt received (${l.length} jobs): median ${fmt(median(l))}, p90 ${fmt(percentile(l, 0.9))}, max ${fmt(Math.max(...l))} (target < 100 ms)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return figures;
}
