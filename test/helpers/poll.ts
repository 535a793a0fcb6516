// The one poller of the tests: waits for a condition the test cannot be told about (a
// state in the store, an answer over HTTP), checking every few milliseconds, with a
// deadline that names what was awaited.

/** Resolves once `predicate` holds (it may be async); rejects after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pause = timeoutMs > 10_000 ? 25 : 5;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pause));
  }
}
