import { createHmac } from 'node:crypto';

export type IbmSignatureAlgorithm = 'sha1' | 'sha256';

/**
 * IBM Watson's `X-Callback-Signature`: base64(HMAC(UTF-8(user_secret), data)), over the
 * notification body, or over the challenge string for register_callback. SHA-1 is the
 * contract of the IBM documents earshot follows; IBM's 2025 documentation moved to
 * SHA-256, which can be selected.
 */
export function ibmSignature(secret: string, data: string | Uint8Array, algorithm: IbmSignatureAlgorithm = 'sha1'): string {
  return createHmac(algorithm, Buffer.from(secret, 'utf8')).update(data).digest('base64');
}
