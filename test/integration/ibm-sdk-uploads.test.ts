// Uploads the way IBM's own Node SDK (ibm-watson) sends them with its defaults: without a
// content type (it then says application/json) and gzip-compressed (its gzip option).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { BasicAuthenticator } from 'ibm-watson/auth/index.js';
import SpeechToTextV1 from 'ibm-watson/speech-to-text/v1.js';
import t, { type Test } from 'tap';

import { apiKey, startApp, waitForJob, type RunningApp } from '../helpers/app.js';
import { jfkMp3 } from '../helpers/models.js';
import { wav } from '../helpers/pcm.js';

const jfk = readFileSync(jfkMp3);

const sdk = (app: RunningApp, options: { gzip?: boolean } = {}) =>
  new SpeechToTextV1({
    authenticator: new BasicAuthenticator({ username: 'apikey', password: apiKey }),
    serviceUrl: app.base,
    ...(options.gzip ? { enableGzipCompression: true } : {}),
  });

/** What the SDK rejects with when the service answers an error. */
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (err: { status: number; body: string }) => ({ status: err.status, body: JSON.parse(err.body) as Record<string, unknown> }),
  );

const nothingLeft = async (t: Test, app: RunningApp, name: string) => {
  t.same(readdirSync(path.join(app.stateDir, 'spool')), [], `${name}: no spool file`);
  const list = (await (await fetch(`${app.base}/v1/recognitions`, { headers: app.auth })).json()) as { recognitions: unknown[] };
  t.same(list.recognitions, [], `${name}: no job`);
};

t.test('createJob({ audio }) without contentType: accepted from the audio bytes, with a warning naming the format', async (t) => {
  const app = await startApp(t);
  const stt = sdk(app);
  const created = await stt.createJob({ audio: jfk, timestamps: true });
  t.equal(created.status, 201);
  t.match(created.result, { status: 'waiting', id: /^[0-9a-f-]{36}$/ });
  const warning = /Content-Type "application\/json" is not an audio format; the data was detected as MP3 \(audio\/mpeg\)/;
  t.match(created.result.warnings, [warning], 'the warning names the detected format');

  const done = await stt.checkJob({ id: created.result.id });
  t.ok(['waiting', 'processing', 'completed'].includes(done.result.status!));
  const finished = await waitForJob(app.base, app.auth, created.result.id);
  t.match(finished, { status: 'completed', results: [{ warnings: [warning] }] }, 'the job transcribes, and its results carry the warning');

  // Another non-audio type and another format: a WAV sent as text/plain.
  const res = await fetch(`${app.base}/v1/recognitions`, { method: 'POST', headers: { ...app.auth, 'Content-Type': 'text/plain' }, body: wav(1) });
  t.equal(res.status, 201);
  t.match(await res.json(), { warnings: [/"text\/plain" is not an audio format; the data was detected as WAV \(audio\/wav\)/] });
});

t.test('a body that is not audio under a non-audio type: 415 in IBM shape, no file, no job', async (t) => {
  const app = await startApp(t);
  const refused = await failure(sdk(app).createJob({ audio: Buffer.from(JSON.stringify({ audio: 'not really', pad: 'x'.repeat(200) })) }));
  t.equal(refused.status, 415);
  t.same(Object.keys(refused.body).sort(), ['code', 'code_description', 'error']);
  t.match(refused.body, {
    code: 415,
    code_description: 'Unsupported Media Type',
    error: /Content-Type "application\/json" is not a supported audio format \(and the data does not start like a supported audio format either\)/,
  });
  // A form is not audio either: the hint says what to do.
  const form = await fetch(`${app.base}/v1/recognitions`, {
    method: 'POST',
    headers: { ...app.auth, 'Content-Type': 'multipart/form-data; boundary=x' },
    body: `--x\r\nContent-Disposition: form-data; name="audio"\r\n\r\n${'a'.repeat(300)}\r\n--x--\r\n`,
  });
  t.equal(form.status, 415);
  t.match(await form.json(), { code: 415, error: /send the audio itself as the request body, not a form/ });
  // An audio type earshot cannot decode is refused as before, whatever the bytes are.
  const webm = await fetch(`${app.base}/v1/recognitions`, { method: 'POST', headers: { ...app.auth, 'Content-Type': 'audio/webm' }, body: jfk });
  t.equal(webm.status, 415);
  await webm.arrayBuffer();
  await nothingLeft(t, app, 'refused');
});

t.test('createJob with gzip: decompressed as it streams; limits count the decompressed bytes; bombs and other encodings refused', async (t) => {
  const app = await startApp(t, { EARSHOT_MAX_UPLOAD_BYTES: String(300_000) });
  const stt = sdk(app, { gzip: true });

  // The SDK compresses the body and sends Content-Encoding: gzip.
  const created = await stt.createJob({ audio: wav(2), contentType: 'audio/wav' });
  t.equal(created.status, 201);
  t.notOk(created.result.warnings, 'no warning: the type was given');
  // Both defaults at once: no content type (application/json) and gzip; the sniff sees the decompressed bytes.
  const sniffed = await stt.createJob({ audio: wav(1) });
  t.match(sniffed.result.warnings, [/detected as WAV/]);
  for (const id of [created.result.id, sniffed.result.id]) {
    t.match(await waitForJob(app.base, app.auth, id), { status: 'completed' }, 'the decoder got the decompressed audio');
  }

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
