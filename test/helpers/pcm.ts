import { writeFileSync } from 'node:fs';

export { sampleRate, testSignal } from '../../scripts/lib/test-signal.js';

/** Writes samples as the spool format: float32 little-endian, 16 kHz mono. */
export function writePcm(file: string, samples: Float32Array): void {
  writeFileSync(file, Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength));
}
