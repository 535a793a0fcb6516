// Rigs a random-weight whisper model so that its decoder emits a given transcript for any
// audio: tests need what a real model would say (non-speech markers, profanity) and
// random weights say nonsense. The rig is weights only, so whisper.cpp's decoding runs as
// for any model — its logit filters (suppress_nst, the timestamp rules) included.
//
// How: the decoder's last MLP becomes a lookup table from the current token to the next.
// Every token of the script gets an embedding of its own zero-mean direction (tied
// embeddings: the same row scores it as an output). One hidden unit per link of the chain
// fires when its token is the input and writes the next token's direction, big, into the
// residual stream; one unit always writes the end-of-text direction, weaker, so that when
// whisper suppresses the next token (or the input is not in the script) decoding ends, as
// a real model's would rather than ramble. Everything else stays random and small.
//
// The chain is SOT, ⟨start⟩, tokens, ⟨end⟩, ⟨start⟩, …, ⟨end⟩, EOT. whisper.cpp ends a
// window's decoding on "text then one timestamp" by skipping the rest of the window, so the
// script is emitted once per 30 s window of audio. Each token may appear once only (the
// table is keyed by the input token); timestamps are whisper's tokens, 0.02 s apart.

import type { WhisperHparams } from './ggml-writer.js';

/** One segment the rigged model emits. */
export interface ScriptedSegment {
  /** Seconds, on whisper's 0.02 s grid; the first segment must start within 1 s. */
  start: number;
  end: number;
  /** The segment's tokens as whisper prints them (" word" starts a word), or raw bytes (a split UTF-8 character). */
  tokens: ReadonlyArray<string | Uint8Array>;
}

/** What the rigged model says for any audio: its segments, in order. */
export type DecoderScript = readonly ScriptedSegment[];

/** The vocabulary to write (the script's tokens added) and the weights to overwrite. */
export interface ScriptedWeights {
  vocabulary: Buffer[];
  /** Tensor name → [flat row-major index, value] pairs that replace the random values. */
  overrides: Map<string, Array<[number, number]>>;
}

// whisper.cpp's special token ids of an English-only vocabulary (src/whisper.cpp, whisper_vocab).
const EOT = 50256;
const SOT = 50257;
const TIMESTAMP_BEGIN = 50363;
const N_VOCAB_ENGLISH = 51864;

// Scales (see the header): script token embeddings, the next token's write, the EOT write.
const TOKEN_SCALE = 3;
const NEXT_SCALE = 16;
const EOT_SCALE = 8;

const gelu = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

function timestampToken(seconds: number, what: string): number {
  const steps = Math.round(seconds / 0.02);
  if (!Number.isFinite(seconds) || seconds < 0 || steps > 1500 || Math.abs(steps * 0.02 - seconds) > 1e-6) {
    throw new TypeError(`Expected seconds from 0 to 30 on a 0.02 s grid for ${what} but received ${String(seconds)}`);
  }
  return TIMESTAMP_BEGIN + steps;
}

/**
 * The vocabulary and weight overrides that make a model of `hparams` emit `script`.
 * Tokens missing from `vocabulary` replace its last invented tokens.
 * @throws TypeError when the script cannot be rigged (a multilingual vocabulary, a token
 *   twice, timestamps out of order, more tokens than the model has directions for)
 */
