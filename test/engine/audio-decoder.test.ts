// The out-of-process decoder (native/build/bin/earshot-decode, built by CMake) through its
// TypeScript wrapper, on fixtures made at test time from synthetic tones and jfk.mp3.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';

import type { AppError } from '../../src/errors.js';
import { loadConfig } from '../../src/config.js';
import { decodeAudio, decoderArguments, resolveDecoderPath, type DecodeLimits, type DecodedAudio } from '../../src/engine/audio-decoder.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { nativeTool } from '../../src/paths.js';
import {
  clearFlacLength,
  copyInto,
  correlation,
  corruptMiddle,
  JFK_MP3,
  makeScratchDir,
  makeToneG711,
  makeToneL16,
  makeToneWav,
  makeWav,
  mpegFrameOffsets,
  middle,
  peak,
  randomBytesFile,
  readPcm,
  repeatFile,
  rms,
  sndfileConvert,
  soxConvert,
  stripXingFrame,
  testDecoderSandbox,
  TONE_HZ,
  truncateFile,
  zeroCrossingHz,
} from '../helpers/audio-fixtures.js';
import { emulated } from '../helpers/emulation.js';

const decoder = resolveDecoderPath();
// Under qemu-user (`emulated`: scripts/arm64-test sets EARSHOT_EMULATION) no seccomp
// filter can be installed and RLIMIT_AS is accepted but not applied. scripts/arm64-test
// also opts in to unsandboxed decoding (EARSHOT_DECODER_SANDBOX=optional,
// testDecoderSandbox): the decoder says it is unsandboxed and decodes anyway. There, the
// tests pin that behaviour instead of the sandbox's.
// Runs a command as a kernel without seccomp filters would (native/test-tools).
const withoutSeccomp = nativeTool('without-seccomp');
if (!existsSync(decoder)) {
  throw new Error(`${decoder} is missing: build it with cmake --build native/build --target earshot-decode`);
}

const { dir, cleanup } = makeScratchDir();
t.teardown(cleanup);
const at = (name: string): string => join(dir, name);

// ---- fixtures ------------------------------------------------------------------------------
const wav16k = makeToneWav(at('tone-16k-mono.wav'), { rate: 16000, channels: 1, seconds: 2 });
const wav44k = makeToneWav(at('tone-44k-stereo-left.wav'), { rate: 44100, channels: 2, seconds: 3, leftOnly: true });
const wav44kBoth = makeToneWav(at('tone-44k-stereo.wav'), { rate: 44100, channels: 2, seconds: 3 });
const wav48k = makeToneWav(at('tone-48k-mono.wav'), { rate: 48000, channels: 1, seconds: 2 });
const flac = soxConvert(makeToneWav(at('tone-22k.wav'), { rate: 22050, channels: 1, seconds: 2 }), at('tone.flac'));
const vorbis = sndfileConvert(wav48k, at('tone.ogg'), '-vorbis');
const opus = sndfileConvert(wav48k, at('tone.opus'), '-opus');
const mp3 = sndfileConvert(wav44kBoth, at('tone.mp3'));
const aiff = soxConvert(wav16k, at('tone.aiff'));
const au = soxConvert(makeToneWav(at('tone-8k.wav'), { rate: 8000, channels: 1, seconds: 2 }), at('tone.au'), ['-e', 'mu-law']);
const l16le = makeToneL16(at('tone.l16le'), { rate: 8000, channels: 2, seconds: 2 }, 'little');
const l16be = makeToneL16(at('tone.l16be'), { rate: 8000, channels: 2, seconds: 2 }, 'big');
const mulaw = makeToneG711(at('tone.ulaw'), { rate: 8000, channels: 1, seconds: 2 }, 'mu-law');
const alaw = makeToneG711(at('tone.alaw'), { rate: 8000, channels: 1, seconds: 2 }, 'a-law');
const jfk = copyInto(dir, JFK_MP3, 'jfk.mp3');
const jfkWav = sndfileConvert(jfk, at('jfk-16k.wav'), '-pcm16');
const jfk44kStereo = soxConvert(jfkWav, at('jfk-44k-stereo.flac'), ['-r', '44100', '-c', '2']);
const mp3NoXing = stripXingFrame(mp3, at('tone-noxing.mp3'));
// 1000 × 3 s of frames: 50 minutes of MP3 that takes a few CPU seconds to decode.
const longMp3 = repeatFile(mp3NoXing, at('long.mp3'), 1000);

