// The short-audio suite (`npm run bench -- --suite short`): what a voice command costs.
// whisper pads every window to 30 s, so a 3 s command costs the encoder as much as 30 s of
// audio; encoder trimming (EARSHOT_TRIM_ENCODER) and VAD trimming (EARSHOT_VAD_MODEL) are
// the fast path. For each model and each of the four settings, the service runs as
// `npm start` does (a child process) and the suite measures, end to end (POST → response),
// Azure fast transcriptions (the interactive lane, as Wyoming and OpenAI's synchronous
// requests use) of the first 2, 5 and 10 s of jfk.mp3. With real weights also the word
// error rate of all of jfk.mp3 against its known text: what the fast path costs in
// accuracy. Random weights (scripts/make-test-model) give real compute, meaningless text.
// Then what the trimming margin costs, through the addon alone: the margin is a constant
// of the service (2 s), an option of the addon (trimMarginMs).
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { makeVadTestModel } from '../make-test-model.js';
import { decodeToPcm, int16Wav, jfkMp3 } from '../lib/bench-audio.js';
import { benchApiKey, startService } from '../lib/bench-service.js';
import { isGenerated } from '../lib/find-model.js';
import { median } from '../lib/stats.js';
import { wordErrorRate } from '../lib/wer.js';
import { loadAddon } from '../../src/engine/native.js';
import { projectRoot } from '../../src/paths.js';

/** What jfk.mp3 says (whisper.cpp's sample). */
export const JFK_TEXT = 'And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country.';

/** The clip lengths measured, in seconds. */
export const SHORT_CLIP_SECONDS = [2, 5, 10] as const;

/** The encoder trimming margins compared (ms of audio past the clip's end); the service uses 2000. */
export const TRIM_MARGINS_MS = [0, 1000, 2000, 3000] as const;

/** The four settings, in table order. */
export const SHORT_SETTINGS = [
  { name: 'trim off, VAD off', trim: false, vad: false },
  { name: 'trim on', trim: true, vad: false },
  { name: 'VAD on', trim: false, vad: true },
  { name: 'trim on, VAD on', trim: true, vad: true },
] as const;

export interface ShortSuiteOptions {
  /** The model files. */
  models: string[];
  threads: number;
  /** Measured requests per clip and setting (median), after one warm-up each. */
  runs: number;
  json: string | undefined;
}

export interface ShortRow {
  model: string;
  randomWeights: boolean;
  setting: (typeof SHORT_SETTINGS)[number]['name'];
  /** Median end-to-end latency per clip length ("2": ms). */
  latencyMs: Record<string, number>;
  /** jfk.mp3 (11 s) against its text; null on random weights. */
  wer: number | null;
  text: string | null;
}

export interface MarginRow {
  model: string;
  clipSeconds: number;
  /**
   * Median encoder time per margin ("untrimmed" and "2000": ms), and the audioCtx it ran
   * with: the part trimming changes, and real even on random weights (decoder work is not).
   */
  encodeMs: Record<string, number>;
  audioCtx: Record<string, number>;
}

/**
 * What the trimming margin costs: the addon (batch lane, no service around it) on the
 * 3 and 5 s clips, untrimmed and with each margin of TRIM_MARGINS_MS.
 */
async function measureMargins(model: string, jfk: Float32Array, threads: number, runs: number): Promise<MarginRow[]> {
  const m = new (loadAddon().Model)();
  await m.load(model, { flashAttn: true });
  const rows: MarginRow[] = [];
  try {
    for (const clipSeconds of [3, 5]) {
      const clip = jfk.subarray(0, clipSeconds * 16000);
      const row: MarginRow = { model, clipSeconds, encodeMs: {}, audioCtx: {} };
      for (const margin of [undefined, ...TRIM_MARGINS_MS]) {
        const options = { threads, temperatureIncrement: 0, ...(margin === undefined ? {} : { trimEncoder: true, trimMarginMs: margin }) };
        await m.transcribe(clip, options).promise; // warm-up
        const times: number[] = [];
        for (let i = 0; i < runs; i++) {
          const r = await m.transcribe(clip, options).promise;
          times.push(r.timings.encodeMs);
          row.audioCtx[margin ?? 'untrimmed'] = r.audioCtx;
        }
        row.encodeMs[margin ?? 'untrimmed'] = median(times);
      }
      rows.push(row);
    }
  } finally {
    m.free();
  }
  return rows;
}

