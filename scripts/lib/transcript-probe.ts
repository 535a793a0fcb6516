// Transcribes fixed synthetic signals with the native addon and prints the results as one
// JSON line, to compare builds token for token: x86-64 here against the arm64 builds under
// qemu-aarch64 (scripts/arm64-test). Everything that could vary between two runs is pinned:
// the signals (computed here; their SHA-256 is printed with them), greedy decoding from
// temperature 0 with no fallback, one thread, flash attention on, no prompt, no context.
//
//   node dist/scripts/lib/transcript-probe.js run MODEL [--cases S:HZ:SEED,...] [--pcm FILE]
//   node dist/scripts/lib/transcript-probe.js compare REFERENCE.json OTHER.json
//
// --pcm adds a case read from a file of 16 kHz mono float32le samples (earshot-decode's
// output), e.g. whisper.cpp's jfk.mp3. `run` takes the addon from EARSHOT_ADDON / EARSHOT_BUILD_DIR (src/engine/native.ts).
// `compare` exits 0 when both runs saw the same model, signals and options and produced
// the same segments (times, text, token ids); token probabilities only have to be close,
// since SIMD kernels of different CPUs sum in different orders.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { loadAddon } from '../../src/engine/native.js';
import { testSignal } from './test-signal.js';

/** Seconds, tone frequency and noise seed of each signal. */
const DEFAULT_CASES = '2:440:1,1:1000:2,1.5:220:3';
/**
 * Largest relative difference of a token's probability between two builds: different
 * summation orders move p in the 4th digit; a wrong kernel moves it much more.
 */
const P_TOLERANCE = 0.01;

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

interface ProbeToken {
  id: number;
  text: string;
  p: number;
}
interface ProbeSegment {
  start: number;
  end: number;
  text: string;
  tokens: ProbeToken[];
}
interface ProbeCase {
  seconds: number;
  frequency?: number;
  seed?: number;
  pcm?: string;
  signalSha256: string;
  segments: ProbeSegment[];
  ms: number;
}
/** What `run` prints. */
interface ProbeRun {
  arch: string;
  node: string;
  systemInfo: string;
  model: { file: string; weightType: string; sha256: string };
  options: Record<string, unknown>;
  cases: ProbeCase[];
}

function parseCases(spec: string): Array<{ seconds: number; frequency: number; seed: number }> {
  if (spec === '') return [];
  return spec.split(',').map((c) => {
    const [seconds, frequency, seed] = c.split(':').map(Number);
    if (!(seconds! > 0 && seconds! <= 30 && frequency! > 0 && Number.isInteger(seed) && seed! > 0)) {
      throw new Error(`Expected SECONDS:HZ:SEED (0 < seconds <= 30, seed a positive integer) for a case but received "${c}"`);
    }
    return { seconds: seconds!, frequency: frequency!, seed: seed! };
  });
}

async function run(modelFile: string, casesSpec: string, pcm: string | undefined): Promise<ProbeRun> {
  const signals: Array<{ seconds: number; frequency?: number; seed?: number; pcm?: string; samples: Float32Array }> = parseCases(casesSpec).map((c) => ({
    ...c,
    samples: testSignal(c.seconds, c.frequency, c.seed),
  }));
  if (pcm !== undefined) {
    const bytes = readFileSync(pcm);
    const samples = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength - (bytes.byteLength % 4)));
    signals.push({ seconds: samples.length / 16000, pcm, samples });
  }
  const addon = loadAddon();
  const model = new addon.Model();
  const info = await model.load(modelFile, { flashAttn: true });
  const options = {
    language: 'en',
    strategy: 'greedy' as const,
    temperature: 0,
    temperatureIncrement: 0,
    threads: 1,
    conditionOnPreviousText: false,
  };
  const cases: ProbeCase[] = [];
  for (const { samples: signal, ...c } of signals) {
    const started = Date.now();
    const result = await model.transcribe(signal, options).promise;
    cases.push({
      ...c,
      signalSha256: sha256(new Uint8Array(signal.buffer, signal.byteOffset, signal.byteLength)),
      segments: result.segments.map((s) => ({
        start: s.start,
        end: s.end,
        text: s.text,
        tokens: s.tokens.map((t) => ({ id: t.id, text: t.text, p: t.p })),
      })),
      ms: Date.now() - started,
    });
  }
  model.free();
  return {
    arch: process.arch,
    node: process.version,
    systemInfo: addon.systemInfo().trim(),
    model: { file: modelFile, weightType: info.weightType, sha256: sha256(readFileSync(modelFile)) },
    options,
    cases,
  };
}

