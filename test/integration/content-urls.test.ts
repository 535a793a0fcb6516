// Jobs whose audio is at a URL (Azure's contentUrls), through the real service: JobService
// accepts them without audio, the scheduler downloads each from a loopback host under the
// callbacks' allow-list, the out-of-process decoder and whisper (a model rigged to say
// "Hello world") do the rest; a missing file fails its own job only.
import { readdirSync } from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { isFinished } from '../../src/jobs/job.js';
import type { SourcedJobRequest } from '../../src/jobs/job-service.js';
import { startApp, waitForJob } from '../helpers/app.js';
import { startContentHost } from '../helpers/content-host.js';
import { wav } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';
import { scriptedModel } from '../helpers/scripted-models.js';

const sourced = (url: string): SourcedJobRequest => ({
  source: { url },
  model: 'en-US_BroadbandModel',
  options: {},
  output: { timestamps: false, wordConfidence: false },
  resultsTtlMs: 60_000,
});

t.test('audio at URLs: a 404 fails its job, the next is fetched, decoded and transcribed; the service itself is never fetched from', async (t) => {
  const model = await scriptedModel(t, [{ start: 0, end: 1, tokens: [' Hello', ' world'] }]);
  const audio = wav(2);
  const host = await startContentHost(t, (req, res) => {
    if (req.url?.startsWith('/container/audio.wav')) {
      // What blob stores send for a file uploaded without a type: the data is sniffed.
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.end(audio);
    } else {
      res.writeHead(404, { 'Content-Type': 'application/xml' });
      res.end('<Error><Code>BlobNotFound</Code></Error>');
    }
  });
  const service = await startApp(t, { EARSHOT_MODEL: model });
  const { app } = service;
  const [missing, found, itself] = await app.jobs.accept([
    sourced(`${host.base}/container/gone.wav`),
    sourced(`${host.base}/container/audio.wav?sv=2024&sig=abc`),
    sourced(`http://127.0.0.1:${app.http.port}/v1/recognitions`),
  ]);

  t.match(await waitForJob(service.base, service.auth, found!.id), { status: 'completed' }, "IBM's view of the job");
  t.match(app.jobs.get(missing!.id), {
    status: 'failed',
    error: { code: 'ERR_CONTENT_NOT_FOUND', message: /^The audio URL http:\/\/127\.0\.0\.1:\d+\/container\/gone\.wav answered 404 Not Found/ },
  });
  t.match(app.jobs.get(found!.id), {
    status: 'completed',
    audioBytes: audio.length,
    contentType: 'application/octet-stream',
    format: { kind: 'auto', mediaType: 'audio/wav' },
    audioDurationMs: 2000,
    timings: { fetchMs: Number, decodeMs: Number, transcribeMs: Number },
  });
  t.match(app.jobs.result(found!.id), { text: /^ ?Hello world/ });
  await until(() => isFinished(app.jobs.get(itself!.id)), 20_000, 'the job aimed at the service itself');
  t.match(app.jobs.get(itself!.id), { status: 'failed', error: { code: 'ERR_CONTENT_REFUSED', message: /this earshot service itself/ } });
  t.same(host.requests, ['/container/gone.wav', '/container/audio.wav?sv=2024&sig=abc'], 'each fetched once, in the order given');
  t.same(readdirSync(path.join(service.stateDir, 'spool')), [], 'no audio left behind');
});
