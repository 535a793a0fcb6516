// The priority rule against the real service and the real test model: a 3 s Azure fast
// transcription (interactive) submitted while a long IBM batch job transcribes is answered
// before the batch job ends, about as fast as on an idle service; the batch job, paused
// meanwhile, ends with the transcript it has when it runs alone.
import t from 'tap';

import { apiKey, startApp, waitForJob } from '../helpers/app.js';
import { wav } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';

const fastPath = '/speechtotext/transcriptions:transcribe?api-version=2024-11-15';
// Long enough to still be transcribing when the command arrives (the test model takes about
// 0.7 s per 30 s here), short enough for a test.
const batchSeconds = 360;
const command = wav(3);

/** One Azure fast transcription of the 3 s command; resolves with its latency in ms. */
async function fastTranscription(base: string): Promise<number> {
  const body = new FormData();
  body.append('audio', new Blob([command], { type: 'audio/wav' }), 'command.wav');
  body.append('definition', JSON.stringify({ locales: ['en-US'] }));
  const started = performance.now();
  const res = await fetch(`${base}${fastPath}`, { method: 'POST', headers: { 'Ocp-Apim-Subscription-Key': apiKey }, body });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`fast transcription answered ${res.status}: ${text}`);
  return performance.now() - started;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

t.test('a command overtakes a long batch job, which ends as it would alone', async (t) => {
  const { base, auth } = await startApp(t);
  const submitBatch = async () => {
    const res = await fetch(`${base}/v1/recognitions`, { method: 'POST', headers: { ...auth, 'Content-Type': 'audio/wav' }, body: wav(batchSeconds) });
    t.equal(res.status, 201);
    return ((await res.json()) as { id: string }).id;
  };

  await fastTranscription(base); // the interactive lane's whisper state is made on first use
  const idle: number[] = [];
  for (let i = 0; i < 3; i++) idle.push(await fastTranscription(base));

  const batchStarted = performance.now();
  const batchId = await submitBatch();
  await until(
    async () => {
      const job = (await (await fetch(`${base}/v1/recognitions/${batchId}`, { headers: auth })).json()) as { status: string; progress?: number };
      return job.status === 'processing' && (job.progress ?? 0) >= 5;
    },
    60_000,
    'the batch job to be transcribing',
  );
  const busy: number[] = [];
  for (let i = 0; i < 5; i++) busy.push(await fastTranscription(base));
  const during = (await (await fetch(`${base}/v1/recognitions/${batchId}`, { headers: auth })).json()) as { status: string };
  t.equal(during.status, 'processing', 'the commands were answered before the batch job completed');

  const interrupted = await waitForJob(base, auth, batchId, 120_000);
  const batchMs = performance.now() - batchStarted;
  t.equal(interrupted.status, 'completed', 'the batch job completed (no ERR_MODEL_BUSY)');
  const alone = await waitForJob(base, auth, await submitBatch(), 120_000);
  t.equal(alone.status, 'completed');
  t.ok((interrupted.results as unknown[]).length > 0, 'the batch job has results');
  t.same(interrupted.results, alone.results, 'the batch transcript equals that of the same audio transcribed alone');
  // How much longer a command takes meanwhile is a figure of the benchmark (`npm run bench
  // -- --suite api`, target ≤ 1.5×), not an assertion here: on a shared machine it flaked.
  t.comment(
    JSON.stringify({
      idleMs: idle.map(Math.round),
      busyMs: busy.map(Math.round),
      ratio: Number((median(busy) / median(idle)).toFixed(2)),
      batchMs: Math.round(batchMs),
    }),
  );
});
