import { createHmac } from 'node:crypto';

import type { Dialect, DialectContext } from '../dialect.js';
import { ContentUrls } from './files.js';
import { azureApi } from './openapi.js';
import { AzureNotifier, webhookTarget } from './notifier.js';
import { fastTranscriptionRoute } from './fast.js';
import { azureError } from './requests.js';
import { transcriptionRoutes, v2TranscriptionRoutes } from './transcription-routes.js';
import { versionMounts } from './versions.js';
import { webhookRoutes } from './webhook-routes.js';
import { AzureTranscriptions } from './transcription-service.js';
import { type BatchRecord, BatchStore } from './transcriptions.js';
import { policyTargetCheck, WebhookRegistry, webhookTargetKind } from './webhooks.js';

/**
 * Azure Speech to Text (every version under `/speechtotext`, v2.0/v2.1 under
 * `/api/speechtotext`): batch transcriptions of content URLs, web hooks with their
 * challenge and signed deliveries, the jobs of every dialect as transcriptions with their
 * files, and earshot's dead letters per hook.
 */
export function azureDialect(ctx: DialectContext): Dialect {
  const contentUrls = new ContentUrls();
  const registry = new WebhookRegistry({
    db: ctx.db,
    challenge: (url, headers, body, timeoutMs) => ctx.request({ method: 'POST', url, headers, body, timeoutMs }),
    checkTarget: policyTargetCheck(ctx.policy),
    maxHooks: ctx.config.maxHooks,
    failureMs: ctx.config.hookFailureHours * 3_600_000,
    outbox: ctx.outbox,
    log: ctx.log.child('azure'),
  });
  registry.onChange = (id) => ctx.registrationChanged?.('azure-webhooks', id);
  const batches = new BatchStore(ctx.db);
  // In a fleet, batch records are replicated to every device and their jobs are the fleet's (docs/fleet.md).
  const fleet = ctx.config.fleetUrl
    ? { changed: (id: string) => ctx.registrationChanged?.('azure-transcriptions', id), replicated: async () => ctx.registrationsReplicated?.() }
    : undefined;
  const transcriptions = new AzureTranscriptions(ctx.jobs, batches, ctx.model, fleet);
  const notifier = new AzureNotifier({
    registry,
    outbox: ctx.outbox,
    contentUrls,
    batches,
    findJob: (id) => ctx.jobs.find(id),
    result: (id) => ctx.jobs.result(id),
    ...(fleet
      ? {
          fleet: {
            job: (id: string) => ctx.jobs.findAnywhere(id),
            result: (id: string) => ctx.jobs.fetchResult(id),
            batch: async (id: string) => (await ctx.replica?.('azure-transcriptions', id)) as BatchRecord | undefined,
          },
        }
      : {}),
  });
  const transcriptionOptions = { transcriptions, service: ctx.jobs, contentUrls, model: ctx.model, now: Date.now };
  const hooks = webhookRoutes({ transcriptions, registry, notifier, outbox: ctx.outbox, wake: ctx.wakeDeliveries });
  return {
    name: 'azure',
    title:
      'Azure Speech to Text (`/speechtotext/v3.0`–`v3.2`, `/speechtotext?api-version=2024-11-15|2025-10-15`, and v2.0/v2.1 under `/api/speechtotext/v2.1`)',
    notifier,
    targets: [webhookTarget(registry)],
    // The records of fleet batches whose jobs are all gone (deleted, expired).
    fleetUpkeep: () => transcriptions.sweep(),
    // A web hook deleted on another device: its pending deliveries here go too.
    registrationRemoved: (store, key) => {
      if (store === 'azure-webhooks') void ctx.outbox.discardPending({ kind: webhookTargetKind, key }).catch(() => {});
    },
    routes: [
      {
        // One set of routes under every version's prefix; everything under them is Azure's.
        prefix: '',
        mounts: versionMounts,
        mountsDoc:
          "v3.0's actions are `{id}/ping` and `{id}/test`; under `/speechtotext` the version is `?api-version=2024-11-15` or `2025-10-15`, which create with `transcriptions:submit`, the v3.x versions with `POST …/transcriptions`",
        // Azure's paths are case-insensitive (Microsoft's own sample posts to `v3.0/webHooks/`).
        lenient: true,
        renderError: azureError,
        api: azureApi,
        routes: [
          ...hooks.versioned,
          ...transcriptionRoutes(transcriptionOptions),
          fastTranscriptionRoute({ service: ctx.jobs, model: ctx.model, maxUploadBytes: ctx.config.maxUploadBytes }),
        ],
      },
      {
        prefix: '',
        mounts: ['/api/speechtotext/v2.1', '/api/speechtotext/v2.0'],
        mountsDoc: 'v2.0, whose batch samples write `Transcriptions/`',
        lenient: true,
        renderError: azureError,
        api: azureApi,
        routes: [...hooks.v21, ...v2TranscriptionRoutes(transcriptionOptions)],
      },
    ],
    start({ apiKey }) {
      // Content URLs stay valid across restarts and stop working when the key changes.
      contentUrls.setKey(createHmac('sha256', apiKey).update('earshot azure content urls').digest());
      registry.resumeChallenges();
    },
    // A challenge takes at most its 5 s timeout; its verdict is written before the store closes.
    stop: () => registry.challenged(),
  };
}
