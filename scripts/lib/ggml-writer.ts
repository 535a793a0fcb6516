// Writes whisper models in the ggml layout of whisper.cpp's models/convert-pt-to-ggml.py,
// with the real architecture and seeded random weights. whisper.cpp's whisper_model_load
// (src/whisper.cpp) is the reader this must satisfy: tensor names, shapes and types below
// follow it, and the order follows OpenAI's checkpoint (state_dict order), as the
// converter writes it.

import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';

import { scriptDecoder, type DecoderScript } from './scripted-decoder.js';

/** The eleven hyperparameters of a whisper ggml file, without ftype. */
export interface WhisperHparams {
  nVocab: number;
  nAudioCtx: number;
  nAudioState: number;
  nAudioHead: number;
  nAudioLayer: number;
  nTextCtx: number;
  nTextState: number;
  nTextHead: number;
  nTextLayer: number;
  nMels: number;
}

export type ModelShape = 'test' | 'tiny' | 'base';

export const MODEL_SHAPES: readonly ModelShape[] = ['test', 'tiny', 'base'];

/** English-only vocabulary size; multilingual models have one more token (51865). */
export const N_VOCAB_ENGLISH = 51864;
export const N_VOCAB_MULTILINGUAL = 51865;

// audio ctx 1500 and text ctx 448 are fixed by whisper.cpp's decoding (30 s windows,
// timestamp tokens), so even the `test` shape keeps them.
const SHAPE_DIMS: Record<ModelShape, { state: number; heads: number; layers: number }> = {
  test: { state: 64, heads: 2, layers: 1 },
  tiny: { state: 384, heads: 6, layers: 4 },
  base: { state: 512, heads: 8, layers: 6 },
};

/** Hyperparameters of a named shape (tiny and base are OpenAI's). */
export function whisperHparams(shape: ModelShape, options: { multilingual?: boolean } = {}): WhisperHparams {
  const dims = SHAPE_DIMS[shape];
  if (dims === undefined) {
    throw new TypeError(`Expected one of ${MODEL_SHAPES.join(', ')} for shape but received ${String(shape)}`);
  }
  return {
    nVocab: options.multilingual === true ? N_VOCAB_MULTILINGUAL : N_VOCAB_ENGLISH,
    nAudioCtx: 1500,
    nAudioState: dims.state,
    nAudioHead: dims.heads,
    nAudioLayer: dims.layers,
    nTextCtx: 448,
    nTextState: dims.state,
    nTextHead: dims.heads,
    nTextLayer: dims.layers,
    nMels: 80,
  };
}

/** ggml tensor types as stored in the file (GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1). */
export type TensorType = 'f32' | 'f16';

type TensorInit = { kind: 'normal'; std: number } | { kind: 'constant'; value: number } | { kind: 'sinusoids'; scale: number };

/** One tensor as written: name, PyTorch shape (outermost first), type and how it is filled. */
export interface TensorSpec {
  name: string;
  shape: number[];
  type: TensorType;
  init: TensorInit;
}

// GPT-2 style init for linear layers; convolutions get 1/sqrt(fan_in) so that the audio
// still moves the encoder state, which otherwise the positional embedding would drown.
const LINEAR_STD = 0.02;

/**
 * The tensors of a whisper model in the converter's order, with the types the converter
 * picks for an f16 file: 1-D tensors, conv biases and positional embeddings f32, the rest f16.
 */
