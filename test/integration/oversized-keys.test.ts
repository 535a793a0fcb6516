// Ids and callback URLs longer than an LMDB key (found by the API fuzzer, test/reliability):
// lmdb-js throws on look-ups of keys over ~4 KB and on writes over 1978 bytes, which came
// out as 500s. Such a thing cannot have been stored: it is not found, or refused.
import t from 'tap';

import { startApp } from '../helpers/app.js';
import { startReceiver } from '../helpers/receiver.js';

const long = 'x'.repeat(5000);

t.test('ids too long for a key are not found, in every dialect', async (t) => {
  const { base, auth } = await startApp(t);
  const paths: Array<[string, string, number]> = [
    ['GET', `/v1/recognitions/${long}`, 404],
    ['DELETE', `/v1/recognitions/${long}`, 404],
    ['POST', `/v1/callback_deliveries/${long}/redeliver`, 404],
    ['GET', `/speechtotext/v3.1/transcriptions/${long}`, 404],
    ['GET', `/speechtotext/v3.1/transcriptions/${long}/files`, 404],
    ['DELETE', `/speechtotext/v3.1/transcriptions/${long}`, 204],
    ['GET', `/speechtotext/v3.1/webhooks/${long}`, 404],
    ['DELETE', `/speechtotext/v3.1/webhooks/${long}`, 404],
    ['POST', `/speechtotext/v3.1/webhooks/${long}:ping`, 404],
    ['GET', `/api/speechtotext/v2.1/transcriptions/hooks/${long}`, 404],
  ];
  for (const [method, path, status] of paths) {
    const res = await fetch(`${base}${path}`, { method, headers: auth });
    t.equal(res.status, status, `${method} ${path.slice(0, 60)}…`);
  }
});

t.test('a request line and headers up to 16 KB reach the service, whichever uWebSockets.js build loaded', async (t) => {
  const { base, auth } = await startApp(t);
  const res = await fetch(`${base}/v1/recognitions/${'y'.repeat(15_000)}`, { headers: auth });
  t.equal(res.status, 404, 'a 15 KB request line: the dialect answers');
  t.match(await res.json(), { code: 404, error: /was not found/ });
  const header = await fetch(`${base}/v1/recognitions`, { headers: { ...auth, 'X-Long': 'z'.repeat(12_000) } });
  t.equal(header.status, 200, 'a 12 KB header: served');
});

t.test('a callback URL too long for a key once normalized is refused, not a 500', async (t) => {
  const { base, auth } = await startApp(t);
  const receiver = await startReceiver(t);
  // 1000 characters, each %C3%A9 once normalized: 6 KB.
  const url = encodeURIComponent(`${receiver.url}/${'é'.repeat(1000)}`);
  const register = await fetch(`${base}/v1/register_callback?callback_url=${url}`, { method: 'POST', headers: auth });
  t.equal(register.status, 400);
  t.match(await register.json(), { code: 400, error: /longer than 1978 bytes once normalized/ });
  const unregister = await fetch(`${base}/v1/unregister_callback?callback_url=${url}`, { method: 'POST', headers: auth });
  t.equal(unregister.status, 404, 'unregistering it: not found');
  const submit = await fetch(`${base}/v1/recognitions?callback_url=${url}`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/wav' },
    body: Buffer.alloc(200),
  });
  t.equal(submit.status, 400, 'submitting with it: refused');
  t.equal(receiver.received.length, 0, 'no challenge was sent');
});
