// A device joined to a fleet (EARSHOT_FLEET_URL) against a real nats-server -js: it
// provisions the fleet's stream and buckets, /readyz and /metrics say how the link is,
// and an unreachable broker leaves it ready and working alone. Without the setting,
// nothing of the fleet appears.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t from 'tap';

import { startApp, waitForJob } from '../helpers/app.js';
import { repeatFile } from '../helpers/audio-fixtures.js';
import { jfkMp3 } from '../helpers/models.js';
import { NatsServer } from '../helpers/nats-server.js';
import { l16 } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';
import { startReceiver } from '../helpers/receiver.js';

const l16Type = 'audio/l16;rate=16000;endianness=little-endian';
const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

t.test('a fleet device: connected and provisioned; the broker gone, still ready, working alone, and says so; back, connected again', async (t) => {
  const server = await NatsServer.start(t);
  const { base, auth } = await startApp(t, { EARSHOT_FLEET_URL: server.url });
  const readyz = async () => {
    const res = await fetch(`${base}/readyz`);
    return { status: res.status, body: (await res.json()) as { status: string; fleet?: string } };
  };
  const metric = async () => gauge(await (await fetch(`${base}/metrics`)).text(), 'earshot_fleet_connected');
  await until(async () => (await readyz()).body.fleet === 'connected', 10_000, 'the fleet link');
  t.same(await readyz(), { status: 200, body: { status: 'ready', fleet: 'connected' } });
  t.equal(await metric(), 1);
  const device = async () => ((await (await fetch(`${base}/device`, { headers: auth })).json()) as { fleet?: string }).fleet;
  t.equal(await device(), 'connected', "the page's device facts say so too");

  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  t.equal((await jsm.streams.info('EARSHOT_JOBS')).config.retention, 'workqueue');
  // The test model is English-only: it serves the en lane.
  t.same(
    (await jsm.consumers.list('EARSHOT_JOBS').next()).map((c) => c.name),
    ['workers-en'],
  );

  await server.stop();
  await until(async () => (await readyz()).body.fleet === 'unreachable', 10_000, 'unreachable');
  t.same(await readyz(), { status: 200, body: { status: 'ready', fleet: 'unreachable' } }, 'still ready');
  t.equal(await metric(), 0);
  t.equal(await device(), 'unreachable');
  const res = await fetch(`${base}/v1/recognitions`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/l16;rate=16000;endianness=little-endian' },
    body: l16(1),
  });
  t.equal(res.status, 201);
  const { id } = (await res.json()) as { id: string };
  t.match(await waitForJob(base, auth, id), { status: 'completed' }, 'the device works alone');

  await server.start();
  await until(async () => (await readyz()).body.fleet === 'connected', 15_000, 'connected again');
  t.equal(await metric(), 1);
});

t.test('two fleet devices: a callback registered and a web hook created on one are the other’s too, challenged once', async (t) => {
  const server = await NatsServer.start(t);
  // One t.testdir() call: each call makes the directory afresh, which would remove a's.
  const dir = t.testdir();
  const a = await startApp(t, { EARSHOT_FLEET_URL: server.url }, path.join(dir, 'a'));
  const b = await startApp(t, { EARSHOT_FLEET_URL: server.url }, path.join(dir, 'b'));
  const receiver = await startReceiver(t, () => ({ status: 200 }), { path: '/hook' });
  const q = encodeURIComponent(`${receiver.url}?dialect=ibm`);
  t.equal((await fetch(`${a.base}/v1/register_callback?callback_url=${q}&user_secret=s`, { method: 'POST', headers: a.auth })).status, 201);
  const created = await fetch(`${a.base}/speechtotext/v3.1/webhooks`, {
    method: 'POST',
    headers: { ...a.auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ displayName: 'fleet', webUrl: receiver.url, events: { transcriptionCompletion: true } }),
  });
  t.equal(created.status, 201);
  const { self } = (await created.json()) as { self: string };
  const onB = self.replace(a.base, b.base);
  await until(
    async () => {
      const res = await fetch(onB, { headers: b.auth });
      return res.status === 200 && ((await res.json()) as { status: string }).status === 'Succeeded';
    },
    15_000,
    'the challenged web hook on b',
  );
  t.equal(receiver.challenges().length, 2, 'one challenge each, both by a');
  // b knows the callback URL: registering it again there is "already registered", with no challenge.
  await until(
    async () => (await fetch(`${b.base}/v1/register_callback?callback_url=${q}&user_secret=s`, { method: 'POST', headers: b.auth })).status === 200,
    10_000,
    'the registration on b',
  );
  t.equal(receiver.challenges().length, 2, 'no challenge by b');
  t.equal((await fetch(`${b.base}/v1/unregister_callback?callback_url=${q}`, { method: 'POST', headers: b.auth })).status, 200);
  t.equal((await fetch(onB, { method: 'DELETE', headers: b.auth })).status, 204);
  await until(async () => (await fetch(self, { headers: a.auth })).status === 404, 10_000, 'deleted on a too');
  await until(
    async () => (await fetch(`${a.base}/v1/unregister_callback?callback_url=${q}`, { method: 'POST', headers: a.auth })).status === 404,
    10_000,
    'unregistered on a too',
  );
});

