// Benchmark: earshot's addon beside whisper.cpp's own whisper-cli, built from the same
// source with the same flags, on the same model, audio, threads and decoding settings.
// Also the addon's peak RSS for a 1-minute and a 30-minute input (windowed inference
// must keep the two close).
//
//   node dist/scripts/bench-addon.js [--model PATH|NAME] [--audio FILE] [--threads N]
//                                    [--runs N] [--rss-minutes 1,30] [--json FILE]
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

import { resolveModelPath } from '../src/config.js';
import { decodeAudio } from '../src/engine/audio-decoder.js';
import { parseAudioMediaType } from '../src/engine/media-type.js';
import { loadAddon, type NativeTranscribeOptions } from '../src/engine/native.js';
import { nativeTool, projectRoot } from '../src/paths.js';

const run = promisify(execFile);
const jfk = path.join(projectRoot, 'node_modules/nodejs-whisper/cpp/whisper.cpp/samples/jfk.mp3');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The same decoding settings for both sides: greedy, no temperature fallback, no context. */
function settings(threads: number): { native: NativeTranscribeOptions; cli: string[] } {
  return {
    native: {
      threads,
      nice: 0,
      language: 'en',
      strategy: 'greedy',
      bestOf: 5,
      temperatureIncrement: 0,
      conditionOnPreviousText: false,
    },
    // -bs 1: greedy (whisper-cli picks beam search when the beam size is above 1).
    cli: ['-t', String(threads), '-l', 'en', '-bs', '1', '-bo', '5', '-nf', '-fa'],
  };
}

/** Decodes any audio file to 16 kHz mono float32 with earshot's decoder. */
async function decodeToPcm(file: string, dir: string): Promise<Float32Array> {
  const out = path.join(dir, 'audio.f32');
  await decodeAudio({ inputPath: file, outputPath: out, format: parseAudioMediaType(null), limits: { maxSeconds: 4 * 3600 } });
  const bytes = readFileSync(out);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** A WAV file of IEEE float samples: whisper-cli reads exactly the PCM the addon gets. */
function writeFloatWav(file: string, pcm: Float32Array): void {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + pcm.byteLength, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(3, 20); // WAVE_FORMAT_IEEE_FLOAT
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(16000, 24);
  header.writeUInt32LE(16000 * 4, 28);
  header.writeUInt16LE(4, 32);
  header.writeUInt16LE(32, 34);
  header.write('data', 36);
  header.writeUInt32LE(pcm.byteLength, 40);
  writeFileSync(file, Buffer.concat([header, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength)]));
}

interface Measured {
  encodeMs: number;
  /** transcription time without model load */
  e2eMs: number;
}

async function benchCli(model: string, wav: string, args: string[]): Promise<Measured> {
  const { stderr } = await run(nativeTool('whisper-cli'), ['-m', model, '-f', wav, ...args], { maxBuffer: 64 << 20 });
  const ms = (label: string) => {
    const m = new RegExp(`${label} time =\\s*([\\d.]+) ms`).exec(stderr);
    if (!m) throw new Error(`whisper-cli printed no "${label} time"`);
    return Number(m[1]);
  };
  // whisper-cli's total runs from model load start; the addon keeps its model loaded.
  return { encodeMs: ms('encode'), e2eMs: ms('total') - ms('load') };
}

