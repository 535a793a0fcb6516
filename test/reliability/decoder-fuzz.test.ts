// Decoder fuzzing: valid WAV, FLAC, MP3, Ogg Vorbis, Ogg Opus, AIFF and AU files (made at
// test time with sox and sndfile-convert), mutated with bit flips, overwritten bytes,
// truncations, cut and repeated ranges and lying headers (audio-mutations.ts), decoded by the
// real decoder as the service runs it (decodeAudio, the service's limits, the test sandbox
// setting), two at a time. Each must end within its time limit with audio or one of the
// clear audio error codes; the caller never crashes. Some of them then go through the real
// service as uploads: each job completes or fails with a clear code, and the service stays up.
// Seeded: EARSHOT_FUZZ_SEED replays a run, EARSHOT_FUZZ_INPUTS sets its size.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';
import t from 'tap';

import { loadConfig } from '../../src/config.js';
import { decodeAudio } from '../../src/engine/audio-decoder.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { AppError } from '../../src/errors.js';
import { apiKey, startApp, waitForJob } from '../helpers/app.js';
import { makeScratchDir, makeToneWav, sndfileConvert, soxConvert, testDecoderSandbox } from '../helpers/audio-fixtures.js';
import { type Container, containers, type MutatedInput, mutate, mutatedInput } from './audio-mutations.js';
import { fuzzCount, fuzzSeed, report } from './seed.js';

const inputs = fuzzCount('EARSHOT_FUZZ_INPUTS', 2000);
const uploads = Math.min(inputs, 40);
const seed = fuzzSeed(t, 'decoder fuzz');

/** The codes that say what is wrong with the audio; ERR_DECODER (a crash, a sandbox kill) is not one. */
const clearCodes = new Set(['ERR_AUDIO_UNSUPPORTED', 'ERR_AUDIO_CORRUPT', 'ERR_AUDIO_EMPTY', 'ERR_AUDIO_TOO_LONG', 'ERR_AUDIO_LIMIT']);
/** Each decode's wall-clock limit: the decoder is killed after it (ERR_AUDIO_LIMIT), and that counts as a hang here. */
const timeLimitMs = 20_000;

const { dir, cleanup } = makeScratchDir('earshot-decoder-fuzz-');
t.teardown(cleanup);
const at = (name: string) => join(dir, name);

// Short valid files of every container (half a second: decoding is the cost of each input).
const tone = (name: string, rate: number, channels: number) => makeToneWav(at(name), { rate, channels, seconds: 0.5 });
const files: Record<Container, string> = {
  wav: tone('tone.wav', 16000, 1),
  flac: soxConvert(tone('tone-22k.wav', 22050, 2), at('tone.flac')),
  mp3: sndfileConvert(tone('tone-44k.wav', 44100, 2), at('tone.mp3')),
  vorbis: sndfileConvert(tone('tone-48k.wav', 48000, 1), at('tone.ogg'), '-vorbis'),
  opus: sndfileConvert(at('tone-48k.wav'), at('tone.opus'), '-opus'),
  aiff: soxConvert(tone('tone-11k.wav', 11025, 1), at('tone.aiff')),
  au: soxConvert(tone('tone-8k.wav', 8000, 1), at('tone.au'), ['-e', 'mu-law']),
};
const valid = Object.fromEntries(containers.map((c) => [c, readFileSync(files[c])])) as Record<Container, Buffer>;
const contentTypes: Record<Container, string> = {
  wav: 'audio/wav',
  flac: 'audio/flac',
  mp3: 'audio/mpeg',
  vorbis: 'audio/ogg;codecs=vorbis',
  opus: 'audio/ogg;codecs=opus',
  aiff: 'audio/aiff',
  au: 'audio/basic',
};
/** The declared type of an input: its own, none (detected from the data), or another container's. */
function declaredType(input: MutatedInput): string {
  if (input.declared === 'auto') return 'application/octet-stream';
  if (input.declared === 'wrong') return contentTypes[containers[(containers.indexOf(input.container) + 3) % containers.length]!];
  return contentTypes[input.container];
}

const maxSeconds = loadConfig({ file: null, env: {} }).maxAudioSeconds;

interface Outcome {
  input: MutatedInput;
  described: string[];
  bytes: Buffer;
  result: string;
  ms: number;
}

function describe(o: Outcome): string {
  return `${o.input.container} declared ${declaredType(o.input)}, ${o.bytes.length} bytes after: ${o.described.join('; ')} → ${o.result} in ${o.ms.toFixed(0)} ms`;
}