t.test(
  "a backlog taken while the broker was away: once it is back, the waiting jobs go to the fleet's queue at once and an idle device runs them; the running one is seen everywhere",
  async (t) => {
    const server = await NatsServer.start(t);
    await server.stop();
    const dir = t.testdir();
    // A's fleet tick is an hour: what it hands over, it hands over on connecting.
    const a = await startApp(t, { EARSHOT_FLEET_URL: server.url }, path.join(dir, 'a'), { fleetTickMs: 3_600_000 });
    const submit = async (body: Uint8Array, contentType: string) => {
      const res = await fetch(`${a.base}/v1/recognitions`, { method: 'POST', headers: { ...a.auth, 'Content-Type': contentType }, body });
      t.equal(res.status, 201);
      return ((await res.json()) as { id: string }).id;
    };
    const status = async (base: string, id: string) =>
      ((await (await fetch(`${base}/v1/recognitions/${id}`, { headers: a.auth })).json()) as { status: string }).status;
    // JFK 120 times over (22 minutes of audio, ~25 s for the test model on an idle 2-core
    // machine) keeps a busy while the broker comes back, then the short jobs wait behind it.
    const long = await submit(readFileSync(repeatFile(jfkMp3, path.join(dir, 'long.mp3'), 120)), 'audio/mp3');
    await until(async () => (await status(a.base, long)) === 'processing', 10_000, 'a runs the long job');
    const short = [await submit(l16(1), l16Type), await submit(l16(1), l16Type), await submit(l16(1), l16Type)];
    for (const id of short) t.equal(await status(a.base, id), 'waiting');

    await server.start();
    const b = await startApp(t, { EARSHOT_FLEET_URL: server.url }, path.join(dir, 'b'));
    for (const id of short) t.match(await waitForJob(b.base, b.auth, id), { status: 'completed' }, 'completed, read on b');
    t.equal(await status(a.base, long), 'processing', 'a still runs the long job: b ran the short ones');
    t.equal(await status(b.base, long), 'processing', "b sees a's running job");
    const started = async (base: string) => gauge(await (await fetch(`${base}/metrics`)).text(), 'earshot_fleet_jobs_started_total');
    t.equal(await started(b.base), 3, 'b took the three from the fleet');
    t.notOk((await started(a.base)) > 0, 'a took none (the counter is not shown before its first job)');
    for (const id of short) t.equal(await status(a.base, id), 'completed', "a reads them from the fleet: they are not a's any more");
  },
);

t.test('a single device (no EARSHOT_FLEET_URL): no fleet in /readyz or /metrics', async (t) => {
  const { base } = await startApp(t);
  t.same(await (await fetch(`${base}/readyz`)).json(), { status: 'ready' });
  t.notMatch(await (await fetch(`${base}/metrics`)).text(), /fleet/);
});
