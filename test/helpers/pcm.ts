import { writeFileSync } from 'node:fs';

export const sampleRate = 16000;

/** A deterministic test signal: a tone with a little seeded noise, 16 kHz mono float. */
export function testSignal(seconds: number, frequency = 440, seed = 1): Float32Array {
  const out = new Float32Array(Math.round(seconds * sampleRate));
  let state = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const noise = ((state >>> 0) / 0xffffffff - 0.5) * 0.05;
    out[i] = 0.3 * Math.sin((2 * Math.PI * frequency * i) / sampleRate) + noise;
  }
  return out;
}

/** Writes samples as the spool format: float32 little-endian, 16 kHz mono. */
export function writePcm(file: string, samples: Float32Array): void {
  writeFileSync(file, Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength));
}
