// The IBM Watson asynchronous interface, driven over HTTP against the real service.
import { readFileSync } from 'node:fs';
import t from 'tap';

import { jfkMp3 } from '../helpers/models.js';
import { startApp, waitForJob } from '../helpers/app.js';

const jfk = readFileSync(jfkMp3);

t.test('submit audio, poll until completed, read IBM-shaped results, delete', async (t) => {
  const { base, auth } = await startApp(t);
  const res = await fetch(`${base}/v1/recognitions?timestamps=true&word_confidence=true`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/mp3' },
    body: jfk,
  });
  t.equal(res.status, 201);
  const created = (await res.json()) as { id: string; url: string; status: string; created: string };
  t.match(created, { status: 'waiting', id: /^[0-9a-f-]{36}$/ });
  t.equal(created.url, `${base}/v1/recognitions/${created.id}`);
  t.equal(res.headers.get('location'), created.url);
  t.ok(!Number.isNaN(Date.parse(created.created)));

  const done = await waitForJob(base, auth, created.id);
  t.equal(done.status, 'completed');
  const results = done.results as Array<{ result_index: number; results: Array<{ final: boolean; alternatives: any[] }> }>;
  t.equal(results.length, 1);
  t.equal(results[0]!.result_index, 0);
  for (const r of results[0]!.results) {
    t.equal(r.final, true);
    const alt = r.alternatives[0];
    t.match(alt, { transcript: /\S $/, confidence: Number });
    for (const [word, start, end] of alt.timestamps) t.ok(typeof word === 'string' && start <= end && end <= 11);
    t.equal(alt.word_confidence.length, alt.timestamps.length);
  }

  const list = (await (await fetch(`${base}/v1/recognitions`, { headers: auth })).json()) as { recognitions: any[] };
  t.match(list.recognitions[0], { id: created.id, status: 'completed' });

  const del = await fetch(`${base}/v1/recognitions/${created.id}`, { method: 'DELETE', headers: auth });
  t.equal(del.status, 204);
  const gone = await fetch(`${base}/v1/recognitions/${created.id}`, { headers: auth });
  t.equal(gone.status, 404);
  t.same(await gone.json(), { code: 404, code_description: 'Not Found', error: `The job ID '${created.id}' was not found` });
});

t.test('credentials: Basic apikey, Bearer and Ocp-Apim-Subscription-Key; 401 otherwise', async (t) => {
  const { base } = await startApp(t);
  const ok: Record<string, string>[] = [
    { Authorization: 'Bearer test-key-0123456789' },
    { 'Ocp-Apim-Subscription-Key': 'test-key-0123456789' },
    { Authorization: `Basic ${Buffer.from('apikey:test-key-0123456789').toString('base64')}` },
  ];
  for (const headers of ok) t.equal((await fetch(`${base}/v1/recognitions`, { headers })).status, 200);
  const bad: Record<string, string>[] = [
    {},
    { Authorization: 'Bearer nope' },
    { Authorization: `Basic ${Buffer.from('user:test-key-0123456789').toString('base64')}` },
  ];
  for (const headers of bad) {
    const res = await fetch(`${base}/v1/recognitions`, { headers });
    t.equal(res.status, 401);
    t.match(await res.json(), { code: 401, code_description: 'Unauthorized', error: /Unauthorized/ });
  }
  t.equal((await fetch(`${base}/healthz`)).status, 200, 'probes need no key');
  t.equal((await fetch(`${base}/readyz`)).status, 200);
});
