import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Audio fixtures made at test time with Debian's sox and sndfile-convert (nothing binary is
 * committed), plus the analysis helpers the decoder tests use on the 16 kHz float32 output.
 */

/** whisper.cpp's real speech sample (11 s, 16 kHz mono MP3 with a Xing/LAME header). */
export const JFK_MP3 = fileURLToPath(new URL('../../../node_modules/nodejs-whisper/cpp/whisper.cpp/samples/jfk.mp3', import.meta.url));

/**
 * The decoder sandbox setting of this test run: scripts/arm64-test sets
 * EARSHOT_DECODER_SANDBOX=optional (qemu-user has no seccomp); elsewhere the default.
 */
export const testDecoderSandbox = process.env.EARSHOT_DECODER_SANDBOX === 'optional' ? 'optional' : 'required';

/** Frequency of every synthetic tone. */
export const TONE_HZ = 440;

function run(command: string, args: string[]): void {
  try {
    execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`fixture command failed: ${command} ${args.join(' ')}\n${stdout?.toString() ?? ''}${stderr?.toString() ?? ''}`);
  }
}

export interface ToneOptions {
  rate: number;
  channels: number;
  seconds: number;
  /** Only the first channel carries the tone; the others are silent (to test downmixing). */
  leftOnly?: boolean;
}

/** A 16-bit WAV of a 440 Hz sine at half scale. */
export function makeToneWav(path: string, { rate, channels, seconds, leftOnly = false }: ToneOptions): string {
  const args = ['-n', '-r', String(rate), '-c', String(channels), '-b', '16', '-e', 'signed-integer', path];
  args.push('synth', String(seconds), 'sine', String(TONE_HZ), 'vol', '0.5');
  if (leftOnly) args.push('remix', '1', ...Array<string>(channels - 1).fill('0'));
  run('sox', args);
  return path;
}

/** Headerless 16-bit PCM of the tone in the given byte order. */
export function makeToneL16(path: string, tone: ToneOptions, endian: 'little' | 'big'): string {
  const args = ['-n', '-r', String(tone.rate), '-c', String(tone.channels), '-b', '16', '-e', 'signed-integer'];
  args.push(endian === 'little' ? '-L' : '-B', '-t', 'raw', path);
  args.push('synth', String(tone.seconds), 'sine', String(TONE_HZ), 'vol', '0.5');
  run('sox', args);
  return path;
}

/** Headerless G.711 (mu-law or A-law) of the tone. */
export function makeToneG711(path: string, tone: ToneOptions, law: 'mu-law' | 'a-law'): string {
  const args = ['-n', '-r', String(tone.rate), '-c', String(tone.channels), '-e', law, '-t', 'raw', path];
  args.push('synth', String(tone.seconds), 'sine', String(TONE_HZ), 'vol', '0.5');
  run('sox', args);
  return path;
}

/** Converts with sox (container from the extension; extra output options before the path). */
export function soxConvert(input: string, output: string, outputOptions: string[] = []): string {
  run('sox', [input, ...outputOptions, output]);
  return output;
}

/** Converts with libsndfile's sndfile-convert (for MP3, Ogg Vorbis and Ogg Opus; -pcm16 from MP3). */
export function sndfileConvert(input: string, output: string, encoding?: '-vorbis' | '-opus' | '-pcm16'): string {
  run('sndfile-convert', encoding === undefined ? [input, output] : [encoding, input, output]);
  return output;
}

/** Keeps the first `fraction` of a file's bytes. */
export function truncateFile(input: string, output: string, fraction = 0.6): string {
  const bytes = readFileSync(input);
  writeFileSync(output, bytes.subarray(0, Math.floor(bytes.length * fraction)));
  return output;
}

/** Flips `count` bytes in the middle of a file. */
export function corruptMiddle(input: string, output: string, count = 64): string {
  const bytes = Buffer.from(readFileSync(input));
  const start = Math.floor(bytes.length / 2);
  for (let i = start; i < start + count && i < bytes.length; i++) bytes[i] = (bytes[i] ?? 0) ^ 0x5a;
  writeFileSync(output, bytes);
  return output;
}

