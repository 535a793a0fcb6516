/**
 * Standard Webhooks signing (https://www.standardwebhooks.com), the one signature every
 * delivery carries whatever its dialect; each dialect adds its own headers through its
 * target adapter. base64 (standard alphabet, padded) HMACs over the exact bytes sent.
 */
import { createHmac } from 'node:crypto';

import { invalidArgument } from '../errors.js';

/** Standard Webhooks' secret prefix. */
export const standardWebhooksPrefix = 'whsec_';

/**
 * The HMAC key of the Standard Webhooks signature for a user's secret (the secret the
 * user gave the target: a callback's or a web hook's):
 *
 * - a secret in Standard Webhooks form, `whsec_` + base64, is that base64 decoded, as the
 *   spec and its libraries read it: `new Webhook(secret)`;
 * - any other secret is its UTF-8 bytes, the same key as the dialects' own signatures,
 *   so the receiver needs no second secret: `new Webhook(Buffer.from(secret, 'utf8'),
 *   { format: 'raw' })` with the `standardwebhooks` package, or equivalently
 *   `new Webhook('whsec_' + Buffer.from(secret, 'utf8').toString('base64'))`.
 *
 * A `whsec_` string that is not valid base64 counts as "any other secret". The spec asks
 * for keys of 24 to 64 bytes; a shorter user secret still signs (it is the user's choice,
 * and the dialects' signatures accept any length), it is just weaker.
 */
export function standardWebhookKey(secret: string): Buffer {
  if (secret.startsWith(standardWebhooksPrefix)) {
    const encoded = secret.slice(standardWebhooksPrefix.length);
    // Buffer's decoder skips junk silently; only a strictly valid string is a whsec_ key.
    if (encoded.length > 0 && encoded.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
      return Buffer.from(encoded, 'base64');
    }
  }
  return Buffer.from(secret, 'utf8');
}

/**
 * The Standard Webhooks `v1` signature: `v1,` + base64(HMAC-SHA256(key,
 * `${id}.${timestampSeconds}.${body}`)), key per `standardWebhookKey`.
 */
export function standardWebhookSignature(secret: string, id: string, timestampSeconds: number, body: string | Uint8Array): string {
  if (id.includes('.')) throw invalidArgument('webhook id', 'an id without "."', id);
  const hmac = createHmac('sha256', standardWebhookKey(secret));
  hmac.update(`${id}.${timestampSeconds}.`).update(body);
  return `v1,${hmac.digest('base64')}`;
}

/**
 * The Standard Webhooks headers for one attempt: `webhook-id` (stable across retries, for
 * de-duplication), `webhook-timestamp` (Unix seconds of this attempt) and, with a secret,
 * `webhook-signature`.
 */
export function standardWebhookHeaders(input: { id: string; nowMs: number; body: string | Uint8Array; secret?: string | undefined }): Record<string, string> {
  const timestamp = Math.floor(input.nowMs / 1000);
  const headers: Record<string, string> = { 'webhook-id': input.id, 'webhook-timestamp': String(timestamp) };
  if (input.secret) headers['webhook-signature'] = standardWebhookSignature(input.secret, input.id, timestamp, input.body);
  return headers;
}
