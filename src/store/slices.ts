/**
 * Runs `step` (which handles at most `size` items in one transaction and resolves to how
 * many it handled) until a step comes back short, and resolves to the total. Each step is
 * one bounded transaction, and the event loop runs between steps (each commit is awaited),
 * so a backlog of any size is worked off without holding requests up for long.
 */
export async function inSlices(step: (size: number) => Promise<number>, size: number): Promise<number> {
  let total = 0;
  for (;;) {
    const done = await step(size);
    total += done;
    if (done < size) return total;
    // Let requests that arrived during the commit run before the next slice.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
