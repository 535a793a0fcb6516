import { setTimeout as delay } from 'node:timers/promises';

/**
 * Whose turn it is to run a batch transcription on this device's engine: the local
 * scheduler's main lane or the fleet worker (docs/fleet.md, "One engine, two queues").
 * One holder at a time, so a device never runs two batch transcriptions at once;
 * interactive jobs do not take a turn (they overtake a batch job on the engine's
 * interactive lane, as on a single device).
 */
export class EngineTurn {
  private held = false;
  private readonly waiters = new Set<() => void>();

  get busy(): boolean {
    return this.held;
  }

  /** Takes the turn if it is free; the function gives it back (once). */
  tryAcquire(): (() => void) | undefined {
    if (this.held) return undefined;
    this.held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held = false;
      for (const w of [...this.waiters]) w();
      this.waiters.clear();
    };
  }

  /** Resolves when the turn is given back (at once when it is free). */
  whenFree(): Promise<void> {
    if (!this.held) return Promise.resolve();
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  /**
   * Takes the turn once it is free and `mayTake()` holds; undefined once `signal` is
   * aborted. While another holds the turn, it waits for its release; while `mayTake()`
   * does not hold, it looks again every `pollMs` (what it reads, this device's own
   * waiting jobs and the disk, has no event to wait for). Never "until free" then: that
   * resolves at once while the turn is free, and looping on it would never leave the
   * microtask queue, starving the event loop and whatever would make `mayTake` true.
   */
  async acquireWhen(mayTake: () => boolean, signal: AbortSignal, pollMs: number): Promise<(() => void) | undefined> {
    while (!signal.aborted) {
      if (!mayTake()) {
        // Node's own abortable timer (cleared on abort); the abort ends the loop, not an error.
        await delay(pollMs, undefined, { signal }).catch(() => {});
        continue;
      }
      const release = this.tryAcquire();
      if (release) return release;
      await this.givenBack(signal);
    }
    return undefined;
  }

  /** Resolves when the turn is given back, or `signal` is aborted (nothing left waiting). */
  private givenBack(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