/** Deterministic pseudo-random bytes (xorshift32) that start with a zero byte, so no magic. */
export function randomBytesFile(path: string, length: number, seed = 0x9e3779b9): string {
  const bytes = Buffer.alloc(length);
  let x = seed >>> 0;
  for (let i = 1; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  writeFileSync(path, bytes);
  return path;
}

export interface WavHeaderOptions {
  rate: number;
  channels: number;
  bitsPerSample?: number;
  /** Frames of a 440 Hz tone written after the header (16-bit only). */
  frames: number;
  /** What the data chunk declares, if not the truth (0xFFFFFFFF = streaming writer). */
  declaredDataBytes?: number;
}

/** A hand-made PCM WAV, so that its header can say anything, including lies. */
export function makeWav(path: string, o: WavHeaderOptions): string {
  const bits = o.bitsPerSample ?? 16;
  const channels = Math.max(o.channels, 1);
  const data = Buffer.alloc(o.frames * channels * 2);
  for (let i = 0; i < o.frames; i++) {
    const v = Math.round(16000 * Math.sin((2 * Math.PI * TONE_HZ * i) / 16000));
    for (let c = 0; c < channels; c++) data.writeInt16LE(v, (i * channels + c) * 2);
  }
  const fmt = Buffer.alloc(24);
  fmt.write('fmt ', 0, 'latin1');
  fmt.writeUInt32LE(16, 4);
  fmt.writeUInt16LE(1, 8);
  fmt.writeUInt16LE(o.channels & 0xffff, 10);
  fmt.writeUInt32LE(o.rate >>> 0, 12);
  fmt.writeUInt32LE(((o.rate * o.channels * bits) / 8) >>> 0, 16);
  fmt.writeUInt16LE(((o.channels * bits) / 8) & 0xffff, 20);
  fmt.writeUInt16LE(bits, 22);
  const dataHeader = Buffer.alloc(8);
  dataHeader.write('data', 0, 'latin1');
  dataHeader.writeUInt32LE((o.declaredDataBytes ?? data.length) >>> 0, 4);
  const riff = Buffer.alloc(12);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(4 + fmt.length + dataHeader.length + data.length, 4);
  riff.write('WAVE', 8, 'latin1');
  writeFileSync(path, Buffer.concat([riff, fmt, dataHeader, data]));
  return path;
}

/**
 * Clears the total-samples field of a FLAC's STREAMINFO (the first metadata block, by spec),
 * as a streaming encoder leaves it: the file then states no length.
 */
export function clearFlacLength(input: string, output: string): string {
  const bytes = Buffer.from(readFileSync(input));
  if (bytes.toString('latin1', 0, 4) !== 'fLaC' || ((bytes[4] ?? 0) & 0x7f) !== 0) {
    throw new Error('fixture: not a FLAC file starting with STREAMINFO');
  }
  // STREAMINFO data starts at 8; its 36-bit sample count at bit 108: byte 21 (low nibble) to 25.
  bytes[21] = (bytes[21] ?? 0) & 0xf0;
  bytes.fill(0, 22, 26);
  writeFileSync(output, bytes);
  return output;
}

/** Length in bytes of the Layer III frame (MPEG-1 or MPEG-2) whose header starts at `offset`. */
function layer3FrameLength(bytes: Buffer, offset: number): number {
  const header = bytes.readUInt32BE(offset);
  const mpeg1 = (header & 0xfffe0000) >>> 0 === 0xfffa0000;
  const mpeg2 = (header & 0xfffe0000) >>> 0 === 0xfff20000;
  if (!mpeg1 && !mpeg2) throw new Error(`fixture: no Layer III frame at ${offset}`);
  const kbps = mpeg1 ? [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320] : [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
  const rates = mpeg1 ? [44100, 48000, 32000] : [22050, 24000, 16000];
  const bitrate = kbps[(header >>> 12) & 15] ?? 0;
  const rate = rates[(header >>> 10) & 3] ?? 0;
  if (bitrate === 0 || rate === 0) throw new Error('fixture: unexpected MPEG frame header');
  return Math.floor(((mpeg1 ? 144 : 72) * bitrate * 1000) / rate) + ((header >>> 9) & 1);
}

/** Byte offsets of the Layer III frames of an MP3 (after any ID3v2 tag), up to its end. */
export function mpegFrameOffsets(bytes: Buffer): number[] {
  let offset = 0;
  if (bytes.toString('latin1', 0, 3) === 'ID3') {
    const size = ((bytes[6] ?? 0) << 21) | ((bytes[7] ?? 0) << 14) | ((bytes[8] ?? 0) << 7) | (bytes[9] ?? 0);
    offset = 10 + size;
  }
  const offsets: number[] = [];
  while (offset + 4 <= bytes.length && bytes[offset] === 0xff) {
    offsets.push(offset);
    offset += layer3FrameLength(bytes, offset);
  }
  return offsets;
}

/**
 * Drops the first frame of a LAME-encoded MP3 (no ID3 tag), which holds its Xing/Info tag:
 * what remains is a plain frame stream whose length nothing in the file states.
 */
export function stripXingFrame(input: string, output: string): string {
  const bytes = readFileSync(input);
  writeFileSync(output, bytes.subarray(layer3FrameLength(bytes, 0)));
  return output;
}

/** Concatenates a frame stream `times` times: a long, valid MP3 made without encoding. */
export function repeatFile(input: string, output: string, times: number): string {
  const bytes = readFileSync(input);
  writeFileSync(output, Buffer.concat(Array<Buffer>(times).fill(bytes)));
  return output;
}

/** A scratch directory removed by the returned cleanup function. */
export function makeScratchDir(prefix = 'earshot-audio-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Copies a file into the scratch directory (so tests never touch node_modules). */
export function copyInto(dir: string, source: string, name: string): string {
  const target = join(dir, name);
  copyFileSync(source, target);
  return target;
}

// ---- analysis of decoded output ------------------------------------------------------------

/** Reads the decoder's 16 kHz float32 little-endian output. */
export function readPcm(path: string): Float32Array {
  const bytes = readFileSync(path);
  const samples = new Float32Array(bytes.length / 4);
  for (let i = 0; i < samples.length; i++) samples[i] = bytes.readFloatLE(i * 4);
  return samples;
}

/** The middle `fraction` of a signal, away from codec and resampler edge effects. */
export function middle(samples: Float32Array, fraction = 0.8): Float32Array {
  const skip = Math.floor((samples.length * (1 - fraction)) / 2);
  return samples.subarray(skip, samples.length - skip);
}

/** Frequency estimated from upward zero crossings (with a little hysteresis against noise). */
export function zeroCrossingHz(samples: Float32Array, rate = 16000): number {
  let crossings = 0;
  let armed = false;
  for (const v of samples) {
    if (v < -0.01) armed = true;
    else if (armed && v > 0.01) {
      crossings++;
      armed = false;
    }
  }
  return (crossings * rate) / samples.length;
}

/** Root-mean-square level. */
export function rms(samples: Float32Array): number {
  let sum = 0;
  for (const v of samples) sum += v * v;
  return Math.sqrt(sum / Math.max(samples.length, 1));
}

/** Largest absolute sample. */
export function peak(samples: Float32Array): number {
  let max = 0;
  for (const v of samples) max = Math.max(max, Math.abs(v));
  return max;
}

/** Pearson correlation of two signals over their common length. */
export function correlation(a: Float32Array, b: Float32Array): number {
  const n = Math.min(a.length, b.length);
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] ?? 0;
    mb += b[i] ?? 0;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const x = (a[i] ?? 0) - ma;
    const y = (b[i] ?? 0) - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return sab / Math.sqrt(saa * sbb);
}
