// The service's own endpoints: probes and Prometheus metrics, against the real service.
import t from 'tap';

import { startApp, waitForJob } from '../helpers/app.js';
import { l16 } from '../helpers/pcm.js';

const gauge = (text: string, line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);

t.test('/metrics: jobs by status follow submissions and completions; no key needed by default', async (t) => {
  const { base, auth } = await startApp(t);
  const scrape = async () => {
    const res = await fetch(`${base}/metrics`);
    t.equal(res.status, 200);
    t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    return res.text();
  };
  t.equal(gauge(await scrape(), 'earshot_jobs{status="completed"}'), 0);
  const submit = async () => {
    const res = await fetch(`${base}/v1/recognitions`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'audio/l16;rate=16000;endianness=little-endian' },
      body: l16(1),
    });
    return ((await res.json()) as { id: string }).id;
  };
  const ids = [await submit(), await submit()];
  for (const id of ids) await waitForJob(base, auth, id);
  const text = await scrape();
  t.equal(gauge(text, 'earshot_jobs{status="completed"}'), 2);
  t.equal(gauge(text, 'earshot_jobs{status="waiting"}'), 0);
  t.equal(gauge(text, 'earshot_model_loaded'), 1);
  t.equal(gauge(text, 'earshot_delivery_oldest_pending_seconds'), 0);
  await fetch(`${base}/v1/recognitions/${ids[0]}`, { method: 'DELETE', headers: auth });
  t.equal(gauge(await scrape(), 'earshot_jobs{status="completed"}'), 1, 'a deleted job is no longer counted');
});

t.test('EARSHOT_METRICS_AUTH=key: /metrics needs the API key; the probes still do not', async (t) => {
  const { base, auth } = await startApp(t, { EARSHOT_METRICS_AUTH: 'key' });
  const anonymous = await fetch(`${base}/metrics`);
  t.equal(anonymous.status, 401);
  t.match(await anonymous.json(), { code: 'ERR_UNAUTHORIZED' });
  t.equal((await fetch(`${base}/metrics`, { headers: auth })).status, 200);
  t.equal((await fetch(`${base}/healthz`)).status, 200);
  t.equal((await fetch(`${base}/readyz`)).status, 200);
});
