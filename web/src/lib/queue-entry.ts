// The live feed's and the job list's entry: written by the server (src/page/live-feed.ts),
// read by the page (main.ts). Types only: one definition for both sides.

/** A job as the page's queue shows it. */
export interface QueueEntry {
  id: string;
  status: 'waiting' | 'processing' | 'completed' | 'failed';
  created: string;
  updated: string;
  /** Percent, while processing. */
  progress?: number;
  userToken?: string;
  audioBytes: number;
  durationSeconds?: number;
  error?: string;
}
