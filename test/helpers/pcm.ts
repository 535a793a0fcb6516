export { sampleRate, testSignal } from '../../scripts/lib/test-signal.js';

/** Writes samples as the spool format: float32 little-endian, 16 kHz mono. */
export { writeF32 as writePcm } from '../../scripts/lib/bench-audio.js';