/** Child mode: load, transcribe a spool file of `minutes` of audio, print peak RSS. */
async function rssChild(model: string, pcmFile: string, threads: number): Promise<void> {
  const addon = loadAddon();
  const m = new addon.Model();
  await m.load(model);
  const result = await m.transcribe({ path: pcmFile }, { ...settings(threads).native, windowSeconds: 300 }).promise;
  const status = readFileSync('/proc/self/status', 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  process.stdout.write(JSON.stringify({ peakRssMb: hwm / 1024, durationMs: result.durationMs, windows: result.windows, totalMs: result.timings.totalMs }) + '\n');
  m.free();
}

async function measureRss(model: string, pcm: Float32Array, minutes: number, threads: number, dir: string) {
  const file = path.join(dir, `long-${minutes}.f32`);
  const want = minutes * 60 * 16000;
  const out = new Float32Array(want);
  for (let at = 0; at < want; at += pcm.length) out.set(pcm.subarray(0, Math.min(pcm.length, want - at)), at);
  writeFileSync(file, Buffer.from(out.buffer));
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--rss-child', file, '--model', model, '--threads', String(threads)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  rmSync(file);
  if (code !== 0) throw new Error(`RSS child for ${minutes} min exited with ${code}`);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { peakRssMb: number; durationMs: number; windows: number; totalMs: number };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'tiny.en-q5_1' },
      audio: { type: 'string', default: jfk },
      threads: { type: 'string', default: String(os.availableParallelism()) },
      runs: { type: 'string', default: '3' },
      'rss-minutes': { type: 'string', default: '1,30' },
      'rss-child': { type: 'string' },
      json: { type: 'string' },
    },
  });
  const model = resolveModelPath(values.model!, path.join(projectRoot, 'models'));
  const threads = Number(values.threads);
  if (values['rss-child']) return rssChild(model, values['rss-child'], threads);

  const runs = Number(values.runs);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'earshot-bench-'));
  try {
    const pcm = await decodeToPcm(values.audio!, dir);
    const audioMs = (pcm.length / 16000) * 1000;
    const wav = path.join(dir, 'audio.wav');
    writeFloatWav(wav, pcm);
    const { native, cli } = settings(threads);

    const addon = loadAddon();
    const m = new addon.Model();
    await m.load(model, { flashAttn: true });
    await m.transcribe(pcm, native).promise; // warm-up, as the cli's first run warms the page cache
    await benchCli(model, wav, cli);

    // Interleaved, so that a change in machine load hits both sides alike.
    const ours: Measured[] = [];
    const theirs: Measured[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await m.transcribe(pcm, native).promise;
      ours.push({ encodeMs: r.timings.encodeMs, e2eMs: r.timings.totalMs });
      theirs.push(await benchCli(model, wav, cli));
    }
    m.free();

    const row = (name: string, xs: Measured[]) => {
      const enc = median(xs.map((x) => x.encodeMs));
      const e2e = median(xs.map((x) => x.e2eMs));
      return { name, encodeMs: enc, e2eMs: e2e, rtf: e2e / audioMs };
    };
    const a = row('earshot addon', ours);
    const b = row('whisper-cli', theirs);
    const lines = [
      `OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY}, model ${path.basename(model)}, audio ${path.basename(values.audio!)} (${(audioMs / 1000).toFixed(1)} s), ${threads} threads, ${runs} runs (median), greedy, no fallback, flash attention`,
      `system: ${addon.systemInfo().trim()}`,
      '',
      '| | encoder ms | end-to-end ms | real-time factor |',
      '|---|---:|---:|---:|',
      ...[a, b].map((r) => `| ${r.name} | ${r.encodeMs.toFixed(0)} | ${r.e2eMs.toFixed(0)} | ${r.rtf.toFixed(3)} |`),
      `| ratio addon / cli | ${(a.encodeMs / b.encodeMs).toFixed(3)} | ${(a.e2eMs / b.e2eMs).toFixed(3)} | |`,
    ];
    console.log(lines.join('\n'));

    const rss: Record<string, unknown> = {};
    const minutesList = values['rss-minutes']!.split(',').filter(Boolean).map(Number);
    if (minutesList.length) {
      console.log('\n| input | peak RSS MB | windows | transcription s |\n|---|---:|---:|---:|');
      for (const minutes of minutesList) {
        const r = await measureRss(model, pcm, minutes, threads, dir);
        rss[`${minutes}min`] = r;
        console.log(`| ${minutes} min | ${r.peakRssMb.toFixed(1)} | ${r.windows} | ${(r.totalMs / 1000).toFixed(1)} |`);
      }
    }
    if (values.json) writeFileSync(values.json, JSON.stringify({ model, threads, runs, audioMs, addon: a, cli: b, rss }, null, 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
