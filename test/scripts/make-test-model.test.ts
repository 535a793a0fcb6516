import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { makeTestModels, modelFileName, nativeToolPath, writeWhisperModel } from '../../scripts/make-test-model.js';

// The reader below is written from whisper.cpp's whisper_model_load and
// examples/quantize, independently of the writer, so that the two check each other.

const GGML_TYPE = { f32: 0, f16: 1, q5_0: 6, q5_1: 7, q8_0: 8 } as const;
// [values per block, bytes per block]
const BLOCK: Record<number, [number, number]> = { 0: [1, 4], 1: [1, 2], 6: [32, 22], 7: [32, 24], 8: [32, 34] };
const GGML_QNT_VERSION_FACTOR = 1000;
const GGML_QNT_VERSION = 2;
const FTYPE = { f16: 1, q5_0: 8, q5_1: 9, q8_0: 7 } as const;

interface ParsedTensor {
  name: string;
  ne: number[];
  type: number;
  offset: number;
  bytes: number;
}

interface ParsedModel {
  magic: number;
  hparams: number[];
  nMel: number;
  nFft: number;
  filters: Float32Array;
  tokens: Buffer[];
  tensors: ParsedTensor[];
}

function parseModel(file: Buffer): ParsedModel {
  let pos = 0;
  const i32 = (): number => {
    const v = file.readInt32LE(pos);
    pos += 4;
    return v;
  };
  const magic = file.readUInt32LE(0);
  pos = 4;
  const hparams = Array.from({ length: 11 }, i32);
  const nMel = i32();
  const nFft = i32();
  const filters = new Float32Array(nMel * nFft);
  for (let i = 0; i < filters.length; i++) filters[i] = file.readFloatLE(pos + i * 4);
  pos += filters.length * 4;
  const nTokens = i32();
  const tokens: Buffer[] = [];
  for (let i = 0; i < nTokens; i++) {
    const len = i32();
    tokens.push(file.subarray(pos, pos + len));
    pos += len;
  }
  const tensors: ParsedTensor[] = [];
  while (pos < file.length) {
    const nDims = i32();
    const nameLength = i32();
    const type = i32();
    const ne = Array.from({ length: nDims }, i32);
    const name = file.subarray(pos, pos + nameLength).toString('utf8');
    pos += nameLength;
    const block = BLOCK[type];
    if (block === undefined) throw new Error(`unknown tensor type ${type} for ${name}`);
    const elements = ne.reduce((a, b) => a * b, 1);
    const bytes = (elements / block[0]) * block[1];
    tensors.push({ name, ne, type, offset: pos, bytes });
    pos += bytes;
  }
  if (pos !== file.length) throw new Error(`tensor data runs past the end of the file (${pos} > ${file.length})`);
  return { magic, hparams, nMel, nFft, filters, tokens, tensors };
}

// What whisper_model_load creates for the test shape, in the converter's (checkpoint) order:
// name, ggml ne (innermost first), and whether the f16 file stores it as f32.
function expectedTensors(state: number, mels: number, audioCtx: number, textCtx: number, vocab: number, layers: number): [string, number[], boolean][] {
  const out: [string, number[], boolean][] = [];
  const attention = (p: string): void => {
    out.push([`${p}.query.weight`, [state, state], false], [`${p}.query.bias`, [state], true]);
    out.push([`${p}.key.weight`, [state, state], false]);
    out.push([`${p}.value.weight`, [state, state], false], [`${p}.value.bias`, [state], true]);
    out.push([`${p}.out.weight`, [state, state], false], [`${p}.out.bias`, [state], true]);
  };
  const ln = (p: string): void => {
    out.push([`${p}.weight`, [state], true], [`${p}.bias`, [state], true]);
  };
  const mlp = (p: string): void => {
    out.push([`${p}.mlp.0.weight`, [state, 4 * state], false], [`${p}.mlp.0.bias`, [4 * state], true]);
    out.push([`${p}.mlp.2.weight`, [4 * state, state], false], [`${p}.mlp.2.bias`, [state], true]);
    ln(`${p}.mlp_ln`);
  };
  out.push(['encoder.positional_embedding', [state, audioCtx], true]);
  out.push(['encoder.conv1.weight', [3, mels, state], false], ['encoder.conv1.bias', [1, state], true]);
  out.push(['encoder.conv2.weight', [3, state, state], false], ['encoder.conv2.bias', [1, state], true]);
  for (let i = 0; i < layers; i++) {
    attention(`encoder.blocks.${i}.attn`);
    ln(`encoder.blocks.${i}.attn_ln`);
    mlp(`encoder.blocks.${i}`);
  }
  ln('encoder.ln_post');
  out.push(['decoder.positional_embedding', [state, textCtx], true]);
  out.push(['decoder.token_embedding.weight', [state, vocab], false]);
  for (let i = 0; i < layers; i++) {
    attention(`decoder.blocks.${i}.attn`);
    ln(`decoder.blocks.${i}.attn_ln`);
    attention(`decoder.blocks.${i}.cross_attn`);
    ln(`decoder.blocks.${i}.cross_attn_ln`);
    mlp(`decoder.blocks.${i}`);
  }
  ln('decoder.ln');
  return out;
}