t.test(`${inputs} mutated inputs through the decoder, two at a time`, async (t) => {
  const generated = fc.sample(mutatedInput, { seed, numRuns: inputs });
  const outcomes: Outcome[] = [];
  const problems: Outcome[] = [];
  const started = Date.now();
  let next = 0;
  const worker = async (n: number) => {
    for (let i = next++; i < generated.length; i = next++) {
      const input = generated[i]!;
      const { bytes, described } = mutate(valid[input.container], input);
      const inputPath = at(`in-${n}`);
      const outputPath = at(`out-${n}.f32`);
      writeFileSync(inputPath, bytes);
      const t0 = performance.now();
      let result: string;
      let clear = true;
      try {
        const decoded = await decodeAudio({
          inputPath,
          outputPath,
          format: parseAudioMediaType(declaredType(input)),
          limits: { maxSeconds, timeoutMs: timeLimitMs },
          sandbox: testDecoderSandbox,
        });
        result = `decoded ${decoded.samples} samples`;
        rmSync(outputPath, { force: true });
      } catch (error) {
        const code = error instanceof AppError ? error.code : 'not an AppError';
        result = `${code}: ${(error as Error).message.slice(0, 300)}`;
        clear = clearCodes.has(code) && !/took longer than/.test((error as Error).message);
      }
      const outcome = { input, described, bytes, result, ms: performance.now() - t0 };
      outcomes.push(outcome);
      if (!clear) problems.push(outcome);
    }
  };
  await Promise.all([worker(0), worker(1)]);
  const seconds = (Date.now() - started) / 1000;

  const tally: Record<string, number> = {};
  for (const o of outcomes) {
    const key = `${o.input.container} ${o.result.startsWith('decoded') ? 'decoded' : o.result.split(':')[0]}`;
    tally[key] = (tally[key] ?? 0) + 1;
  }
  const slowest = outcomes.reduce((a, b) => (b.ms > a.ms ? b : a));
  report(
    t,
    `decoder fuzz: ${outcomes.length} inputs in ${seconds.toFixed(1)} s; ${JSON.stringify(tally)}; slowest ${slowest.ms.toFixed(0)} ms (${describe(slowest)})`,
  );
  if (problems.length) {
    // Keep what failed, for replaying by hand: earshot-decode --input FILE ...
    const keep = join(tmpdir(), `earshot-decoder-fuzz-${seed}`);
    mkdirSync(keep, { recursive: true });
    for (const [i, p] of problems.entries()) writeFileSync(join(keep, `${i}-${p.input.container}`), p.bytes);
    t.fail(`${problems.length} inputs ended without a clear code (kept in ${keep}); the first: ${describe(problems[0]!)}`);
  }
  t.equal(outcomes.length, inputs, 'every input ended');
  t.ok(
    outcomes.every((o) => o.ms < timeLimitMs),
    `each within ${timeLimitMs} ms`,
  );
});

t.test(`${uploads} of them through the real service`, async (t) => {
  const { base } = await startApp(t, { EARSHOT_LOG_LEVEL: 'error' });
  const auth = { Authorization: `Bearer ${apiKey}` };
  // Another draw from the same seed: the uploads are mutated inputs of their own.
  const generated = fc.sample(mutatedInput, { seed: seed + 1, numRuns: uploads });
  const jobs: Array<{ id: string; what: string }> = [];
  const refused: Record<string, number> = {};
  for (const input of generated) {
    const { bytes, described } = mutate(valid[input.container], input);
    const res = await fetch(`${base}/v1/recognitions`, { method: 'POST', headers: { ...auth, 'Content-Type': declaredType(input) }, body: bytes });
    const body = (await res.json()) as { id?: string; code?: number; error?: string };
    const what = `${input.container} declared ${declaredType(input)}, ${bytes.length} bytes after: ${described.join('; ')}`;
    if (res.status === 201) jobs.push({ id: body.id!, what });
    else {
      // Refused at the door (under 100 bytes, a type the data contradicts): a 4xx is the clear answer.
      t.ok(res.status >= 400 && res.status < 500, `refused with ${res.status} ${body.error}: ${what}`);
      refused[res.status] = (refused[res.status] ?? 0) + 1;
    }
  }
  const ends: Record<string, number> = {};
  for (const job of jobs) {
    const done = (await waitForJob(base, auth, job.id, 120_000)) as { status: string; error_code?: string };
    const end = done.status === 'completed' ? 'completed' : `failed ${done.error_code}`;
    ends[end] = (ends[end] ?? 0) + 1;
    if (done.status === 'failed' && !clearCodes.has(done.error_code ?? '')) t.fail(`job ${job.id} failed with ${done.error_code}: ${job.what}`);
  }
  report(t, `decoder fuzz through the service: ${generated.length} uploads; refused ${JSON.stringify(refused)}; jobs ${JSON.stringify(ends)}`);
  const health = await fetch(`${base}/healthz`);
  t.equal(health.status, 200, 'the service still answers /healthz');
});
