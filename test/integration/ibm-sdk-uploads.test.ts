// Uploads the way IBM's own Node SDK (ibm-watson) sends them: gzip-compressed (its gzip option).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { BasicAuthenticator } from 'ibm-watson/auth/index.js';
import SpeechToTextV1 from 'ibm-watson/speech-to-text/v1.js';
import t, { type Test } from 'tap';

import { apiKey, startApp, waitForJob, type RunningApp } from '../helpers/app.js';
import { wav } from '../helpers/pcm.js';

const sdk = (app: RunningApp, options: { gzip?: boolean } = {}) =>
  new SpeechToTextV1({
    authenticator: new BasicAuthenticator({ username: 'apikey', password: apiKey }),
    serviceUrl: app.base,
    ...(options.gzip ? { enableGzipCompression: true } : {}),
  });

const nothingLeft = async (t: Test, app: RunningApp, name: string) => {
  t.same(readdirSync(path.join(app.stateDir, 'spool')), [], `${name}: no spool file`);
  const list = (await (await fetch(`${app.base}/v1/recognitions`, { headers: app.auth })).json()) as { recognitions: unknown[] };
  t.same(list.recognitions, [], `${name}: no job`);
};

t.test('createJob with gzip: decompressed as it streams; limits count the decompressed bytes; bombs and other encodings refused', async (t) => {
  const app = await startApp(t, { EARSHOT_MAX_UPLOAD_BYTES: String(300_000) });
  const stt = sdk(app, { gzip: true });

  // The SDK compresses the body and sends Content-Encoding: gzip.
  const created = await stt.createJob({ audio: wav(2), contentType: 'audio/wav' });
  t.equal(created.status, 201);
  t.notOk(created.result.warnings, 'no warning: the type was given');
  t.match(await waitForJob(app.base, app.auth, created.result.id), { status: 'completed' }, 'the decoder got the decompressed audio');

  const post = (body: Buffer, headers: Record<string, string>) =>
    fetch(`${app.base}/v1/recognitions`, { method: 'POST', headers: { ...app.auth, 'Content-Type': 'audio/wav', ...headers }, body });
  const expectError = async (res: Response, status: number, error: RegExp, name: string) => {
    t.equal(res.status, status, name);
    t.match(await res.json(), { code: status, error }, name);
  };

  // 10 s of silence is a 320 KB WAV: over the limit once decompressed, a few hundred bytes as gzip.
  const big = gzipSync(wav(10).fill(0, 44));
  t.ok(big.length < 1000, `compressed to ${big.length} bytes`);
  await expectError(await post(big, { 'Content-Encoding': 'gzip' }), 413, /exceeds the maximum of 300000 bytes once decompressed/, 'decompressed too large');
  // 150 bytes are enough once decompressed, though fewer arrive: accepted (and its job fails in the decoder).
  const small = gzipSync(Buffer.alloc(150));
  t.ok(small.length < 100);
  const enough = await post(small, { 'Content-Encoding': 'gzip' });
  t.equal(enough.status, 201, 'the minimum counts decompressed bytes');
  await waitForJob(app.base, app.auth, ((await enough.json()) as { id: string }).id);
  await expectError(await post(gzipSync(Buffer.alloc(50)), { 'Content-Encoding': 'gzip' }), 400, /Stream was 50 bytes/, 'too short once decompressed');
  await expectError(await post(wav(1), { 'Content-Encoding': 'gzip' }), 400, /not valid gzip \(Content-Encoding: gzip\): incorrect header check/, 'not gzip');
  await expectError(await post(gzipSync(wav(1)).subarray(0, 2000), { 'Content-Encoding': 'gzip' }), 400, /not valid gzip/, 'truncated gzip');
  for (const encoding of ['br', 'deflate', 'gzip, gzip']) {
    await expectError(await post(wav(1), { 'Content-Encoding': encoding }), 415, new RegExp(`Unsupported Content-Encoding "${encoding}"`), encoding);
  }
  t.equal((await post(wav(1), { 'Content-Encoding': 'identity' })).status, 201, 'identity is no encoding');
});

t.test('a gzip bomb is refused with 413 once it expands more than 1000-fold past 16 MiB', async (t) => {
  const app = await startApp(t);
  const bomb = gzipSync(Buffer.alloc(32 * 1024 * 1024));
  t.comment(`32 MiB of zeros as ${bomb.length} bytes of gzip`);
  const res = await fetch(`${app.base}/v1/recognitions`, {
    method: 'POST',
    headers: { ...app.auth, 'Content-Type': 'audio/wav', 'Content-Encoding': 'gzip' },
    body: bomb,
  });
  t.equal(res.status, 413);
  t.match(await res.json(), { code: 413, code_description: 'Payload Too Large', error: /expands more than 1000-fold .*decompression bomb/ });
  await nothingLeft(t, app, 'bomb');
});

t.test('Azure JSON bodies: gzip is decompressed the same way; other encodings get 415 in Azure shape', async (t) => {
  const app = await startApp(t);
  const post = (body: Buffer, encoding: string) =>
    fetch(`${app.base}/speechtotext/v3.1/webhooks`, {
      method: 'POST',
      headers: { 'Ocp-Apim-Subscription-Key': apiKey, 'Content-Type': 'application/json', 'Content-Encoding': encoding },
      body,
    });
  const hook = Buffer.from(JSON.stringify({ displayName: 'gz', webUrl: 'http://127.0.0.1:9/hook', events: { transcriptionCompletion: true } }));
  const created = await post(gzipSync(hook), 'gzip');
  t.equal(created.status, 201);
  t.match(await created.json(), { displayName: 'gz', webUrl: 'http://127.0.0.1:9/hook' });
  const refused = await post(hook, 'br');
  t.equal(refused.status, 415);
  t.match(await refused.json(), {
    code: 'UnsupportedMediaType',
    message: /Unsupported Content-Encoding "br"/,
    innerError: { code: 'InvalidRequestBodyFormat' },
  });
});
