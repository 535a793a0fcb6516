import type { SocketRoute } from '../http/server.js';
import type { JobService } from '../jobs/job-service.js';
import type { QueueEntry } from '../../web/src/lib/queue-entry.js';

/** The subprotocol the page offers (with its key as a second token: see SocketRoute). */
export const liveProtocol = 'earshot.live.v1';

/**
 * The page's live view of the queue over a WebSocket (`/live`): while anyone listens, a
 * snapshot is taken every `intervalMs` and sent when it changed, so progress reaches the
 * page without it polling, and nothing runs while no page is open.
 */
export class LiveFeed {
  private readonly listeners = new Set<(message: string) => boolean>();
  private timer: NodeJS.Timeout | undefined;
  private last = '';

  constructor(
    private readonly snapshot: () => unknown,
    private readonly intervalMs = 400,
  ) {}

  readonly route: SocketRoute = {
    pattern: '/live',
    name: 'page.live',
    protocol: liveProtocol,
    open: (send) => {
      this.last = JSON.stringify(this.snapshot());
      send(this.last);
      this.listeners.add(send);
      // Unref'd: the server closes the sockets (and so stops it) when it stops; it never holds the process.
      this.timer ??= setInterval(() => this.tick(), this.intervalMs).unref();
      return () => {
        this.listeners.delete(send);
        if (this.listeners.size === 0) this.stop();
      };
    },
  };

  private tick(): void {
    let message: string;
    try {
      message = JSON.stringify(this.snapshot());
    } catch {
      return; // the store is closing; the next tick or none
    }
    if (message === this.last) return;
    this.last = message;
    for (const send of this.listeners) send(message);
  }

  /** Stops the timer (it stops by itself when the last socket closes, as they do with the server). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The newest jobs with the running one's progress: what the live feed sends. */
export function queueSnapshot(jobs: Pick<JobService, 'newest' | 'progressOf'>, limit = 25): { jobs: QueueEntry[] } {
  return {
    jobs: jobs.newest(limit).map((job) => {
      const progress = job.status === 'processing' ? jobs.progressOf(job.id) : undefined;
      return {
        id: job.id,
        status: job.status,
        created: new Date(job.created).toISOString(),
        updated: new Date(job.updated).toISOString(),
        ...(progress !== undefined ? { progress: Math.floor(progress) } : {}),
        ...(job.userToken !== undefined ? { userToken: job.userToken } : {}),
        audioBytes: job.audioBytes,
        ...(job.audioDurationMs !== undefined ? { durationSeconds: job.audioDurationMs / 1000 } : {}),
        ...(job.error ? { error: job.error.message } : {}),
      };
    }),
  };
}