export function whisperTensorSpecs(h: WhisperHparams): TensorSpec[] {
  const specs: TensorSpec[] = [];
  const weight = (name: string, shape: number[], std = LINEAR_STD): void => {
    specs.push({ name, shape, type: 'f16', init: { kind: 'normal', std } });
  };
  const vector = (name: string, size: number, value: number): void => {
    specs.push({ name, shape: [size], type: 'f32', init: { kind: 'constant', value } });
  };
  const layerNorm = (prefix: string, size: number): void => {
    vector(`${prefix}.weight`, size, 1);
    vector(`${prefix}.bias`, size, 0);
  };
  const attention = (prefix: string, size: number): void => {
    weight(`${prefix}.query.weight`, [size, size]);
    vector(`${prefix}.query.bias`, size, 0);
    weight(`${prefix}.key.weight`, [size, size]);
    weight(`${prefix}.value.weight`, [size, size]);
    vector(`${prefix}.value.bias`, size, 0);
    weight(`${prefix}.out.weight`, [size, size]);
    vector(`${prefix}.out.bias`, size, 0);
  };
  const mlp = (prefix: string, size: number): void => {
    weight(`${prefix}.mlp.0.weight`, [4 * size, size]);
    vector(`${prefix}.mlp.0.bias`, 4 * size, 0);
    weight(`${prefix}.mlp.2.weight`, [size, 4 * size]);
    vector(`${prefix}.mlp.2.bias`, size, 0);
    layerNorm(`${prefix}.mlp_ln`, size);
  };

  const a = h.nAudioState;
  specs.push({ name: 'encoder.positional_embedding', shape: [h.nAudioCtx, a], type: 'f32', init: { kind: 'sinusoids', scale: 1 } });
  weight('encoder.conv1.weight', [a, h.nMels, 3], 1 / Math.sqrt(h.nMels * 3));
  specs.push({ name: 'encoder.conv1.bias', shape: [a, 1], type: 'f32', init: { kind: 'constant', value: 0 } });
  weight('encoder.conv2.weight', [a, a, 3], 1 / Math.sqrt(a * 3));
  specs.push({ name: 'encoder.conv2.bias', shape: [a, 1], type: 'f32', init: { kind: 'constant', value: 0 } });
  for (let i = 0; i < h.nAudioLayer; i++) {
    const p = `encoder.blocks.${i}`;
    attention(`${p}.attn`, a);
    layerNorm(`${p}.attn_ln`, a);
    mlp(p, a);
  }
  layerNorm('encoder.ln_post', a);

  const t = h.nTextState;
  // OpenAI's decoder positions are learned; small sinusoids keep them distinct without
  // swamping the token embedding (std 0.02).
  specs.push({ name: 'decoder.positional_embedding', shape: [h.nTextCtx, t], type: 'f32', init: { kind: 'sinusoids', scale: LINEAR_STD } });
  weight('decoder.token_embedding.weight', [h.nVocab, t]);
  for (let i = 0; i < h.nTextLayer; i++) {
    const p = `decoder.blocks.${i}`;
    attention(`${p}.attn`, t);
    layerNorm(`${p}.attn_ln`, t);
    attention(`${p}.cross_attn`, t);
    layerNorm(`${p}.cross_attn_ln`, t);
    mlp(p, t);
  }
  layerNorm('decoder.ln', t);
  return specs;
}

// ---------------------------------------------------------------------------------------
// Mel filterbank

/**
 * librosa.filters.mel(sr, n_fft, n_mels) with its defaults (Slaney mel scale, Slaney area
 * normalisation, fmin 0, fmax sr/2): what OpenAI's mel_filters.npz holds. Row-major
 * [nMels, nFft/2 + 1].
 */