export function scriptDecoder(script: DecoderScript, hparams: WhisperHparams, vocabulary: readonly Buffer[]): ScriptedWeights {
  if (hparams.nVocab !== N_VOCAB_ENGLISH) {
    throw new TypeError(`Expected an English-only vocabulary (${N_VOCAB_ENGLISH}) for a scripted model but received ${hparams.nVocab}`);
  }
  if (script.length === 0) throw new TypeError('Expected at least one segment in the script but received none');
  const d = hparams.nTextState;
  // New tokens replace invented ones from the end of the vocabulary, never one the script uses.
  const words = [...vocabulary];
  const key = (token: string | Uint8Array): string => Buffer.from(token).toString('latin1');
  const ids = new Map(words.map((w, i) => [w.toString('latin1'), i]));
  const pieces = script.flatMap((segment) => segment.tokens);
  const used = new Set(pieces.map((p) => ids.get(key(p))));
  let free = words.length - 1;
  for (const piece of pieces) {
    if (Buffer.from(piece).length === 0) throw new TypeError('Expected non-empty tokens in the script but received an empty one');
    if (ids.has(key(piece))) continue;
    while (used.has(free)) free--;
    ids.delete(words[free]!.toString('latin1'));
    words[free] = Buffer.from(piece);
    ids.set(key(piece), free--);
  }
  const idOf = (token: string | Uint8Array): number => ids.get(key(token))!;

  const chain = [SOT];
  let last = -1;
  script.forEach((segment, i) => {
    const start = timestampToken(segment.start, `segment ${i}'s start`);
    const end = timestampToken(segment.end, `segment ${i}'s end`);
    if (i === 0 && segment.start > 1) throw new TypeError(`Expected the first segment to start within 1 s but received ${segment.start}`);
    if (start <= last || end <= start) throw new TypeError(`Expected segment ${i} to start after the previous one ended and to end after it starts`);
    if (segment.tokens.length === 0) throw new TypeError(`Expected tokens in segment ${i} but received none`);
    chain.push(start, ...segment.tokens.map(idOf), end);
    last = end;
  });
  chain.push(EOT);
  const scripted = new Set(chain.slice(0, -1));
  if (scripted.size !== chain.length - 1)
    throw new TypeError('Expected each token of the script (timestamps included) once, as the rig looks up the next token by the current one');

  // Zero-mean orthonormal directions (layer norm removes the mean): e_2k - e_2k+1.
  const tokensWithDirections = [...new Set(chain)];
  if (tokensWithDirections.length > d / 2) {
    throw new TypeError(
      `Expected at most ${d / 2} distinct tokens (timestamps, SOT and EOT included) for a model of state ${d} but received ${tokensWithDirections.length}`,
    );
  }
  const hidden = 4 * d;
  if (chain.length > hidden) throw new TypeError(`Expected at most ${hidden - 1} links in the script but received ${chain.length - 1}`);
  const direction = new Map(tokensWithDirections.map((token, k) => [token, k]));
  const along = (token: number, scale: number): Array<[number, number]> => {
    const k = direction.get(token)!;
    return [
      [2 * k, scale / Math.SQRT2],
      [2 * k + 1, -scale / Math.SQRT2],
    ];
  };

  const embedding: Array<[number, number]> = [];
  for (const token of tokensWithDirections) {
    const row = new Map<number, number>();
    for (let j = 0; j < d; j++) row.set(j, 0);
    for (const [j, v] of along(token, TOKEN_SCALE)) row.set(j, v);
    for (const [j, v] of row) embedding.push([token * d + j, v]);
  }

  // The last block's MLP: mlp.0 [4d, d] + bias [4d], GELU, mlp.2 [d, 4d]. The layer norm in
  // front of it scales a script token's input to about sqrt(d) along its direction.
  const block = `decoder.blocks.${hparams.nTextLayer - 1}.mlp`;
  const inputNorm = Math.sqrt(d);
  const threshold = inputNorm / 2;
  const firing = gelu(inputNorm - threshold);
  const w1: Array<[number, number]> = [];
  const b1: Array<[number, number]> = [];
  const w2: Array<[number, number]> = [];
  const unit = (h: number, input: Array<[number, number]>, bias: number, output: Array<[number, number]>): void => {
    const row = new Map<number, number>();
    for (let j = 0; j < d; j++) row.set(j, 0);
    for (const [j, v] of input) row.set(j, v);
    for (const [j, v] of row) w1.push([h * d + j, v]);
    b1.push([h, bias]);
    const column = new Map<number, number>();
    for (let j = 0; j < d; j++) column.set(j, 0);
    for (const [j, v] of output) column.set(j, v);
    for (const [j, v] of column) w2.push([j * hidden + h, v]);
  };
  for (let link = 0; link + 1 < chain.length; link++) {
    unit(link, along(chain[link]!, 1), -threshold, along(chain[link + 1]!, NEXT_SCALE / firing));
  }
  // Always on: gelu(1) of a unit that reads nothing.
  unit(chain.length - 1, [], 1, along(EOT, EOT_SCALE / gelu(1)));

  return {
    vocabulary: words,
    overrides: new Map([
      ['decoder.token_embedding.weight', embedding],
      [`${block}.0.weight`, w1],
      [`${block}.0.bias`, b1],
      [`${block}.2.weight`, w2],
    ]),
  };
}
