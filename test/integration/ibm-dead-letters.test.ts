// IBM callbacks that keep failing become dead letters that can be listed per callback
// URL and redelivered, one or all (earshot's addition: IBM has no such endpoints).
import { createHmac } from 'node:crypto';
import t from 'tap';

import { startApp, waitForJob } from '../helpers/app.js';
import { until } from '../helpers/poll.js';
import { startReceiver } from '../helpers/receiver.js';
import { l16 } from '../helpers/pcm.js';

t.test('dead IBM callbacks: listed without secrets, redelivered one or all with the same ids', async (t) => {
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const { base, auth } = await startApp(t, { EARSHOT_RETRY_SCHEDULE: '10ms,10ms' });
  const secret = 'ibm-dl-secret';
  const url = receiver.url;
  const q = encodeURIComponent(url);
  t.equal((await fetch(`${base}/v1/register_callback?callback_url=${q}&user_secret=${secret}`, { method: 'POST', headers: auth })).status, 201);
  let failing = true;
  receiver.answer = () => (failing ? { status: 500 } : { status: 200 });

  const res = await fetch(`${base}/v1/recognitions?callback_url=${q}&user_token=u`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/l16;rate=16000;endianness=little-endian' },
    body: l16(1),
  });
  const { id } = (await res.json()) as { id: string };
  await waitForJob(base, auth, id);
  const list = async (query: string) => {
    const r = await fetch(`${base}/v1/callback_deliveries?${query}`, { headers: auth });
    const text = await r.text();
    return { status: r.status, text, json: JSON.parse(text) as { deliveries: any[] } & Record<string, unknown> };
  };
  let dead = await list(`callback_url=${q}&state=dead`);
  for (let i = 0; i < 400 && dead.json.deliveries.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 25));
    dead = await list(`callback_url=${q}&state=dead`);
  }
  t.same(
    dead.json.deliveries.map((d) => d.event),
    ['recognitions.started', 'recognitions.completed'],
  );
  t.match(dead.json.deliveries[0], { callback_url: url, recognition_id: id, state: 'dead', attempts: 3, last_status_code: 500, last_error: 'HTTP 500' });
  t.notOk(dead.text.includes(secret), 'no secrets');
  t.equal((await list('state=dead')).json.deliveries.length, 2, 'all callback URLs');
  t.same((await list(`callback_url=${q}&state=pending`)).json.deliveries, []);
  t.equal((await list('state=bogus')).status, 400);

  failing = false;
  const before = receiver.received.length;
  const [started, completed] = dead.json.deliveries;
  const one = await fetch(`${base}/v1/callback_deliveries/${started.id}/redeliver`, { method: 'POST', headers: auth });
  t.equal(one.status, 200);
  t.match(await one.json(), { id: started.id, state: 'pending' });
  const again = await fetch(`${base}/v1/callback_deliveries/${started.id}/redeliver`, { method: 'POST', headers: auth });
  t.equal(again.status, 400, 'not a dead letter any more');
  t.match(await again.json(), { code: 400, error: /not dead/ });
  t.equal((await fetch(`${base}/v1/callback_deliveries/nope/redeliver`, { method: 'POST', headers: auth })).status, 404);
  t.equal((await fetch(`${base}/v1/callback_deliveries/redeliver`, { method: 'POST', headers: auth })).status, 400, 'callback_url is required');
  const all = await fetch(`${base}/v1/callback_deliveries/redeliver?callback_url=${q}`, { method: 'POST', headers: auth });
  t.same(await all.json(), { redelivered: 1 });

  const posts = (await receiver.posts(before + 2 - receiver.received.filter((r) => r.method !== 'POST').length)).slice(-2);
  const arrived = posts.map((p) => [p.headers['webhook-id'], JSON.parse(p.body).event]);
  t.same(arrived, [
    [started.id, 'recognitions.started'],
    [completed.id, 'recognitions.completed'],
  ]);
  for (const p of posts) t.equal(p.headers['x-callback-signature'], createHmac('sha1', secret).update(p.body).digest('base64'));
  t.same((await list(`callback_url=${q}&state=dead`)).json.deliveries, []);
  // The outcome is stored just after the receiver answered: listed as delivered once it is.
  const deliveredIds = async () => ((await list(`callback_url=${q}&state=delivered`)).json.deliveries as Array<{ id: string }>).map((d) => d.id).sort();
  const both = [started.id, completed.id].sort();
  await until(async () => (await deliveredIds()).join() === both.join(), 5000, 'both listed as delivered');
  const delivered = (await list(`callback_url=${q}&state=delivered`)).json.deliveries;
  t.same(delivered.map((d) => d.id).sort(), both, 'both listed as delivered, same ids');
  for (const d of delivered) t.match(d, { state: 'delivered', last_status_code: 200, callback_url: url, recognition_id: id });
});

t.test('unregistering stops deliveries (dead letters "not sent"); registered again with a new secret, they are signed with it', async (t) => {
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const { base, auth } = await startApp(t, { EARSHOT_RETRY_SCHEDULE: '300ms,300ms,300ms,300ms,300ms,300ms' });
  const q = encodeURIComponent(receiver.url);
  const post = (path: string) => fetch(`${base}${path}`, { method: 'POST', headers: auth });
  t.equal((await post(`/v1/register_callback?callback_url=${q}&user_secret=old-secret`)).status, 201);
  receiver.answer = () => ({ status: 503 });
  const res = await fetch(`${base}/v1/recognitions?callback_url=${q}&events=recognitions.completed`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/l16;rate=16000;endianness=little-endian' },
    body: l16(1),
  });
  const { id } = (await res.json()) as { id: string };
  await waitForJob(base, auth, id);
  await receiver.posts(1);
  t.equal((await post(`/v1/unregister_callback?callback_url=${q}`)).status, 200);
  const attemptsBefore = receiver.events().length;
  const dead = async () =>
    ((await (await fetch(`${base}/v1/callback_deliveries?state=dead&callback_url=${q}`, { headers: auth })).json()) as { deliveries: any[] }).deliveries;
  await until(async () => (await dead()).length === 1, 5000, 'the pending callback to become a dead letter');
  const [letter] = await dead();
  t.match(letter, {
    event: 'recognitions.completed',
    recognition_id: id,
    state: 'dead',
    last_error: `not sent: callback URL unregistered (${receiver.url})`,
  });
  t.equal(receiver.events().length, attemptsBefore, 'nothing more was sent to the unregistered URL');
  t.equal((await post(`/v1/callback_deliveries/${letter.id}/redeliver`)).status, 400, 'not redelivered while unregistered');

  receiver.answer = () => ({ status: 200 });
  t.equal((await post(`/v1/register_callback?callback_url=${q}&user_secret=new-secret`)).status, 201);
  t.equal((await post(`/v1/callback_deliveries/${letter.id}/redeliver`)).status, 200);
  const sent = await receiver.until((e) => e.some((h) => h.headers['webhook-id'] === letter.id && e.indexOf(h) >= attemptsBefore), 'the redelivery');
  const again = sent.at(-1)!;
  t.equal(again.headers['x-callback-signature'], createHmac('sha1', 'new-secret').update(again.body).digest('base64'), 'signed with the secret registered now');
});
