// Decoded audio never lands on the card (docs/pcm-streaming.md): through the real service
// (npm start in a child process, the sandboxed decoder, the addon), the spool holds a job's
// upload and nothing else while the job is decoded and transcribed, and a service killed
// mid-transcription decodes the job again from its upload after the restart.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { apiKey, waitForJob } from '../helpers/app.js';
import { sndfileConvert } from '../helpers/audio-fixtures.js';
import { budget } from '../helpers/emulation.js';
import { wav } from '../helpers/pcm.js';
import { until } from '../helpers/poll.js';
import { spawnService, type ServiceProcess } from '../helpers/service-process.js';

const auth = { Authorization: `Bearer ${apiKey}` };

/** Watches a spool directory every 10 ms: the files besides the job's upload, and the most bytes they took. */
function watchSpool(spool: string, id: string) {
  const seen = { others: new Set<string>(), peakOtherBytes: 0, sawUpload: false };
  const timer = setInterval(() => {
    let bytes = 0;
    for (const name of readdirSync(spool)) {
      if (name === `${id}.upload`) {
        seen.sawUpload = true;
        continue;
      }
      seen.others.add(name);
      try {
        bytes += statSync(path.join(spool, name)).blocks * 512;
      } catch {
        // gone between readdir and stat
      }
    }
    seen.peakOtherBytes = Math.max(seen.peakOtherBytes, bytes);
  }, 10);
  return { seen, stop: () => clearInterval(timer) };
}

async function status(base: string, id: string): Promise<Record<string, any>> {
  return (await (await fetch(`${base}/v1/recognitions/${id}`, { headers: auth })).json()) as Record<string, any>;
}

t.test('the spool holds the upload only; a crash mid-transcription decodes again from the upload', async (t) => {
  const dir = t.testdir();
  const state = path.join(dir, 'state');
  const spool = path.join(state, 'spool');
  // Two minutes of MP3 (44.1 kHz would inflate more; 16 kHz mono float32 is 7.7 MB of PCM).
  writeFileSync(path.join(dir, 'a.wav'), wav(120));
  const mp3 = readFileSync(sndfileConvert(path.join(dir, 'a.wav'), path.join(dir, 'a.mp3')));

  let service: ServiceProcess = await spawnService(state);
  const res = await fetch(`${service.base}/v1/recognitions`, { method: 'POST', headers: { ...auth, 'Content-Type': 'audio/mpeg' }, body: mp3 });
  t.equal(res.status, 201);
  const { id } = (await res.json()) as { id: string };
  let watch = watchSpool(spool, id);
  // Killed once the engine is reading the decoder's stream (progress shows).
  await until(async () => ((await status(service.base, id)).progress ?? 0) > 0, budget(60_000), 'the transcription to make progress');
  service.proc.kill('SIGKILL');
  await service.exited;
  watch.stop();
  t.ok(watch.seen.sawUpload, 'the upload was there');
  t.same([...watch.seen.others], [], 'nothing but the upload in the spool while the job was decoded and transcribed');
  t.same(readdirSync(spool), [`${id}.upload`], 'after the crash: the upload, the one copy of the audio');
  // A version before streaming left decoded PCM behind: it goes at start, never read.
  writeFileSync(path.join(spool, `${id}.pcm`), Buffer.alloc(64 * 1024));

  service = await spawnService(state);
  t.teardown(async () => {
    service.proc.kill('SIGKILL');
    await service.exited;
  });
  watch = watchSpool(spool, id);
  const done = (await waitForJob(service.base, auth, id, budget(120_000))) as Record<string, any>;
  watch.stop();
  t.match(done, { status: 'completed' }, 'the interrupted job completed after the restart');
  t.ok(
    service.output.some((line) => line.includes('requeueing a job interrupted by a restart')),
    'it was requeued',
  );
  const times = done.processing_times as { audio_seconds: number; decode_ms: number };
  t.ok(Math.abs(times.audio_seconds - 120) < 0.1, `decoded again from the upload: ${times.audio_seconds} s`);
  t.ok(times.decode_ms >= 0, 'decode_ms: the check pass');
  // The leftover .pcm may be seen before the start removes it; nothing else ever is.
  t.same(
    [...watch.seen.others].filter((name) => name !== `${id}.pcm`),
    [],
    'nothing but the upload in the spool after the restart',
  );
  // (The files go right after the completion is stored.)
  await until(() => readdirSync(spool).length === 0, 5000, 'the spool to be empty once the job is done');
  t.pass('the spool is empty once the job is done');
});
