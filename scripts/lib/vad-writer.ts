// Writes a Silero VAD model in the ggml layout of whisper.cpp's
// models/convert-silero-vad-to-ggml.py, with seeded random weights. The reader this must
// satisfy is whisper_vad_init_with_params (src/whisper.cpp): magic, model type and
// version, window and context sizes, the encoder's channels and kernels, LSTM and final
// conv sizes, then the tensors. The reader checks each tensor's name, shape and byte size
// but ignores the order; the order below is the converter's.
//
// Random weights alone would make the speech probability an arbitrary function of the
// audio. This model is shaped so that it behaves like a loudness gate instead, which tests
// can rely on:
// - the STFT basis is the real one (a Hann-windowed DFT, as in Silero), so the encoder
//   sees spectral magnitudes;
// - the encoder convolutions have random non-negative weights and zero biases, so every
//   channel is a random positive mix of magnitudes: zero for digital silence, growing in
//   proportion with the signal;
// - the LSTM's cell-candidate gate reads those features through random positive weights
//   against a negative bias: a hidden unit turns positive only above a loudness
//   threshold. The other gates and the recurrent weights are small and random, with
//   biases that keep the input and output gates open and the forget gate nearly closed
//   (a cell keeps about 5% of its previous value), so the state follows the current
//   32 ms window;
// - the final layer sums the positive part of the hidden state with random positive
//   weights against a negative bias.
// Digital silence gives a speech probability of sigmoid(-4) ≈ 0.018 in every window; a
// window whose mean spectral magnitude is twice VAD_LOUDNESS_THRESHOLD or more (a sine of
// amplitude 0.2, white noise of RMS 0.02, JFK's voice in whisper.cpp's jfk.mp3) gives 0.99.
// At the threshold itself (a sine of amplitude 0.1, white noise at -40 dBFS) it flickers.
// On jfk.mp3, whisper.cpp then finds speech at 0.29-2.14, 3.27-3.74, 3.97-4.35, 5.38-7.55,
// 8.16-10.40 and 10.69-11.01 s: JFK's four phrases, which the real model finds as four
// segments (whisper.cpp's tests/test-vad.cpp), with two split or trailing ones more.

import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';

import { checkSeed, fnv1a32, GGML_MAGIC, int32s, mix32, toFloat16Bits } from './ggml-writer.js';

/** One convolution of the encoder: channels in and out, kernel size. */
export interface VadEncoderLayer {
  in: number;
  out: number;
  kernel: number;
}

/** The header of a ggml Silero VAD file, after the magic. */
export interface VadHparams {
  type: string;
  version: [number, number, number];
  /** Samples per VAD window (32 ms at 16 kHz). */
  nWindow: number;
  /** Context samples Silero prepends to a window; whisper.cpp reads it but does not use it. */
  nContext: number;
  encoder: VadEncoderLayer[];
  lstmInput: number;
  lstmHidden: number;
  finalConvIn: number;
  finalConvOut: number;
}

/**
 * Silero v5's hyperparameters, as the converter writes them. whisper.cpp's graph hard-codes
 * most of them (the 258x256 STFT basis, 128 and 64 channels), so they are not options.
 */
export const SILERO_VAD_HPARAMS: Readonly<VadHparams> = {
  type: 'silero-16k',
  version: [5, 1, 2],
  nWindow: 512,
  nContext: 64,
  encoder: [
    { in: 129, out: 128, kernel: 3 },
    { in: 128, out: 64, kernel: 3 },
    { in: 64, out: 64, kernel: 3 },
    { in: 64, out: 128, kernel: 3 },
  ],
  lstmInput: 128,
  lstmHidden: 128,
  finalConvIn: 128,
  finalConvOut: 1,
};

// Silero's STFT: 256-sample windows, 129 bins (whisper.cpp's graph uses the LSTM input size, 128, as the hop).
const FILTER_LENGTH = 256;
const N_BINS = FILTER_LENGTH / 2 + 1;

/**
 * Mean spectral magnitude (over the 129 STFT bins of a 256-sample Hann window) at which the
 * LSTM's hidden units switch on. A sine of amplitude A has a mean magnitude of about A, white
 * noise of RMS σ about 8.7σ.
 */
export const VAD_LOUDNESS_THRESHOLD = 0.1;

