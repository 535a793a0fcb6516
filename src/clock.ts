import { existsSync } from 'node:fs';

import type { Logger } from './log.js';

/**
 * No wall clock reads earlier than this once it has been set: this release was written
 * then. (A Pi without its clock set boots at 1970, or at systemd's build date.)
 */
export const releaseTime = Date.UTC(2026, 11, 1);

/** systemd-timesyncd touches this file at each successful synchronization (systemd ≥ 239). */
export const timesyncdSynchronized = () => existsSync('/run/systemd/timesync/synchronized');

/** A wall clock difference up to this is followed as it is (NTP's slewing, timer jitter). */
export const defaultStepThresholdMs = 5_000;

export interface ServiceClockOptions {
  /** Default Date.now. */
  wall?: () => number;
  /** Milliseconds that never step (default performance.now: CLOCK_MONOTONIC). */
  monotonic?: () => number;
  /** Whether the system says its wall clock is synchronized (default: timesyncd's flag file). */
  synchronized?: () => boolean;
  /** No wall clock earlier than this is believed (default `releaseTime`). */
  earliest?: number;
  stepThresholdMs?: number;
  /**
   * Moves every stored time by `deltaMs`, then calls `switchOver` in the same synchronous
   * write transaction: a time written by anyone else is then either moved or already on
   * the new basis. Resolves once that is durable.
   */
  rebase(deltaMs: number, switchOver: () => void): Promise<void>;
  log: Logger;
}

/**
 * earshot's time: milliseconds since the epoch that advance with the monotonic clock, so
 * that they never jump while the process runs, and that follow the wall clock wherever it
 * is believable. A Raspberry Pi has no real-time clock: it boots at an old time and steps
 * forward when NTP synchronizes, maybe by years; someone may also set it back.
 *
 * - A wall clock reading more than 5 s before the floor (this release, or the newest
 *   time the store recorded) has not been set: earshot counts on from the floor instead. A
 *   synchronized clock (timesyncd says so) is believed down to the release date.
 * - `check()` (every 10 s) compares the two. A step of more than 5 s is applied as a
 *   rebase: every stored time moves by the step in the same transaction as the switch,
 *   so whatever was due in an hour is still due in an hour, results expire on their TTL
 *   as measured, nothing fires en masse and nothing waits years.
 *
 * docs/clock.md has the cases and their reasons.
 */
export class ServiceClock {
  private readonly wall: () => number;
  private readonly monotonic: () => number;
  private readonly synchronized: () => boolean;
  private readonly earliest: number;
  private readonly stepThresholdMs: number;
  private floor: number;
  private offset: number;
  private believed = true;
  private checking = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ServiceClockOptions) {
    this.wall = o.wall ?? Date.now;
    this.monotonic = o.monotonic ?? (() => performance.now());
    this.synchronized = o.synchronized ?? timesyncdSynchronized;
    this.earliest = o.earliest ?? releaseTime;
    this.stepThresholdMs = o.stepThresholdMs ?? defaultStepThresholdMs;
    this.floor = this.earliest;
    this.offset = this.wall() - this.monotonic();
  }

  /** The current time (ms since the epoch); continuous while the process runs. */
  readonly now = (): number => Math.round(this.monotonic() + this.offset);

  /** Whether the wall clock is believed (false while it reads before the floor). */
  get followingWallClock(): boolean {
    return this.believed;
  }

  /**
   * Starts counting from the wall clock, or from the floor when the wall clock is behind
   * it (`newestStored`: the newest time the store recorded); checks at once (a
   * synchronized clock behind the store is a step back) and then every `intervalMs`.
   */
  async start(newestStored: number, intervalMs = 10_000): Promise<void> {
    this.floor = Math.max(this.earliest, newestStored);
    const wall = this.wall();
    // Within the step threshold of the floor: the wall clock (a restart after a small
    // correction is no step). Further below: the floor, and check() decides.
    const close = wall >= this.floor - this.stepThresholdMs;
    this.offset = (close ? wall : this.floor) - this.monotonic();
    if (!this.believable(wall)) this.distrust(wall);
    await this.check();
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Compares with the wall clock: follows a small difference, rebases on a step, keeps
   * counting when the wall clock is not believable. Resolves to the step applied (0: none).
   */
  async check(): Promise<number> {
    if (this.checking) return 0;
    this.checking = true;
    try {
      const wall = this.wall();
      if (!this.believable(wall)) {
        if (this.believed) this.distrust(wall);
        return 0;
      }
      const step = Math.round(wall - this.now());
      if (!this.believed) this.o.log.info('the wall clock is set; following it again', { wall: iso(wall), stepMs: step });
      this.believed = true;
      if (Math.abs(step) <= this.stepThresholdMs) {
        this.offset += step;
        return 0;
      }
      return await this.rebase(step);
    } finally {
      this.checking = false;
    }
  }

  private believable(wall: number): boolean {
    return wall >= this.floor - this.stepThresholdMs || (wall >= this.earliest && this.synchronized());
  }

  private async rebase(step: number): Promise<number> {
    const before = this.offset;
    try {
      await this.o.rebase(step, () => {
        this.offset += step;
      });
    } catch (err) {
      // Nothing moved (the transaction failed): keep counting as before, try again later.
      this.offset = before;
      this.o.log.error('the wall clock stepped, but stored times could not be moved; trying again', { stepMs: step, error: err });
      return 0;
    }
    this.o.log.warn('the wall clock stepped; stored times moved with it, so nothing expires or fires early or late', {
      stepMs: step,
      now: iso(this.now()),
    });
    return step;
  }

  private distrust(wall: number): void {
    this.believed = false;
    this.o.log.warn('the wall clock is not set (it reads before the newest time earshot knows); counting on from there', {
      wall: iso(wall),
      now: iso(this.now()),
    });
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
