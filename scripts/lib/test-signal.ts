/** Sample rate of every signal earshot transcribes: whisper's 16 kHz mono. */
export const sampleRate = 16000;

/**
 * A deterministic test signal: a tone with a little seeded xorshift noise, 16 kHz mono
 * float. The same seconds, frequency and seed give the same samples on every machine
 * (scripts/lib/transcript-probe.ts compares builds on it).
 */
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