/** Differences that matter (empty when equal) and the largest relative difference of p. */
function compare(a: ProbeRun, b: ProbeRun): { differences: string[]; tokens: number; maxPDiff: number } {
  const differences: string[] = [];
  let tokens = 0;
  let maxPDiff = 0;
  if (a.model.sha256 !== b.model.sha256) differences.push(`different models: ${a.model.file} vs ${b.model.file}`);
  if (JSON.stringify(a.options) !== JSON.stringify(b.options)) differences.push('different decoding options');
  if (a.cases.length !== b.cases.length) differences.push(`${a.cases.length} vs ${b.cases.length} cases`);
  a.cases.forEach((ca, i) => {
    const cb = b.cases[i];
    if (cb === undefined) return;
    const name = ca.pcm !== undefined ? `case ${ca.pcm}` : `case ${ca.seconds} s ${ca.frequency} Hz seed ${ca.seed}`;
    if (ca.signalSha256 !== cb.signalSha256) differences.push(`${name}: the signals differ (${ca.signalSha256} vs ${cb.signalSha256})`);
    const ta = ca.segments.flatMap((s) => s.tokens);
    const tb = cb.segments.flatMap((s) => s.tokens);
    const firstDiff = ta.findIndex((t, k) => tb[k]?.id !== t.id);
    if (firstDiff >= 0 || ta.length !== tb.length) {
      const k = firstDiff >= 0 ? firstDiff : Math.min(ta.length, tb.length);
      const show = (t: ProbeToken | undefined) => (t ? `${t.id} ${JSON.stringify(t.text)} (p ${t.p.toPrecision(4)})` : 'nothing');
      differences.push(`${name}: token ${k} is ${show(ta[k])} vs ${show(tb[k])}`);
      return;
    }
    const seg = (s: ProbeSegment) => `${s.start}-${s.end} ${JSON.stringify(s.text)}`;
    const sa = ca.segments.map(seg).join(' | ');
    const sb = cb.segments.map(seg).join(' | ');
    if (sa !== sb) differences.push(`${name}: segments ${sa} vs ${sb}`);
    tokens += ta.length;
    ta.forEach((t, k) => {
      const p = tb[k]!.p;
      const diff = Math.abs(t.p - p) / Math.max(t.p, p, Number.MIN_VALUE);
      maxPDiff = Math.max(maxPDiff, diff);
      if (diff > P_TOLERANCE) differences.push(`${name}: token ${k} (${t.id}) has p ${t.p.toPrecision(4)} vs ${p.toPrecision(4)}`);
    });
  });
  return { differences, tokens, maxPDiff };
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { cases: { type: 'string', default: DEFAULT_CASES }, pcm: { type: 'string' } },
  });
  const [command, ...rest] = positionals;
  if (command === 'run' && rest.length === 1) {
    process.stdout.write(`${JSON.stringify(await run(rest[0]!, values.cases!, values.pcm))}\n`);
    return 0;
  }
  if (command === 'compare' && rest.length === 2) {
    const [a, b] = rest.map((f) => JSON.parse(readFileSync(f, 'utf8')) as ProbeRun) as [ProbeRun, ProbeRun];
    const { differences, tokens, maxPDiff } = compare(a, b);
    const who = `${b.arch} (${b.node}) vs ${a.arch} (${a.node})`;
    if (differences.length > 0) {
      process.stdout.write(`transcripts DIFFER, ${who}:\n${differences.map((d) => `  ${d}`).join('\n')}\n`);
      return 1;
    }
    const text = a.cases.map((c) => JSON.stringify(c.segments.map((s) => s.text).join(''))).join(', ');
    process.stdout.write(
      `transcripts EQUAL, ${who}: ${a.cases.length} cases, ${tokens} tokens (${text}); ` + `token probabilities within ${(maxPDiff * 100).toPrecision(2)}%\n`,
    );
    return 0;
  }
  process.stderr.write('usage: transcript-probe run MODEL [--cases S:HZ:SEED,...] [--pcm FILE] | transcript-probe compare REFERENCE.json OTHER.json\n');
  return 2;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`transcript-probe: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