// Tone amplitudes: sox makes half-scale tones; sndfile-convert normalizes what it encodes
// to Vorbis, Opus and MP3 to full scale.
const HALF = 0.5;
const FULL = 1;

const generous: DecodeLimits = { maxSeconds: 600 };
let outputs = 0;

/** Decodes with a fresh output path; the Content-Type picks the format. */
function decode(input: string, contentType: string | undefined, limits: DecodeLimits = generous, signal?: AbortSignal) {
  const outputPath = at(`out-${++outputs}.f32`);
  const promise = decodeAudio({
    inputPath: input,
    outputPath,
    format: parseAudioMediaType(contentType),
    limits,
    signal,
    sandbox: testDecoderSandbox,
  });
  return { outputPath, promise };
}

async function decodeOk(input: string, contentType: string | undefined, limits?: DecodeLimits): Promise<[DecodedAudio, Float32Array]> {
  const { promise } = decode(input, contentType, limits);
  const result = await promise;
  return [result, readPcm(result.outputPath!)];
}

/** Expects the decode to fail with `code` and to leave no output file behind. */
async function decodeFails(t: Test, input: string, contentType: string | undefined, code: string, message?: RegExp, limits?: DecodeLimits) {
  const { outputPath, promise } = decode(input, contentType, limits);
  const error = (await t.rejects(promise, { code, name: 'AppError' }, `${input} → ${code}`)) as AppError;
  if (message !== undefined) t.match(error.message, message);
  t.notOk(existsSync(outputPath), 'no output is left behind');
  return error;
}

