/**
 * The segments of a running job that streams them (`Job.streamed`), for the request that
 * waits on it: kept in memory while the job runs (as the engine produces them, filtered as
 * the stored transcript will be), readable from the first by whoever comes, ended when the
 * job finishes, goes back to waiting or is deleted.
 */
import type { StoredTranscript } from './job-store.js';

export type StoredSegment = StoredTranscript['segments'][number];

export class SegmentFeed {
  private readonly segments: StoredSegment[] = [];
  private readonly wakers = new Set<() => void>();
  private ended = false;

  push(segment: StoredSegment): void {
    if (this.ended) return;
    this.segments.push(segment);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Readers waiting for the next segment (0 once every reader has stopped). */
  get waiting(): number {
    return this.wakers.size;
  }

  private wake(): void {
    for (const wake of [...this.wakers]) wake();
  }

  /** Every segment from the first, then each as it is pushed; ends with the feed or when `signal` aborts. */
  async *read(signal?: AbortSignal): AsyncGenerator<StoredSegment, void, undefined> {
    let next = 0;
    for (;;) {
      while (next < this.segments.length) yield this.segments[next++]!;
      if (this.ended || signal?.aborted) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.wakers.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        this.wakers.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }
}
