// Generates whisper models with the real architecture and seeded random weights, for tests
// and benchmarks on machines that cannot download OpenAI's weights, then quantizes them
// with whisper.cpp's own whisper-quantize built from the same source. `--shape silero`
// makes whisper.cpp's Silero VAD model instead (see scripts/lib/vad-writer.ts: a loudness
// gate with Silero's architecture).
//
//   node dist/scripts/make-test-model.js --shape test|tiny|base [--quant q5_0,q5_1,q8_0]
//        [--seed N] [--out-dir models/generated] [--multilingual] [--quantize-bin PATH]
//   node dist/scripts/make-test-model.js --shape silero [--seed N] [--out-dir models/generated]
//
// Output names follow whisper.cpp's: models/generated/ggml-tiny.en.bin (f16), ...-q5_1.bin;
// with --multilingual, models/ggml-tiny.bin; the VAD model is models/generated/ggml-silero-test.bin (generated models stay out of models/, where real ones go)
// (whisper.cpp's real ones are ggml-silero-v5.1.2.bin, ...). Each file gets a sidecar
// <file>.json (shape, seed, generator version, sha256); a file whose sidecar and checksum
// match is kept.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';

import { checkSeed, MODEL_SHAPES, whisperHparams, writeWhisperModel, type ModelShape, type WhisperHparams } from './lib/ggml-writer.js';
import { SILERO_VAD_HPARAMS, writeVadModel, type VadHparams } from './lib/vad-writer.js';
import { nativeTool, projectRoot } from '../src/paths.js';

export {
  MODEL_SHAPES,
  melFilterbank,
  whisperHparams,
  whisperTensorSpecs,
  whisperVocabulary,
  writeWhisperModel,
  type ModelShape,
  type TensorSpec,
  type WhisperHparams,
  type WriteWhisperModelOptions,
  type WrittenWhisperModel,
} from './lib/ggml-writer.js';
import { runIfMain } from './lib/cli.js';

/** Bump whenever the bytes written for the same options change: sidecars then stop matching. */
export const GENERATOR_VERSION = 1;

/** The same for the VAD model, which has its own writer. */
export const VAD_GENERATOR_VERSION = 1;

/** The file name of the generated Silero VAD model. */
export const VAD_MODEL_FILE = 'ggml-silero-test.bin';

/** What `--shape` accepts: the whisper shapes and `silero`, the VAD model. */
export const CLI_SHAPES: readonly string[] = [...MODEL_SHAPES, 'silero'];

export type Quant = 'q5_0' | 'q5_1' | 'q8_0';

export const QUANTS: readonly Quant[] = ['q5_0', 'q5_1', 'q8_0'];

const GENERATOR = 'earshot scripts/make-test-model';

/** The repository root. */
export const REPO_ROOT = projectRoot;

/** Path of one of whisper.cpp's tools built by scripts/build-native (whisper-cli, whisper-quantize, ...). */
export const nativeToolPath = nativeTool;

/** whisper.cpp's file name for a model: ggml-tiny.en.bin, ggml-tiny.en-q5_1.bin, ggml-tiny.bin (multilingual). */
export function modelFileName(shape: ModelShape, options: { multilingual?: boolean; quant?: Quant | null } = {}): string {
  const quant = options.quant ?? null;
  return `ggml-${shape}${options.multilingual === true ? '' : '.en'}${quant === null ? '' : `-${quant}`}.bin`;
}

/** Options of {@link makeTestModels}. */
export interface MakeTestModelsOptions {
  shape: ModelShape;
  /** Quantized variants to produce next to the f16 file. */
  quants?: readonly Quant[];
  /** Seed of the weights; default 1. */
  seed?: number;
  /** Default: models/generated/ at the repository root. */
  outDir?: string;
  multilingual?: boolean;
  /** Default: native/build/bin/whisper-quantize. */
  quantizeBin?: string;
  /** One line per file; default: none. */
  log?: (line: string) => void;
}

/** One file handled by {@link makeTestModels}. */
export interface MadeTestModel {
  path: string;
  quant: Quant | null;
  bytes: number;
  sha256: string;
  /** True when an up-to-date file was kept. */
  skipped: boolean;
  ms: number;
}

interface WhisperIdentity {
  generator: string;
  version: number;
  shape: ModelShape;
  multilingual: boolean;
  seed: number;
  quant: Quant | null;
  hparams: WhisperHparams;
  source: { file: string; sha256: string } | null;
}

interface VadIdentity {
  generator: string;
  version: number;
  shape: 'silero';
  seed: number;
  hparams: VadHparams;
}

type SidecarIdentity = WhisperIdentity | VadIdentity;

type Sidecar = SidecarIdentity & { bytes: number; sha256: string };

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