/** Bit-identical signals (tap's deep comparison is slow on 32000-element arrays). */
function samePcm(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * A 440 Hz sine of `seconds` and peak `amplitude`, at 16 kHz: length (± `tolerance`
 * samples), pitch and level survive decoding.
 */
function checkTone(t: Test, result: DecodedAudio, pcm: Float32Array, seconds: number, amplitude: number, tolerance = 1) {
  t.equal(result.sampleRate, 16000);
  t.equal(pcm.length, result.samples, 'the output holds what the decoder reported');
  t.ok(Math.abs(result.samples - seconds * 16000) <= tolerance, `${result.samples} samples ≈ ${seconds} s × 16000 (±${tolerance})`);
  t.equal(result.durationMs, Math.round((result.samples * 1000) / 16000));
  const hz = zeroCrossingHz(middle(pcm));
  t.ok(Math.abs(hz - TONE_HZ) < TONE_HZ * 0.02, `still a ${TONE_HZ} Hz tone (${hz.toFixed(1)} Hz)`);
  const level = rms(middle(pcm));
  const expected = amplitude / Math.SQRT2;
  t.ok(Math.abs(level - expected) < expected * 0.1, `RMS ${level.toFixed(3)} ≈ ${expected.toFixed(3)}`);
  t.ok(peak(pcm) <= 1, 'within [-1, 1]');
  t.equal(result.sandboxed, !emulated, emulated ? 'reports that qemu-user ran it without seccomp' : 'ran under the seccomp filter');
}

// ---- every supported format ------------------------------------------------------------------

t.test('WAV 16 kHz mono passes through sample-exact', async (t) => {
  const [result, pcm] = await decodeOk(wav16k, 'audio/wav');
  t.match(result, { container: 'wav', inputRate: 16000, inputChannels: 1, inputFrames: 32000 });
  checkTone(t, result, pcm, 2, HALF, 0);
});

t.test('WAV 44.1 kHz stereo is downmixed (averaged) and resampled', async (t) => {
  const [result, pcm] = await decodeOk(wav44k, 'audio/x-wav');
  t.match(result, { container: 'wav', codec: 'pcm_s16', inputRate: 44100, inputChannels: 2, inputFrames: 132300 });
  // Only the left channel carries the tone: the average is half as loud.
  checkTone(t, result, pcm, 3, HALF / 2);
});

t.test('FLAC (22.05 kHz)', async (t) => {
  const [result, pcm] = await decodeOk(flac, 'audio/flac');
  t.match(result, { container: 'flac', codec: 'flac', inputRate: 22050 });
  checkTone(t, result, pcm, 2, HALF);
});

t.test('Ogg Vorbis and Ogg Opus (48 kHz), named or detected', async (t) => {
  const [v, vorbisPcm] = await decodeOk(vorbis, 'audio/ogg;codecs=vorbis');
  t.match(v, { container: 'ogg', codec: 'vorbis', inputRate: 48000 });
  checkTone(t, v, vorbisPcm, 2, FULL, 16);
  const [o, opusPcm] = await decodeOk(opus, 'audio/ogg; codecs=opus');
  t.match(o, { container: 'ogg', codec: 'opus' });
  checkTone(t, o, opusPcm, 2, FULL, 16);
  const [detected] = await decodeOk(opus, 'application/octet-stream');
  t.match(detected, { container: 'ogg', codec: 'opus', samples: o.samples });
});

t.test('MP3 (44.1 kHz stereo, LAME) and MP3 without a Xing header', async (t) => {
  const [result, pcm] = await decodeOk(mp3, 'audio/mpeg');
  t.match(result, { container: 'mp3', codec: 'mp3', inputRate: 44100, inputChannels: 2 });
  checkTone(t, result, pcm, 3, FULL, 16);
  // Nothing states this stream's length; all of it must still be decoded (libsndfile alone
  // would stop at its estimate after about half a second).
  const [plain, plainPcm] = await decodeOk(mp3NoXing, 'audio/mp3');
  t.ok(plain.samples > 47000, `${plain.samples} samples: the whole stream`);
  t.ok(Math.abs(zeroCrossingHz(middle(plainPcm)) - TONE_HZ) < 9);
});

t.test('real speech: jfk.mp3 decodes to its 11 s, and resampling preserves it', async (t) => {
  const [result, pcm] = await decodeOk(jfk, 'audio/mp3');
  t.match(result, { container: 'mp3', inputRate: 16000, inputChannels: 1, samples: 176000, durationMs: 11000 });
  t.ok(rms(pcm) > 0.02 && peak(pcm) <= 1, 'speech-level signal');
  // The same speech as 44.1 kHz stereo FLAC comes back as (nearly) the same 16 kHz signal.
  const [flacResult, flacPcm] = await decodeOk(jfk44kStereo, undefined);
  t.match(flacResult, { container: 'flac', inputRate: 44100, inputChannels: 2 });
  t.ok(Math.abs(flacResult.samples - 176000) <= 1);
  const r = correlation(pcm, flacPcm);
  t.ok(r > 0.99, `correlation with the direct decode: ${r.toFixed(4)}`);
});

t.test('raw audio/l16, little- and big-endian, declared or detected', async (t) => {
  for (const [file, endianness] of [
    [l16le, 'little-endian'],
    [l16be, 'big-endian'],
  ] as const) {
    const [declared, pcm] = await decodeOk(file, `audio/l16;rate=8000;channels=2;endianness=${endianness}`);
    t.match(declared, { container: 'raw', inputRate: 8000, inputChannels: 2, codec: endianness === 'big-endian' ? 'pcm_s16be' : 'pcm_s16le' });
    checkTone(t, declared, pcm, 2, HALF, 1);
    const [detected, detectedPcm] = await decodeOk(file, 'audio/l16;rate=8000;channels=2');
    t.equal(detected.codec, declared.codec, `${endianness} detected`);
    t.ok(samePcm(detectedPcm, pcm), 'identical output');
  }
  // The wrong byte order turns the tone into noise: the check above is not vacuous.
  const [, wrong] = await decodeOk(l16be, 'audio/l16;rate=8000;channels=2;endianness=little-endian');
  t.ok(Math.abs(zeroCrossingHz(middle(wrong)) - TONE_HZ) > 100, 'byte-swapped data is not the tone');
});

t.test('mu-law: raw audio/basic, audio/mulaw;rate=, and an AU file sent as audio/basic', async (t) => {
  const [basic, basicPcm] = await decodeOk(mulaw, 'audio/basic');
  t.match(basic, { container: 'raw', codec: 'mulaw', inputRate: 8000 });
  checkTone(t, basic, basicPcm, 2, HALF);
  const [named, namedPcm] = await decodeOk(mulaw, 'audio/mulaw;rate=8000');
  t.ok(samePcm(namedPcm, basicPcm), 'identical output');
  t.equal(named.codec, 'mulaw');
  const [auResult, auPcm] = await decodeOk(au, 'audio/basic');
  t.match(auResult, { container: 'au', codec: 'mulaw', inputRate: 8000 });
  checkTone(t, auResult, auPcm, 2, HALF);
});

t.test('A-law and AIFF', async (t) => {
  const [a, aPcm] = await decodeOk(alaw, 'audio/alaw;rate=8000');
  t.match(a, { container: 'raw', codec: 'alaw' });
  checkTone(t, a, aPcm, 2, HALF);
  const [f, fPcm] = await decodeOk(aiff, 'application/octet-stream');
  t.match(f, { container: 'aiff' });
  checkTone(t, f, fPcm, 2, HALF, 0);
});

// ---- what must fail ---------------------------------------------------------------------------

t.test('empty: a zero-byte upload and a WAV without samples', async (t) => {
  const empty = at('empty.bin');
  writeFileSync(empty, '');
  await decodeFails(t, empty, 'audio/wav', 'ERR_AUDIO_EMPTY', /empty/);
  await decodeFails(t, empty, 'audio/l16;rate=16000', 'ERR_AUDIO_EMPTY');
  await decodeFails(t, makeWav(at('no-frames.wav'), { rate: 16000, channels: 1, frames: 0 }), 'audio/wav', 'ERR_AUDIO_EMPTY', /no samples/);
});

t.test('not audio: random bytes and text are unsupported', async (t) => {
  await decodeFails(t, randomBytesFile(at('random.bin'), 4096), undefined, 'ERR_AUDIO_UNSUPPORTED', /not in a recognised audio format/);
  const text = at('notes.txt');
  writeFileSync(text, 'This is a transcript, not the audio it came from.\n'.repeat(40));
  await decodeFails(t, text, 'audio/wav', 'ERR_AUDIO_UNSUPPORTED', /the data is text/);
});

t.test('data that is not what the Content-Type says is unsupported, with both named', async (t) => {
  await decodeFails(t, wav16k, 'audio/flac', 'ERR_AUDIO_UNSUPPORTED', /the data is wav, not flac/);
  await decodeFails(t, opus, 'audio/ogg;codecs=vorbis', 'ERR_AUDIO_UNSUPPORTED', /opus, not vorbis/);
  await decodeFails(t, wav16k, 'audio/l16;rate=16000', 'ERR_AUDIO_UNSUPPORTED', /wav file, not headerless/);
});

function truncateInsideFrame(input: string, output: string): string {
  const bytes = readFileSync(input);
  const frames = mpegFrameOffsets(bytes);
  writeFileSync(output, bytes.subarray(0, frames[Math.floor(frames.length * 0.6)]! + 11));
  return output;
}

t.test('truncated files fail as corrupt instead of decoding part', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    [wav16k, 'audio/wav', /wav header declares more audio data than the file holds/],
    [flac, 'audio/flac', /cannot be decoded after/],
    [vorbis, 'audio/ogg', /does not end with a complete end-of-stream page/],
    [opus, 'audio/ogg', /does not end with a complete end-of-stream page/],
    [jfk, 'audio/mpeg', /cut off in the middle of a frame/],
    [mp3NoXing, 'audio/mpeg', /cut off in the middle of a frame/],
    [au, 'audio/basic', /AU header declares more audio data/],
    [aiff, 'audio/aiff', /aiff header declares more audio data/],
  ];
  for (const [file, type, message] of cases) {
    // MP3: cut inside a frame, whatever the encoder's frame sizes this time (a cut that
    // happens to fall on a frame boundary of a file without a Xing header is undetectable).
    const truncated = type === 'audio/mpeg' ? truncateInsideFrame(file, `${file}.truncated`) : truncateFile(file, `${file}.truncated`);
    await decodeFails(t, truncated, type, 'ERR_AUDIO_CORRUPT', message);
  }
  // Raw audio cut inside a frame (an odd byte count of stereo 16-bit).
  await decodeFails(t, truncateFile(l16le, at('cut.l16'), 0.5001), 'audio/l16;rate=8000;channels=2', 'ERR_AUDIO_CORRUPT', /whole number of 4-byte frames/);
});

