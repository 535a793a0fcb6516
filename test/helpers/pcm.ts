import { int16Wav } from '../../scripts/lib/bench-audio.js';
import { testSignal } from '../../scripts/lib/test-signal.js';

export { sampleRate, testSignal } from '../../scripts/lib/test-signal.js';

/** Writes samples as the spool format: float32 little-endian, 16 kHz mono. */
export { writeF32 as writePcm } from '../../scripts/lib/bench-audio.js';

/** `seconds` of the test signal as a 16 kHz mono 16-bit PCM WAV file: what a client uploads. */
export const wav = (seconds: number): Buffer => int16Wav(testSignal(seconds));

/** The same samples without the 44-byte WAV header: `audio/l16;rate=16000;endianness=little-endian`. */
export const l16 = (seconds: number): Buffer => wav(seconds).subarray(44);
