import type { Dispatcher } from '../delivery/dispatcher.js';
import type { Engine } from '../engine/engine.js';
import type { DiskSpace } from '../jobs/disk-space.js';
import type { JobStore } from '../jobs/job-store.js';
import type { Scheduler } from '../jobs/scheduler.js';
import type { Metrics } from '../metrics.js';
import type { StateDatabase } from '../store/database.js';

/** The service's gauges for GET /metrics: jobs, the model, free space, deliveries. */
export function defineGauges(
  metrics: Metrics,
  parts: { db: StateDatabase; store: JobStore; engine: Engine; dispatcher: Dispatcher; disk: DiskSpace; scheduler: Scheduler },
): void {
  const { db, store, engine, dispatcher, disk, scheduler } = parts;
  // Group commit: changes issued close together share a commit (changes / commits: the mean batch).
  metrics.counterRead('earshot_store_commits_total', 'LMDB commits (each one flush to disk)', () => db.stats.commits);
  metrics.counterRead('earshot_store_changes_total', 'Durable state changes, committed in those commits', () => db.stats.changes);
  metrics.gauge('earshot_jobs', 'Jobs by status', () => Object.entries(store.countByStatus()).map(([status, n]) => [{ status }, n]));
  metrics.gauge('earshot_model_loaded', '1 when the whisper model is loaded', () => (engine.ready ? 1 : 0));
  metrics.gauge('earshot_disk_free_bytes', "Free space on the state directory's file system", () => disk.free());
  metrics.gauge('earshot_disk_floor_bytes', 'Free space kept (EARSHOT_MIN_FREE_BYTES)', () => disk.floorBytes);
  metrics.gauge(
    'earshot_job_stalled_seconds',
    'Seconds since the running job last made progress (decoder output, a transcribed chunk); beyond EARSHOT_STALL_SECONDS the watchdog lapses',
    () => scheduler.stalledMs() / 1000,
  );
  metrics.gauge('earshot_jobs_paused', '1 while waiting jobs are held back for lack of space (/readyz says why)', () => (scheduler.pausedReason ? 1 : 0));
  // One scrape reads the dispatcher's stats once (they walk the pending deliveries).
  let cached: { at: number; stats: ReturnType<Dispatcher['stats']> } | undefined;
  const stats = () => {
    if (!cached || performance.now() - cached.at > 1000) cached = { at: performance.now(), stats: dispatcher.stats() };
    return cached.stats;
  };
  metrics.gauge('earshot_deliveries', 'Outbox deliveries by state', () => {
    const s = stats();
    return [
      [{ state: 'pending' }, s.pending],
      [{ state: 'dead' }, s.dead],
      [{ state: 'in_flight' }, s.inFlight],
    ];
  });
  metrics.gauge('earshot_deliveries_sent', 'Deliveries answered with 2xx since start', () => stats().sent);
  metrics.gauge('earshot_delivery_oldest_pending_seconds', 'Age of the oldest pending delivery', () => stats().oldestPendingAgeMs / 1000);
}