/** The margins' table: one row per model and clip. */
export function marginMarkdown(rows: MarginRow[]): string {
  const keys = ['untrimmed', ...TRIM_MARGINS_MS.map(String)];
  const lines = [
    `| model | clip | encoder ms untrimmed | ${TRIM_MARGINS_MS.map((m) => `margin ${m / 1000} s`).join(' | ')} |`,
    `|---|---:|${keys.map(() => '---:|').join('')}`,
  ];
  for (const r of rows) {
    const model = `${path.basename(r.model).replace(/^ggml-|\.bin$/g, '')}${isGenerated(r.model) ? ' (random)' : ''}`;
    lines.push(`| ${model} | ${r.clipSeconds} s | ${keys.map((k) => `${r.encodeMs[k]!.toFixed(0)} (ctx ${r.audioCtx[k]})`).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** One Azure fast transcription (interactive) of `wav`: its latency and text. */
async function fastTranscription(base: string, wav: Buffer): Promise<{ ms: number; text: string }> {
  const form = new FormData();
  form.append('audio', new Blob([wav], { type: 'audio/wav' }), 'command.wav');
  form.append('definition', JSON.stringify({ locales: ['en-US'], profanityFilterMode: 'None' }));
  const t0 = performance.now();
  const res = await fetch(`${base}/speechtotext/transcriptions:transcribe?api-version=2024-11-15`, {
    method: 'POST',
    headers: { 'Ocp-Apim-Subscription-Key': benchApiKey },
    body: form,
  });
  const body = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`fast transcription: ${res.status} ${body}`);
  const parsed = JSON.parse(body) as { combinedPhrases?: Array<{ text: string }> };
  return { ms, text: parsed.combinedPhrases?.[0]?.text ?? '' };
}

/** A real Silero model in models/ (ggml-silero-*.bin), else the generated test VAD (a loudness gate) made in `dir`. */
async function vadModel(dir: string): Promise<{ path: string; generated: boolean }> {
  const modelsDir = path.join(projectRoot, 'models');
  let files: string[] = [];
  try {
    files = readdirSync(modelsDir);
  } catch {
    // no models directory
  }
  const real = files.find((f) => /^ggml-silero-.*\.bin$/.test(f) && !isGenerated(path.join(modelsDir, f)));
  if (real) return { path: path.join(modelsDir, real), generated: false };
  return { path: (await makeVadTestModel({ outDir: dir })).path, generated: true };
}

/** The markdown table: one row per model and setting, latencies per clip, and the WER. */
export function shortMarkdown(rows: ShortRow[]): string {
  const header = `| model | setting | ${SHORT_CLIP_SECONDS.map((s) => `${s} s clip ms`).join(' | ')} | jfk WER |`;
  const lines = [header, `|---|---|${SHORT_CLIP_SECONDS.map(() => '---:|').join('')}---:|`];
  for (const r of rows) {
    const model = `${path.basename(r.model).replace(/^ggml-|\.bin$/g, '')}${r.randomWeights ? ' (random)' : ''}`;
    const wer = r.wer === null ? 'needs real weights' : `${(r.wer * 100).toFixed(1)} %`;
    lines.push(`| ${model} | ${r.setting} | ${SHORT_CLIP_SECONDS.map((s) => r.latencyMs[s]!.toFixed(0)).join(' | ')} | ${wer} |`);
  }
  return lines.join('\n');
}

/** Prints the table (and writes JSON when `o.json` is set). */
export async function runShortSuite(o: ShortSuiteOptions): Promise<ShortRow[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'earshot-bench-short-'));
  const rows: ShortRow[] = [];
  const margins: MarginRow[] = [];
  let vadNote = '';
  try {
    const vad = await vadModel(dir);
    vadNote = vad.generated
      ? "VAD: the generated test model (a loudness gate with Silero's architecture; no real Silero model in models/)"
      : `VAD: ${path.basename(vad.path)}`;
    const jfk = await decodeToPcm(jfkMp3, dir, 60);
    const clips = SHORT_CLIP_SECONDS.map((s) => ({ seconds: s, wav: int16Wav(jfk.subarray(0, s * 16000)) }));
    const whole = int16Wav(jfk);
    for (const model of o.models) {
      margins.push(...(await measureMargins(model, jfk, o.threads, o.runs)));
      const randomWeights = isGenerated(model);
      for (const setting of SHORT_SETTINGS) {
        const env: Record<string, string> = { EARSHOT_TRIM_ENCODER: String(setting.trim) };
        if (setting.vad) env.EARSHOT_VAD_MODEL = vad.path;
        const service = await startService(path.join(dir, `state-${rows.length}`), model, o.threads, env);
        try {
          const latencyMs: Record<string, number> = {};
          // Interleaved, so that a change in machine load hits every clip length alike.
          const measured = new Map<number, number[]>(clips.map((c) => [c.seconds, []]));
          for (const c of clips) await fastTranscription(service.base, c.wav); // warm-up (the interactive lane's state is made on first use)
          for (let i = 0; i < o.runs; i++) {
            for (const c of clips) measured.get(c.seconds)!.push((await fastTranscription(service.base, c.wav)).ms);
          }
          for (const [seconds, ms] of measured) latencyMs[seconds] = median(ms);
          const text = randomWeights ? null : (await fastTranscription(service.base, whole)).text;
          rows.push({ model, randomWeights, setting: setting.name, latencyMs, wer: text === null ? null : wordErrorRate(JFK_TEXT, text), text });
        } finally {
          service.proc.kill('SIGTERM');
          await service.exited;
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const load = os.loadavg().map((l) => l.toFixed(2));
  console.log(
    [
      `short clips (the first 2, 5, 10 s of jfk.mp3), Azure fast transcription through the service (interactive lane), POST → response, median of ${o.runs}; ` +
        `${o.threads} threads, ${os.cpus()[0]?.model ?? 'cpu'} x${os.availableParallelism()}, load average ${load.join(' ')}`,
      rows.every((r) => r.randomWeights)
        ? 'All models have random weights: latency only. The word error rate needs real weights (scripts/download-model tiny.en).'
        : `jfk WER: all 11 s of jfk.mp3 against "${JFK_TEXT}"`,
      vadNote,
      shortMarkdown(rows),
      '',
      `encoder trimming margins: the addon alone (batch lane), encoder ms (median of ${o.runs}) and the audioCtx it ran with`,
      marginMarkdown(margins),
    ].join('\n'),
  );
  if (o.json) writeFileSync(o.json, `${JSON.stringify({ threads: o.threads, runs: o.runs, loadavg: os.loadavg(), rows, margins }, null, 2)}\n`);
  return rows;
}
