// A full card, for real: the service's state directory on a small tmpfs mounted by the test
// (CI runs as root), flooded with uploads, then filled by someone else while jobs wait.
import { readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import t from 'tap';

import { startApp, waitForJob } from '../helpers/app.js';
import { startContentHost } from '../helpers/content-host.js';
import { until } from '../helpers/poll.js';
import { mountSmallDisk, needsRoot } from '../helpers/small-disk.js';

const floor = 8e6;
const stereo48k = 'audio/l16;rate=48000;channels=2;endianness=little-endian';
/** About 10 s of quiet noise, 48 kHz stereo: 1.92 MB uploaded, 0.7 MB of PCM once decoded. */
const upload = Buffer.alloc(1_920_000);
for (let i = 0; i < upload.length; i += 2) upload.writeInt16LE(((i * 7919) % 2001) - 1000, i);

t.test('a flood on a small disk: every answer is 201 or 507 with a body; every accepted job completes', needsRoot, async (t) => {
  const card = mountSmallDisk(t, 40);
  const { base, auth } = await startApp(t, { EARSHOT_MIN_FREE_BYTES: String(floor), EARSHOT_MAX_QUEUED: '1000' }, card);
  const post = async () => {
    const res = await fetch(`${base}/v1/recognitions`, { method: 'POST', headers: { ...auth, 'Content-Type': stereo48k }, body: upload });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), json: (await res.json()) as Record<string, any> };
  };
  const answers = await Promise.all(Array.from({ length: 40 }, post));
  const accepted = answers.filter((a) => a.status === 201);
  const refused = answers.filter((a) => a.status !== 201);
  t.ok(accepted.length >= 5, `${accepted.length} accepted`);
  t.ok(refused.length >= 10, `${refused.length} refused`);
  for (const a of refused) {
    t.equal(a.status, 507, 'refused for space');
    t.equal(a.retryAfter, '30');
    t.match(a.json, { code: 507, code_description: 'Insufficient Storage', error: /^Not enough free space on this device/ });
  }
  t.ok(statfsSync(card).bavail * statfsSync(card).bsize >= floor / 2, 'the floor held');
  for (const a of accepted) t.match(await waitForJob(base, auth, a.json.id, 120_000), { status: 'completed' });
  // A job's audio is removed just after its completed state is committed (and read above).
  await until(() => readdirSync(path.join(card, 'spool')).length === 0, 10_000, 'the spool to empty').catch(() => {});
  t.same(readdirSync(path.join(card, 'spool')), [], 'no audio left behind');
  // Space came back as jobs finished: uploads are taken again.
  t.equal((await post()).status, 201);
});

t.test(
  'the disk fills while jobs wait: they wait (readyz and metrics say why), a streamed upload gets 507; all complete once space returns',
  needsRoot,
  async (t) => {
    const card = mountSmallDisk(t, 40);
    const service = await startApp(t, { EARSHOT_MIN_FREE_BYTES: String(floor) }, card);
    const { auth } = service;
    const submit = async () => {
      const res = await fetch(`${service.base}/v1/recognitions`, { method: 'POST', headers: { ...auth, 'Content-Type': stereo48k }, body: upload });
      t.equal(res.status, 201);
      return ((await res.json()) as { id: string }).id;
    };
    // Another program fills the card to just under the floor: what waits must not fail.
    const ballast = path.join(card, 'ballast');
    const fill = () => {
      const s = statfsSync(card);
      writeFileSync(ballast, Buffer.alloc(Math.max(0, s.bavail * s.bsize - floor / 2)));
    };
    const ids = [await submit(), await submit(), await submit()];
    fill();
    await until(async () => (await fetch(`${service.base}/readyz`)).status === 503, 20_000, 'readyz to say why');
    t.match(await (await fetch(`${service.base}/readyz`)).json(), {
      status: 'not ready',
      reason: /^disk full: \d+ MB free on the state directory, 8 MB are kept free$/,
    });
    t.match(await (await fetch(`${service.base}/metrics`)).text(), /^earshot_jobs_paused 1$/m);
    const status = async (id: string) =>
      ((await (await fetch(`${service.base}/v1/recognitions/${id}`, { headers: auth })).json()) as { status: string }).status;
    for (const id of ids) t.not(await status(id), 'failed');
    t.equal(await status(ids.at(-1)!), 'waiting', 'nothing starts while the disk is full');

    // A chunked upload (no Content-Length) that runs out of space: 507 in IBM's shape, nothing left of it.
    rmSync(ballast);
    const s = statfsSync(card);
    writeFileSync(ballast, Buffer.alloc(s.bavail * s.bsize - floor - 1e6));
    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        `${service.base}/v1/recognitions`,
        { method: 'POST', headers: { ...auth, 'Content-Type': stereo48k, 'Transfer-Encoding': 'chunked' } },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(upload);
      req.end();
    });
    t.equal(streamed.status, 507);
    t.match(JSON.parse(streamed.body), { code: 507, error: /ran out of space while storing the audio/ });
    t.equal(readdirSync(path.join(card, 'spool')).filter((f) => !ids.some((id) => f.startsWith(id))).length, 0, 'no partial file');

    rmSync(ballast);
    for (const id of ids) t.match(await waitForJob(service.base, auth, id, 120_000), { status: 'completed' }, 'completed once space returned');
    t.equal((await fetch(`${service.base}/readyz`)).status, 200);
  },
);

t.test('audio at a URL larger than the whole disk: its job fails at once with the reason, it does not wait for space', needsRoot, async (t) => {
  const card = mountSmallDisk(t, 20);
  const host = await startContentHost(t, (_req, res) => {
    // 100 MB declared on a 20 MB card; the body never needs to come.
    res.writeHead(200, { 'Content-Length': '100000000', 'Content-Type': 'audio/wav' });
    res.write(Buffer.alloc(1000));
  });
  const { app, base, auth } = await startApp(t, { EARSHOT_MIN_FREE_BYTES: String(floor) }, card);
  const [job] = await app.jobs.accept([
    {
      source: { url: `${host.base}/huge.wav` },
      model: 'en-US_BroadbandModel',
      options: {},
      output: { timestamps: false, wordConfidence: false },
      resultsTtlMs: 60_000,
    },
  ]);
  t.match(await waitForJob(base, auth, job!.id, 20_000), { status: 'failed' });
  t.match(app.jobs.get(job!.id)!.error, {
    code: 'ERR_CONTENT_TOO_LARGE',
    message: /is 100000000 bytes \(Content-Length\), more than this device's disk can ever hold \(\d+ bytes beside the space it keeps free\)/,
  });
  t.same(readdirSync(path.join(card, 'spool')), [], 'nothing left in the spool');
});