// With every row of the encoder summing to one, a constant input would reach the time step
// whisper.cpp's graph keeps (the first) scaled by 13/81: each convolution's zero padding
// drops a tap at the edges, leaving 2/3 after the first layer, (2/3 + 1)/3 = 5/9 after the
// second, (5/9 + 8/9)/3 = 13/27 after the third, and the last sees one tap in three.
const ENCODER_GAIN = 13 / 81;
// Preactivation of the cell-candidate gate: G * feature - CELL_BIAS, zero at the threshold.
const CELL_BIAS = 4;
const CELL_GAIN = CELL_BIAS / (ENCODER_GAIN * VAD_LOUDNESS_THRESHOLD);
const GATE_OPEN = 3;
const GATE_STD = 0.02;
const RECURRENT_STD = 0.02;
const FINAL_SUM = 12;
const FINAL_BIAS = -4;

/** ggml tensor types as stored in the file (GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1). */
export type VadTensorType = 'f32' | 'f16';

/** One tensor as written: name, PyTorch shape after the converter's squeeze (outermost first), type, values. */
export interface VadTensor {
  name: string;
  shape: number[];
  type: VadTensorType;
  values: Float32Array;
}

/** Options of {@link vadTensors} and {@link writeVadModel}. */
export interface VadModelOptions {
  /** Seed of the weights (an unsigned 32-bit integer); default 1. */
  seed?: number;
}

/** What {@link writeVadModel} wrote. */
export interface WrittenVadModel {
  path: string;
  hparams: VadHparams;
  seed: number;
  bytes: number;
  sha256: string;
  tensors: number;
}

// ---------------------------------------------------------------------------------------
// Random numbers: one splitmix32 stream per (seed, tensor name); normal-like values are
// Irwin-Hall sums of four uniforms, so every value comes from integer arithmetic and
// Math.sqrt only and the same seed gives the same bytes on every machine.

class Stream {
  private state: number;

  constructor(seed: number, name: string) {
    this.state = (mix32(seed ^ 0x5ad0) ^ fnv1a32(name)) | 0;
  }

  /** Uniform in (0, 1). */
  uniform(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    return (mix32(this.state) + 0.5) / 4294967296;
  }

  /** Mean 0, variance 1, within ±3.47. */
  normal(): number {
    return (this.uniform() + this.uniform() + this.uniform() + this.uniform() - 2) * Math.sqrt(3);
  }
}

function normals(seed: number, name: string, count: number, std: number): Float32Array {
  const rng = new Stream(seed, name);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = rng.normal() * std;
  return out;
}

// Rows of random positive weights (uniform in (0.5, 1.5)), each scaled to sum to `sum`:
// every output is a random weighted mean of its inputs, times `sum`.
function positiveRows(seed: number, name: string, rows: number, rowLength: number, sum: number): Float32Array {
  const rng = new Stream(seed, name);
  const out = new Float32Array(rows * rowLength);
  const row = new Float64Array(rowLength);
  for (let r = 0; r < rows; r++) {
    let total = 0;
    for (let i = 0; i < rowLength; i++) {
      row[i] = 0.5 + rng.uniform();
      total += row[i]!;
    }
    for (let i = 0; i < rowLength; i++) out[r * rowLength + i] = (row[i]! * sum) / total;
  }
  return out;
}

/**
 * Silero's STFT basis: rows 0..128 the real and rows 129..257 the imaginary part of a
 * 256-point DFT (numpy.fft.fft of the identity), times a periodic Hann window.
 */
export function stftForwardBasis(): Float32Array {
  const out = new Float32Array(2 * N_BINS * FILTER_LENGTH);
  for (let n = 0; n < FILTER_LENGTH; n++) {
    const window = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / FILTER_LENGTH);
    for (let k = 0; k < N_BINS; k++) {
      // k * n mod 256 keeps the angle small and the values exact at multiples of π/2.
      const angle = (2 * Math.PI * ((k * n) % FILTER_LENGTH)) / FILTER_LENGTH;
      out[k * FILTER_LENGTH + n] = Math.cos(angle) * window;
      out[(N_BINS + k) * FILTER_LENGTH + n] = -Math.sin(angle) * window;
    }
  }
  return out;
}

