// Load: the service as `npm start` runs it (a child process, whisper tiny's real shapes),
// transcribing all along (a 10-minute job, then the small ones queued behind it), and for
// 60 s autocannon reading job status
// (GET /v1/recognitions/{id}, GET /v1/recognitions) as fast as it can while submitting
// small WAVs at 4 a second, more than the engine drains, so that the queue fills. No
// connection error, no timeout, no answer but 2xx, except the documented 503 (with
// Retry-After) of a full queue. p50/p99 and counts are printed, not asserted: on a shared
// 2-core machine they say how it went, not what must hold.
import autocannon, { type Result } from 'autocannon';
import t from 'tap';

import { apiKey } from '../helpers/app.js';
import { tinyModelPath } from '../helpers/models.js';
import { wav } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';
import { spawnService } from '../helpers/service-process.js';
import { fuzzCount, report } from './seed.js';

const seconds = fuzzCount('EARSHOT_LOAD_SECONDS', 60);
const auth = { Authorization: `Bearer ${apiKey}` };

function line(name: string, r: Result): string {
  const statuses = Object.entries(r.statusCodeStats)
    .map(([status, { count }]) => `${status}×${count}`)
    .join(' ');
  return (
    `${name}: ${r.requests.total} requests (${r.requests.average.toFixed(0)}/s), statuses ${statuses}; ` +
    `latency p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, max ${r.latency.max} ms; errors ${r.errors}, timeouts ${r.timeouts}`
  );
}

t.test(`${seconds} s of status reads and submissions while a transcription runs`, async (t) => {
  const dir = t.testdir();
  const service = await spawnService(dir, { EARSHOT_MODEL: tinyModelPath() });
  t.teardown(async () => {
    service.proc.kill('SIGKILL');
    await service.exited;
  });
  // Ten minutes of audio: whisper tiny on both cores for about as long as the run; the small
  // jobs queued behind it keep the engine busy after it.
  const long = await fetch(`${service.base}/v1/recognitions`, { method: 'POST', headers: { ...auth, 'Content-Type': 'audio/wav' }, body: wav(600) });
  t.equal(long.status, 201, 'the long job is accepted');
  const { id } = (await long.json()) as { id: string };
  const status = async () => ((await (await fetch(`${service.base}/v1/recognitions/${id}`, { headers: auth })).json()) as { status: string }).status;
  await until(async () => (await status()) === 'processing', 30_000, 'the long job to start');

  let missingRetryAfter = 0;
  const reads = autocannon({
    url: service.base,
    title: 'status reads',
    connections: 8,
    duration: seconds,
    headers: auth,
    requests: [{ path: `/v1/recognitions/${id}` }, { path: '/v1/recognitions' }],
  });
  const submissions = autocannon({
    url: service.base,
    title: 'submissions',
    connections: 2,
    duration: seconds,
    overallRate: 4,
    requests: [
      {
        method: 'POST',
        path: '/v1/recognitions',
        headers: { ...auth, 'Content-Type': 'audio/wav' },
        body: wav(1),
        onResponse: (status, _body, _context, headers) => {
          // autocannon keeps the header names as sent.
          const retryAfter = Object.entries(headers).find(([name]) => name.toLowerCase() === 'retry-after')?.[1];
          if (status === 503 && !/^\d+$/.test(String(retryAfter))) missingRetryAfter++;
        },
      },
    ],
  });
  // Once a second: is a transcription running? (The long job, then the small ones queued behind it.)
  const jobsBy = async (state: string) =>
    Number(new RegExp(`earshot_jobs\\{status="${state}"\\} (\\d+)`).exec(await (await fetch(`${service.base}/metrics`)).text())?.[1]);
  const busy: number[] = [];
  const sampler = setInterval(() => void jobsBy('processing').then((n) => busy.push(n)), 1000);
  const [r, s] = await Promise.all([reads, submissions]);
  clearInterval(sampler);
  const after = { status: await status() };
  const waiting = await jobsBy('waiting');
  report(t, `load: ${line('status reads', r)}`);
  report(
    t,
    `load: ${line('submissions', s)}; a transcription ran at ${busy.filter((n) => n > 0).length} of ${busy.length} samples; the long job is ${after.status} at the end, ${waiting} jobs waiting`,
  );

  t.equal(r.errors + r.timeouts, 0, 'status reads: no connection error, no timeout');
  t.equal(r.non2xx, 0, 'status reads: every answer 2xx');
  t.equal(s.errors + s.timeouts, 0, 'submissions: no connection error, no timeout');
  t.same(
    Object.keys(s.statusCodeStats).filter((status) => status !== '201' && status !== '503'),
    [],
    'submissions: 201, or 503 when the queue is full',
  );
  t.equal(missingRetryAfter, 0, 'every 503 says when to retry');
  t.ok(r.requests.total > 0 && (s.statusCodeStats['201']?.count ?? 0) > 0, 'both kinds of request went through');
  // (A sample may fall between two jobs: 90 % is the bar, not every one.)
  t.ok(busy.length > 0 && busy.filter((n) => n === 1).length >= 0.9 * busy.length, 'a transcription ran all along');
});
