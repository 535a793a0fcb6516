import { createHash, timingSafeEqual } from 'node:crypto';

import { apiKeyProblem } from '../api-key.js';
import { AppError } from '../errors.js';
import type { Request } from './server.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The key a request presents, the ways the cloud SDKs send it; undefined when none. */
export function presentedKey(headers: Readonly<Record<string, string>>): string | undefined {
  const subscription = headers['ocp-apim-subscription-key'];
  if (subscription) return subscription.trim();
  const authorization = headers.authorization?.trim();
  if (!authorization) return undefined;
  const [scheme, value = ''] = authorization.split(/\s+/, 2);
  if (/^bearer$/i.test(scheme ?? '')) return value;
  if (/^basic$/i.test(scheme ?? '')) {
    // IBM's SDKs: user "apikey", password = the key.
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0 || decoded.slice(0, colon) !== 'apikey') return undefined;
    return decoded.slice(colon + 1);
  }
  return undefined;
}

/**
 * Checks `Authorization: Bearer KEY`, HTTP Basic `apikey:KEY` and
 * `Ocp-Apim-Subscription-Key: KEY` in constant time (hashes of equal length compared).
 * An empty presented key is refused before any comparison, and a key that could be
 * empty or guessed is refused here too: a bare `Authorization: Bearer` must never pass.
 */
export function keyAuthenticator(apiKey: string): (req: Pick<Request, 'headers'>) => void {
  const problem = apiKeyProblem(apiKey);
  if (problem) throw new AppError('ERR_CONFIG', `The API key ${problem}`);
  const expected = digest(apiKey);
  return (req) => {
    const key = presentedKey(req.headers);
    if (!key || !timingSafeEqual(digest(key), expected)) {
      throw new AppError(
        'ERR_UNAUTHORIZED',
        'Unauthorized: send the API key as Authorization: Bearer KEY, HTTP Basic apikey:KEY or Ocp-Apim-Subscription-Key: KEY',
      );
    }
  };
}