/** The tensors of the model in the converter's order, with the converter's types. */
export function vadTensors(options: VadModelOptions = {}): VadTensor[] {
  const seed = checkSeed(options.seed ?? 1);
  const h = SILERO_VAD_HPARAMS;
  const tensors: VadTensor[] = [];
  h.encoder.forEach((layer, i) => {
    const name = `_model.encoder.${i}.reparam_conv`;
    tensors.push({
      name: `${name}.weight`,
      shape: [layer.out, layer.in, layer.kernel],
      type: 'f16',
      values: positiveRows(seed, `${name}.weight`, layer.out, layer.in * layer.kernel, 1),
    });
    tensors.push({ name: `${name}.bias`, shape: [layer.out], type: 'f32', values: new Float32Array(layer.out) });
  });

  const hidden = h.lstmHidden;
  // PyTorch's LSTM gate order: input, forget, cell candidate, output.
  const weightIh = normals(seed, '_model.decoder.rnn.weight_ih', 4 * hidden * h.lstmInput, GATE_STD);
  weightIh.set(positiveRows(seed, '_model.decoder.rnn.weight_ih.cell', hidden, h.lstmInput, CELL_GAIN), 2 * hidden * h.lstmInput);
  const biasIh = new Float32Array(4 * hidden);
  biasIh.fill(GATE_OPEN, 0, hidden);
  biasIh.fill(-GATE_OPEN, hidden, 2 * hidden);
  biasIh.fill(-CELL_BIAS, 2 * hidden, 3 * hidden);
  biasIh.fill(GATE_OPEN, 3 * hidden, 4 * hidden);
  tensors.push(
    { name: '_model.decoder.rnn.weight_ih', shape: [4 * hidden, h.lstmInput], type: 'f32', values: weightIh },
    {
      name: '_model.decoder.rnn.weight_hh',
      shape: [4 * hidden, hidden],
      type: 'f32',
      values: normals(seed, '_model.decoder.rnn.weight_hh', 4 * hidden * hidden, RECURRENT_STD),
    },
    { name: '_model.decoder.rnn.bias_ih', shape: [4 * hidden], type: 'f32', values: biasIh },
    {
      name: '_model.decoder.rnn.bias_hh',
      shape: [4 * hidden],
      type: 'f32',
      values: normals(seed, '_model.decoder.rnn.bias_hh', 4 * hidden, RECURRENT_STD),
    },
  );

  // The converter squeezes the 1x128x1 conv weight to [128] and the [1] bias to a scalar.
  tensors.push(
    {
      name: '_model.decoder.decoder.2.weight',
      shape: [h.finalConvIn],
      type: 'f16',
      values: positiveRows(seed, '_model.decoder.decoder.2.weight', 1, h.finalConvIn, FINAL_SUM),
    },
    { name: '_model.decoder.decoder.2.bias', shape: [], type: 'f32', values: Float32Array.of(FINAL_BIAS) },
  );

  tensors.push({ name: '_model.stft.forward_basis_buffer', shape: [2 * N_BINS, 1, FILTER_LENGTH], type: 'f16', values: stftForwardBasis() });
  return tensors;
}

function tensorBytes(tensor: VadTensor): Buffer {
  const name = Buffer.from(tensor.name, 'utf8');
  const ne = [...tensor.shape].reverse(); // ggml's ne[0] is the innermost dimension
  const header = int32s([ne.length, name.length, tensor.type === 'f16' ? 1 : 0, ...ne]);
  let data: Buffer;
  if (tensor.type === 'f16') {
    const half = new Uint16Array(tensor.values.length);
    for (let i = 0; i < half.length; i++) half[i] = toFloat16Bits(tensor.values[i]!);
    data = Buffer.from(half.buffer);
  } else {
    data = Buffer.from(tensor.values.buffer, tensor.values.byteOffset, tensor.values.byteLength);
  }
  return Buffer.concat([header, name, data]);
}

function fileBytes(tensors: VadTensor[]): Buffer {
  if (endianness() !== 'LE') throw new Error('vad-writer: only little-endian hosts are supported');
  const h = SILERO_VAD_HPARAMS;
  const type = Buffer.from(h.type, 'utf8');
  return Buffer.concat([
    int32s([GGML_MAGIC, type.length]),
    type,
    int32s([...h.version, h.nWindow, h.nContext, h.encoder.length]),
    int32s(h.encoder.flatMap((layer) => [layer.in, layer.out, layer.kernel])),
    int32s([h.lstmInput, h.lstmHidden, h.finalConvIn, h.finalConvOut]),
    ...tensors.map(tensorBytes),
  ]);
}

/**
 * Writes a Silero VAD model with random weights to `path` (the layout of whisper.cpp's
 * convert-silero-vad-to-ggml.py). Overwrites `path`; callers wanting atomicity write to a
 * temporary name.
 */
export async function writeVadModel(path: string, options: VadModelOptions = {}): Promise<WrittenVadModel> {
  const seed = checkSeed(options.seed ?? 1);
  const tensors = vadTensors({ seed });
  const bytes = fileBytes(tensors);
  await writeFile(path, bytes);
  return {
    path,
    hparams: structuredClone(SILERO_VAD_HPARAMS) as VadHparams,
    seed,
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    tensors: tensors.length,
  };
}