// The sidecar describes what was asked for, and the checksum proves the file is what the
// sidecar describes (a truncated or hand-edited file is regenerated).
async function upToDate(path: string, identity: SidecarIdentity): Promise<Sidecar | null> {
  let sidecar: Sidecar;
  try {
    sidecar = JSON.parse(await readFile(`${path}.json`, 'utf8')) as Sidecar;
  } catch {
    return null;
  }
  const { bytes, sha256, ...recorded } = sidecar;
  if (!isDeepStrictEqual(recorded, identity)) return null;
  try {
    if ((await stat(path)).size !== bytes) return null;
  } catch {
    return null;
  }
  return (await sha256File(path)) === sha256 ? sidecar : null;
}

async function writeSidecar(path: string, sidecar: Sidecar): Promise<void> {
  const temp = `${path}.json.tmp-${process.pid}`;
  await writeFile(temp, `${JSON.stringify(sidecar, null, 2)}\n`);
  await rename(temp, `${path}.json`);
}

// Runs `produce(tempPath)` unless the file is up to date, then renames into place.
async function produceFile(path: string, identity: SidecarIdentity, produce: (temp: string) => Promise<void>, quant: Quant | null): Promise<MadeTestModel> {
  const started = performance.now();
  const current = await upToDate(path, identity);
  if (current !== null) {
    return { path, quant, bytes: current.bytes, sha256: current.sha256, skipped: true, ms: performance.now() - started };
  }
  await rm(`${path}.json`, { force: true });
  const temp = `${path}.tmp-${process.pid}`;
  try {
    await produce(temp);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  const bytes = (await stat(path)).size;
  const sha256 = await sha256File(path);
  await writeSidecar(path, { ...identity, bytes, sha256 });
  return { path, quant, bytes, sha256, skipped: false, ms: performance.now() - started };
}

/**
 * Quantizes a ggml whisper model with whisper.cpp's whisper-quantize. Rejects with the
 * tool's last output lines when it fails.
 */
export async function quantizeModel(input: string, output: string, quant: Quant, quantizeBin = nativeToolPath('whisper-quantize')): Promise<void> {
  if (!QUANTS.includes(quant)) {
    throw new TypeError(`Expected one of ${QUANTS.join(', ')} for quant but received ${String(quant)}`);
  }
  if (!existsSync(quantizeBin)) {
    throw new Error(`whisper-quantize not found at ${quantizeBin}: build whisper.cpp's tools with scripts/build-native (npm run build:native)`);
  }
  await new Promise<void>((resolvePromise, reject) => {
    execFile(quantizeBin, [input, output, quant], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err === null) {
        resolvePromise();
        return;
      }
      const tail = `${stderr}\n${stdout}`.trim().split('\n').slice(-8).join('\n');
      reject(new Error(`whisper-quantize ${quant} failed for ${input}: ${err.message}\n${tail}`));
    });
  });
}

/**
 * Makes the f16 model of a shape and its quantized variants in `outDir`, skipping files
 * whose sidecar and checksum match. Files are written under a temporary name and renamed
 * when complete.
 */
export async function makeTestModels(options: MakeTestModelsOptions): Promise<MadeTestModel[]> {
  const { shape } = options;
  if (!MODEL_SHAPES.includes(shape)) {
    throw new TypeError(`Expected one of ${MODEL_SHAPES.join(', ')} for shape but received ${String(shape)}`);
  }
  const quants = [...new Set(options.quants ?? [])];
  for (const quant of quants) {
    if (!QUANTS.includes(quant)) throw new TypeError(`Expected one of ${QUANTS.join(', ')} for quant but received ${String(quant)}`);
  }
  const seed = options.seed ?? 1;
  const multilingual = options.multilingual === true;
  const outDir = resolve(options.outDir ?? join(REPO_ROOT, 'models', 'generated'));
  const log = options.log ?? ((): void => undefined);
  const hparams = whisperHparams(shape, { multilingual });
  await mkdir(outDir, { recursive: true });

  const results: MadeTestModel[] = [];
  const report = (made: MadeTestModel): void => {
    results.push(made);
    log(formatResult(made));
  };

  const baseName = modelFileName(shape, { multilingual });
  const basePath = join(outDir, baseName);
  const baseIdentity: SidecarIdentity = { generator: GENERATOR, version: GENERATOR_VERSION, shape, multilingual, seed, quant: null, hparams, source: null };
  const base = await produceFile(
    basePath,
    baseIdentity,
    async (temp) => {
      await writeWhisperModel(temp, { shape: hparams, seed });
    },
    null,
  );
  report(base);

  for (const quant of quants) {
    const path = join(outDir, modelFileName(shape, { multilingual, quant }));
    const identity: SidecarIdentity = { ...baseIdentity, quant, source: { file: baseName, sha256: base.sha256 } };
    report(await produceFile(path, identity, (temp) => quantizeModel(basePath, temp, quant, options.quantizeBin), quant));
  }
  return results;
}