export function melFilterbank(nMels: number, sampleRate = 16000, nFft = 400): Float32Array {
  const nBins = Math.floor(nFft / 2) + 1;
  const fSp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fSp;
  const logStep = Math.log(6.4) / 27;
  const hzToMel = (hz: number): number => (hz >= minLogHz ? minLogMel + Math.log(hz / minLogHz) / logStep : hz / fSp);
  const melToHz = (mel: number): number => (mel >= minLogMel ? minLogHz * Math.exp(logStep * (mel - minLogMel)) : fSp * mel);

  const melMax = hzToMel(sampleRate / 2);
  const melF: number[] = [];
  for (let i = 0; i < nMels + 2; i++) melF.push(melToHz((melMax * i) / (nMels + 1)));

  const out = new Float32Array(nMels * nBins);
  for (let m = 0; m < nMels; m++) {
    const lowerWidth = melF[m + 1]! - melF[m]!;
    const upperWidth = melF[m + 2]! - melF[m + 1]!;
    const enorm = 2 / (melF[m + 2]! - melF[m]!);
    for (let k = 0; k < nBins; k++) {
      const f = (k * sampleRate) / 2 / (nBins - 1);
      const lower = (f - melF[m]!) / lowerWidth;
      const upper = (melF[m + 2]! - f) / upperWidth;
      out[m * nBins + k] = Math.max(0, Math.min(lower, upper)) * enorm;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Vocabulary

/** Regular (non-special) tokens: whisper.cpp adds the special and timestamp tokens itself. */
export function regularTokenCount(nVocab: number): number {
  return nVocab >= N_VOCAB_MULTILINGUAL ? 50257 : 50256;
}

// GPT-2's byte order (bytes_to_unicode): printable bytes first, then the rest.
function gpt2ByteOrder(): number[] {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  for (let b = 0; b < 256; b++) if (!bytes.includes(b)) bytes.push(b);
  return bytes;
}

const COMMON_WORDS = (
  'the of and to a in is that it for was on are as with he they be at one have this from ' +
  'or had by not word but what some we can out other were all there when up use your how ' +
  'said an each she which do their time if will way about many then them write would like ' +
  'so these her long make thing see him two has look more day could go come did number ' +
  'sound no most people my over know water than call first who may down side been now ' +
  'find any new work part take get place made live where after back little only round man ' +
  'year came show every good me give our under name very through just form sentence great ' +
  'think say help low line differ turn cause much mean before move right boy old too same ' +
  'tell does set three want air well also play small end put home read hand port large ' +
  'spell add even land here must big high such follow act why ask men change went light ' +
  'kind off need house picture try us again animal point mother world near build self ' +
  'earth father head stand own page should country found answer school grow study still ' +
  'learn plant cover food sun four between state keep eye never last let thought city tree ' +
  'cross farm hard start might story saw far sea draw left late run while press close ' +
  'night real life few north open seem together next white children begin got walk example ' +
  'ease paper group always music those both mark often letter until mile river car feet ' +
  'care second book carry took science eat room friend began idea fish mountain stop once ' +
  'base hear horse cut sure watch color face wood main enough plain girl usual young ready ' +
  'above ever red list though feel talk bird soon body dog family direct pose leave song ' +
  'measure door product black short numeral class wind question happen complete ship area ' +
  'half rock order fire south problem piece told knew pass since top whole king space heard ' +
  'best hour better true during hundred five remember step early hold west ground interest ' +
  'reach fast verb sing listen six table travel less morning ten simple several vowel ' +
  'toward war lay against pattern slow center love person money serve appear road map rain ' +
  'rule govern pull cold notice voice unit power town fine certain fly fall lead cry dark ' +
  'machine note wait plan figure star box noun field rest correct able pound done beauty ' +
  'drive stood contain front teach week final gave green oh quick develop ocean warm free ' +
  'minute strong special mind behind clear tail produce fact street inch multiply nothing ' +
  'course stay wheel full force blue object decide surface deep moon island foot system ' +
  'busy test record boat common gold possible plane stead dry wonder laugh thousand ago ' +
  'ran check game shape equate hot miss brought heat snow tire bring yes distant fill east ' +
  'paint language among grand ball yet wave drop heart am present heavy dance engine ' +
  'position arm wide sail material size vary settle speak weight general ice matter circle ' +
  'pair include divide syllable felt perhaps pick sudden count square reason length ' +
  'represent art subject region energy hunt probable bed brother egg ride cell believe ' +
  'fraction forest sit race window store summer train sleep prove lone exercise wall catch ' +
  'mount wish sky board joy winter sat written wild instrument kept glass grass cow job ' +
  'edge sign visit past soft fun bright gas weather month million bear finish happy hope ' +
  'flower clothe strange gone jump baby eight village meet root buy raise solve metal ' +
  'whether push seven paragraph third shall held hair describe cook floor either result ' +
  'burn hill safe cat century consider type law bit coast copy phrase silent tall sand soil ' +
  'roll temperature finger industry value fight lie beat excite natural view sense ear else ' +
  'quite broke case middle kill son lake moment scale loud spring observe child straight ' +
  'consonant nation dictionary milk speed method organ pay age section dress cloud surprise ' +
  'quiet stone tiny climb cool design poor lot experiment bottom key iron single stick flat ' +
  'twenty skin smile crease hole trade melody trip office receive row mouth exact symbol ' +
  'die least trouble shout except wrote seed tone join suggest clean break lady yard rise ' +
  'bad blow oil blood touch grew cent mix team wire cost lost brown wear garden equal sent ' +
  'choose fell fit flow fair bank collect save control decimal gentle woman captain practice ' +
  'separate difficult doctor please protect noon whose locate ring character insect caught ' +
  'period indicate radio spoke atom human history effect electric expect crop modern ' +
  'element hit student corner party supply bone rail imagine provide agree thus capital ' +
  "won't chair danger fruit rich thick soldier process operate guess necessary sharp wing " +
  'create neighbor wash bat rather crowd corn compare poem string bell depend meat rub tube ' +
  'famous dollar stream fear sight thin triangle planet hurry chief colony clock mine tie ' +
  'enter major fresh search send yellow gun allow print dead spot desert suit current lift ' +
  'rose continue block chart hat sell success company subtract event particular deal swim ' +
  'term opposite wife shoe shoulder spread arrange camp invent cotton born determine quart ' +
  'nine truck noise level chance gather shop stretch throw shine property column molecule ' +
  'select wrong gray repeat require broad prepare salt nose plural anger claim continent ' +
  'oxygen sugar death pretty skill women season solution magnet silver thank branch match ' +
  'suffix especially fig afraid huge sister steel discuss forward similar guide experience ' +
  'score apple bought led pitch coat mass card band rope slip win dream evening condition ' +
  'feed tool total basic smell valley nor double seat arrive master track parent shore ' +
  'division sheet substance favor connect post spend chord fat glad original share station ' +
  'dad bread charge proper bar offer segment slave duck instant market degree populate ' +
  'chick dear enemy reply drink occur support speech nature range steam motion path liquid ' +
  "log meant quotient teeth shell neck I I'm don't it's that's you you're we're"
).split(/\s+/);

// Multi-byte punctuation pieces a GPT-2 vocabulary has; " -" and " '" are required by
// whisper.cpp's logit filters (map::at), and the rest appear in its non-speech list.
const PUNCTUATION = [
  ' -',
  " '",
  ' "',
  ' (',
  ' [',
  '...',
  '..',
  ' --',
  '--',
  '---',
  "'s",
  "'t",
  "'re",
  "'ve",
  "'m",
  "'ll",
  "'d",
  ',"',
  '."',
  '?"',
  '!"',
  ' ...',
  '<<',
  '>>',
  '((',
  '))',
  '[[',
  ']]',
  '{{',
  '}}',
  '-(',
  '-[',
  "('",
  '("',
  ' ♪',
  '♪',
  '♪♪',
  ' $',
  ' %',
  ' &',
  ' 1',
  ' 2',
  ' 10',
  ' 100',
  '00',
];

const ONSETS = [
  '',
  'b',
  'br',
  'c',
  'ch',
  'cl',
  'cr',
  'd',
  'dr',
  'f',
  'fl',
  'fr',
  'g',
  'gl',
  'gr',
  'h',
  'j',
  'k',
  'l',
  'm',
  'n',
  'p',
  'pl',
  'pr',
  'qu',
  'r',
  's',
  'sc',
  'sh',
  'sk',
  'sl',
  'sm',
  'sn',
  'sp',
  'st',
  'str',
  'sw',
  't',
  'th',
  'tr',
  'tw',
  'v',
  'w',
  'wh',
  'y',
  'z',
];
const NUCLEI = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ee', 'ie', 'oa', 'oo', 'ou', 'ay', 'ow', 'y'];
const CODAS = [
  '',
  '',
  '',
  'b',
  'ck',
  'd',
  'ft',
  'g',
  'k',
  'l',
  'ld',
  'll',
  'lt',
  'm',
  'mp',
  'n',
  'nd',
  'ng',
  'nk',
  'nt',
  'p',
  'r',
  'rd',
  'rk',
  'rm',
  'rn',
  'rt',
  's',
  'sh',
  'sk',
  'ss',
  'st',
  't',
  'th',
  'x',
  'ze',
];
// Later syllables are simpler, so invented words stay pronounceable.
const LATER_ONSETS = ['b', 'c', 'd', 'f', 'g', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z'];
const LATER_NUCLEI = ['a', 'e', 'i', 'o', 'u', 'a', 'e', 'i', 'o', 'er', 'en', 'y'];
const INNER_CODAS = ['', '', '', '', 'n', 'r', 'l', 's'];
const LATER_CODAS = ['', '', '', '', 'n', 'r', 's', 't', 'l', 'nd', 'st'];
const SUFFIXES = ['s', 'ed', 'ing', 'er', 'ly', 'tion', 'ness', 'ment', 'able', 'ous', 'ive', 'est'];

let vocabularyCache: { count: number; tokens: Buffer[] } | undefined;

/**
 * A deterministic, plausible-looking BPE-style vocabulary of `count` unique tokens:
 * the 256 single bytes in GPT-2's order (so any text can be tokenized), common English
 * words with and without a leading space, punctuation pieces, then invented word pieces.
 * Independent of the weight seed, so every model of a size shares one vocabulary.
 */
export function whisperVocabulary(count: number): Buffer[] {
  if (vocabularyCache?.count === count) return vocabularyCache.tokens.slice();
  const seen = new Set<string>();
  const tokens: Buffer[] = [];
  const add = (token: Buffer): void => {
    if (tokens.length >= count) return;
    const key = token.toString('latin1');
    if (seen.has(key)) return;
    seen.add(key);
    tokens.push(token);
  };
  for (const b of gpt2ByteOrder()) add(Buffer.from([b]));
  for (const p of PUNCTUATION) add(Buffer.from(p, 'utf8'));
  const capital = (w: string): string => w.charAt(0).toUpperCase() + w.slice(1);
  for (const w of COMMON_WORDS) add(Buffer.from(` ${w}`, 'utf8'));
  for (const w of COMMON_WORDS) {
    add(Buffer.from(w, 'utf8'));
    add(Buffer.from(` ${capital(w)}`, 'utf8'));
    add(Buffer.from(capital(w), 'utf8'));
  }
  const rng = new Xoshiro128(0x65617273, 'vocabulary'); // "ears"
  const pick = <T>(list: readonly T[]): T => list[rng.nextU32() % list.length]!;
  while (tokens.length < count) {
    // Mostly one syllable: GPT-2's tokens average about 6.4 bytes, and so do these.
    const length = rng.nextU32() % 100;
    const syllables = length < 72 ? 1 : length < 96 ? 2 : 3;
    let word = pick(ONSETS) + pick(NUCLEI);
    for (let s = 1; s < syllables; s++) word += pick(INNER_CODAS) + pick(LATER_ONSETS) + pick(LATER_NUCLEI);
    word += pick(syllables === 1 ? CODAS : LATER_CODAS);
    if (rng.nextU32() % 100 < 15) word += pick(SUFFIXES);
    const roll = rng.nextU32() % 100;
    if (roll < 12) word = capital(word);
    if (roll % 10 < 7) word = ` ${word}`;
    add(Buffer.from(word, 'utf8'));
  }
  vocabularyCache = { count, tokens };
  return tokens.slice();
}

// ---------------------------------------------------------------------------------------
// Random numbers: xoshiro128** seeded by splitmix32, one stream per (seed, tensor name), so
// a tensor's values do not depend on the tensors written before it. Normal values come
// from a table of 65536 quantiles indexed by 16 random bits (finer than f16 resolves,
// tails at ±4.3σ): integer ops and one table lookup per weight, the same bytes on every
// machine, and several times faster than Box-Muller with Math.log/cos/sin.

/** The output mix of splitmix32 (murmur3's fmix32): a 32-bit integer to an unsigned 32-bit hash. */
export function mix32(z: number): number {
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  return [next, mix32(next)];
}

/** FNV-1a of a string's UTF-16 code units, as an unsigned 32-bit integer. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number, stream: string) {
    let state = (splitmix32(seed)[1] ^ Math.imul(fnv1a32(stream), 0x27d4eb2f)) | 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [s, w] = splitmix32(state);
      state = s;
      words.push(w | 0);
    }
    [this.s0, this.s1, this.s2, this.s3] = words as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  nextU32(): number {
    const s1 = this.s1;
    const x = Math.imul(s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** Fills `out` with uniform 16-bit values, two per 32-bit step. */
  fillU16(out: Uint16Array): void {
    // The state lives in locals for the hot loop (this runs for every weight).
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    for (let i = 0; i < out.length; i += 2) {
      const x = Math.imul(s1, 5);
      const r = Math.imul((x << 7) | (x >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[i] = r & 0xffff;
      if (i + 1 < out.length) out[i + 1] = r >>> 16;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
  }
}

const NORMAL_LEVELS = 1 << 16;
let normalQuantiles: Float64Array | undefined;

// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
function normalQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number): number =>
    (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/** The standard normal's quantiles at the midpoints of 65536 equal-probability bins. */
function standardNormalQuantiles(): Float64Array {
  if (normalQuantiles === undefined) {
    normalQuantiles = new Float64Array(NORMAL_LEVELS);
    // Computed for the lower half and mirrored, so the table is exactly symmetric.
    for (let i = 0; i < NORMAL_LEVELS / 2; i++) {
      const z = normalQuantile((i + 0.5) / NORMAL_LEVELS);
      normalQuantiles[i] = z;
      normalQuantiles[NORMAL_LEVELS - 1 - i] = -z;
    }
  }
  return normalQuantiles;
}

// ---------------------------------------------------------------------------------------
// Float16

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits of a number, rounded to nearest even (like numpy's astype(float16)). */
export function toFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  return f32BitsToF16(u32Scratch[0]!);
}

function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

// ---------------------------------------------------------------------------------------
// Writing

/** The magic number that opens every ggml file ("ggml"). */
export const GGML_MAGIC = 0x67676d6c;
const FTYPE_MOSTLY_F16 = 1;
const CHUNK_ELEMENTS = 1 << 18;
const FLUSH_BYTES = 1 << 20;

/** Options of {@link writeWhisperModel}. */
export interface WriteWhisperModelOptions {
  /** A named shape or explicit hyperparameters. */
  shape: ModelShape | WhisperHparams;
  /** Seed of the weights (an unsigned 32-bit integer); default 1. */
  seed?: number;
  /** For a named shape: 51865 tokens instead of 51864. */
  multilingual?: boolean;
  /** Rig the decoder to emit this transcript for any audio (scripts/lib/scripted-decoder.ts). */
  script?: DecoderScript;
}

/** What {@link writeWhisperModel} wrote. */
export interface WrittenWhisperModel {
  path: string;
  hparams: WhisperHparams;
  seed: number;
  bytes: number;
  sha256: string;
  tensors: number;
}

// Buffers small writes, hashes everything, and never holds more than a chunk.
class HashingFileWriter {
  private readonly hash = createHash('sha256');
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  bytes = 0;

  constructor(private readonly fh: FileHandle) {}

  async push(data: Buffer): Promise<void> {
    this.pending.push(data);
    this.pendingBytes += data.length;
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.hash.update(data);
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await this.fh.write(data, offset, data.length - offset);
      offset += bytesWritten;
    }
    this.bytes += data.length;
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Returns `seed` if it is an unsigned 32-bit integer (a weights seed); throws a TypeError otherwise. */
export function checkSeed(seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new TypeError(`Expected an integer between 0 and 4294967295 for seed but received ${String(seed)}`);
  }
  return seed;
}

/** Little-endian int32 values. */
export function int32s(values: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(values.length * 4);
  values.forEach((v, i) => {
    b.writeInt32LE(v, i * 4);
  });
  return b;
}

function validateHparams(h: WhisperHparams): void {
  for (const [key, value] of Object.entries(h)) {
    if (!Number.isInteger(value) || value <= 0 || value > 0x7fffffff) {
      throw new TypeError(`Expected a positive int32 for hparams.${key} but received ${String(value)}`);
    }
  }
  if (h.nAudioState !== h.nTextState) {
    throw new TypeError(`Expected nTextState equal to nAudioState (${h.nAudioState}) but received ${h.nTextState}`);
  }
  // Quantized blocks hold 32 values along a row.
  if (h.nAudioState % 32 !== 0) {
    throw new TypeError(`Expected a multiple of 32 for hparams.nAudioState but received ${h.nAudioState}`);
  }
  if (h.nAudioState % h.nAudioHead !== 0 || h.nTextState % h.nTextHead !== 0) {
    throw new TypeError('Expected the state size to be divisible by the number of heads');
  }
  // whisper.cpp hard-codes the special token ids from 50256 up.
  if (h.nVocab < N_VOCAB_ENGLISH) {
    throw new TypeError(`Expected at least 51864 for hparams.nVocab but received ${h.nVocab}`);
  }
}

// Fills `out` with elements [start, start + out.length) of a non-random tensor, row-major.
function fillChunk(init: Exclude<TensorInit, { kind: 'normal' }>, shape: number[], start: number, out: Float32Array): void {
  switch (init.kind) {
    case 'constant':
      out.fill(init.value);
      return;
    case 'sinusoids': {
      // OpenAI's whisper.model.sinusoids: [sin(t * inv) | cos(t * inv)] per row.
      const channels = shape[1]!;
      const half = channels / 2;
      const increment = Math.log(10000) / (half - 1);
      for (let i = 0; i < out.length; i++) {
        const index = start + i;
        const t = Math.floor(index / channels);
        const c = index % channels;
        const k = c < half ? c : c - half;
        const angle = t * Math.exp(-increment * k);
        out[i] = (c < half ? Math.sin(angle) : Math.cos(angle)) * init.scale;
      }
      return;
    }
  }
}

// Replaces the chunk's values [start, start + out.length) that `overrides` names.
function applyOverrides(overrides: ReadonlyArray<[number, number]>, start: number, out: Float32Array | Uint16Array, f16: boolean): void {
  for (const [index, value] of overrides) {
    if (index >= start && index < start + out.length) out[index - start] = f16 ? toFloat16Bits(value) : value;
  }
}

async function writeTensor(writer: HashingFileWriter, spec: TensorSpec, seed: number, overrides: ReadonlyArray<[number, number]> = []): Promise<void> {
  const name = Buffer.from(spec.name, 'utf8');
  const dims = [...spec.shape].reverse(); // ggml's ne[0] is the innermost dimension
  await writer.push(int32s([dims.length, name.length, spec.type === 'f16' ? 1 : 0, ...dims]));
  await writer.push(name);

  const total = spec.shape.reduce((n, d) => n * d, 1);
  const chunkElements = Math.min(total, CHUNK_ELEMENTS);
  const init = spec.init;
  // Buffers are fresh per chunk: the writer keeps them until it flushes.
  if (init.kind === 'normal') {
    const rng = new Xoshiro128(seed, spec.name);
    const quantiles = standardNormalQuantiles();
    let f16Codes: Uint16Array | undefined;
    if (spec.type === 'f16') {
      f16Codes = new Uint16Array(NORMAL_LEVELS);
      for (let i = 0; i < NORMAL_LEVELS; i++) f16Codes[i] = toFloat16Bits(quantiles[i]! * init.std);
    }
    for (let start = 0; start < total; start += chunkElements) {
      const n = Math.min(chunkElements, total - start);
      const levels = new Uint16Array(n);
      rng.fillU16(levels);
      if (f16Codes !== undefined) {
        for (let i = 0; i < n; i++) levels[i] = f16Codes[levels[i]!]!;
        applyOverrides(overrides, start, levels, true);
        await writer.push(Buffer.from(levels.buffer)); // host order is little-endian (checked)
      } else {
        const values = new Float32Array(n);
        for (let i = 0; i < n; i++) values[i] = quantiles[levels[i]!]! * init.std;
        applyOverrides(overrides, start, values, false);
        await writer.push(Buffer.from(values.buffer));
      }
    }
    return;
  }
  for (let start = 0; start < total; start += chunkElements) {
    const n = Math.min(chunkElements, total - start);
    const values = new Float32Array(n);
    fillChunk(init, spec.shape, start, values);
    applyOverrides(overrides, start, values, false);
    if (spec.type === 'f32') {
      await writer.push(Buffer.from(values.buffer));
    } else {
      const bits = new Uint32Array(values.buffer);
      const half = new Uint16Array(n);
      for (let i = 0; i < n; i++) half[i] = f32BitsToF16(bits[i]!);
      await writer.push(Buffer.from(half.buffer));
    }
  }
}

/**
 * Writes a whisper model with random weights to `path` (f16, the layout of whisper.cpp's
 * convert-pt-to-ggml.py), streaming tensor by tensor. The same options always give the
 * same bytes. Overwrites `path`; callers wanting atomicity write to a temporary name.
 */
export async function writeWhisperModel(path: string, options: WriteWhisperModelOptions): Promise<WrittenWhisperModel> {
  const hparams = typeof options.shape === 'string' ? whisperHparams(options.shape, { multilingual: options.multilingual === true }) : { ...options.shape };
  validateHparams(hparams);
  const seed = checkSeed(options.seed ?? 1);
  if (endianness() !== 'LE') throw new Error('writeWhisperModel: only little-endian hosts are supported');

  const specs = whisperTensorSpecs(hparams);
  const fh = await open(path, 'w');
  try {
    const writer = new HashingFileWriter(fh);
    const h = hparams;
    await writer.push(
      int32s([
        GGML_MAGIC,
        h.nVocab,
        h.nAudioCtx,
        h.nAudioState,
        h.nAudioHead,
        h.nAudioLayer,
        h.nTextCtx,
        h.nTextState,
        h.nTextHead,
        h.nTextLayer,
        h.nMels,
        FTYPE_MOSTLY_F16,
      ]),
    );

    const filters = melFilterbank(h.nMels);
    await writer.push(int32s([h.nMels, filters.length / h.nMels]));
    await writer.push(Buffer.from(filters.buffer, filters.byteOffset, filters.byteLength));

    let tokens = whisperVocabulary(regularTokenCount(h.nVocab));
    let overrides = new Map<string, Array<[number, number]>>();
    if (options.script) ({ vocabulary: tokens, overrides } = scriptDecoder(options.script, h, tokens));
    await writer.push(int32s([tokens.length]));
    for (const token of tokens) {
      await writer.push(int32s([token.length]));
      await writer.push(token);
    }

    for (const spec of specs) await writeTensor(writer, spec, seed, overrides.get(spec.name));
    await writer.flush();
    return { path, hparams, seed, bytes: writer.bytes, sha256: writer.digest(), tensors: specs.length };
  } finally {
    await fh.close();
  }
}
