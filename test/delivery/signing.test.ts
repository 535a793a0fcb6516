// Standard Webhooks signatures, checked against HMACs computed here and against the standardwebhooks package.
import { createHmac } from 'node:crypto';

import { Webhook } from 'standardwebhooks';
import t from 'tap';

import { standardWebhookHeaders, standardWebhookKey, standardWebhookSignature } from '../../src/delivery/signing.js';

const body = '{"id":"4bd734c0","event":"recognitions.completed","user_token":"é"}';

t.test('Standard Webhooks key: whsec_ secrets are base64, anything else is its UTF-8 bytes', async (t) => {
  const raw = Buffer.from('0123456789abcdef0123456789abcdef');
  t.same(standardWebhookKey(`whsec_${raw.toString('base64')}`), raw);
  t.same(standardWebhookKey('plain user secret'), Buffer.from('plain user secret', 'utf8'));
  t.same(standardWebhookKey('whsec_not base64!'), Buffer.from('whsec_not base64!', 'utf8'), 'malformed whsec_ is raw');
  t.same(standardWebhookKey('whsec_'), Buffer.from('whsec_', 'utf8'));
});

t.test('Standard Webhooks signature over id.timestamp.body, verified by the standardwebhooks package', async (t) => {
  const id = '0b0c8f0e-7a51-4c47-9d3b-1f5e2a7c9e11';
  const now = Date.now();
  const secret = 'user-secret-ünïcode';
  const headers = standardWebhookHeaders({ id, nowMs: now, body, secret });
  const ts = Math.floor(now / 1000);
  t.equal(headers['webhook-id'], id);
  t.equal(headers['webhook-timestamp'], String(ts));
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${id}.${ts}.${body}`).digest('base64');
  t.equal(headers['webhook-signature'], `v1,${expected}`);

  // The two documented ways a receiver verifies a raw user secret.
  t.same(new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' }).verify(body, headers), JSON.parse(body));
  t.same(new Webhook(`whsec_${Buffer.from(secret, 'utf8').toString('base64')}`).verify(body, headers), JSON.parse(body));
  t.throws(() => new Webhook(Buffer.from('other', 'utf8'), { format: 'raw' }).verify(body, headers), /No matching signature/);
  t.throws(() => new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' }).verify(`${body} `, headers), /No matching signature/);

  // A whsec_ secret is used the way the library reads it.
  const whsec = `whsec_${Buffer.from('a 24+ byte key for std webhooks').toString('base64')}`;
  const signed = standardWebhookHeaders({ id, nowMs: now, body, secret: whsec });
  t.same(new Webhook(whsec).verify(body, signed), JSON.parse(body));
  t.equal(signed['webhook-signature'], new Webhook(whsec).sign(id, new Date(now), body));
});

t.test('without a secret: id and timestamp only; ids with "." are refused', async (t) => {
  t.same(standardWebhookHeaders({ id: 'abc', nowMs: 1_700_000_000_999, body }), { 'webhook-id': 'abc', 'webhook-timestamp': '1700000000' });
  t.throws(() => standardWebhookSignature('s', 'a.b', 1, body), { code: 'ERR_INVALID_ARGUMENT' });
});
