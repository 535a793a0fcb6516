// IBM's official Node SDK (ibm-watson) with its defaults against the real service: service
// URLs in IBM Cloud's form, the authenticators that work on a LAN, model names.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { BasicAuthenticator, BearerTokenAuthenticator } from 'ibm-watson/auth/index.js';
import SpeechToTextV1 from 'ibm-watson/speech-to-text/v1.js';
import t from 'tap';

import { projectRoot } from '../../src/paths.js';
import { apiKey, startApp } from '../helpers/app.js';
import { jfkMp3 } from '../helpers/models.js';

const jfk = readFileSync(jfkMp3);
const instanceUrl = (base: string) => `${base}/instances/3f0b5c8e-5d7a-4c1e-9a53-0c6f2b8d1e47`;
const basic = () => new BasicAuthenticator({ username: 'apikey', password: apiKey });

async function completed(stt: SpeechToTextV1, id: string) {
  for (;;) {
    const { result } = await stt.checkJob({ id });
    if (result.status !== 'waiting' && result.status !== 'processing') return result;
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('a service URL ending in /instances/{guid}: every /v1 route answers under it, links included', async (t) => {
  const { base } = await startApp(t);
  for (const authenticator of [basic(), new BearerTokenAuthenticator({ bearerToken: apiKey })]) {
    const stt = new SpeechToTextV1({ authenticator, serviceUrl: instanceUrl(base) });
    const { status, result: job } = await stt.createJob({ audio: jfk, contentType: 'audio/mp3' });
    t.equal(status, 201);
    t.equal(job.url, `${instanceUrl(base)}/v1/recognitions/${job.id}`, 'the job URL keeps the prefix');
    t.match(await completed(stt, job.id), { status: 'completed', results: [{ results: Array }] });
    t.match((await stt.checkJobs()).result.recognitions, [{ id: job.id, status: 'completed' }]);
    const { result: model } = await stt.getModel({ modelId: 'en-US_Multimedia' });
    t.equal(model.url, `${instanceUrl(base)}/v1/models/en-US_Multimedia`);
    t.equal((await stt.deleteJob({ id: job.id })).status, 204);
  }
  // The earshot-specific dead-letter routes are /v1 routes too; a path no route has gets IBM's 404.
  const auth = { Authorization: `Bearer ${apiKey}` };
  t.equal((await fetch(`${instanceUrl(base)}/v1/callback_deliveries`, { headers: auth })).status, 200);
  const missing = await fetch(`${instanceUrl(base)}/v1/nothing`, { headers: auth });
  t.equal(missing.status, 404);
  t.match(await missing.json(), { code: 404, code_description: 'Not Found', error: /No such resource/ });
  const wrongKey = new SpeechToTextV1({
    authenticator: new BasicAuthenticator({ username: 'apikey', password: 'wrong-key-0000' }),
    serviceUrl: instanceUrl(base),
  });
  await t.rejects(wrongKey.listModels(), { status: 401, name: 'Unauthorized' });
});

t.test('unknown models: 404 at creation with IBM wording; GET /v1/models/{name} and createJob accept the same names', async (t) => {
  const { base } = await startApp(t);
  const stt = new SpeechToTextV1({ authenticator: basic(), serviceUrl: base });
  for (const name of ['zz-ZZ_BroadbandModel', 'zz-ZZ', 'en-US_Foo', 'en-us_BroadbandModel', 'en']) {
    await t.rejects(stt.createJob({ audio: jfk, contentType: 'audio/mp3', model: name }), { status: 404, message: `Model ${name} not found` }, name);
    await t.rejects(stt.getModel({ modelId: name }), { status: 404, message: `Model ${name} not found` }, name);
  }
  t.same((await stt.checkJobs()).result.recognitions, [], 'no job was created');
  // The test model is English-only: every English name it lists is accepted, the large speech model's too.
  const { result } = await stt.listModels();
  const names = result.models.map((m) => m.name);
  t.ok(names.includes('en-US') && names.includes('en-GB_Telephony') && names.every((n) => n.startsWith('en-')), names.join(' '));
  for (const name of ['en-US', 'en-GB_Telephony']) {
    t.equal((await stt.getModel({ modelId: name })).result.name, name);
    t.equal((await stt.createJob({ audio: jfk, contentType: 'audio/mp3', model: name })).status, 201, name);
  }
  // An IBM model this device cannot serve is not listed, and creation says why.
  await t.rejects(stt.getModel({ modelId: 'de-DE' }), { status: 404, message: 'Model de-DE not found' });
  await t.rejects(stt.createJob({ audio: jfk, contentType: 'audio/mp3', model: 'de-DE' }), { status: 400, message: /English-only whisper model/ });
});

t.test('the README example (examples/ibm-watson-sdk.mjs) transcribes a file, with Basic and with a bearer token', async (t) => {
  const { base } = await startApp(t);
  const run = promisify(execFile);
  for (const args of [[jfkMp3], [jfkMp3, '--bearer']]) {
    const { stdout } = await run(process.execPath, [path.join(projectRoot, 'examples', 'ibm-watson-sdk.mjs'), ...args], {
      env: { ...process.env, EARSHOT_URL: instanceUrl(base), EARSHOT_API_KEY: apiKey },
      timeout: 60_000,
    });
    t.match(JSON.parse(stdout), { status: 'completed', results: [{ results: Array }] }, args.join(' '));
  }
});
