// Audio for the benchmarks (scripts/bench.ts, scripts/bench/): whisper.cpp's jfk.mp3 decoded by
// earshot's own decoder, lengthened by repetition, and written as the files each side reads.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { decodeAudio } from '../../src/engine/audio-decoder.js';
import { parseAudioMediaType } from '../../src/engine/media-type.js';
import { projectRoot } from '../../src/paths.js';
import { sampleRate } from './test-signal.js';

/** whisper.cpp's own sample: 11 s of real speech, from the pinned source package. */
export const jfkMp3 = path.join(projectRoot, 'node_modules/nodejs-whisper/cpp/whisper.cpp/samples/jfk.mp3');

/** Decodes any audio file to 16 kHz mono float32 with earshot's decoder (format sniffed). */
export async function decodeToPcm(file: string, dir: string, maxSeconds = 4 * 3600): Promise<Float32Array> {
  const out = path.join(dir, `${path.basename(file)}.f32`);
  await decodeAudio({ inputPath: file, outputPath: out, format: parseAudioMediaType(null), limits: { maxSeconds } });
  const bytes = readFileSync(out);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** `pcm` repeated (and cut) to exactly `samples` samples. */
export function repeatPcm(pcm: Float32Array, samples: number): Float32Array {
  const out = new Float32Array(samples);
  for (let at = 0; at < samples; at += pcm.length) out.set(pcm.subarray(0, Math.min(pcm.length, samples - at)), at);
  return out;
}

function wavHeader(dataBytes: number, format: 1 | 3, bitsPerSample: 16 | 32): Buffer {
  const blockAlign = bitsPerSample / 8;
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(format, 20); // 1: PCM, 3: WAVE_FORMAT_IEEE_FLOAT
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * blockAlign, 28);
  h.writeUInt16LE(blockAlign, 32);
  h.writeUInt16LE(bitsPerSample, 34);
  h.write('data', 36);
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** A WAV file of IEEE float samples: whisper-cli reads exactly the PCM the addon gets. */
export function writeFloatWav(file: string, pcm: Float32Array): void {
  writeFileSync(file, Buffer.concat([wavHeader(pcm.byteLength, 3, 32), Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength)]));
}

/** 16 kHz mono 16-bit PCM WAV in memory: what a client would upload. */
export function int16Wav(pcm: Float32Array): Buffer {
  const data = Buffer.alloc(pcm.length * 2);
  pcm.forEach((x, i) => {
    data.writeInt16LE(Math.round(Math.max(-1, Math.min(1, x)) * 32767), i * 2);
  });
  return Buffer.concat([wavHeader(data.length, 1, 16), data]);
}

/** Raw float32le samples: the addon's (and the service spool's) input format. */
export function writeF32(file: string, pcm: Float32Array): void {
  writeFileSync(file, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
}
