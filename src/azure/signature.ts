import { createHmac } from 'node:crypto';

/**
 * Azure Speech's `X-MicrosoftSpeechServices-Signature`: base64(HMAC-SHA256(UTF-8(secret),
 * body)), over the body, or over the validationToken for a v3 registration challenge.
 */
export function azureSignature(secret: string, body: string | Uint8Array): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(body).digest('base64');
}
