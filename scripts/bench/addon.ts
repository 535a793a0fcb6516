// The addon suite (`npm run bench -- --suite addon`): earshot's addon beside whisper.cpp's
// own whisper-cli, built from the same source with the same flags, on the same model,
// audio, threads and decoding settings. Also the addon's peak RSS for a 1-minute and a
// 30-minute input (windowed inference must keep the two close).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { decodeToPcm, repeatPcm, writeF32, writeFloatWav } from '../lib/bench-audio.js';
import { median } from '../lib/stats.js';
import { decodingSettings as settings, runWhisperCli, vmHwmMb } from '../lib/whisper-tools.js';
import { loadAddon } from '../../src/engine/native.js';

export interface AddonSuiteOptions {
  /** The model file. */
  model: string;
  audio: string;
  threads: number;
  runs: number;
  /** Input lengths whose peak RSS is measured. */
  rssMinutes: number[];
  json: string | undefined;
}

/** The benchmark's entry point, which runs the RSS children (`--rss-child`). */
const benchJs = fileURLToPath(new URL('../bench.js', import.meta.url));

interface Measured {
  encodeMs: number;
  /** transcription time without model load */
  e2eMs: number;
}

async function benchCli(model: string, wav: string, args: string[]): Promise<Measured> {
  const { timings } = await runWhisperCli(model, wav, args);
  // whisper-cli's total runs from model load start; the addon keeps its model loaded.
  return { encodeMs: timings.encodeMs, e2eMs: timings.totalMs - timings.loadMs };
}

/** Child mode (`bench.js --rss-child PCM MODEL THREADS`): load, transcribe a spool file, print peak RSS. */
export async function rssChild(pcmFile: string, model: string, threads: number): Promise<void> {
  const addon = loadAddon();
  const m = new addon.Model();
  await m.load(model);
  const result = await m.transcribe({ path: pcmFile }, { ...settings(threads).native, windowSeconds: 300 }).promise;
  process.stdout.write(
    `${JSON.stringify({ peakRssMb: vmHwmMb('self'), durationMs: result.durationMs, windows: result.windows, totalMs: result.timings.totalMs })}\n`,
  );
  m.free();
}

async function measureRss(model: string, pcm: Float32Array, minutes: number, threads: number, dir: string) {
  const file = path.join(dir, `long-${minutes}.f32`);
  writeF32(file, repeatPcm(pcm, minutes * 60 * 16000));
  const child = spawn(process.execPath, [benchJs, '--rss-child', file, model, String(threads)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  rmSync(file);
  if (code !== 0) throw new Error(`RSS child for ${minutes} min exited with ${code}`);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { peakRssMb: number; durationMs: number; windows: number; totalMs: number };
}

/** Prints the comparison table and the RSS table; writes JSON when `o.json` is set. */
export async function runAddonSuite(o: AddonSuiteOptions): Promise<void> {
  const { model, threads, runs } = o;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'earshot-bench-'));
  try {
    const pcm = await decodeToPcm(o.audio, dir);
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
      `OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY}, model ${path.basename(model)}, audio ${path.basename(o.audio)} (${(audioMs / 1000).toFixed(1)} s), ${threads} threads, ${runs} runs (median), greedy, no fallback, flash attention`,
      `system: ${addon.systemInfo().trim()}`,
      '',
      '| | encoder ms | end-to-end ms | real-time factor |',
      '|---|---:|---:|---:|',
      ...[a, b].map((r) => `| ${r.name} | ${r.encodeMs.toFixed(0)} | ${r.e2eMs.toFixed(0)} | ${r.rtf.toFixed(3)} |`),
      `| ratio addon / cli | ${(a.encodeMs / b.encodeMs).toFixed(3)} | ${(a.e2eMs / b.e2eMs).toFixed(3)} | |`,
    ];
    console.log(lines.join('\n'));

    const rss: Record<string, unknown> = {};
    if (o.rssMinutes.length) {
      console.log('\n| input | peak RSS MB | windows | transcription s |\n|---|---:|---:|---:|');
      for (const minutes of o.rssMinutes) {
        const r = await measureRss(model, pcm, minutes, threads, dir);
        rss[`${minutes}min`] = r;
        console.log(`| ${minutes} min | ${r.peakRssMb.toFixed(1)} | ${r.windows} | ${(r.totalMs / 1000).toFixed(1)} |`);
      }
    }
    if (o.json) writeFileSync(o.json, JSON.stringify({ model, threads, runs, audioMs, addon: a, cli: b, rss }, null, 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
