// IBM's callback signature, checked against HMACs computed here and a known vector.
import { createHmac } from 'node:crypto';

import t from 'tap';

import { ibmSignature } from '../../src/ibm/signature.js';

const body = '{"id":"4bd734c0","event":"recognitions.completed","user_token":"é"}';

t.test('IBM X-Callback-Signature: base64 HMAC-SHA1 by default, SHA-256 on request', async (t) => {
  const secret = 'my sécret';
  t.equal(ibmSignature(secret, body), createHmac('sha1', Buffer.from(secret, 'utf8')).update(Buffer.from(body, 'utf8')).digest('base64'));
  t.equal(ibmSignature(secret, body, 'sha256'), createHmac('sha256', secret).update(body).digest('base64'));
  // A known vector, so a change of encoding (hex, url-safe, unpadded) cannot slip through.
  t.equal(ibmSignature('key', 'The quick brown fox jumps over the lazy dog'), '3nybhbi3iqa8ino29wqQcBydtNk=');
  t.equal(ibmSignature('secret', 'n9ArPGMQ36Hiu7QC'), createHmac('sha1', 'secret').update('n9ArPGMQ36Hiu7QC').digest('base64'));
});
