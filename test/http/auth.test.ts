// Credentials as the cloud SDKs send them; an empty one never passes, whatever the key.
import t from 'tap';

import { keyAuthenticator, presentedKey } from '../../src/http/auth.js';
import type { Request } from '../../src/http/server.js';

const key = 'test-key-0123456789';
const request = (headers: Record<string, string>) => ({ headers }) as unknown as Request;
const basic = (userPass: string) => `Basic ${Buffer.from(userPass).toString('base64')}`;

t.test('the three ways of sending the key pass', async (t) => {
  const check = keyAuthenticator(key);
  for (const headers of <Record<string, string>[]>[
    { authorization: `Bearer ${key}` },
    { authorization: basic(`apikey:${key}`) },
    { 'ocp-apim-subscription-key': key },
  ]) {
    t.doesNotThrow(() => check(request(headers)), JSON.stringify(headers));
  }
});

t.test('an empty bearer token, Basic password or subscription key is refused', async (t) => {
  const check = keyAuthenticator(key);
  for (const headers of <Record<string, string>[]>[
    {},
    { authorization: 'Bearer' },
    { authorization: 'Bearer ' },
    { authorization: 'bearer   ' },
    { authorization: basic('apikey:') },
    { authorization: 'Basic' },
    { authorization: basic('apikey') },
    { 'ocp-apim-subscription-key': '' },
    { 'ocp-apim-subscription-key': '   ' },
    { authorization: 'Digest x' },
  ]) {
    t.throws(() => check(request(headers)), { code: 'ERR_UNAUTHORIZED' }, JSON.stringify(headers));
  }
  t.equal(presentedKey({ authorization: 'Bearer' }), '', 'what the header carries: nothing');
});

t.test('an authenticator for an empty or short key cannot be made', async (t) => {
  t.throws(() => keyAuthenticator(''), { code: 'ERR_CONFIG', message: 'The API key is empty' });
  t.throws(() => keyAuthenticator('short'), { code: 'ERR_CONFIG' });
});
