// Bad input on the IBM interface: IBM's error shape and status, and nothing left behind.
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import t from 'tap';

import { until } from '../helpers/poll.js';
import { startApp, waitForJob } from '../helpers/app.js';
import { jfkMp3 } from '../helpers/models.js';
import { wav } from '../helpers/pcm.js';

const jfk = readFileSync(jfkMp3);

t.test('IBM error bodies and status codes', async (t) => {
  const { base, auth, stateDir } = await startApp(t, { EARSHOT_MAX_UPLOAD_BYTES: '200000' });
  const post = (body: RequestInit['body'], headers: Record<string, string> = {}, query = '') =>
    fetch(`${base}/v1/recognitions${query}`, { method: 'POST', headers: { ...auth, ...headers }, body });
  const expectError = async (res: Response, status: number, message: RegExp, name: string) => {
    t.equal(res.status, status, name);
    t.equal(res.headers.get('content-type'), 'application/json', name);
    const body = (await res.json()) as Record<string, unknown>;
    t.match(body, { code: status, code_description: String, error: message }, name);
    t.same(Object.keys(body).sort(), ['code', 'code_description', 'error'], `${name}: IBM's three fields`);
  };

  await expectError(
    await post(Buffer.alloc(50, 1), { 'Content-Type': 'audio/wav' }),
    400,
    /Stream was 50 bytes but needs to be at least 100 bytes/,
    'too short',
  );
  await expectError(await post(jfk, { 'Content-Type': 'audio/webm' }), 415, /audio\/webm/, 'unsupported type');
  await expectError(await post(jfk, { 'Content-Type': 'audio/l16' }), 400, /rate/, 'l16 without rate');
  await expectError(await post(jfk, { 'Content-Type': 'audio/mp3' }, '?model=xx-YY_FooModel'), 404, /Model xx-YY_FooModel not found/, 'unknown model');
  await expectError(await post(jfk, { 'Content-Type': 'audio/mp3' }, '?model=de-DE_BroadbandModel'), 400, /English-only/, 'language the model lacks');
  await expectError(await post(jfk, { 'Content-Type': 'audio/mp3' }, '?timestamps=yes'), 400, /not a boolean/, 'bad boolean');
  await expectError(await post(jfk, { 'Content-Type': 'audio/mp3' }, '?results_ttl=0'), 400, /results_ttl/, 'bad ttl');
  await expectError(await post(jfk, { 'Content-Type': 'audio/mp3', Accept: 'text/html' }), 406, /Accept/, 'not acceptable');
  await expectError(await post(wav(8), { 'Content-Type': 'audio/wav' }), 413, /exceeds the maximum of 200000 bytes/, 'declared too large');
  await expectError(await fetch(`${base}/v1/recognitions/nope`, { headers: auth }), 404, /The job ID 'nope' was not found/, 'unknown job');
  await expectError(await fetch(`${base}/v1/recognitions/nope`, { method: 'DELETE', headers: auth }), 404, /not found/, 'delete unknown');
  await expectError(await fetch(`${base}/v1/nothing-here`, { headers: auth }), 404, /No such resource/, 'unknown route');

  // A chunked upload has no Content-Length: the running count stops it at the limit.
  const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${base}/v1/recognitions`, { method: 'POST', headers: { ...auth, 'Content-Type': 'audio/wav' } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    const piece = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < 5; i++) req.write(piece);
    req.end();
  });
  t.equal(chunked.status, 413, 'chunked upload past the limit');
  t.match(JSON.parse(chunked.body), { code: 413, error: /exceeds the maximum/ });

  t.same(readdirSync(path.join(stateDir, 'spool')), [], 'no spool file left behind by a refused upload');
  const list = (await (await fetch(`${base}/v1/recognitions`, { headers: auth })).json()) as { recognitions: unknown[] };
  t.same(list.recognitions, [], 'no job created by a refused request');
});

t.test('audio that does not decode fails its job with a clear error; the service carries on', async (t) => {
  const { base, auth } = await startApp(t);
  const post = (body: Buffer, type: string) => fetch(`${base}/v1/recognitions`, { method: 'POST', headers: { ...auth, 'Content-Type': type }, body });
  const truncated = wav(3).subarray(0, 40000);
  const cases: Array<[Buffer, string, string]> = [
    [Buffer.from('this is not audio at all, just some text pretending to be a wave file. '.repeat(3)), 'audio/wav', 'ERR_AUDIO'],
    [truncated, 'audio/wav', 'ERR_AUDIO_CORRUPT'],
    [jfk, 'audio/flac', 'ERR_AUDIO_UNSUPPORTED'],
  ];
  for (const [body, type, code] of cases) {
    const res = await post(body, type);
    t.equal(res.status, 201, 'accepted: decoding happens in the job');
    const { id } = (await res.json()) as { id: string };
    const done = await waitForJob(base, auth, id);
    t.match(done, { status: 'failed', error_code: new RegExp(`^${code}`), error: /\w/ }, `${type} → ${code}`);
  }
  const good = await post(wav(2), 'audio/wav');
  const { id } = (await good.json()) as { id: string };
  t.match(await waitForJob(base, auth, id), { status: 'completed' }, 'a good job after the bad ones');
});

t.test('a full queue answers 503 before reading the upload; a processing job cannot be deleted', async (t) => {
  const { base, auth } = await startApp(t, { EARSHOT_MAX_QUEUED: '1' });
  const post = () => fetch(`${base}/v1/recognitions`, { method: 'POST', headers: { ...auth, 'Content-Type': 'audio/wav' }, body: wav(60) });
  const first = (await (await post()).json()) as { id: string };
  // Wait until the first job runs, so the next one is the only waiting job.
  const statusOf = async (id: string) => ((await (await fetch(`${base}/v1/recognitions/${id}`, { headers: auth })).json()) as { status: string }).status;
  await until(async () => (await statusOf(first.id)) === 'processing', 5000, 'the first job to run');
  const second = await post();
  t.equal(second.status, 201);
  const third = await post();
  t.equal(third.status, 503);
  t.equal(third.headers.get('retry-after'), '30');
  t.match(await third.json(), { code: 503, code_description: 'Service Unavailable', error: /queue is full/ });

  const del = await fetch(`${base}/v1/recognitions/${first.id}`, { method: 'DELETE', headers: auth });
  t.equal(del.status, 400);
  t.match(await del.json(), { error: /currently being processed/ });
  const status = (await (await fetch(`${base}/v1/recognitions/${first.id}`, { headers: auth })).json()) as Record<string, unknown>;
  t.match(status, { status: 'processing', progress: Number });
});
