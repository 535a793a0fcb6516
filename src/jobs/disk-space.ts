import { statfsSync } from 'node:fs';

import { AppError } from '../errors.js';

/**
 * What `statfs(2)` says of the state directory's file system (injectable for tests).
 * Synchronous: one system call that reads the file system's counters, no disk I/O.
 */
export type FreeBytes = (dir: string) => number;

const systemFreeBytes: FreeBytes = (dir) => {
  const s = statfsSync(dir);
  // bavail, not bfree: what an unprivileged writer (the service's DynamicUser) may use.
  return s.bavail * s.bsize;
};

/** The size of the file system, less what only root may use (as `bavail` counts free space). */
const systemSizeBytes: FreeBytes = (dir) => {
  const s = statfsSync(dir);
  return (s.blocks - (s.bfree - s.bavail)) * s.bsize;
};

const mb = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;

/**
 * The free space of the state directory, and the floor kept free on it
 * (EARSHOT_MIN_FREE_BYTES): uploads are admitted only while the floor stays free, counting
 * what uploads in flight declared, and a job is never failed for lack of space.
 *
 * A full card shows up in many shapes: ENOSPC from a write, EDQUOT, an LMDB commit that
 * fails with EIO (its page writes), a decoder whose output write failed. So a failure is
 * blamed on space when it says so, or when the free space is below the floor right after.
 */
export class DiskSpace {
  /** Bytes that admitted uploads declared and have not yet finished writing. */
  private reserved = 0;
  /** `largestPossible()` as last read: a file system's size hardly ever changes. */
  private largestSeen: number | undefined;

  constructor(
    private readonly dir: string,
    readonly floorBytes: number,
    private readonly freeBytes: FreeBytes = systemFreeBytes,
    private readonly sizeBytes: FreeBytes = systemSizeBytes,
  ) {}

  free(): number {
    return this.freeBytes(this.dir);
  }

  /** The largest file the state directory could hold were everything else deleted: its size less the floor. */
  largestPossible(): number {
    return Math.max(0, this.sizeBytes(this.dir) - this.floorBytes);
  }

  /** Whether less than the floor is free. */
  low(): boolean {
    return this.free() < this.floorBytes;
  }

  /** Why work is paused for lack of space, or undefined when there is enough. */
  shortage(): string | undefined {
    const free = this.free();
    return free < this.floorBytes ? `disk full: ${mb(free)} free on the state directory, ${mb(this.floorBytes)} are kept free` : undefined;
  }

  /**
   * Admits an upload of `bytes` (0 when it did not say): resolves to a release function,
   * or throws ERR_INSUFFICIENT_STORAGE when it would leave less than the floor free, and
   * ERR_PAYLOAD_TOO_LARGE when it could never fit.
   */
  admit(bytes: number): () => void {
    // One statfs per upload, not two: the size is read again only to refuse one.
    if (this.largestSeen === undefined || bytes > this.largestSeen) this.largestSeen = this.largestPossible();
    const largest = this.largestSeen;
    if (bytes > largest) {
      // Waiting would not help (a 507 says "try again"): the upload can never fit.
      throw new AppError(
        'ERR_PAYLOAD_TOO_LARGE',
        `${mb(bytes)} of audio is more than this device's disk can ever hold (${mb(largest)} beside the ${mb(this.floorBytes)} kept free)`,
      );
    }
    const free = this.free();
    const left = free - this.reserved - bytes;
    if (left < this.floorBytes) {
      throw new AppError(
        'ERR_INSUFFICIENT_STORAGE',
        `Not enough free space on this device for ${bytes ? `${mb(bytes)} of audio` : 'more audio'} (${mb(free)} free, ` +
          `${mb(this.reserved)} promised to uploads in progress, ${mb(this.floorBytes)} kept free); try again once jobs have finished`,
      );
    }
    this.reserved += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.reserved -= bytes;
    };
  }

  /** Whether `err` is (or, given the free space now, most likely is) the disk being full. */
  explains(err: unknown): boolean {
    if (isSpaceError(err)) return true;
    try {
      return this.low();
    } catch {
      return false;
    }
  }
}

/** An error that names a full disk itself. */
export function isSpaceError(err: unknown): boolean {
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT' || e.code === 'ERR_INSUFFICIENT_STORAGE') return true;
    if (typeof e.message === 'string' && /No space left on device|Disk quota exceeded|MDB_MAP_FULL/.test(e.message)) return true;
  }
  return false;
}