function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function tensorValues(file: Buffer, tensor: ParsedTensor): number[] {
  // Copied out, so the typed array views start aligned.
  const bytes = new Uint8Array(file.subarray(tensor.offset, tensor.offset + tensor.bytes)).buffer;
  if (tensor.type === GGML_TYPE.f32) return Array.from(new Float32Array(bytes));
  if (tensor.type === GGML_TYPE.f16) return Array.from(new Uint16Array(bytes), f16ToNumber);
  throw new Error(`cannot read values of type ${tensor.type}`);
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

// 2 s of 16 kHz mono PCM: a gliding tone over a little deterministic noise.
function testWav(): Buffer {
  const rate = 16000;
  const n = rate * 2;
  const wav = Buffer.alloc(44 + n * 2);
  wav.write('RIFF', 0, 'ascii');
  wav.writeUInt32LE(36 + n * 2, 4);
  wav.write('WAVEfmt ', 8, 'ascii');
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(rate, 24);
  wav.writeUInt32LE(rate * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36, 'ascii');
  wav.writeUInt32LE(n * 2, 40);
  let noise = 12345;
  for (let i = 0; i < n; i++) {
    noise = (Math.imul(noise, 1103515245) + 12345) >>> 0;
    const time = i / rate;
    const sample = 0.3 * Math.sin(2 * Math.PI * (200 + 300 * time) * time) + 0.02 * (noise / 2 ** 32 - 0.5);
    wav.writeInt16LE(Math.round(sample * 32767), 44 + i * 2);
  }
  return wav;
}

function run(bin: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

const dir = await mkdtemp(join(tmpdir(), 'earshot-make-test-model-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

let seed1Sha = '';

t.test('writes the test shape in the layout whisper.cpp reads', async (t) => {
  const path = join(dir, 'seed1.bin');
  const written = await writeWhisperModel(path, { shape: 'test', seed: 1 });
  const file = await readFile(path);
  seed1Sha = sha256(file);
  t.equal(written.bytes, file.length, 'reported size');
  t.equal(written.sha256, seed1Sha, 'reported sha256');

  const model = parseModel(file);
  t.equal(model.magic, 0x67676d6c, 'magic');
  // n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
  // n_text_state, n_text_head, n_text_layer, n_mels, ftype
  t.same(model.hparams, [51864, 1500, 64, 2, 1, 448, 64, 2, 1, 80, FTYPE.f16], 'hparams');

  t.equal(model.nMel, 80);
  t.equal(model.nFft, 201);
  t.ok(
    model.filters.every((v) => Number.isFinite(v) && v >= 0),
    'filters finite and non-negative',
  );
  let previousPeak = -1;
  for (let m = 0; m < 80; m++) {
    const row = model.filters.subarray(m * 201, (m + 1) * 201);
    const peak = row.indexOf(Math.max(...row));
    t.ok(row[peak]! > 0 && peak >= previousPeak, `filter ${m} is a triangle above the previous one`);
    previousPeak = peak;
  }
  // Entries of librosa.filters.mel(sr=16000, n_fft=400, n_mels=80), i.e. OpenAI's mel_filters.npz.
  for (const [m, k, v] of [
    [0, 1, 0.02486259490251541],
    [1, 2, 0.022871771827340126],
    [20, 20, 0.013890394],
    [40, 43, 0.014735566],
    [79, 192, 0.0031647119],
    [79, 199, 0.0004487590049393475],
  ] as const) {
    t.ok(Math.abs(model.filters[m * 201 + k]! - v) < 1e-7, `filter ${m} at bin ${k} is librosa's ${v} (got ${model.filters[m * 201 + k]})`);
  }

  t.equal(model.tokens.length, 50256, 'regular tokens (whisper.cpp adds the special ones)');
  const texts = model.tokens.map((b) => b.toString('latin1'));
  t.equal(new Set(texts).size, texts.length, 'tokens are unique');
  for (const required of [' ', ' -', " '", ' the', 'the']) t.ok(texts.includes(required), `vocabulary has ${JSON.stringify(required)}`);
  t.ok(
    model.tokens.every((b) => b.length > 0 && b.length <= 128),
    "token lengths fit whisper-quantize's buffer",
  );
  t.equal(texts.slice(0, 256).join('').length, 256, 'the first 256 tokens are the single bytes');

  const expected = expectedTensors(64, 80, 1500, 448, 51864, 1);
  t.equal(model.tensors.length, 10 + 1 + 15 + 24, 'tensor count: 11 + 15 per encoder layer + 24 per decoder layer');
  t.same(
    model.tensors.map((x) => [x.name, x.ne, x.type === GGML_TYPE.f32]),
    expected,
    "tensor names, shapes and types in the converter's order",
  );
  t.ok(
    model.tensors.every((x) => x.type === GGML_TYPE.f32 || x.type === GGML_TYPE.f16),
    'only f32 and f16 in the base file',
  );

  const byName = new Map(model.tensors.map((x) => [x.name, x]));
  const values = (name: string): number[] => tensorValues(file, byName.get(name)!);
  t.ok(
    values('encoder.ln_post.weight').every((v) => v === 1),
    'layer-norm weights are 1',
  );
  t.ok(
    values('decoder.blocks.0.mlp.0.bias').every((v) => v === 0),
    'biases are 0',
  );
  const pe = values('encoder.positional_embedding');
  t.same(pe.slice(0, 64), [...Array<number>(32).fill(0), ...Array<number>(32).fill(1)], 'position 0 is sin 0 | cos 0');
  t.ok(Math.abs(pe[64]! - Math.sin(1)) < 1e-6, 'position 1, channel 0 is sin 1');
  const te = values('decoder.token_embedding.weight');
  const mean = te.reduce((a, b) => a + b, 0) / te.length;
  const std = Math.sqrt(te.reduce((a, b) => a + (b - mean) ** 2, 0) / te.length);
  t.ok(te.every(Number.isFinite), 'token embedding is finite');
  t.ok(Math.abs(mean) < 1e-3 && Math.abs(std - 0.02) < 1e-3, `token embedding ~ N(0, 0.02) (mean ${mean}, std ${std})`);
});

t.test('is deterministic per seed', async (t) => {
  const again = await writeWhisperModel(join(dir, 'seed1-again.bin'), { shape: 'test', seed: 1 });
  const other = await writeWhisperModel(join(dir, 'seed2.bin'), { shape: 'test', seed: 2 });
  t.equal(again.sha256, seed1Sha, 'same seed, same bytes');
  t.not(other.sha256, seed1Sha, 'another seed, other bytes');
  t.equal(other.bytes, again.bytes, 'same size');
  await t.rejects(writeWhisperModel(join(dir, 'bad.bin'), { shape: 'test', seed: -1 }), /Expected an integer between 0 and 4294967295 for seed/);
});

t.test('makes quantized files that whisper.cpp loads and runs', async (t) => {
  const quantizeBin = nativeToolPath('whisper-quantize');
  const cliBin = nativeToolPath('whisper-cli');
  t.ok(existsSync(quantizeBin) && existsSync(cliBin), `whisper.cpp tools are built (${quantizeBin}, ${cliBin}); run npm run build:native`);

  const outDir = join(dir, 'models');
  const lines: string[] = [];
  const made = await makeTestModels({ shape: 'test', quants: ['q5_0', 'q5_1'], seed: 1, outDir, log: (l) => lines.push(l) });
  t.same(
    made.map((m) => [m.path, m.quant, m.skipped]),
    [
      [join(outDir, 'ggml-test.en.bin'), null, false],
      [join(outDir, 'ggml-test.en-q5_0.bin'), 'q5_0', false],
      [join(outDir, 'ggml-test.en-q5_1.bin'), 'q5_1', false],
    ],
    'whisper.cpp file names',
  );
  t.equal(modelFileName('tiny', { quant: 'q5_1' }), 'ggml-tiny.en-q5_1.bin');
  t.equal(modelFileName('tiny', { multilingual: true }), 'ggml-tiny.bin');
  t.equal(lines.length, 3, 'one line per file');
  t.match(lines[0], /ggml-test\.en\.bin +8\.\d MB +written in \d+\.\d\d s/);
  t.equal(made[0]!.sha256, seed1Sha, 'the f16 file is what writeWhisperModel writes');

  for (const m of made) {
    const file = await readFile(m.path);
    t.equal(sha256(file), m.sha256, `${m.path}: sha256`);
    t.equal(file.length, m.bytes, `${m.path}: size`);
    const sidecar = JSON.parse(await readFile(`${m.path}.json`, 'utf8')) as Record<string, unknown>;
    t.match(sidecar, { shape: 'test', seed: 1, quant: m.quant, sha256: m.sha256, bytes: m.bytes, version: Number }, `${m.path}: sidecar`);
    if (m.quant === null) continue;

    const model = parseModel(file);
    t.equal(model.hparams[10], GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + FTYPE[m.quant], `${m.quant}: ftype with quantization version`);
    t.equal(model.tensors.length, 50, `${m.quant}: tensor count`);
    // whisper-quantize quantizes 2-D tensors except conv biases and positional embeddings;
    // the 3-D conv weights stay f16 and 1-D tensors f32.
    const kept = /^encoder\.conv[12]\.bias$|positional_embedding$/;
    const wrong = model.tensors.filter((x) => {
      const want = x.ne.length === 3 ? GGML_TYPE.f16 : x.ne.length === 2 && !kept.test(x.name) ? GGML_TYPE[m.quant!] : GGML_TYPE.f32;
      return x.type !== want;
    });
    t.same(
      wrong.map((x) => x.name),
      [],
      `${m.quant}: tensor types`,
    );
  }

  const again = await makeTestModels({ shape: 'test', quants: ['q5_0', 'q5_1'], seed: 1, outDir });
  t.same(
    again.map((m) => m.skipped),
    [true, true, true],
    'a second run keeps up-to-date files',
  );

  // A damaged file is regenerated, and so is what was derived from it.
  const q50 = join(outDir, 'ggml-test.en-q5_0.bin');
  const damaged = await readFile(q50);
  damaged[damaged.length - 1] ^= 0xff;
  await writeFile(q50, damaged);
  const repaired = await makeTestModels({ shape: 'test', quants: ['q5_0'], seed: 1, outDir });
  t.same(
    repaired.map((m) => m.skipped),
    [true, false],
    'a damaged file is made again',
  );
  t.equal(sha256(await readFile(q50)), made[1]!.sha256, 'quantizing is deterministic too');
  const reseeded = await makeTestModels({ shape: 'test', quants: ['q5_0'], seed: 7, outDir });
  t.same(
    reseeded.map((m) => m.skipped),
    [false, false],
    'another seed replaces the files',
  );
  t.not(reseeded[0]!.sha256, seed1Sha);
  t.equal(existsSync(join(outDir, `ggml-test.en.bin.tmp-${process.pid}`)), false, 'no temporary file left');

  const wav = join(dir, 'tone.wav');
  await writeFile(wav, testWav());
  for (const m of [...reseeded, made[2]!]) {
    // No temperature fallback: random weights would otherwise retry every temperature.
    const result = await run(cliBin, ['-m', m.path, '-f', wav, '-t', '2', '-nf']);
    t.equal(result.code, 0, `whisper-cli transcribes with ${m.path}`, { stderr: result.stderr.split('\n').slice(-15).join('\n') });
    t.match(result.stderr, /whisper_model_load: model size/, `whisper-cli loaded ${m.path}`);
    t.notMatch(result.stderr, /error|failed/i, `no errors from whisper-cli for ${m.path}`);
  }
  t.ok((await stat(join(outDir, 'ggml-test.en-q5_1.bin'))).size < (await stat(join(outDir, 'ggml-test.en.bin'))).size / 2, 'q5_1 is less than half of f16');
});

t.test('a scripted model says its script for any audio, through whisper-cli too; the rig refuses what it cannot do', async (t) => {
  const script = [
    { start: 0, end: 1, tokens: [' Hello', ' scripted', ' world', '.'] },
    { start: 1.02, end: 2, tokens: [' [', 'MUSIC', ']'] },
  ];
  const path = join(dir, 'scripted.bin');
  const written = await writeWhisperModel(path, { shape: 'test', seed: 1, script });
  const model = parseModel(await readFile(path));
  t.equal(model.tokens.length, 50256, 'as many regular tokens as before');
  t.ok(
    model.tokens.some((tok) => tok.toString() === ' scripted'),
    'a missing token takes the place of an invented one',
  );
  t.not(written.sha256, seed1Sha);

  const wav = join(dir, 'tone.wav');
  await writeFile(wav, testWav());
  const plain = await run(nativeToolPath('whisper-cli'), ['-m', path, '-f', wav, '-t', '2', '-nf']);
  t.equal(plain.code, 0);
  t.match(plain.stdout, /\[00:00:00\.000 --> 00:00:01\.000\] +Hello scripted world\.\n\[00:00:01\.020 --> 00:00:02\.000\] +\[MUSIC\]/);
  const suppressed = await run(nativeToolPath('whisper-cli'), ['-m', path, '-f', wav, '-t', '2', '-nf', '-sns']);
  t.notMatch(suppressed.stdout, /MUSIC/, "whisper's non-speech suppression acts on a scripted model as on any");
  t.match(suppressed.stdout, /Hello scripted world\./);

  const refuses = (options: Parameters<typeof writeWhisperModel>[1], message: RegExp) =>
    t.rejects(writeWhisperModel(join(dir, 'refused.bin'), options), message);
  const segment = { start: 0, end: 1, tokens: [' a'] };
  await refuses({ shape: 'test', multilingual: true, script: [segment] }, /English-only vocabulary/);
  await refuses({ shape: 'test', script: [] }, /at least one segment/);
  await refuses({ shape: 'test', script: [{ ...segment, tokens: [' a', ' b', ' a'] }] }, /each token of the script/);
  await refuses({ shape: 'test', script: [{ ...segment, tokens: [''] }] }, /non-empty tokens/);
  await refuses({ shape: 'test', script: [{ ...segment, tokens: [] }] }, /tokens in segment 0/);
  await refuses({ shape: 'test', script: [{ ...segment, start: 1.5, end: 2 }] }, /start within 1 s/);
  await refuses({ shape: 'test', script: [{ ...segment, end: 1.01 }] }, /0\.02 s grid for segment 0's end/);
  await refuses({ shape: 'test', script: [segment, { ...segment, tokens: [' b'] }] }, /segment 1 to start after the previous one ended/);
  const many = Array.from({ length: 40 }, (_, i) => ` w${i}`);
  await refuses({ shape: 'test', script: [{ ...segment, tokens: many }] }, /at most 32 distinct tokens/);
});