t.test('an MP3 cut exactly at a frame boundary fails against its Xing length', async (t) => {
  const bytes = readFileSync(jfk);
  const frames = mpegFrameOffsets(bytes);
  t.equal(frames.length, 309, 'the Info frame and 308 audio frames');
  // Keep the Info frame and 185 audio frames, cutting exactly between two frames.
  const cut = at('jfk-boundary.mp3');
  writeFileSync(cut, bytes.subarray(0, frames[186]));
  await decodeFails(t, cut, 'audio/mpeg', 'ERR_AUDIO_CORRUPT', /has 185 of the 308 frames its Xing\/Info\/VBRI header declares: it is truncated/);
});

t.test('a decode error mid-stream is corrupt', async (t) => {
  await decodeFails(t, corruptMiddle(flac, at('corrupt.flac')), 'audio/flac', 'ERR_AUDIO_CORRUPT', /cannot be decoded after \d/);
});

t.test('lying WAV headers: absurd sample rates and channel counts', async (t) => {
  const lies: Array<[Parameters<typeof makeWav>[1], string, RegExp]> = [
    [{ rate: 0, channels: 1, frames: 100 }, 'ERR_AUDIO_CORRUPT', /malformed/],
    [{ rate: 4_000_000_000, channels: 1, frames: 100 }, 'ERR_AUDIO_CORRUPT', /malformed/],
    [{ rate: 10, channels: 1, frames: 100 }, 'ERR_AUDIO_CORRUPT', /implausible sample rate \(10 Hz/],
    [{ rate: 16000, channels: 0, frames: 100 }, 'ERR_AUDIO_CORRUPT', /Channel count is zero/],
    [{ rate: 16000, channels: 5000, frames: 10 }, 'ERR_AUDIO_CORRUPT', /Too many channels/],
    [{ rate: 16000, channels: 20, frames: 100 }, 'ERR_AUDIO_UNSUPPORTED', /20 channels; at most 16/],
    [{ rate: 16000, channels: 1, frames: 100, declaredDataBytes: 1_000_000 }, 'ERR_AUDIO_CORRUPT', /declares more audio data/],
  ];
  let i = 0;
  for (const [header, code, message] of lies) {
    await decodeFails(t, makeWav(at(`lie-${i++}.wav`), header), 'audio/wav', code, message);
  }
  // A streaming writer's "unknown length" (0xFFFFFFFF) is not a lie.
  const [streamed] = await decodeOk(makeWav(at('streamed.wav'), { rate: 16000, channels: 1, frames: 8000, declaredDataBytes: 0xffffffff }), 'audio/wav');
  t.equal(streamed.samples, 8000);
});

t.test('too long: rejected from the header, or stopped while decoding when no length is stated', async (t) => {
  await decodeFails(t, wav16k, 'audio/wav', 'ERR_AUDIO_TOO_LONG', /is 2\.000 s long, more than the limit of 1\.000 s/, { maxSeconds: 1 });
  await decodeFails(t, jfk, 'audio/mpeg', 'ERR_AUDIO_TOO_LONG', /more than the limit of 5\.000 s/, { maxSeconds: 5 });
  // A FLAC from a streaming encoder states no length: the decoder stops once past the limit.
  const lengthless = clearFlacLength(flac, at('lengthless.flac'));
  const [whole] = await decodeOk(lengthless, 'audio/flac');
  t.equal(whole.samples, 32000, 'decodes in full within the limit');
  await decodeFails(t, lengthless, 'audio/flac', 'ERR_AUDIO_TOO_LONG', /longer than the limit of 1\.500 s/, { maxSeconds: 1.5 });
  // Exactly the limit is fine.
  const [exact] = await decodeOk(wav16k, 'audio/wav', { maxSeconds: 2 });
  t.equal(exact.samples, 32000);
});

// ---- limits, abort and the sandbox ------------------------------------------------------------

t.test('the memory limit bites and is reported as ERR_AUDIO_LIMIT', async (t) => {
  for (const [file, type] of [
    [wav44k, 'audio/wav'],
    [flac, 'audio/flac'],
    [opus, 'audio/ogg'],
    [mp3, 'audio/mpeg'],
  ] as const) {
    // 2 MiB of address space is less than the decoder's own code and libraries take.
    if (emulated) {
      const [result] = await decodeOk(file, type, { maxSeconds: 600, maxMemoryMb: 2 });
      t.ok(result.samples > 0, `${type}: qemu-user does not apply RLIMIT_AS, the decode completes`);
    } else {
      await decodeFails(t, file, type, 'ERR_AUDIO_LIMIT', /out of memory/, { maxSeconds: 600, maxMemoryMb: 2 });
    }
  }
});

t.test('the CPU-time limit bites (SIGXCPU) and is reported as ERR_AUDIO_LIMIT', async (t) => {
  const started = Date.now();
  await decodeFails(t, longMp3, 'audio/mpeg', 'ERR_AUDIO_LIMIT', /CPU-time limit of 1 s/, { maxSeconds: 7200, maxCpuSeconds: 1 });
  t.ok(Date.now() - started < 10_000, 'stopped early');
});

t.test('the wall-clock limit kills a slow decode and is reported as ERR_AUDIO_LIMIT', async (t) => {
  await decodeFails(t, longMp3, 'audio/mpeg', 'ERR_AUDIO_LIMIT', /longer than 300 ms/, { maxSeconds: 7200, timeoutMs: 300 });
});

t.test('an AbortSignal kills the decoder and rejects with ERR_ABORTED', async (t) => {
  const controller = new AbortController();
  const { outputPath, promise } = decode(longMp3, 'audio/mpeg', { maxSeconds: 7200 }, controller.signal);
  setTimeout(() => controller.abort(), 200);
  const started = Date.now();
  await t.rejects(promise, { code: 'ERR_ABORTED', message: /aborted/ });
  t.ok(Date.now() - started < 5000, 'promptly');
  t.notOk(existsSync(outputPath), 'partial output removed');
  const before = decode(wav16k, 'audio/wav', generous, AbortSignal.abort());
  await t.rejects(before.promise, { code: 'ERR_ABORTED', message: /before it started/ });
});

t.test('progress while decoding: the samples written so far, as the output grows', async (t) => {
  const reports: Array<{ samples: number; at: number }> = [];
  const outputPath = at('progress.f32');
  // What an interrupted run left is not progress of this one.
  writeFileSync(outputPath, Buffer.alloc(64 << 20));
  const started = performance.now();
  const result = await decodeAudio({
    inputPath: longMp3,
    outputPath,
    format: parseAudioMediaType('audio/mpeg'),
    limits: { maxSeconds: 7200 },
    sandbox: testDecoderSandbox,
    onProgress: (samples) => reports.push({ samples, at: performance.now() }),
    progressIntervalMs: 50,
  });
  const took = performance.now() - started;
  t.ok(reports.length >= 3, `${reports.length} reports in ${Math.round(took)} ms`);
  t.ok(
    reports.every((r, i) => i === 0 || r.samples > reports[i - 1]!.samples),
    'growing',
  );
  t.ok(reports.at(-1)!.samples <= result.samples, 'never more than the decoder wrote');
  const gaps = reports.map((r, i) => r.at - (i ? reports[i - 1]!.at : started));
  t.ok(Math.max(...gaps) < took / 2, `the longest wait for a report (${Math.round(Math.max(...gaps))} ms) is a fraction of the decode`);
  await t.rejects(
    decodeAudio({ inputPath: wav16k, outputPath: at('p.f32'), format: parseAudioMediaType('audio/wav'), limits: generous, progressIntervalMs: 0 }),
    {
      code: 'ERR_INVALID_ARGUMENT',
      message: /progressIntervalMs/,
    },
  );
});

t.test('the seccomp filter is in force: a forbidden system call kills the decoder with SIGSYS', async (t) => {
  const run = spawnSync(decoder, ['--input', wav16k, '--output', at('selftest.f32'), '--format', 'auto', '--max-seconds', '10', '--sandbox-selftest']);
  if (emulated) {
    t.equal(run.status, 1, 'qemu-user: the self-test refuses to run without a filter');
    t.match(JSON.parse(run.stdout.toString()), { ok: false, message: /seccomp is not available/ });
    return;
  }
  t.equal(run.signal, 'SIGSYS');
  t.equal(run.stdout.toString(), '', 'it never got to report success');
});

t.test('a decoder that cannot install its seccomp filter refuses to decode unless the operator opted in', async (t) => {
  // Natively, without-seccomp runs the decoder under a filter of its own that fails
  // seccomp(2) with ENOSYS and prctl(PR_SET_SECCOMP) with EINVAL, as a kernel without
  // seccomp does; under qemu-user the decoder is in that situation anyway.
  const unsandboxable = at('unsandboxable.sh');
  writeFileSync(unsandboxable, `#!/bin/sh\nexec ${emulated ? '' : `"${withoutSeccomp}" `}"${decoder}" "$@"\n`);
  chmodSync(unsandboxable, 0o755);

  // The decoder itself: its own exit code and report, and not a sample decoded.
  const cli = ['--input', wav16k, '--format', 'auto', '--max-seconds', '10', '--output'];
  const refusedOutput = at('refused.f32');
  const refused = spawnSync(unsandboxable, [...cli, refusedOutput]);
  t.equal(refused.status, 15, 'exit code 15');
  t.match(JSON.parse(refused.stdout.toString()), {
    ok: false,
    code: 'ERR_DECODER_UNSANDBOXED',
    message: /seccomp.*; refusing to decode without the sandbox \(--allow-unsandboxed decodes anyway\)/,
  });
  t.equal(statSync(refusedOutput).size, 0, 'nothing was decoded');
  const allowed = spawnSync(unsandboxable, [...cli, at('allowed.f32'), '--allow-unsandboxed']);
  t.equal(allowed.status, 0, 'the opt-in decodes');
  t.match(JSON.parse(allowed.stdout.toString()), { ok: true, samples: 32000, seccomp: false });

  // Through the wrapper: `required` (the default) fails the decode and names the setting;
  // `optional` decodes and says that it ran unsandboxed.
  const format = parseAudioMediaType('audio/wav');
  const outputPath = at('refused-wrapper.f32');
  await t.rejects(decodeAudio({ inputPath: wav16k, outputPath, format, limits: generous, decoderPath: unsandboxable }), {
    code: 'ERR_DECODER_UNSANDBOXED',
    message: /refusing to decode without the sandbox[\s\S]*Possible solutions[\s\S]*EARSHOT_DECODER_SANDBOX=optional/,
  });
  t.notOk(existsSync(outputPath), 'no output is left behind');
  const optional = await decodeAudio({
    inputPath: wav16k,
    outputPath: at('optional.f32'),
    format,
    limits: generous,
    decoderPath: unsandboxable,
    sandbox: 'optional',
  });
  t.match(optional, { sandboxed: false, samples: 32000 });
  t.equal(readPcm(optional.outputPath!).length, 32000);
});

t.test('the sandbox setting: EARSHOT_DECODER_SANDBOX, and sandbox: optional as --allow-unsandboxed', async (t) => {
  t.equal(loadConfig({ file: null, env: {} }).decoderSandbox, 'required', 'required by default');
  t.equal(loadConfig({ file: null, env: { EARSHOT_DECODER_SANDBOX: 'optional' } }).decoderSandbox, 'optional');
  t.throws(() => loadConfig({ file: null, env: { EARSHOT_DECODER_SANDBOX: 'off' } }), {
    code: 'ERR_CONFIG',
    message: /EARSHOT_DECODER_SANDBOX must be one of required, optional/,
  });
  const format = parseAudioMediaType('audio/wav');
  const limits = { maxSeconds: 10, maxMemoryMb: 256, maxCpuSeconds: 13, timeoutMs: 49_000 };
  t.notOk(decoderArguments(wav16k, at('a.f32'), format, limits).includes('--allow-unsandboxed'));
  t.ok(decoderArguments(wav16k, at('a.f32'), format, limits, 'optional').includes('--allow-unsandboxed'));
  await t.rejects(decodeAudio({ inputPath: wav16k, outputPath: at('b.f32'), format, limits: generous, sandbox: 'off' as 'optional' }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /Expected 'required' or 'optional' for sandbox but received "off"/,
  });
});

t.test('the decoder refuses bad command lines with a JSON report', async (t) => {
  const run = spawnSync(decoder, ['--input', wav16k, '--format', 'auto']);
  t.equal(run.status, 2);
  t.match(JSON.parse(run.stdout.toString()), { ok: false, code: 'ERR_DECODER', message: /--output are required/ });
});

// ---- the wrapper's handling of a decoder that misbehaves -------------------------------------

t.test('crashes, sandbox kills, silence and lies from the decoder are ERR_DECODER', async (t) => {
  const fake = (name: string, script: string): string => {
    const path = at(name);
    writeFileSync(path, `#!/bin/sh\n${script}\n`);
    chmodSync(path, 0o755);
    return path;
  };
  const format = parseAudioMediaType('audio/wav');
  const attempt = (decoderPath: string, limits: DecodeLimits = generous) => {
    const outputPath = at(`fake-${++outputs}.f32`);
    writeFileSync(outputPath, 'partial');
    return { outputPath, promise: decodeAudio({ inputPath: wav16k, outputPath, format, limits, decoderPath }) };
  };
  const cases: Array<[string, string, string, RegExp]> = [
    ['segv.sh', 'kill -SEGV $$', 'ERR_DECODER', /crashed \(SIGSEGV\).*probably malformed/],
    ['abrt.sh', 'kill -ABRT $$', 'ERR_DECODER', /crashed \(SIGABRT\)/],
    ['sys.sh', 'echo "bad syscall" >&2; kill -SYS $$', 'ERR_DECODER', /sandbox.*forbidden system call.*bad syscall/],
    ['xcpu.sh', 'kill -XCPU $$', 'ERR_AUDIO_LIMIT', /CPU-time limit of 160 s/],
    ['kill.sh', 'kill -KILL $$', 'ERR_AUDIO_LIMIT', /killed \(SIGKILL\).*out of memory/],
    ['garbage.sh', 'echo hello; exit 0', 'ERR_DECODER', /exited with code 0 and no valid report/],
    ['exit11.sh', 'exit 11', 'ERR_AUDIO_CORRUPT', /exited with code 11 without a report/],
    ['exit1.sh', 'echo "oops" >&2; exit 1', 'ERR_DECODER', /exited with code 1.*oops/],
    ['unknown.sh', `echo '{"ok":false,"code":"ERR_SOMETHING","message":"x"}'; exit 11`, 'ERR_DECODER', /unknown failure "ERR_SOMETHING"/],
    ['reported.sh', `echo '{"ok":false,"code":"ERR_AUDIO_CORRUPT","message":"bad frame"}'; exit 11`, 'ERR_AUDIO_CORRUPT', /^bad frame$/],
    [
      'nofile.sh',
      `rm -f "$4"; echo '{"ok":true,"samples":10,"durationMs":1,"inputRate":16000,"inputChannels":1,"inputFrames":10,"container":"wav","codec":"pcm_s16","seccomp":true}'`,
      'ERR_DECODER',
      /reported 10 samples but its output has no file/,
    ],
    ['nosamples.sh', `echo '{"ok":true,"samples":"many"}'`, 'ERR_DECODER', /invalid result/],
  ];
  for (const [name, script, code, message] of cases) {
    const { outputPath, promise } = attempt(fake(name, script));
    await t.rejects(promise, { code, message }, name);
    t.notOk(existsSync(outputPath), `${name}: output removed`);
  }
  const missing = attempt(at('no-such-decoder'));
  await t.rejects(missing.promise, { code: 'ERR_DECODER', message: /could not be started[\s\S]*Possible solutions[\s\S]*EARSHOT_DECODER/ });
});

t.test('keepSamples: the samples of a short upload are kept, exactly as written to a file; a longer one is only counted', async (t) => {
  const format = parseAudioMediaType('audio/mpeg');
  const filed = await decodeAudio({ inputPath: JFK_MP3, outputPath: at('jfk-kept.f32'), format, limits: generous, sandbox: testDecoderSandbox });
  const expected = readPcm(filed.outputPath!);
  // At the bound (176,000 samples) and above it: kept, sample-exact (more than one 64 KB read, and than the first 1 MB buffer).
  for (const keepSamples of [176000, 960000]) {
    const kept = await decodeAudio({ inputPath: JFK_MP3, format, limits: generous, sandbox: testDecoderSandbox, keepSamples });
    t.equal(kept.outputPath, undefined, 'nothing written');
    t.equal(kept.samples, 176000);
    t.ok(kept.pcm instanceof Float32Array, `kept with keepSamples ${keepSamples}`);
    t.equal(kept.pcm!.length, 176000);
    t.ok(
      kept.pcm!.every((v, i) => Object.is(v, expected[i])),
      'the very samples of the file',
    );
  }
  // One sample short of the audio: counted and dropped, as without the option.
  const longer = await decodeAudio({ inputPath: JFK_MP3, format, limits: generous, sandbox: testDecoderSandbox, keepSamples: 175999 });
  t.equal(longer.samples, 176000);
  t.equal(longer.pcm, undefined, 'longer than keepSamples: nothing kept');
  t.equal((await decodeAudio({ inputPath: JFK_MP3, format, limits: generous, sandbox: testDecoderSandbox })).pcm, undefined, 'nothing kept by default');
  // Written to a file: never kept (the file has them).
  t.equal(
    (await decodeAudio({ inputPath: JFK_MP3, outputPath: at('jfk-kept2.f32'), format, limits: generous, sandbox: testDecoderSandbox, keepSamples: 960000 }))
      .pcm,
    undefined,
  );
  await t.rejects(decodeAudio({ inputPath: JFK_MP3, format, limits: generous, keepSamples: -1 }), { code: 'ERR_INVALID_ARGUMENT', message: /keepSamples/ });
});

t.test('option checking', async (t) => {
  const format = parseAudioMediaType('audio/wav');
  await t.rejects(decodeAudio({ inputPath: wav16k, outputPath: at('x.f32'), format, limits: { maxSeconds: 0 } }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /Expected a number of seconds above 0 and at most 604800 for limits.maxSeconds but received 0/,
  });
  await t.rejects(decodeAudio({ inputPath: wav16k, outputPath: wav16k, format, limits: generous }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /a path other than inputPath/,
  });
  await t.rejects(decodeAudio({ inputPath: wav16k, outputPath: at('y.f32'), format, limits: { maxSeconds: 5, maxMemoryMb: 1.5 } }), {
    code: 'ERR_INVALID_ARGUMENT',
  });
  t.ok(existsSync(wav16k), 'the input is never touched');
});
