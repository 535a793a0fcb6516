import { createHmac } from 'node:crypto';

import type { Dialect, DialectContext } from '../dialect.js';
import { ContentUrls } from './files.js';
import { AzureNotifier, webhookTarget } from './notifier.js';
import { azureRoutes } from './routes.js';
import { policyTargetCheck, WebhookRegistry } from './webhooks.js';

/**
 * Azure Speech to Text (`/speechtotext/v3.1`, v2.1 hooks under `/api/speechtotext`): web
 * hooks with their challenge and signed deliveries, transcriptions of every dialect's
 * jobs with their files, and earshot's dead letters per hook.
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
  const notifier = new AzureNotifier({ registry, outbox: ctx.outbox, contentUrls });
  return {
    name: 'azure',
    title: 'Azure Speech to Text (`/speechtotext/v3.1`, and v2.1 hooks under `/api/speechtotext/v2.1`)',
    notifier,
    targets: [webhookTarget(registry)],
    routes: azureRoutes({
      service: ctx.jobs,
      registry,
      notifier,
      outbox: ctx.outbox,
      contentUrls,
      wake: ctx.wakeDeliveries,
      model: ctx.model,
      maxUploadBytes: ctx.config.maxUploadBytes,
    }),
    start({ apiKey }) {
      // Content URLs stay valid across restarts and stop working when the key changes.
      contentUrls.setKey(createHmac('sha256', apiKey).update('earshot azure content urls').digest());
      registry.resumeChallenges();
    },
    // A challenge takes at most its 5 s timeout; its verdict is written before the store closes.
    stop: () => registry.challenged(),
  };
}
