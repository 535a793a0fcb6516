// Whether a streamed request body costs memory in proportion to its size. A body held in
// memory shows as growth with the body; what the heap keeps until V8 collects it (copies
// of each chunk, socket buffers) shows as a bound that depends on the Node line and the
// uWebSockets.js build (~36 MB on Node 20 with v20.30, 60-80 MB on Node 24 with v20.57 for
// 256 MB and for 768 MB alike; a 64 MB body may not reach it), not on the body. So: a
// 256 MB body, then a 512 MB one, peaks measured from the same baseline; the second may
// exceed the first by far less than the 256 MB more it carried.
import type { Test } from 'tap';

const MiB = 2 ** 20;

/** The peak RSS while `run` runs (sampled every 20 ms), and what `run` resolved with. */
async function peakDuring<T>(run: () => Promise<T>): Promise<{ value: T; peak: number }> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const value = await run();
    return { value, peak: Math.max(peak, process.memoryUsage().rss) };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * Sends a 256 MB and then a 512 MB body with `send` (which resolves with the answer),
 * asserts that the peak memory did not grow with the body, and resolves with the answer to
 * the 512 MB one.
 */
export async function sendWithFlatMemory<T>(t: Test, send: (bytes: number) => Promise<T>): Promise<T> {
  global.gc?.();
  const baseline = process.memoryUsage().rss;
  const small = await peakDuring(() => send(256 * MiB));
  const large = await peakDuring(() => send(512 * MiB));
  const growth = (peak: number) => ((peak - baseline) / MiB).toFixed(1);
  const extra = ((large.peak - small.peak) / MiB).toFixed(1);
  t.comment(`RSS before ${(baseline / MiB).toFixed(0)} MB; peak +${growth(small.peak)} MB during 256 MB, +${growth(large.peak)} MB during 512 MB`);
  t.ok(large.peak - small.peak < 48 * MiB, `memory does not grow with the body: 256 MB more of it, +${extra} MB (< 48 MB)`);
  t.ok(large.peak - baseline < 128 * MiB, `peak growth ${growth(large.peak)} MB for 512 MB (< 128 MB)`);
  return large.value;
}