/** Options of {@link makeVadTestModel}. */
export interface MakeVadTestModelOptions {
  /** Seed of the weights; default 1. */
  seed?: number;
  /** Default: models/generated/ at the repository root. */
  outDir?: string;
  /** One line for the file; default: none. */
  log?: (line: string) => void;
}

/**
 * Makes the Silero VAD model (outDir/ggml-silero-test.bin) unless its sidecar and checksum
 * match. For whisper.cpp's `vad_model_path` (earshot's `vadModelPath`, whisper-cli's --vad-model).
 */
export async function makeVadTestModel(options: MakeVadTestModelOptions = {}): Promise<MadeTestModel> {
  const seed = checkSeed(options.seed ?? 1);
  const outDir = resolve(options.outDir ?? join(REPO_ROOT, 'models', 'generated'));
  await mkdir(outDir, { recursive: true });
  const identity: VadIdentity = {
    generator: GENERATOR,
    version: VAD_GENERATOR_VERSION,
    shape: 'silero',
    seed,
    hparams: structuredClone(SILERO_VAD_HPARAMS) as VadHparams,
  };
  const made = await produceFile(
    join(outDir, VAD_MODEL_FILE),
    identity,
    async (temp) => {
      await writeVadModel(temp, { seed });
    },
    null,
  );
  options.log?.(formatResult(made));
  return made;
}

function formatResult(made: MadeTestModel): string {
  const shown = relative(process.cwd(), made.path) || made.path;
  const size = `${(made.bytes / 1e6).toFixed(1)} MB`;
  const seconds = `${(made.ms / 1000).toFixed(2)} s`;
  return `${shown}  ${size}  ${made.skipped ? `up to date (checked in ${seconds})` : `written in ${seconds}`}`;
}

const USAGE = `usage: node dist/scripts/make-test-model.js --shape ${MODEL_SHAPES.join('|')} [--quant ${QUANTS.join(',')}]
       [--seed N] [--out-dir DIR] [--multilingual] [--quantize-bin PATH]
       node dist/scripts/make-test-model.js --shape silero [--seed N] [--out-dir DIR]`;

class UsageError extends Error {}

type CliRequest = { kind: 'whisper'; options: MakeTestModelsOptions } | { kind: 'vad'; options: MakeVadTestModelOptions };

function parseCli(argv: string[]): CliRequest | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        shape: { type: 'string' },
        quant: { type: 'string' },
        seed: { type: 'string' },
        'out-dir': { type: 'string' },
        multilingual: { type: 'boolean' },
        'quantize-bin': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help === true) return 'help';
  if (v.shape === undefined || !CLI_SHAPES.includes(v.shape)) {
    throw new UsageError(`Expected one of ${CLI_SHAPES.join(', ')} for --shape but received ${v.shape ?? 'nothing'}`);
  }
  const quants = (v.quant ?? '')
    .split(',')
    .map((q) => q.trim())
    .filter((q) => q !== '');
  for (const q of quants) {
    if (!(QUANTS as readonly string[]).includes(q)) throw new UsageError(`Expected one of ${QUANTS.join(', ')} for --quant but received ${q}`);
  }
  let seed = 1;
  if (v.seed !== undefined) {
    seed = /^\d+$/.test(v.seed) ? Number(v.seed) : Number.NaN;
    if (!Number.isSafeInteger(seed) || seed > 0xffffffff) {
      throw new UsageError(`Expected an integer between 0 and 4294967295 for --seed but received ${v.seed}`);
    }
  }
  if (v.shape === 'silero') {
    // whisper-quantize handles whisper files only, and the VAD model has no language.
    for (const option of ['quant', 'multilingual', 'quantize-bin'] as const) {
      const value = v[option];
      if (value !== undefined) {
        throw new UsageError(`Expected no --${option} with --shape silero but received --${option}${typeof value === 'string' ? ` ${value}` : ''}`);
      }
    }
    const vadOptions: MakeVadTestModelOptions = { seed, log: (line) => console.log(line) };
    if (v['out-dir'] !== undefined) vadOptions.outDir = v['out-dir'];
    return { kind: 'vad', options: vadOptions };
  }
  const options: MakeTestModelsOptions = {
    shape: v.shape as ModelShape,
    quants: quants as Quant[],
    seed,
    multilingual: v.multilingual === true,
    log: (line) => console.log(line),
  };
  if (v['out-dir'] !== undefined) options.outDir = v['out-dir'];
  if (v['quantize-bin'] !== undefined) options.quantizeBin = v['quantize-bin'];
  return { kind: 'whisper', options };
}

async function main(argv: string[]): Promise<number> {
  let request;
  try {
    request = parseCli(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`make-test-model: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (request === 'help') {
    console.log(USAGE);
    return 0;
  }
  try {
    if (request.kind === 'vad') await makeVadTestModel(request.options);
    else await makeTestModels(request.options);
    return 0;
  } catch (err) {
    console.error(`make-test-model: ${(err as Error).message}`);
    return 1;
  }
}

await runIfMain(import.meta.url, main);
