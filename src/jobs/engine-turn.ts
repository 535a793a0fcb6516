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
}
