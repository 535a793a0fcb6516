// Azure's web hook signature, checked against HMACs computed here and a known vector.
import { createHmac } from 'node:crypto';

import t from 'tap';

import { azureSignature } from '../../src/azure/signature.js';

const body = '{"id":"4bd734c0","event":"recognitions.completed","user_token":"é"}';

t.test('Azure X-MicrosoftSpeechServices-Signature: base64 HMAC-SHA256 over UTF-8', async (t) => {
  t.equal(azureSignature('key', 'The quick brown fox jumps over the lazy dog'), '97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=');
  t.equal(azureSignature('sécret', body), createHmac('sha256', Buffer.from('sécret', 'utf8')).update(Buffer.from(body, 'utf8')).digest('base64'));
});
