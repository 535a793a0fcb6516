// OpenAI's `stream=true` against the real service, read by the official `openai` SDK: a
// `transcript.text.delta` per segment as the engine produces it (window by window), then
// `transcript.text.done`; a client that leaves mid-stream costs nothing.
import { readdirSync } from 'node:fs';
import path from 'node:path';

import OpenAI, { toFile } from 'openai';
import t from 'tap';

import type { DecoderScript } from '../../scripts/lib/scripted-decoder.js';
import { apiKey, startApp } from '../helpers/app.js';
import { wav } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';
import { scriptedModel } from '../helpers/scripted-models.js';

/** Per 30 s window two segments, and one in its second half that only the last window keeps (each token once). */
const script: DecoderScript = [
  { start: 0, end: 2, tokens: [' Alpha', ' bravo', '.'] },
  { start: 3, end: 5, tokens: [' Charlie', ' delta', '!'] },
  { start: 20, end: 22, tokens: [' Echo', ' foxtrot', '?'] },
];

const model = await scriptedModel(t, script);
const running = await startApp(t, { EARSHOT_MODEL: model, EARSHOT_WINDOW_SECONDS: '30' });
const { base, stateDir } = running;
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });
const audio = (seconds: number) => toFile(wav(seconds), 'long.wav', { type: 'audio/wav' });
const spoolFiles = () => readdirSync(path.join(stateDir, 'spool'));
const jobsLeft = async () =>
  ((await (await fetch(`${base}/v1/recognitions`, { headers: { Authorization: `Bearer ${apiKey}` } })).json()) as { recognitions: unknown[] }).recognitions;

// The service's side: which job runs, when it is stored as completed.
const serviceLog: string[] = [];
let runningJob = '';
running.app.jobs.subscribe({
  notify: (job, change) => {
    if (change === 'started') runningJob = job.id;
    if (change === 'completed') serviceLog.push('job completed');
  },
});

type StreamEvent = { type: string; delta?: string; text?: string };

t.test('70 s in three windows: a delta per final segment as it is produced, then done; the same text as without streaming', async (t) => {
  serviceLog.length = 0;
  const stream = await client.audio.transcriptions.create({ file: await audio(70), model: 'whisper-1', stream: true });
  const events: StreamEvent[] = [];
  const progressAtDelta: number[] = [];
  for await (const event of stream) {
    events.push(event);
    serviceLog.push(event.type);
    if (event.type === 'transcript.text.delta') progressAtDelta.push(running.app.jobs.progressOf(runningJob) ?? Number.NaN);
  }
  const deltas = events.filter((e) => e.type === 'transcript.text.delta').map((e) => e.delta!);
  t.same(
    deltas,
    ['Alpha bravo.', ' Charlie delta!', ' Alpha bravo.', ' Charlie delta!', ' Alpha bravo.', ' Charlie delta!', ' Echo foxtrot?'],
    'one per final segment: none the window overlap replaced',
  );
  t.same(
    events.map((e) => e.type),
    [...deltas.map(() => 'transcript.text.delta'), 'transcript.text.done'],
  );
  const done = events.at(-1)!;
  t.equal(deltas.join(''), done.text, 'the deltas add up to the text');
  t.ok(serviceLog.indexOf('transcript.text.delta') < serviceLog.indexOf('job completed'), `the first delta before the job ended: ${serviceLog.join(', ')}`);
  t.ok(progressAtDelta[0]! < 40 / 0.7, `the first delta before the last window ran (${progressAtDelta[0]} %)`);

  const plain = await client.audio.transcriptions.create({ file: await audio(70), model: 'whisper-1', response_format: 'verbose_json' });
  t.equal(plain.text, done.text, 'the text of the same audio without streaming');
  t.same(
    plain.segments!.map((s, i) => (i ? ` ${s.text}` : s.text)),
    deltas,
    'the segments of the same audio without streaming',
  );
  t.same(await jobsLeft(), [], 'both jobs deleted once answered');
});

t.test('a client that leaves mid-stream: the job finishes and is deleted, no feed is left, the next request is answered', async (t) => {
  const stream = await client.audio.transcriptions.create({ file: await audio(120), model: 'whisper-1', stream: true });
  for await (const event of stream) {
    t.equal(event.type, 'transcript.text.delta');
    t.equal((await jobsLeft()).length, 1, 'its job runs');
    stream.controller.abort();
    break;
  }
  await until(async () => (await jobsLeft()).length === 0, 60_000, 'the job to be deleted');
  await until(async () => spoolFiles().length === 0, 10_000, 'its audio to be removed');
  t.equal(running.app.jobs.feedCount, 0, 'no segment feed left');
  const next = await client.audio.transcriptions.create({ file: await audio(6), model: 'whisper-1', stream: true });
  const events: StreamEvent[] = [];
  for await (const event of next) events.push(event);
  t.same(events.at(-1), { type: 'transcript.text.done', text: 'Alpha bravo. Charlie delta!', usage: { type: 'duration', seconds: 6 } });
});

t.test('a job that fails before its first delta is the request error, in OpenAI shape', async (t) => {
  const mislabelled = await toFile(wav(1), 'speech.mp3', { type: 'audio/mpeg' });
  const err = await client.audio.transcriptions.create({ file: mislabelled, model: 'whisper-1', stream: true }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof OpenAI.APIError, 'the SDK throws an APIError');
  t.match(err, { status: 415, message: /not mp3 as its Content-Type says/, type: 'invalid_request_error' });
  t.same(await jobsLeft(), []);
});
